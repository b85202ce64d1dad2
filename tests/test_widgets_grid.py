"""The results grid's model, without a browser: the window the kernel pushes, sort / filter / search in
Python, the selected row's detail, the throttle (counted on a recording comm), the static snapshot, the
exports read back, and "re-run failed" against the real mock server updating the grid, the run's
``BatchResult`` (and its ledger) and the panel. The browser half is in test_widgets_browser.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from seeds_nb import MockServer, OpenAIClient
from seeds_nb.core.exceptions import Cancelled, ConfigurationError, PromptError, ServerError
from seeds_nb.core.result import BatchResult
from seeds_nb.core.types import Response, Tracking, Usage
from seeds_nb.mock import Fault
from seeds_nb.widgets import FILTERS, ResultsGrid, Throttle, run_batch
from seeds_nb.widgets._snapshot import SNAPSHOT_LIMIT

from _support import CommLog, FakeClock, record_comms

XSS = "<script>alert('x')</script>"


@pytest.fixture
def comm_log(monkeypatch: pytest.MonkeyPatch) -> CommLog:
    return record_comms(monkeypatch)


def response(i: int, *, cached: bool = False, content: str | None = None, cost: float | None = None) -> Response:
    return Response(content=content if content is not None else f"answer {i}", model="gpt-4.1-mini",
                    usage=Usage(10, 20), cached=cached, latency_s=0.01,
                    tracking=Tracking(cost_usd=1e-5 if cost is None else cost, energy_kwh=2e-6, gwp_kgco2eq=1e-6))


def filled(n: int = 10_000, **kwargs: Any) -> ResultsGrid:
    """Every 100th row (from 7) failed, every 10th cached; cost grows with i % 13."""
    grid = ResultsGrid(**kwargs)
    for i in range(n):
        if i % 100 == 7:
            grid.add(i, ServerError(f"HTTP 500 for {i}", status_code=500), f"prompt {i}")
        else:
            grid.add(i, response(i, cached=i % 10 == 0, cost=(i % 13) * 1e-6), f"prompt {i}")
    grid.refresh(force=True)
    return grid


def shown(grid: ResultsGrid) -> list[int]:
    return [row[0] for row in grid.window["rows"]]


# -- the window ----------------------------------------------------------------------------------------
def test_the_kernel_pushes_one_bounded_window_for_the_browsers_viewport() -> None:
    """10,000 rows: the browser gets only the rows its viewport asked for, and a new viewport gets
    its rows at once (no other message needed)."""
    grid = filled()
    assert grid.row_count == 10_000 and grid.view_size == 10_000
    assert grid.window["start"] == 0 and shown(grid) == list(range(60))
    assert len(json.dumps(grid.window)) < 12_000
    grid.viewport = [9_950, 80]
    assert grid.window["start"] == 9_920 and shown(grid) == list(range(9_920, 10_000))  # clamped to the end
    assert [r[0] for r in grid.visible_rows()] == shown(grid)
    grid.viewport = [5_000, 10_000_000]  # a huge request is capped
    assert len(grid.window["rows"]) <= 400
    assert grid.window["rows"][0][:4] == [5_000, "cached", "prompt 5000", "answer 5000"]
    assert grid.window["rows"][7][1] == "failed" and grid.window["rows"][7][-1] == "ServerError: HTTP 500 for 5007"


def test_adding_rows_sends_nothing_until_a_refresh(comm_log: CommLog) -> None:
    """Rows are data: ``add`` renders and sends nothing; a refresh sends one message."""
    grid = ResultsGrid()
    comm_log.clear()
    for i in range(5_000):
        grid.add(i, response(i), "p")
    assert comm_log.count("comm_msg") == 0 and grid.window == {}
    assert grid.refresh(force=True)
    assert comm_log.count("comm_msg") == 1
    assert comm_log.updates(grid.model_id)[-1]["view_size"] == 5_000


def test_pushes_are_throttled_to_at_most_20_per_second_and_the_final_state_is_sent(comm_log: CommLog) -> None:
    """10,000 rows over 10 s of (fake) time, refreshed after each: at most 2 pushes/s with the default
    0.5 s throttle (the issue allows 20), and the forced last push carries every row."""
    clock = FakeClock()
    grid = ResultsGrid(throttle=Throttle(0.5, clock))
    comm_log.clear()
    for i in range(10_000):
        clock.advance(0.001)
        grid.add(i, response(i), f"prompt {i}")
        grid.refresh()
    grid.refresh(force=True)
    sent = comm_log.count("comm_msg")
    assert 10 <= sent <= 20 * 10 and sent <= 2 * 10 + 2, sent
    assert comm_log.updates(grid.model_id)[-1]["view_size"] == 10_000


# -- sort, filter, search ---------------------------------------------------------------------------
def ask(grid: ResultsGrid, **changes: Any) -> None:
    """Deliver what grid.js sends when the user scrolls, clicks a row, sorts, filters or searches."""
    grid.comm.handle_msg({"content": {"data": {"method": "custom", "content": {"ask": changes}}}, "buffers": []})


def test_the_browser_asks_with_a_custom_message_answered_in_one_push(comm_log: CommLog) -> None:
    """The browser never writes a trait (an update would wait for an awaiting cell in Jupyter and re-run
    cells in marimo: see _grid.py): it asks, the kernel sets the traits and answers in one message; a
    bad request changes nothing and says why in the grid."""
    grid = filled(2_000)
    comm_log.clear()
    ask(grid, status_filter="failed", sort_by="cost", sort_desc=True, viewport=[0, 50], selected=107)
    assert comm_log.count("comm_msg") == 1
    state = comm_log.updates(grid.model_id)[-1]
    assert (state["status_filter"], state["sort_by"], state["sort_desc"], state["selected"]) == ("failed", "cost",
                                                                                              True, 107)
    assert state["view_size"] == 20 and [row[1] for row in state["window"]["rows"]] == ["failed"] * 20
    assert state["detail"]["index"] == 107 and state["detail"]["error_type"] == "ServerError"
    ask(grid, sort_by="nope", query="prompt 7")
    assert grid.sort_by == "cost" and grid.query == "" and "cannot sort by 'nope'" in grid.message
    ask(grid, selected="7", query="prompt 7")
    assert grid.selected == 107 and grid.query == "" and "TraitError" in grid.message
    ask(grid, query="PROMPT 107", viewport=[0, 60])  # among the failed rows
    assert grid.query == "PROMPT 107" and grid.view_size == 1 and shown(grid) == [107]


def test_sort_by_any_column_both_ways_with_unknown_values_last() -> None:
    grid = filled(300)
    grid.sort("cost", descending=True)
    order = grid.view_indices()
    costs = grid.to_dataframe()["cost_usd"]
    assert len(order) == 300 and costs.index.tolist() == order
    assert costs.iloc[:-3].is_monotonic_decreasing and costs.iloc[0] == 12e-6
    assert costs.iloc[-3:].isna().all() and all(i % 100 == 7 for i in order[-3:])  # no cost (failed): last
    grid.sort("cost")
    costs = grid.to_dataframe()["cost_usd"]
    assert costs.iloc[:-3].is_monotonic_increasing and costs.iloc[-3:].isna().all()
    grid.sort("error", descending=True)
    assert grid.view_indices()[:3] == [7, 207, 107]  # error text, descending: "...for 7" > "...for 207"
    grid.sort("index", descending=True)
    assert shown(grid)[:2] == [299, 298]
    assert grid.window["start"] == 0
    with pytest.raises(ConfigurationError, match="cannot sort by 'nope'"):
        grid.sort("nope")


def test_filters_show_only_their_statuses() -> None:
    grid = filled(1_000)
    grid.mark_retrying(1_000, "p", ServerError("HTTP 503", status_code=503))
    grid.add(1_001, Cancelled(), "never sent")
    expected = {"all": 1_002, "ok": 890, "cached": 100, "failed": 10, "retrying": 1, "cancelled": 1}
    for name in FILTERS:
        grid.set_filter(name)
        assert len(grid.view_indices()) == expected[name], name
        if FILTERS[name]:
            assert {row[1] for row in grid.visible_rows()} <= set(FILTERS[name])
    assert grid.current_filter == "cancelled"
    with pytest.raises(ConfigurationError, match="unknown filter 'nope'"):
        grid.set_filter("nope")


def test_search_is_case_insensitive_over_prompts_responses_and_errors_and_follows_new_rows() -> None:
    grid = ResultsGrid()
    grid.add(0, response(0, content="The Eiffel tower"), "where is paris")
    grid.add(1, response(1, content="a river"), "tell me about PARIS")
    grid.add(2, ServerError("paris is unreachable", status_code=500), "other")
    grid.add(3, response(3), "nothing here")
    grid.search("Paris")
    assert grid.view_indices() == [0, 1, 2]
    grid.search("eiffel")
    assert grid.view_indices() == [0]
    grid.add(4, response(4, content="eiffel again"), "x")  # a new row is tested as it comes
    grid.refresh(force=True)
    assert grid.view_indices() == [0, 4] and grid.view_size == 2
    grid.set_filter("failed")
    grid.search("")
    assert grid.view_indices() == [2]


def test_a_retrying_row_completes_in_place_and_leaves_the_retrying_filter() -> None:
    grid = ResultsGrid()
    grid.mark_retrying(5, "p5", ServerError("HTTP 503", status_code=503))
    grid.add(6, response(6), "p6")
    grid.set_filter("retrying")
    assert grid.view_indices() == [5] and grid.counts == {"retrying": 1, "ok": 1}
    grid.add(5, response(5), "p5")
    grid.refresh(force=True)
    assert grid.view_indices() == [] and grid.counts == {"ok": 2}
    grid.set_filter("all")
    assert grid.view_indices() == [5, 6]


def test_load_adds_rows_a_cancel_never_ran() -> None:
    result = BatchResult(model="m")
    for i in range(5):
        result.prompts.append(f"prompt {i}")
        result.record(i, response(i) if i < 2 else Cancelled())
    grid = ResultsGrid()
    grid.add(0, response(0), "prompt 0")
    grid.load(result)
    assert grid.row_count == 5 and grid.counts == {"ok": 2, "cancelled": 3}
    assert repr(ResultsGrid.from_result(result)) == "ResultsGrid: 5 rows (2 ok, 3 cancelled)"


# -- selection and detail -----------------------------------------------------------------------------
def test_selected_is_a_synced_trait_and_the_detail_has_everything() -> None:
    long_prompt = "word " * 500
    long_answer = "answer " * 400
    grid = ResultsGrid(["short", long_prompt, "p2"])
    grid.add(1, response(1, content=long_answer), long_prompt[:200])
    grid.add(2, ServerError("HTTP 500: boom", status_code=500), "p2")
    assert "selected" in grid.keys and grid.selected == -1
    grid.selected = 1  # what a click in the browser does
    detail = grid.detail
    assert detail["index"] == 1 and detail["status"] == "ok" and detail["title"] == "Response"
    assert detail["prompt"] == long_prompt and detail["text"] == long_answer
    facts = dict(detail["facts"])
    assert facts["model"] == "gpt-4.1-mini" and facts["attempts"] == "1" and facts["cost"] == "$0.000010"
    assert facts["carbon"] == "0.001 gCO2eq" and facts["tokens"] == "30"
    grid.select(2)
    assert grid.selected == 2
    assert grid.detail["title"] == "Error" and grid.detail["error_type"] == "ServerError"
    assert "boom" in grid.detail["text"]
    grid.select(0)
    assert grid.detail == {"index": 0, "missing": True}


def test_the_detail_shows_images_as_labels_never_their_bytes() -> None:
    """An image prompt shows ``[image/png ...]``; one that could not be sent (its image refused) shows a
    bounded text, not megabytes of the bytes' repr."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 3_000_000
    good = [{"role": "user", "content": [{"type": "text", "text": "Describe"}, {"type": "image", "source": png}]}]
    bad = [{"role": "user", "content": [{"type": "text", "text": "Describe"},
                                        {"type": "image", "source": b"BM" + b"\x00" * 3_000_000}]}]
    grid = ResultsGrid([good, bad])
    grid.add(0, response(0), "Describe [image/png 2.9 MB]")
    grid.add(1, PromptError("the image bytes: not a recognised file type"), "")
    grid.select(0)
    assert "Describe [image/png 2.9 MB]" in grid.detail["prompt"] and len(json.dumps(grid.detail)) < 5_000
    grid.select(1)
    assert "Describe" in grid.detail["prompt"] and len(json.dumps(grid.detail)) < 5_000


def test_a_servers_measured_carbon_says_so() -> None:
    grid = ResultsGrid()
    answer = response(0)
    answer.tracking.method = "measured"
    grid.add(0, answer, "p")
    grid.select(0)
    assert dict(grid.detail["facts"])["carbon"] == "0.001 gCO2eq measured"


def test_the_detail_follows_a_row_that_changes_while_selected() -> None:
    grid = ResultsGrid()
    grid.mark_retrying(0, "p", ServerError("HTTP 503", status_code=503))
    grid.select(0)
    assert grid.detail["title"] == "Retrying after"
    grid.add(0, response(0, content="finally"), "p")
    grid.refresh(force=True)
    assert grid.detail["title"] == "Response" and grid.detail["text"] == "finally"


def test_parsed_fields_are_columns_and_in_the_detail() -> None:
    grid = ResultsGrid(fields=["label", "score"])
    answer = response(0)
    answer.parsed = {"label": "positive", "score": 0.9}
    grid.add(0, answer, "p")
    grid.refresh(force=True)
    keys = [spec[0] for spec in grid.columns]
    assert keys[4:6] == ["field:label", "field:score"]
    assert grid.window["rows"][0][4:6] == ["positive", "0.9"]
    grid.sort("field:label")
    grid.select(0)
    assert grid.detail["fields"] == [["label", "positive"], ["score", "0.9"]]


# -- static snapshot -------------------------------------------------------------------------------------
def test_the_mimebundle_has_text_plain_and_an_escaped_static_snapshot() -> None:
    grid = filled(10_000)
    grid.add(10_000, response(10_000, content=f"<img src=x onerror=alert(1)> {XSS}"), XSS)
    data, _ = grid._repr_mimebundle_()
    assert data["text/plain"] == repr(grid) == "ResultsGrid: 10001 rows (8901 ok, 1000 cached, 100 failed)"
    assert "application/vnd.jupyter.widget-view+json" in data
    html = data["text/html"]
    assert len(html) <= SNAPSHOT_LIMIT and "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "10,001 rows" in html and "100 failed" in html
    assert ">0<" in html and ">4<" in html and ">9996<" in html and ">10000<" in html and ">5000<" not in html
    assert "javascript" not in html.lower() and " on" not in html.replace(" one", "")


def test_the_module_never_writes_html() -> None:
    """The browser side sets text only: no innerHTML anywhere in the shipped module."""
    assert "innerHTML" not in ResultsGrid._esm and "insertAdjacentHTML" not in ResultsGrid._esm
    assert "http://" not in ResultsGrid._esm and "https://" not in ResultsGrid._esm  # offline: nothing fetched


# -- DataFrame and exports ------------------------------------------------------------------------------
def test_to_dataframe_is_the_view_in_its_order(tmp_path: Path) -> None:
    grid = filled(500)
    grid.set_filter("failed")
    grid.sort("index", descending=True)
    frame = grid.to_dataframe()
    assert frame.index.tolist() == [407, 307, 207, 107, 7]
    assert set(frame["status"]) == {"failed"} and frame["error"].iloc[0] == "HTTP 500 for 407"
    assert len(grid.to_dataframe(view=False)) == 500


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_export_round_trips(tmp_path: Path, suffix: str) -> None:
    grid = filled(300)
    grid.search("answer 2")
    grid.sort("index", descending=True)
    path = grid.export(tmp_path / f"view{suffix}")
    expected = grid.to_dataframe()
    if suffix == ".csv":
        back = pd.read_csv(path, index_col="index")
    elif suffix == ".parquet":
        back = pd.read_parquet(path)
    else:
        back = pd.read_json(path, lines=True).set_index("index")
    assert back.index.tolist() == expected.index.tolist() == grid.view_indices()
    assert back["content"].tolist() == expected["content"].tolist()
    assert back["status"].tolist() == expected["status"].tolist()
    assert back["cost_usd"].tolist() == pytest.approx(expected["cost_usd"].tolist())
    assert "exported" in grid.message and str(path) in grid.message
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_export_errors_name_the_fix(tmp_path: Path) -> None:
    grid = filled(10)
    with pytest.raises(ConfigurationError, match=r"end the path in \.csv, \.parquet or \.jsonl"):
        grid.export(tmp_path / "x.xlsx")
    with pytest.raises(ConfigurationError, match="does not exist"):
        grid.export(tmp_path / "missing" / "x.csv")


def test_copy_as_dataframe_binds_the_view_in_the_notebook() -> None:
    shell = InteractiveShell.instance()
    grid = filled(200)
    grid.set_filter("cached")
    frame = grid.bind_dataframe("cached_rows")
    assert shell.user_ns["cached_rows"] is frame and len(frame) == 20 and set(frame["status"]) == {"cached"}
    assert grid.message.startswith("cached_rows = DataFrame of 20 rows")
    with pytest.raises(ConfigurationError, match="not a Python variable name"):
        grid.bind_dataframe("class")
    shell.user_ns.pop("cached_rows")


# -- re-run failed ---------------------------------------------------------------------------------------
async def test_rerun_failed_updates_the_rows_the_batch_result_and_the_panel(server: MockServer,
                                                                         tmp_path: Path) -> None:
    """Prompts 3 and 17 fail for good, then the server heals: "re-run failed" sends exactly those two
    again through the same client; the rows, the run's BatchResult (ledger totals included) and the
    panel all say 0 failed; the cached rows stay cached and are not sent."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test", max_retries=0,
                          cache_dir=tmp_path / "cache")
    prompts = [f"question {i} " for i in range(40)]
    try:
        await client.batch_generate(prompts[30:], max_concurrent=4)  # 30..39 will be cache hits
        server.add_fault(Fault(kind="status", status=400, rate=1.0, match="question 3 "))
        server.add_fault(Fault(kind="status", status=400, rate=1.0, match="question 17 "))
        pending = run_batch(client, prompts, max_concurrent=8, show=False, temperature=0.5)
        result = await pending
        grid, progress = pending.grid, pending.progress
        assert grid is not None and grid.can_rerun
        assert result.failed_count == 2 and result.cached_count == 0  # temperature is part of the key
        assert "2 failed" in repr(progress) and grid.counts["failed"] == 2
        cost_before = result.total_cost_usd
        run = client.last_run
        assert run is pending.run and run.result is result
        server.clear_faults()
        server.reset()
        sent = await grid.rerun_failed()
    finally:
        await client.aclose()
    assert client.last_run is run  # still the run the grid shows (its result took the answers), not the re-run
    assert sent == 2 and server.request_count == 2
    assert sorted(r["body"]["messages"][-1]["content"] for r in server.requests) == ["question 17 ", "question 3 "]
    assert all(r["body"].get("temperature") == 0.5 for r in server.requests)  # the run's parameters again
    assert grid.counts == {"ok": 40} and grid.failed_indices() == []
    assert result.failed_count == 0 and result.successful_count == 40 and result.errors == {}
    assert result.responses[3] is not None and result.responses[3].content
    fresh = BatchResult(responses=list(result.responses))  # the ledger, recounted from scratch
    assert result.ledger.succeeded == fresh.ledger.succeeded and result.total_tokens == fresh.total_tokens
    assert result.total_cost_usd == pytest.approx(fresh.total_cost_usd) and result.total_cost_usd > cost_before
    assert repr(progress).startswith("BatchProgress: 40/40 done · 40 ok") and " 0 failed" in repr(progress)
    assert progress.state == "success"
    assert "re-ran 2 failed rows: 2 ok" in grid.message and not grid.busy


async def test_rerun_keeps_cached_rows_and_a_new_failure_replaces_the_old(server: MockServer, tmp_path: Path) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test", max_retries=0,
                          cache_dir=tmp_path / "cache")
    prompts = [f"q {i} " for i in range(10)]
    try:
        await client.batch_generate(prompts[:5])
        server.add_fault(Fault(kind="status", status=400, rate=1.0, match="q 7 "))
        pending = run_batch(client, prompts, show=False)
        result = await pending
        grid = pending.grid
        assert grid is not None and grid.counts == {"cached": 5, "ok": 4, "failed": 1}
        server.reset()
        assert await grid.rerun_failed() == 1  # still failing
        assert server.request_count == 1
    finally:
        await client.aclose()
    assert grid.counts == {"cached": 5, "ok": 4, "failed": 1} and result.failed_count == 1
    assert result.errors[7] is not None and grid.visible_rows()[7][3] is result.errors[7]


async def test_the_rerun_button_runs_on_its_own_thread(server: MockServer) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test", max_retries=0)
    server.add_fault(Fault(kind="status", status=400, rate=1.0, match="q 2 "))
    try:
        pending = run_batch(client, [f"q {i} " for i in range(6)], show=False)
        result = await pending
        assert pending.grid is not None
        server.clear_faults()
        task = pending.grid.rerun_failed_in_background()
        assert await task == 1
    finally:
        await client.aclose()
    assert result.failed_count == 0 and pending.grid.counts == {"ok": 6}


def test_rerun_without_client_or_prompts_says_what_it_needs() -> None:
    grid = filled(10)
    assert not grid.can_rerun
    with pytest.raises(ConfigurationError, match="needs the client and the prompts"):
        grid.rerun_failed_in_background()
