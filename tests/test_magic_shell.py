"""``%%seeds_batch`` in an ``InteractiveShell`` (no kernel): the transformer path, the sync
``run_cell_magic`` path, config, provider choice, background, Ctrl-C, against the mock server."""

from __future__ import annotations

import _thread
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import seeds_nb.magic as magic
from seeds_nb import BatchResult, MockServer
from seeds_nb.magic import _magics


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    ip = InteractiveShell.instance(config=Config({"HistoryManager": {"enabled": False}}))
    ip.run_line_magic("load_ext", "seeds_nb")
    return ip


@pytest.fixture
def ip(shell: InteractiveShell, tmp_path: Path) -> Iterator[InteractiveShell]:
    """The shell with a per-test cache directory, a fast mock and the default options."""
    for line in (f"SeedsBatch.cache_dir = {str(tmp_path / 'cache')!r}", "SeedsBatch.mock_latency_s = 0.0",
                 "SeedsBatch.model = 'gpt-4.1-mini'", "SeedsBatch.provider = None"):
        shell.run_line_magic("config", line)
    shell.autoawait = True
    yield shell
    for name in [n for n in shell.user_ns if n.startswith(("seeds_result", "r_", "bg"))]:
        shell.user_ns.pop(name)


def mock_requests() -> list[dict[str, Any]]:
    server = _magics._mock_server
    return server.requests if server is not None else []


# -- the transformer -------------------------------------------------------------------------------
def test_transformer_rewrites_only_seeds_batch_cells(ip: InteractiveShell) -> None:
    out = magic.transform_cell(["%%seeds_batch --out x \n", "a {b}\n", "c"])
    call = "__import__('seeds_nb.magic', fromlist=['run_cell_async']).run_cell_async('--out x', 'a {b}\\nc')"
    assert out == [f"await {call}\n"]
    for lines in (["%%seeds_batch?\n"], ["%%seeds_batchy\n", "a"], ["x = 1\n"], ["%%time\n", "1"], []):
        assert magic.transform_cell(lines) == lines
    assert "await" in ip.transform_cell("%%seeds_batch\nhello\n")
    ip.autoawait = False  # %autoawait off: the sync path, so the cell is still valid Python
    assert ip.transform_cell("%%seeds_batch\nhello\n").startswith("__import__('seeds_nb.magic'")


def test_loading_twice_keeps_one_transformer_and_unload_removes_it(shell: InteractiveShell) -> None:
    ours = [t for t in shell.input_transformers_cleanup if getattr(t, "seeds_nb_transformer", False)]
    assert len(ours) == 1
    magic.load_ipython_extension(shell)
    assert sum(getattr(t, "seeds_nb_transformer", False) for t in shell.input_transformers_cleanup) == 1
    instance = magic._registered
    magic.unload_ipython_extension(shell)
    assert not any(getattr(t, "seeds_nb_transformer", False) for t in shell.input_transformers_cleanup)
    assert "seeds_batch" not in shell.magics_manager.magics["cell"]
    magic.load_ipython_extension(shell)
    assert "seeds_batch" in shell.magics_manager.magics["cell"] and magic._registered is not instance
    assert sum(type(c).__name__ == "SeedsBatch" for c in shell.configurables) == 1


# -- running ------------------------------------------------------------------------------------
def test_await_path_lines_separator_and_names(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.user_ns["topic"] = "tea"
    before = len(mock_requests())
    result = ip.run_cell("%%seeds_batch --system 'Answer in {topic} words.' --temperature 0.3 --max-tokens 20\n"
                         "Tell me about {topic}\n---\nA poem\nabout {{braces}}\n")
    assert result.success, result.error_in_exec
    assert result.result is None  # nothing echoed: the panel shows the run
    seeds_result = ip.user_ns["seeds_result"]
    assert isinstance(seeds_result, BatchResult) and seeds_result.successful_count == 2
    bodies = [r["body"] for r in mock_requests()[before:]]
    assert sorted(b["messages"][1]["content"] for b in bodies) == ["A poem\nabout {braces}", "Tell me about tea"]
    assert {b["messages"][0]["content"] for b in bodies} == {"Answer in tea words."}
    assert {(b["temperature"], b["max_tokens"]) for b in bodies} == {(0.3, 20)}
    assert "BatchProgress" in capsys.readouterr().out  # run_batch displayed its panel


def test_sync_run_cell_magic_path_and_the_cache(ip: InteractiveShell) -> None:
    cell = "one\ntwo\nthree\n"
    assert ip.run_cell_magic("seeds_batch", "--out r_first", cell) is None
    first = ip.user_ns["r_first"]
    assert (first.successful_count, first.cached_count) == (3, 0)
    ip.run_cell_magic("seeds_batch", "--out r_second", cell)
    assert ip.user_ns["r_second"].cached_count == 3
    ip.run_cell_magic("seeds_batch", "--out r_third --no-cache", cell)
    assert ip.user_ns["r_third"].cached_count == 0
    key_clients = [c for c in _magics._clients.values() if c.cache is not None]
    assert len({id(c) for c in key_clients}) == len(key_clients)  # one client per configuration


def test_clients_are_reused_from_cell_to_cell(ip: InteractiveShell) -> None:
    ip.run_cell_magic("seeds_batch", "--out r_a --no-cache", "x")
    count = len(_magics._clients)
    ip.run_cell_magic("seeds_batch", "--out r_b --no-cache", "y")
    assert len(_magics._clients) == count


def test_over_a_list_and_config_defaults(ip: InteractiveShell) -> None:
    ip.user_ns["cities"] = ["Paris", "Oslo", "Lima"]
    ip.run_line_magic("config", "SeedsBatch.model = 'gpt-4o'")
    assert ip.run_cell("%%seeds_batch --over cities --out r_over\nDescribe {item}.\n").success
    result = ip.user_ns["r_over"]
    assert result.model == "gpt-4o" and result.prompts == ["Describe Paris.", "Describe Oslo.", "Describe Lima."]


def test_usage_errors_are_one_clean_line(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    for cell, needle in (("%%seeds_batch --max-concurrent 0\nhi\n", "--max-concurrent must be at least 1"),
                         ("%%seeds_batch\nhi {undefined_name}\n", "unknown name {undefined_name}"),
                         ("%%seeds_batch --bogus\nhi\n", "unrecognized arguments: --bogus"),
                         ("%%seeds_batch\n\n", "no prompts")):
        result = ip.run_cell(cell)
        assert isinstance(result.error_in_exec, UsageError)
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err and err.count("\n") == 1, err
    with pytest.raises(UsageError, match="unknown name"):
        ip.run_cell_magic("seeds_batch", "", "hi {undefined_name}")


def test_explicit_openai_without_a_key_says_how_to_fix_it(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="OPENAI_API_KEY"):
        ip.run_cell_magic("seeds_batch", "--provider openai", "hi")


def test_openai_base_url_from_the_environment_is_honoured(ip: InteractiveShell, server: MockServer,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    ip.run_cell_magic("seeds_batch", "--out r_env --no-cache", "via env\nsecond")
    assert server.request_count == 2 and ip.user_ns["r_env"].successful_count == 2
    ip.run_cell_magic("seeds_batch", f"--out r_flag --no-cache --base-url {server.url}", "via flag")
    assert server.request_count == 3


def test_dry_run_sends_nothing_and_binds_nothing(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.user_ns["seeds_result"] = sentinel = object()
    before = len(mock_requests())
    assert ip.run_cell("%%seeds_batch --dry-run --max-tokens 50\nfirst\nsecond\n").success
    out = capsys.readouterr().out
    assert "dry run - nothing sent: 2 prompts" in out and "$" in out
    assert "output 5–50 tokens per prompt, 10–100 in all" in out
    assert len(mock_requests()) == before and ip.user_ns["seeds_result"] is sentinel


def test_budget_stops_the_batch(ip: InteractiveShell) -> None:
    ip.run_cell_magic("seeds_batch", "--out r_budget --no-cache --max-concurrent 1 --budget-usd 0.000000001",
                      "\n".join(f"p{i}" for i in range(6)))
    result = ip.user_ns["r_budget"]
    assert result.stop_reason == "max_cost_usd" and result.successful_count == 1 and result.failed_count == 5


def test_plot_displays_the_summary(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import seeds_nb.plots

    class Figure:
        def __repr__(self) -> str:
            return "<summary figure>"

    seen: list[BatchResult] = []
    monkeypatch.setattr(seeds_nb.plots, "summary", lambda result: seen.append(result) or Figure())
    assert ip.run_cell("%%seeds_batch --plot --no-grid --out r_plot\nhi\n").success
    assert seen == [ip.user_ns["r_plot"]] and "<summary figure>" in capsys.readouterr().out


def test_help(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert ip.run_cell("%%seeds_batch --help\nignored\n").success
    assert "--max-concurrent" in capsys.readouterr().out
    ip.run_cell("%%seeds_batch?")
    assert "--budget-usd" in capsys.readouterr().out


def test_background_binds_the_handle_now_and_the_result_when_done(ip: InteractiveShell) -> None:
    ip.run_line_magic("config", "SeedsBatch.mock_latency_s = 0.5")
    ip.user_ns["bg"] = "stale"
    assert ip.run_cell("%%seeds_batch --background --no-cache --out bg --max-concurrent 2\n"
                       "a\nb\nc\nd\n").success
    handle = ip.user_ns["bg_run"]
    assert not handle.done()  # the cell returned while the batch (>= 1 s of server latency) runs
    assert "bg" not in ip.user_ns  # the stale value is gone, not silently kept
    result = handle.result(timeout=10)
    assert ip.user_ns["bg"] is result and result.successful_count == 4 and handle.done()


def test_ctrl_c_in_the_sync_path_cancels_and_binds_the_partial_result(ip: InteractiveShell,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("config", "SeedsBatch.mock_latency_s = 0.1")
    ip.run_cell("%%seeds_batch --no-cache --out r_warm\nwarm up\n")  # the embedded server is up
    seen = len(mock_requests())
    stop = threading.Event()

    def interrupt_after_two_answers() -> None:
        # One request at a time: the server seeing a third means the client has finished two.
        while not stop.wait(0.01):
            if len(mock_requests()) - seen >= 3:
                _thread.interrupt_main()
                return

    watcher = threading.Thread(target=interrupt_after_two_answers, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        ip.run_cell_magic("seeds_batch", "--out r_int --no-cache --max-concurrent 1",
                          "\n".join(f"slow {i}" for i in range(40)))
    stop.set()
    watcher.join()
    result = ip.user_ns["r_int"]
    assert result.stop_reason == "cancelled" and 2 <= result.successful_count < 40
    assert result.successful_count + result.failed_count == 40
    assert "partial result is in r_int" in capsys.readouterr().err
    assert not [t for t in threading.enumerate() if t.name == "seeds_nb-sync"]


# -- --submit (a Batch API job on the embedded mock) and --provider anthropic -------------------------
@pytest.fixture
def quick_jobs(ip: InteractiveShell) -> Iterator[InteractiveShell]:
    """Jobs on the embedded mock end in a fraction of a second (its clock is the real one)."""
    ip.run_line_magic("config", "SeedsBatch.mock_batch_duration_s = 0.3")
    yield ip
    ip.run_line_magic("config", "SeedsBatch.mock_batch_duration_s = 2.0")


def test_submit_await_path_binds_the_job_and_the_result(quick_jobs: InteractiveShell,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from seeds_nb import BatchJob

    result = quick_jobs.run_cell("%%seeds_batch --submit --poll-interval 0.05 --max-tokens 20 --out r_sub\n"
                                 "one\ntwo\nthree\n")
    assert result.success, result.error_in_exec
    job, sub = quick_jobs.user_ns["r_sub_job"], quick_jobs.user_ns["r_sub"]
    assert isinstance(job, BatchJob) and job.status == "completed" and job.client.provider == "openai"
    assert isinstance(sub, BatchResult) and sub.successful_count == 3 and sub.prompts == ["one", "two", "three"]
    out = capsys.readouterr().out
    assert "BatchJobMonitor: validating · 0/3 done" in out  # the monitor, as displayed before the first poll
    assert "ResultsGrid: 3 rows (3 ok)" in out  # then the results


def test_submit_sync_and_background_paths(quick_jobs: InteractiveShell) -> None:
    quick_jobs.run_cell_magic("seeds_batch", "--submit --poll-interval 0.05 --out r_sync_sub --no-grid", "a\nb\n")
    assert quick_jobs.user_ns["r_sync_sub"].successful_count == 2
    quick_jobs.user_ns["bg_sub"] = "stale"
    assert quick_jobs.run_cell("%%seeds_batch --submit --background --poll-interval 0.05 --out bg_sub\n"
                               "c\nd\ne\n").success
    handle = quick_jobs.user_ns["bg_sub_run"]
    assert "bg_sub" not in quick_jobs.user_ns and quick_jobs.user_ns["bg_sub_job"].id in repr(handle)
    result = handle.result(timeout=30)
    assert quick_jobs.user_ns["bg_sub"] is result and result.successful_count == 3
    assert handle.monitor.state == "completed"


def test_provider_anthropic_uses_the_messages_api(ip: InteractiveShell, server: MockServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Key and server from ANTHROPIC_*, or --base-url; the model defaults to a Claude model."""
    ip.run_line_magic("config", "SeedsBatch.model = None")
    with pytest.raises(UsageError, match="ANTHROPIC_API_KEY"):  # no key for the real API
        ip.run_cell_magic("seeds_batch", "--provider anthropic", "hi")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
    assert ip.run_cell("%%seeds_batch --provider anthropic --no-cache --out r_claude\nhi\nthere\n").success
    result = ip.user_ns["r_claude"]
    assert (result.provider, result.model, result.successful_count) == ("anthropic", "claude-haiku-4-5", 2)
    assert {r["path"] for r in server.requests} == {"/v1/messages"}
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    ip.run_cell_magic("seeds_batch", f"--provider anthropic --base-url {server.anthropic_url} --no-cache "
                                     "--model claude-sonnet-4-5 --out r_flag", "via the flag")
    assert ip.user_ns["r_flag"].model == "claude-sonnet-4-5" and server.request_count == 3


def test_provider_google_and_openrouter(ip: InteractiveShell, server: MockServer, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Gemini and OpenRouter by name: each client's key and base URL variables, its default model, its pricing."""
    ip.run_line_magic("config", "SeedsBatch.model = None")
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UsageError, match="--provider google: no Gemini API key.*GEMINI_API_KEY"):
        ip.run_cell_magic("seeds_batch", "--provider google", "hi")
    with pytest.raises(UsageError, match="--provider openrouter: no OpenRouter API key.*OPENROUTER_API_KEY"):
        ip.run_cell_magic("seeds_batch", "--provider openrouter", "hi")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.gemini_url)
    assert ip.run_cell("%%seeds_batch --provider google --no-cache --out r_gemini\nhi\nthere\n").success
    result = ip.user_ns["r_gemini"]
    assert (result.provider, result.model, result.successful_count) == ("google", "gemini-2.5-flash", 2)
    assert {r["path"] for r in server.requests} == {"/v1beta/models/gemini-2.5-flash:generateContent"}
    assert result.total_cost_usd > 0 and result.total_gwp_kgco2eq > 0
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-key-0123456789")
    ip.run_cell_magic("seeds_batch", f"--provider openrouter --base-url {server.url} --no-cache "
                                     "--model anthropic/claude-sonnet-4.5 --out r_router", "via OpenRouter")
    routed = ip.user_ns["r_router"]
    assert (routed.provider, routed.model, routed.successful_count) == ("openrouter", "anthropic/claude-sonnet-4.5", 1)
    assert routed.total_cost_usd > 0 and routed.total_gwp_kgco2eq > 0  # billed cost, carbon as Anthropic's model
    capsys.readouterr()
    assert ip.run_cell("%%seeds_batch --dry-run --provider openrouter --max-tokens 50\nfirst\n").success
    out = capsys.readouterr().out
    assert "1 prompt to openai/gpt-4.1-mini (openrouter at" in out and "unknown for this model" not in out
    assert ip.run_cell("%%seeds_batch --dry-run --provider google --max-tokens 50\nfirst\n").success
    out = capsys.readouterr().out
    assert "1 prompt to gemini-2.5-flash (google at" in out and "unknown for this model" not in out


def test_provider_selfhosted_reads_the_servers_measured_carbon(ip: InteractiveShell, server: MockServer,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("config", "SeedsBatch.model = None")
    monkeypatch.delenv("SELFHOSTED_BASE_URL", raising=False)
    monkeypatch.delenv("MODEL_GARDEN_BASE_URL", raising=False)
    with pytest.raises(UsageError, match="--provider selfhosted: SelfHostedClient needs the server's URL"):
        ip.run_cell_magic("seeds_batch", "--provider selfhosted", "hi")
    assert ip.run_cell(f"%%seeds_batch --provider selfhosted --base-url {server.selfhosted_url} --no-cache "
                       "--out r_gpu\nhi\nthere\n").success
    result = ip.user_ns["r_gpu"]
    assert (result.provider, result.model, result.successful_count) == ("selfhosted", "default", 2)
    assert result.impacts_method == "measured" and result.total_gwp_kgco2eq > 0
    assert "gCO2eq measured" in capsys.readouterr().out  # the panel says so
    assert ip.run_cell("%%seeds_batch --dry-run --provider selfhosted\nfirst\n").success
    assert "the server measures them per answer" in capsys.readouterr().out


def test_dry_run_of_a_submit_prices_at_the_batch_rate(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("config", "SeedsBatch.model = None")
    assert ip.run_cell("%%seeds_batch --dry-run --submit --provider anthropic --max-tokens 50\nfirst\n").success
    out = capsys.readouterr().out
    assert "1 prompt to claude-haiku-4-5 (anthropic at api.anthropic.com)" in out and "batch rate" in out
    assert "unknown for this model" not in out


def test_no_grid_shows_the_panel_only_and_the_mock_is_started_once(ip: InteractiveShell,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert ip.run_cell("%%seeds_batch --out r_grid\nwith a grid\n").success
    first_server = _magics._mock_server
    with_grid = capsys.readouterr().out
    assert ip.run_cell("%%seeds_batch --no-grid --out r_nogrid\nwithout a grid\n").success
    without_grid = capsys.readouterr().out
    assert "BatchProgress" in with_grid and "ResultsGrid" in with_grid
    assert "BatchProgress" in without_grid and "ResultsGrid" not in without_grid
    assert _magics._mock_server is first_server  # one embedded server per kernel, reused
    asked = [r["body"]["messages"][-1]["content"] for r in mock_requests()]
    assert "with a grid" in asked and "without a grid" in asked


# -- options that would poison the batch or the notebook -----------------------------------------------
@pytest.fixture
def untouched(ip: InteractiveShell) -> Iterator[dict[str, Any]]:
    """A snapshot of the user namespace, restored afterwards (so a failure cannot break later tests)."""
    before = dict(ip.user_ns)
    yield before
    ip.user_ns.clear()
    ip.user_ns.update(before)
    ip.run_line_magic("config", "SeedsBatch.out = 'seeds_result'")


@pytest.mark.parametrize(("line", "needle"), [
    ("--temperature nan", "--temperature must be >= 0 and finite (a number such as 0.7); got nan"),
    ("--temperature inf", "--temperature must be >= 0 and finite (a number such as 0.7); got inf"),
    ("--temperature=-inf", "--temperature must be >= 0 and finite (a number such as 0.7); got -inf"),
    ("--temperature 1e999", "got inf"),
    ("--budget-usd nan", "--budget-usd must be a positive amount (a finite number such as 0.50); got nan"),
    ("--budget-usd inf", "--budget-usd must be a positive amount (a finite number such as 0.50); got inf"),
    ("--submit --poll-interval nan",
     "--poll-interval must be a positive number of seconds (finite, such as 30); got nan"),
    ("--submit --poll-interval inf",
     "--poll-interval must be a positive number of seconds (finite, such as 30); got inf"),
    ("--max-tokens nan", "invalid int value: 'nan'"),
    ("--max-concurrent inf", "invalid int value: 'inf'"),
])
def test_non_finite_numbers_are_refused_before_anything_is_sent(ip: InteractiveShell, untouched: dict[str, Any],
                                                                line: str, needle: str) -> None:
    sent = len(mock_requests())
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("seeds_batch", f"{line} --out r_nan --no-cache", "hi")
    assert needle in str(info.value)
    assert ip.user_ns == untouched and len(mock_requests()) == sent


@pytest.mark.parametrize(("name", "needle"), [
    ("__builtins__", "'__builtins__': names like __x__ belong to Python"),
    ("__name__", "'__name__': names like __x__ belong to Python"),
    ("__seeds__", "'__seeds__': names like __x__ belong to Python"),
    ("print", "'print': that is a Python builtin"),
    ("list", "'list': that is a Python builtin"),
    ("len", "'len': that is a Python builtin"),
    ("class", "'class': that is a Python keyword"),
    ("None", "'None': that is a Python keyword"),
    ("In", "'In': IPython keeps its own data there"),
    ("_", "'_': IPython keeps its own data there"),
    ("_i3", "'_i3': IPython keeps its own data there"),
    ("get_ipython", "'get_ipython'"),
])
@pytest.mark.parametrize("extra", ["", "--background", "--submit"])
def test_out_refuses_names_that_would_break_the_notebook(ip: InteractiveShell, untouched: dict[str, Any],
                                                         name: str, needle: str, extra: str) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("seeds_batch", f"--out {name} --no-cache {extra}", "hi")
    message = str(info.value)
    assert message.startswith(f"--out {name!r}") and needle in message and "choose another name" in message
    assert ip.user_ns == untouched  # nothing bound: not the result, not <out>_run, not <out>_job


def test_a_configured_out_is_checked_too_and_the_shell_still_works(ip: InteractiveShell,
                                                                   untouched: dict[str, Any],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("config", "SeedsBatch.out = '__builtins__'")
    result = ip.run_cell("%%seeds_batch --no-cache\nhi\n")
    assert isinstance(result.error_in_exec, UsageError)
    err = capsys.readouterr().err
    assert "--out '__builtins__'" in err and "Traceback" not in err and err.count("\n") == 1, err
    assert ip.user_ns["__builtins__"] is untouched["__builtins__"]
    ip.run_line_magic("config", "SeedsBatch.out = 'seeds_result'")
    assert ip.run_cell("x_after = len([1, 2])").success and ip.user_ns["x_after"] == 2
    ip.user_ns.pop("x_after")


# -- structured output and sinks (issue #13) -------------------------------------------------------
def test_schema_parses_answers_into_the_model_and_names_what_is_wrong(ip: InteractiveShell) -> None:
    ip.run_cell("from pydantic import BaseModel\nclass Mood(BaseModel):\n    label: str\n    score: int\n")
    ip.user_ns["texts"] = ["great", "awful", "fine"]
    assert ip.run_cell("%%seeds_batch --schema Mood --over texts --out r_mood\nHow does this sound: {item}\n").success
    result = ip.user_ns["r_mood"]
    assert result.successful_count == 3 and all(type(r.parsed).__name__ == "Mood" for r in result.responses)
    assert {"label", "score"} <= set(result.to_pandas().columns)
    sent = mock_requests()[-1]["body"]
    assert sent["response_format"]["type"] == "json_schema" and "score" in str(sent["response_format"])
    with pytest.raises(UsageError, match="no variable named 'Missing'.*define a pydantic model"):
        ip.run_cell_magic("seeds_batch", "--schema Missing", "hello")
    ip.user_ns["not_a_model"] = 3
    with pytest.raises(UsageError, match="expected a pydantic model class.*got int"):
        ip.run_cell_magic("seeds_batch", "--schema not_a_model", "hello")


def test_sink_writes_the_rows_and_a_rerun_sends_only_what_is_missing(ip: InteractiveShell, tmp_path: Path) -> None:
    import pandas as pd

    ip.user_ns["reviews"] = pd.DataFrame({"id": [1, 2, 3, 4], "text": ["good", "bad", "meh", "great"]})
    sink = tmp_path / "reviews.parquet"
    cell = "Review {id}: {text}\n"
    assert ip.run_cell(f"%%seeds_batch --over reviews --sink {sink} --no-cache --out r_sink\n{cell}").success
    assert ip.user_ns["r_sink"] == sink
    table = pd.read_parquet(sink)
    assert table["id"].tolist() == [1, 2, 3, 4] and table["status"].tolist() == ["ok"] * 4
    assert table["response"].notna().all()
    sent_before = len(mock_requests())
    ip.user_ns["reviews"] = pd.DataFrame({"id": [1, 2, 3, 4, 5], "text": ["good", "bad", "meh", "great", "new"]})
    assert ip.run_cell(f"%%seeds_batch --over reviews --sink {sink} --no-cache --out r_sink\n{cell}").success
    assert len(mock_requests()) == sent_before + 1  # resumed: only row 5 was sent
    assert pd.read_parquet(sink)["id"].tolist() == [1, 2, 3, 4, 5]
    for line, message in ((f"--sink {sink}", "pass --over too"),
                          (f"--over reviews --sink {sink} --plot", "does not combine with --plot"),
                          ("--over reviews --sink out.csv", "ending in .parquet or .jsonl")):
        with pytest.raises(UsageError, match=message):
            ip.run_cell_magic("seeds_batch", line, cell)
    with pytest.raises(UsageError, match="the cell must hold one prompt; it holds 2"):
        ip.run_cell_magic("seeds_batch", f"--over reviews --sink {sink}", "one {id}\ntwo {id}\n")
