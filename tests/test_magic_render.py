"""``%%seeds_batch`` without a kernel: splitting, ``{name}`` rendering, ``--over`` rows, option checks, dry run.

These are the pure functions behind the magic, so every user mistake is checked to end as a
one-line ``UsageError`` (not a ``KeyError``/``SystemExit``) in milliseconds.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError

from seeds_nb.core.estimate import DEFAULT_OUTPUT_TOKENS, MESSAGE_TOKENS, PRIMING_TOKENS, _num
from seeds_nb.core.types import Message
from seeds_nb.magic import SeedsBatch, build_prompts, estimate_plan, over_rows, render, split_prompts
from seeds_nb.magic._render import Prompt, check_name


# -- splitting -----------------------------------------------------------------------------------
def test_one_prompt_per_non_empty_line() -> None:
    assert split_prompts("  Hello \n\n World\n   \n") == ["Hello", "World"]


def test_separator_makes_multi_line_prompts() -> None:
    cell = "First line\nsecond line\n---\n\n  Another\n  indented\n---\n---\n"
    assert split_prompts(cell) == ["First line\nsecond line", "Another\nindented"]


def test_separator_needs_a_line_of_its_own() -> None:
    assert split_prompts("a --- b\nc") == ["a --- b", "c"]


def test_empty_cell_has_no_prompts() -> None:
    assert split_prompts("\n  \n") == []
    with pytest.raises(UsageError, match="no prompts"):
        build_prompts("\n\n", {})


# -- rendering -----------------------------------------------------------------------------------
def test_render_fills_names_and_keeps_escaped_braces() -> None:
    ns = {"topic": "cats", "row": {"n": 3}, "n": 2.5}
    assert render("About {topic}: {{json}} {row[n]} {n:.1f}", ns) == "About cats: {json} 3 2.5"
    assert render("only {{literal}}", {}) == "only {literal}"


def test_unknown_names_are_a_usage_error_listing_all_of_them() -> None:
    with pytest.raises(UsageError) as info:
        render("Tell {who} about {what} and {who}", {"x": 1})
    message = str(info.value)
    assert "unknown names {who}, {what}" in message
    assert "{{" in message  # says how to write a literal brace
    assert not isinstance(info.value, KeyError)


@pytest.mark.parametrize("template", ["a { b", "a } b", "x {} y", "x {0} y"])
def test_stray_and_positional_braces_are_usage_errors(template: str) -> None:
    with pytest.raises(UsageError, match="literal braces"):
        render(template, {"b": 1})


def test_bad_field_access_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="cannot fill"):
        render("{row[missing]}", {"row": {}})
    with pytest.raises(UsageError, match="cannot fill"):
        render("{n:d}", {"n": "text"})


# -- --over ------------------------------------------------------------------------------------------
def test_over_rows_scalars_dicts_frames_and_mappings() -> None:
    assert over_rows([1, 2], "xs") == [{"item": 1}, {"item": 2}]
    rows = over_rows([{"name": "Ada", 3: "x"}], "people")
    assert rows[0]["name"] == "Ada" and rows[0]["item"] == {"name": "Ada", 3: "x"} and 3 not in rows[0]
    frame = pd.DataFrame({"city": ["Paris", "Oslo"], "pop": [2, 1]})
    assert [(r["city"], r["pop"]) for r in over_rows(frame, "df")] == [("Paris", 2), ("Oslo", 1)]
    assert over_rows({"fr": "French"}, "langs") == [{"item": "fr", "key": "fr", "value": "French"}]
    assert over_rows((x for x in "ab"), "gen") == [{"item": "a"}, {"item": "b"}]


@pytest.mark.parametrize("value", ["a string", 42, None, [], pd.DataFrame({"a": []})])
def test_over_rejects_what_it_cannot_iterate_or_empty(value: object) -> None:
    with pytest.raises(UsageError, match="--over v"):
        over_rows(value, "v")


def test_build_prompts_over_a_frame_with_namespace_names_and_system() -> None:
    ns = {"style": "briefly", "df": pd.DataFrame({"city": ["Paris", "Oslo"]})}
    prompts = build_prompts("Describe {city} {style}.\nWhere is {city}?", ns, over="df",
                            system="You answer {style}.")
    assert [p.text for p in prompts] == ["Describe Paris briefly.", "Where is Paris?", "Describe Oslo briefly.",
                                         "Where is Oslo?"]
    assert {p.system for p in prompts} == {"You answer briefly."}
    request = prompts[0].to_request()
    assert request == [Message("system", "You answer briefly."), Message("user", "Describe Paris briefly.")]
    assert Prompt("plain").to_request() == "plain"


def test_row_names_shadow_namespace_names() -> None:
    prompts = build_prompts("{item} {x}", {"item": "ns", "x": "ns-x", "xs": ["a"]}, over="xs")
    assert [p.text for p in prompts] == ["a ns-x"]


def test_over_errors_name_the_row_and_the_variable() -> None:
    with pytest.raises(UsageError, match="no variable named 'nope'"):
        build_prompts("{item}", {}, over="nope")
    with pytest.raises(UsageError, match=r"row 1 of --over rows: prompt .*unknown name \{b\}"):
        build_prompts("{b}", {"rows": [{"b": 1}, {"c": 2}]}, over="rows")
    with pytest.raises(UsageError, match="variable name"):
        build_prompts("x", {}, over="not a name")


@pytest.mark.parametrize("name", ["1abc", "a-b", "class", ""])
def test_out_must_be_a_variable_name(name: str) -> None:
    with pytest.raises(UsageError, match="--out"):
        check_name(name, "--out")


# -- options -------------------------------------------------------------------------------------
@pytest.fixture
def magics() -> SeedsBatch:
    return SeedsBatch(shell=None)


def test_defaults_come_from_the_configurable(magics: SeedsBatch) -> None:
    args = magics.parse("")
    assert (args.model, args.max_concurrent, args.out) == ("gpt-4.1-mini", 5, "seeds_result")
    magics.model, magics.max_concurrent = "gpt-4o", 9
    args = magics.parse("--temperature 0.2 --max-tokens 40 --budget-usd 0.5 --system 'Be terse, {who}.'")
    assert (args.model, args.max_concurrent, args.system) == ("gpt-4o", 9, "Be terse, {who}.")
    assert magics.params(args) == {"temperature": 0.2, "max_tokens": 40, "max_cost_usd": 0.5}


@pytest.mark.parametrize(("line", "needle"), [
    ("--max-concurrent 0", "--max-concurrent must be at least 1"),
    ("--max-concurrent two", "invalid int value"),
    ("--temperature -1", "--temperature must be >= 0"),
    ("--max-tokens 0", "--max-tokens must be at least 1"),
    ("--budget-usd 0", "--budget-usd must be a positive amount"),
    ("--frobnicate", "unrecognized arguments: --frobnicate"),
    ("stray words", "unrecognized arguments: stray words"),
    ("--provider cohere", "invalid choice: 'cohere'"),
    ("--submit --budget-usd 1", "--budget-usd does not apply to --submit"),
    ("--submit --max-concurrent 3", "--max-concurrent does not apply to --submit"),
    ("--poll-interval 5", "--poll-interval applies to --submit only"),
    ("--submit --poll-interval 0", "--poll-interval must be a positive number"),
    ("--provider mock --base-url http://x", "does not apply"),
    ("--no-cache --cache-dir d", "contradict"),
    ("--out 9x", "--out '9x'"),
    ("--model ''", "--model"),
    ("--system 'unclosed", "cannot split the options"),
    ("--dry-run --background", "--dry-run sends nothing"),
])
def test_bad_options_are_one_line_usage_errors(magics: SeedsBatch, line: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        magics.parse(line)
    assert needle in str(info.value)


def test_help_is_an_option_not_a_system_exit(magics: SeedsBatch) -> None:
    assert magics.parse("--help").help
    text = SeedsBatch.help_text()
    for option in ("--model", "--provider", "--base-url", "--max-concurrent", "--system", "--temperature",
                   "--max-tokens", "--cache-dir", "--no-cache", "--out", "--over", "--background", "--no-grid",
                   "--plot", "--budget-usd", "--dry-run", "--submit", "--poll-interval", "SeedsBatch.model",
                   "ANTHROPIC_API_KEY", "NAME_job", "claude-haiku-4-5"):
        assert option in text


def test_provider_choice(magics: SeedsBatch, monkeypatch: pytest.MonkeyPatch) -> None:
    assert magics.choose_provider(magics.parse("")) == "mock"
    assert magics.choose_provider(magics.parse("--base-url http://localhost:8000/v1")) == "openai"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert magics.choose_provider(magics.parse("")) == "openai"
    assert magics.choose_provider(magics.parse("--provider mock")) == "mock"
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:1/v1")
    assert magics.choose_provider(magics.parse("")) == "openai"
    monkeypatch.delenv("OPENAI_BASE_URL")
    magics.provider = "openai"
    assert magics.choose_provider(magics.parse("")) == "openai"


def test_model_default_follows_the_provider(magics: SeedsBatch, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --model: a Claude model for anthropic, gpt-4.1-mini otherwise; a configured model wins."""
    assert magics.parse("--provider anthropic").model == "claude-haiku-4-5"
    assert magics.parse("--provider anthropic --model claude-sonnet-4-5").model == "claude-sonnet-4-5"
    assert magics.parse("--provider mock").model == "gpt-4.1-mini"
    magics.provider = "anthropic"
    assert magics.parse("").model == "claude-haiku-4-5"
    magics.model = "claude-sonnet-4-5"
    assert magics.parse("").model == "claude-sonnet-4-5"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://localhost:9/")
    assert magics.base_url_for(magics.parse("--provider anthropic"), "anthropic") == "http://localhost:9/"
    assert magics.base_url_for(magics.parse("--provider anthropic --base-url http://h/"), "anthropic") == "http://h/"


def test_submit_options(magics: SeedsBatch) -> None:
    args = magics.parse("--submit --poll-interval 0.5 --max-tokens 20")
    assert args.submit and args.poll_interval == 0.5 and magics.params(args) == {"max_tokens": 20}
    assert magics.parse("--submit --background").background


def test_dry_run_of_a_submit_is_priced_at_the_batch_rate() -> None:
    prompts = [Prompt("x" * 400)] * 3
    direct = estimate_plan(prompts, model="gpt-4.1-mini", provider="mock", max_concurrent=5, params={})
    batch = estimate_plan(prompts, model="gpt-4.1-mini", provider="mock", max_concurrent=5, params={}, batch=True)
    assert direct.cost_usd is not None and batch.cost_usd is not None
    assert batch.cost_usd[1] == pytest.approx(direct.cost_usd[1] / 2)
    assert "batch rate" in repr(batch) and "batch rate" not in repr(direct)


def test_cache_dir_resolution(magics: SeedsBatch, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(str(tmp_path))
    assert magics.cache_dir_for(magics.parse("")) == str(tmp_path) + "/.seeds_cache"
    assert magics.cache_dir_for(magics.parse("--no-cache")) is None
    assert magics.cache_dir_for(magics.parse("--cache-dir sub")) == str(tmp_path) + "/sub"
    magics.cache_dir = ""
    assert magics.cache_dir_for(magics.parse("")) is None


# -- dry run -------------------------------------------------------------------------------------
def test_dry_run_estimate_is_a_range_and_sends_nothing() -> None:
    prompts = [Prompt("x" * 400), Prompt("y" * 40, system="s" * 40), Prompt("z" * 40, system="s" * 40)]
    plan = estimate_plan(prompts, model="gpt-4.1-mini", provider="mock", max_concurrent=5, params={})
    # chars/4 per message + OpenAI's chat overhead (what the mock bills too)
    assert plan.input_tokens == (100 + MESSAGE_TOKENS) + 2 * (10 + 10 + 2 * MESSAGE_TOKENS) + 3 * PRIMING_TOKENS
    assert plan.output_tokens == (3 * (DEFAULT_OUTPUT_TOKENS // 10), 3 * DEFAULT_OUTPUT_TOKENS)
    assert plan.cost_usd is not None and 0 < plan.cost_usd[0] < plan.cost_usd[1]
    assert plan.gwp_kgco2eq is not None and 0 < plan.gwp_kgco2eq[0] < plan.gwp_kgco2eq[1]
    text = repr(plan)
    assert "3 prompts" in text and "nothing sent" in text and "$" in text and "gCO2eq" in text
    assert "[system: ssss" in text
    assert "<table>" in plan._repr_html_()

    capped = estimate_plan(prompts, model="gpt-4.1-mini", provider="mock", max_concurrent=5,
                           params={"max_tokens": 20})
    assert capped.output_tokens == (6, 60)
    assert capped.cost_usd is not None and capped.cost_usd[1] < plan.cost_usd[1]


def test_dry_run_of_an_unknown_model_says_unknown_not_zero() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plan reports it; no warning leaks into the notebook
        plan = estimate_plan([Prompt("hi")], model="my-local-llama", provider="mock", max_concurrent=1, params={})
    assert plan.cost_usd is None and plan.gwp_kgco2eq is None
    assert "unknown for this model" in repr(plan) and "no price known" in repr(plan)


def test_dry_run_lists_twenty_prompts_then_counts() -> None:
    plan = estimate_plan([Prompt(f"p{i}") for i in range(25)], model="gpt-4.1-mini", provider="mock",
                         max_concurrent=5, params={})
    assert "... and 5 more" in repr(plan) and "p19" in repr(plan) and "p20" not in repr(plan)


@pytest.mark.parametrize(("value", "text"), [(0.0000352, "0.0000352"), (0.5, "0.500"), (12.345, "12.35"),
                                             (0.0, "0")])
def test_money_is_never_in_scientific_notation(value: float, text: str) -> None:
    assert _num(value) == text


# -- --background binding (a fake handle: no widgets, no threads of ours to wait on) -------------
class FakeHandle:
    """The widgets' BatchHandle surface: done(), result(timeout), outcome(), run.result."""

    def __init__(self) -> None:
        import threading
        import types

        from seeds_nb import BatchResult

        self.run = types.SimpleNamespace(result=BatchResult())
        self.finished = threading.Event()
        self.callbacks: list[Any] = []

    def add_done_callback(self, fn: Any) -> None:
        if self.finished.is_set():
            fn(None)
        else:
            self.callbacks.append(fn)

    def finish(self) -> None:
        self.finished.set()
        for fn in self.callbacks:
            fn(None)

    def done(self) -> bool:
        return self.finished.is_set()

    def result(self, timeout: float | None = None) -> object:
        if not self.finished.wait(timeout):
            raise TimeoutError
        return self.run.result

    def cancel(self) -> None:
        self.finish()

    def outcome(self) -> object:
        return self.run.result


def test_background_result_binds_before_returning_and_the_watcher_binds_alone() -> None:

    from seeds_nb.magic import BackgroundBatch

    ns: dict[str, object] = {}
    handle = FakeHandle()
    bound = BackgroundBatch(handle, ns, "out")
    assert "out" not in ns and not bound.done()  # delegated to the handle
    with pytest.raises(TimeoutError):
        bound.result(timeout=0.01)
    assert "out" not in ns
    bound.cancel()
    assert bound.result() is handle.run.result and ns["out"] is handle.run.result

    ns2: dict[str, object] = {}
    other = FakeHandle()
    BackgroundBatch(other, ns2, "later")
    other.finish()  # the work ended with nobody waiting: its done-callback binds the result
    assert ns2["later"] is other.run.result


def test_background_plot_failure_is_reported_in_the_output_area(monkeypatch: pytest.MonkeyPatch) -> None:
    import seeds_nb.plots
    from seeds_nb.magic import BackgroundBatch

    class Area:
        def __init__(self) -> None:
            self.stderr: list[str] = []

        def append_stderr(self, text: str) -> None:
            self.stderr.append(text)

    def broken(result: object) -> object:
        raise ValueError("no data")

    monkeypatch.setattr(seeds_nb.plots, "summary", broken)
    area, handle, ns = Area(), FakeHandle(), {}
    handle.finished.set()
    BackgroundBatch(handle, ns, "r", plot_area=area).result()
    assert area.stderr == ["seeds_nb: --plot failed: ValueError: no data\n"]


def test_check_name_refuses_bound_names_that_would_break_the_notebook() -> None:
    for name in ("__builtins__", "__name__", "____", "print", "len", "In", "Out", "_", "_i7", "_12", "None"):
        with pytest.raises(UsageError, match=f"--out '{name}': .*; choose another name"):
            check_name(name, "--out")
    for name in ("seeds_result", "_private", "__private", "result__", "print_run", "In_job", "match", "_i7x"):
        check_name(name, "--out")
    check_name("list", "--over", bound=False)  # --over only reads a variable: any name the user defined works
    with pytest.raises(UsageError, match="keyword"):
        check_name("class", "--over", bound=False)
