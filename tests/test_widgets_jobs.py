"""``BatchJobMonitor`` / ``watch_job`` and ``CompareGrid`` / ``compare_batch``.

Unit tests drive the widgets from fake jobs and fake clocks (no sleeps, no kernel: widgets talk to a
recording comm); the rest run over real HTTP against the mock server. Batch jobs whose states the
test must reach exactly run on a mock whose batch clock the test moves.
"""

from __future__ import annotations

import asyncio
import math
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from seeds_nb import AnthropicClient, BatchCounts, BatchResult, Cancelled, MockServer, OpenAIClient
from seeds_nb.core.exceptions import ServerError
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.types import Response, Tracking, Usage
from seeds_nb.mock import Fault, mock_completion
from seeds_nb.providers import BatchExpired
from seeds_nb.widgets import JOB_FINAL_STATES, BatchJobMonitor, CompareGrid, Throttle, compare_batch, watch_job

from _support import TEST_KEY, CommLog, FakeClock, click_cancel, leftover_tasks, record_comms

XSS = "<script>alert('x')</script>"


@pytest.fixture
def comm_log(monkeypatch: pytest.MonkeyPatch) -> CommLog:
    return record_comms(monkeypatch)


# -- fakes ------------------------------------------------------------------------------------------------
@dataclass
class FakeJob:
    """The ``BatchJob`` surface the monitor reads; the test sets its fields."""

    total: int = 30
    status: str = "validating"
    raw_status: str = "validating"
    counts: BatchCounts = field(default_factory=BatchCounts)
    created_at: float = 1000.0
    id: str = "job_20260101_000000_abcdef"
    model: str = "gpt-4.1-mini"
    batches: list[object] = field(default_factory=lambda: [object()])

    def __post_init__(self) -> None:
        self.counts.total = self.total

    def __len__(self) -> int:
        return self.total

    @property
    def done(self) -> bool:
        return self.status in ("completed", "failed", "expired", "cancelled")

    def set(self, status: str, succeeded: int = 0, failed: int = 0, cancelled: int = 0, expired: int = 0) -> None:
        self.status = self.raw_status = status
        self.counts = BatchCounts(self.total, succeeded, failed, cancelled, expired)


def answer(i: int, *, cached: bool = False, content: str | None = None, latency: float = 0.5) -> Response:
    return Response(content=content if content is not None else f"answer {i}", model="gpt-4.1-mini",
                    usage=Usage(10, 20), cached=cached, latency_s=latency,
                    tracking=Tracking(cost_usd=1e-5, energy_kwh=2e-6, gwp_kgco2eq=1e-6))


def result_of(n: int, *, failed: set[int] = frozenset(), cancelled: set[int] = frozenset(),
              expired: set[int] = frozenset(), stop_reason: str | None = None) -> BatchResult:
    result = BatchResult(model="gpt-4.1-mini", provider="openai", total_duration_seconds=125.0)
    for i in range(n):
        result.prompts.append(f"prompt {i}")
        error: Exception | None = (ServerError(f"boom {i}", status_code=500) if i in failed else
                                   Cancelled() if i in cancelled else BatchExpired("late") if i in expired else None)
        result.record(i, error if error else answer(i, latency=math.nan))
    result.stop_reason = stop_reason
    return result


def monitor_for(job: FakeJob, clock: FakeClock, **kwargs: Any) -> BatchJobMonitor:
    return BatchJobMonitor(job, throttle=Throttle(0.5, clock), clock=clock, **kwargs)  # type: ignore[arg-type]


# -- BatchJobMonitor (unit) ---------------------------------------------------------------------------------
def test_monitor_repr_is_deterministic_and_has_no_id() -> None:
    job = FakeJob()
    monitor = monitor_for(job, FakeClock())
    assert monitor._repr_mimebundle_()[0]["text/plain"] == "BatchJobMonitor: validating · 0/30 done · 0 ok · 0 failed"
    monitor.finish(result_of(30, failed={1}, expired={2, 3}))
    assert repr(monitor) == ("BatchJobMonitor: partial · 28/30 done · 27 ok · 1 failed · 2 expired · $0.0003 · "
                             "0.027 gCO2eq")
    assert job.id not in repr(monitor) and "0x" not in repr(monitor)


def test_monitor_updates_are_throttled_and_the_final_state_always_drawn(comm_log: CommLog) -> None:
    """A burst of polls redraws at most twice a second (one message each); ``finish`` ignores the throttle."""
    clock, job = FakeClock(), FakeJob(total=1000)
    monitor = monitor_for(job, clock)
    comm_log.clear()
    drawn = 0
    for i in range(1000):  # 1,000 polls over 10 s (far faster than anyone polls a provider)
        clock.advance(0.01)
        job.set("in_progress", succeeded=i)
        drawn += monitor.update(job)  # type: ignore[arg-type]
    assert 15 <= drawn <= 21 and comm_log.count("comm_msg") == drawn
    job.set("completed", succeeded=1000)
    assert not monitor.update(job)  # type: ignore[arg-type]  # throttled ...
    monitor.finish(result_of(1000))  # ... but the end is drawn
    assert monitor.state == "completed" and monitor.bar_value == 1000 and monitor.bar_style == "success"
    assert monitor.finished and monitor.button_disabled and monitor.button_label == "Done"
    job.set("in_progress", succeeded=3)
    assert not monitor.update(job, force=True) and not monitor.tick()  # type: ignore[arg-type]
    assert monitor.bar_value == 1000


def test_monitor_elapsed_from_submission_and_eta_from_the_pace() -> None:
    clock, job = FakeClock(start=1060.0), FakeJob(total=40)  # submitted a minute ago
    monitor = monitor_for(job, clock)
    job.set("in_progress", succeeded=8, failed=2)
    monitor.update(job)  # type: ignore[arg-type]
    stats = monitor.stats
    assert "elapsed 1:00" in stats and "ETA 3:00" in stats and "30 processing" in stats
    assert monitor.bar_label == "10/40 done"
    clock.advance(60)
    assert monitor.tick() and "elapsed 2:00" in monitor.stats  # moves between polls
    clock.advance(0.1)
    assert not monitor.tick()  # within the throttle
    counting_at_end = FakeJob(total=5, status="in_progress", raw_status="in_progress")  # Anthropic: no counts
    assert "ETA –" in monitor_for(counting_at_end, FakeClock(1100.0)).stats


@pytest.mark.parametrize(("status", "kwargs", "error", "state", "style"), [
    ("completed", {}, None, "completed", "success"),
    ("completed", {"failed": {0}}, None, "partial", "warning"),
    ("completed", {"failed": {0, 1, 2, 3}}, None, "failed", "danger"),
    ("failed", {"failed": {0, 1, 2, 3}}, None, "failed", "danger"),
    ("expired", {"expired": {2, 3}}, None, "expired", "warning"),
    ("cancelled", {"cancelled": {1, 2, 3}, "stop_reason": "cancelled"}, None, "cancelled", "danger"),
    ("in_progress", None, RuntimeError("unreachable"), "error", "danger"),
])
def test_monitor_final_states_and_colours(status: str, kwargs: dict[str, Any] | None, error: Exception | None,
                                          state: str, style: str) -> None:
    job = FakeJob(total=4)
    job.set(status)
    monitor = monitor_for(job, FakeClock())
    monitor.finish(result_of(4, **kwargs) if kwargs is not None else None, error=error)
    assert state in JOB_FINAL_STATES and monitor.state == state and monitor.bar_style == style
    assert f">{state}</b>" in monitor.stats
    assert "processing" not in monitor.stats and "ETA" not in monitor.stats


def test_monitor_detach_keeps_the_counts_and_says_why() -> None:
    job = FakeJob(total=10)
    job.set("in_progress", succeeded=4)
    monitor = monitor_for(job, FakeClock())
    monitor.detach(f"stopped watching {XSS}")
    assert monitor.state == "detached" and monitor.bar_value == 4 and monitor.button_label == "Detached"
    assert "<script>" not in monitor.stats and "&lt;script&gt;" in monitor.stats
    assert repr(monitor) == "BatchJobMonitor: detached · 4/10 done · 4 ok · 0 failed"


def test_monitor_cancel_button_calls_back_once_and_can_be_offered_again() -> None:
    calls: list[str] = []
    job = FakeJob()
    monitor = monitor_for(job, FakeClock(), title=XSS)
    snapshot = monitor._repr_mimebundle_()[0]["text/html"]
    assert monitor.title == XSS and "<script>" not in snapshot and "&lt;script&gt;" in snapshot
    monitor.on_cancel(lambda: calls.append("cancel"))
    click_cancel(monitor)
    click_cancel(monitor)
    assert calls == ["cancel"] and monitor.state == "cancelling" and monitor.button_disabled
    monitor.cancel_failed(ServerError(f"nope {XSS}", status_code=503))
    assert not monitor.cancel_requested and not monitor.button_disabled
    assert "cancel failed: ServerError" in monitor.stats and "<script>" not in monitor.stats
    click_cancel(monitor)
    assert calls == ["cancel", "cancel"]


# -- CompareGrid (unit) ------------------------------------------------------------------------------------
def compare_results(n: int = 25) -> dict[str, BatchResult]:
    left = BatchResult(model="a", provider="openai", prompts=[f"p{i} {XSS}" for i in range(n)])
    right = BatchResult(model="b", provider="anthropic", prompts=list(left.prompts))
    for i in range(n):
        left.record(i, answer(i, content=f"left {i} <b>bold</b>", cached=i == 0))
        if i % 10 == 3:
            right.record(i, ServerError(f"HTTP 500 <i>{i}</i>", status_code=500))
        else:
            right.record(i, answer(i, content=f"right {i}", latency=1.5))
    return {"gpt <b>": left, "claude": right}


def ask(widget: Any, **changes: Any) -> None:
    """Deliver what vlist.js sends (a custom ``ask`` message) through the widget's comm, as the kernel would."""
    widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": {"ask": changes}}}, "buffers": []})


def test_compare_grid_repr_summary_and_text_only() -> None:
    results = compare_results()
    grid = CompareGrid(list(results), [f"p{i} {XSS}" for i in range(25)])
    assert repr(grid) == "CompareGrid: 2 clients × 25 prompts · gpt <b>: 0 ok, 0 failed · claude: 0 ok, 0 failed"
    assert [c["state"] for c in grid.clients] == ["pending", "pending"] and grid.names == ["gpt <b>", "claude"]
    grid.load(results)
    assert repr(grid) == "CompareGrid: 2 clients × 25 prompts · gpt <b>: 25 ok, 0 failed · claude: 22 ok, 3 failed"
    gpt, claude = grid.clients
    # per client: 24 priced answers (the cached one is free now), mean latency over measured ones
    assert gpt["stats"] == ["✔ 25 ok (1 cached)", "✘ 0 failed", "$0.0002", "0.024 gCO2eq", "0.50 s mean"]
    assert claude["stats"][1] == "✘ 3 failed" and claude["stats"][4] == "1.50 s mean" and claude["failed"] == 3
    assert (gpt["state"], claude["state"], gpt["count"], gpt["share"]) == ("success", "partial", "25/25", 1.0)
    rows = grid.window["rows"]
    assert rows[0] == [0, f"p0 {XSS}", ["left 0 <b>bold</b>", "cached"], ["right 0", "ok"]]
    assert rows[3][3] == ["ServerError: HTTP 500 <i>3</i>", "failed"]  # raw text: the module draws it as text
    assert "innerHTML" not in grid._esm and "insertAdjacentHTML" not in grid._esm
    assert "http://" not in grid._esm and "https://" not in grid._esm  # offline: nothing fetched


def test_compare_grid_pushes_a_bounded_window_for_the_browsers_viewport(comm_log: CommLog) -> None:
    """5,000 prompts: the browser gets the rows its viewport asked for, in one message per ask."""
    grid = CompareGrid.from_results(compare_results(5000), page_size=10)
    assert grid.row_count == grid.view_size == 5000 and grid.page_size == grid.height_rows == 10
    assert [row[0] for row in grid.window["rows"]] == list(range(60))
    comm_log.clear()
    ask(grid, viewport=[4950, 120])  # the end of the list: the window is clamped to stay full
    assert comm_log.count("comm_msg") == 1
    assert grid.window["start"] == 4880 and [r[0] for r in grid.window["rows"]][-1] == 4999
    assert grid.visible_indices() == range(4880, 5000)
    ask(grid, viewport=[100, 10_000_000])  # a huge request is capped
    assert len(grid.window["rows"]) == 400
    ask(grid, viewport="nonsense")  # a bad request changes nothing and raises nothing
    assert len(grid.window["rows"]) == 400
    grid.close()


def test_a_row_click_shows_every_clients_full_answer_or_error() -> None:
    results = compare_results(25)
    long = "word " * 2000  # 10,000 characters: under the detail's 20,000
    results["gpt <b>"].record(4, answer(4, content=long))
    grid = CompareGrid.from_results(results, [f"p{i} {XSS} " + "x" * 400 for i in range(25)])
    assert grid.window["rows"][4][2][0].endswith("…") and len(grid.window["rows"][4][2][0]) <= 240
    ask(grid, selected=3)
    assert grid.selected == 3
    detail = grid.detail
    assert detail["index"] == 3 and detail["prompt"] == f"p3 {XSS} " + "x" * 400  # in full
    gpt, claude = detail["answers"]
    assert gpt["name"] == "gpt <b>" and gpt["text"] == "left 3 <b>bold</b>" and gpt["title"] == "Response"
    facts = dict(gpt["facts"])
    assert facts["model"] == "gpt-4.1-mini" and facts["cost"].startswith("$") and "gCO2eq" in facts["carbon"]
    assert facts["latency"] == "0.500s" and facts["tokens"] == "30"
    assert claude["status"] == "failed" and claude["error_type"] == "ServerError"
    assert claude["text"] == "HTTP 500 <i>3</i>"
    grid.select(4)
    assert grid.detail["answers"][0]["text"] == long  # the full answer, not its excerpt
    grid.select(400)
    assert grid.detail == {"index": 400, "missing": True}


def test_compare_grid_pushes_are_throttled_and_the_final_state_is_sent(comm_log: CommLog) -> None:
    clock = FakeClock()
    grid = CompareGrid(["a", "b"], [f"q{i}" for i in range(5000)], throttle=Throttle(0.5, clock))
    runs = {name: types.SimpleNamespace(ledger=Ledger(total=5000)) for name in "ab"}  # what each run keeps
    for name, run in runs.items():
        grid.attach(name, run)  # type: ignore[arg-type]
    comm_log.clear()
    drawn = 0
    for i in range(5000):  # both clients, 10,000 events over 10 s
        clock.advance(0.002)
        runs["a"].ledger.add(answer(i))
        grid.record_result("a", i, answer(i))
        drawn += grid.record("a", i + 1, 5000, answer(i))
        error = ServerError("boom", status_code=500)
        runs["b"].ledger.add(error if i % 2 else answer(i))
        grid.record_result("b", i, error if i % 2 else answer(i))
        drawn += grid.record("b", i + 1, 5000, None if i % 2 else answer(i))
    sent = comm_log.count("comm_msg")
    assert 10 <= drawn <= 21 and sent == drawn  # one message per push: lines, summaries and window together
    assert sent / 10.0 <= 20  # messages per second of run
    assert [c["state"] for c in grid.clients] == ["running", "running"]
    grid.finish(asyncio.CancelledError())  # forced, whatever the throttle says
    assert comm_log.count("comm_msg") == sent + 1
    final = comm_log.updates(grid.model_id)[-1]
    assert grid.message == "interrupted: every run was cancelled, no results"
    assert [c["state"] for c in final["clients"]] == ["cancelled", "cancelled"]
    assert final["clients"][1]["count"] == "5,000/5,000" and final["clients"][1]["stats"][1] == "✘ 2,500 failed"


def test_compare_grid_fills_cells_live_with_throttled_pushes(comm_log: CommLog) -> None:
    clock = FakeClock()
    grid = CompareGrid(["a", "b"], [f"q{i}" for i in range(50)], page_size=10, throttle=Throttle(0.5, clock))
    runs = {name: types.SimpleNamespace(ledger=Ledger(total=50)) for name in "ab"}
    for name, run in runs.items():
        grid.attach(name, run)  # type: ignore[arg-type]
    grid.select(3)
    comm_log.clear()
    grid.record_result("a", 3, answer(3, content="three <i>live</i>"))
    runs["a"].ledger.add(answer(3))
    grid.record_result("b", 3, ServerError("HTTP 500 boom", status_code=500))
    runs["b"].ledger.add(ServerError("HTTP 500 boom", status_code=500))
    clock.advance(1.0)
    assert grid.record("a", 1, 50, answer(3)) and grid.record("b", 1, 50, None) is False  # throttled
    pushed = comm_log.updates(grid.model_id)
    assert len(pushed) == 1 and pushed[0]["window"]["rows"][3][2:] == [["three <i>live</i>", "ok"],
                                                                       ["ServerError: HTTP 500 boom", "failed"]]
    assert pushed[0]["window"]["rows"][4][2:] == [["", "waiting"], ["", "waiting"]]
    assert pushed[0]["detail"]["answers"][0]["text"] == "three <i>live</i>"  # the open detail follows
    grid.record_result("a", 40, answer(40, content="forty"))  # held back by the throttle ...
    runs["a"].ledger.add(answer(40))
    assert grid.tick() is False
    clock.advance(1.0)
    assert grid.tick()  # ... and pushed by the ticker once the period is over, without a new event
    assert grid.window["rows"][40][2] == ["forty", "ok"]
    assert "detail" not in comm_log.updates(grid.model_id)[-1]  # row 3 did not change: no detail re-sent
    assert grid.tick() is False  # nothing new: nothing sent


# -- watch_job over HTTP ------------------------------------------------------------------------------------
class BatchClock:
    """The mock server's batch clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def slow_batches() -> Iterator[tuple[MockServer, BatchClock]]:
    clock = BatchClock()
    with MockServer(batch_duration_s=100.0, clock=clock) as srv:
        yield srv, clock


def sync_answer(provider: str, prompt: str) -> str:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
    if provider == "anthropic":
        body["max_tokens"] = 1024
    return mock_completion(body)["choices"][0]["message"]["content"]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_watch_job_to_completion_returns_aligned_results(provider: str, tmp_path: Path,
                                                               comm_log: CommLog) -> None:
    before = leftover_tasks()
    with MockServer(batch_duration_s=0.3) as srv:
        client = (OpenAIClient("gpt-4.1-mini", base_url=srv.url, api_key=TEST_KEY) if provider == "openai" else
                  AnthropicClient("claude-haiku-4-5", base_url=srv.anthropic_url, api_key=TEST_KEY))
        prompts = [f"Question number {i}" for i in range(40)]
        try:
            job = await client.submit_batch(prompts, jobs_dir=tmp_path)
            monitor = BatchJobMonitor(job)
            statuses: list[str] = []
            result = await watch_job(job, poll_interval=0.05, monitor=monitor, show=False,
                                     on_update=lambda j: statuses.append(j.status))
        finally:
            await client.aclose()
    assert job.done and statuses[-1] == "completed" and result is await job.results()
    assert result.successful_count == 40 and result.contents == [sync_answer(provider, p) for p in prompts]
    assert monitor.state == "completed" and monitor.bar_value == 40 and monitor.bar_style == "success"
    assert comm_log.updates(monitor.model_id)[-1]["bar_style"] == "success"
    assert "(batch price)" in monitor.stats
    assert leftover_tasks() - before == set()


async def test_cancel_button_cancels_the_job_and_returns_the_partial_result(
        slow_batches: tuple[MockServer, BatchClock], tmp_path: Path) -> None:
    srv, clock = slow_batches
    client = OpenAIClient("gpt-4.1-mini", base_url=srv.url, api_key=TEST_KEY)
    prompts = [f"Translate sentence {i}" for i in range(50)]
    try:
        job = await client.submit_batch(prompts, jobs_dir=tmp_path)
        clock.now += 50.0  # half-way: some lines are done
        monitor = BatchJobMonitor(job)

        def on_update(j: Any) -> None:
            if j.status == "in_progress" and j.counts.succeeded and not monitor.cancel_requested:
                click_cancel(monitor)  # what a click does, on the watching loop's thread
            elif j.status == "cancelling":
                clock.now += 10.0  # the provider takes a moment to wind down

        result = await watch_job(job, poll_interval=0.01, monitor=monitor, show=False, on_update=on_update)
    finally:
        await client.aclose()
    assert srv.batches[0]["cancelled"] and job.status == "cancelled"
    assert result.stop_reason == "cancelled" and 0 < result.successful_count < 50
    assert result.successful_count + result.cancelled_count == 50
    assert monitor.state == "cancelled" and monitor.bar_style == "danger"
    assert monitor.button_label == "Cancelled"
    assert repr(monitor).startswith(f"BatchJobMonitor: cancelled · {result.successful_count}/50 done")
    assert f"{result.cancelled_count} cancelled" in repr(monitor)


async def test_interrupt_and_timeout_stop_only_the_watching(slow_batches: tuple[MockServer, BatchClock],
                                                            tmp_path: Path) -> None:
    srv, _clock = slow_batches  # the batch clock never moves: the job never ends
    client = OpenAIClient("gpt-4.1-mini", base_url=srv.url, api_key=TEST_KEY)
    before = leftover_tasks()
    try:
        job = await client.submit_batch(["a", "b"], jobs_dir=tmp_path)
        polled = asyncio.Event()
        monitor = BatchJobMonitor(job)
        pending = watch_job(job, poll_interval=0.01, monitor=monitor, show=False, on_update=lambda j: polled.set())
        assert repr(pending) == f"PendingJob(job {job.id}, not awaited yet: use await watch_job(job))"
        task = asyncio.ensure_future(pending)
        await asyncio.wait_for(polled.wait(), 10)
        task.cancel()  # what a kernel interrupt does to the cell's task
        with pytest.raises(asyncio.CancelledError):
            await task
        assert monitor.state == "detached" and "goes on at the provider" in monitor.stats
        with pytest.raises(RuntimeError, match="awaited once"):
            await pending
        with pytest.raises(TimeoutError):
            await watch_job(job, poll_interval=0.01, timeout=0.05, show=False)
    finally:
        await client.aclose()
    assert not job.done and not srv.batches[0]["cancelled"]  # the job was left alone
    assert leftover_tasks() - before == set()


async def test_background_watch_cancelled_from_the_handle(slow_batches: tuple[MockServer, BatchClock],
                                                          tmp_path: Path) -> None:
    srv, clock = slow_batches
    client = OpenAIClient("gpt-4.1-mini", base_url=srv.url, api_key=TEST_KEY)
    try:
        job = await client.submit_batch([f"q{i}" for i in range(10)], jobs_dir=tmp_path)

        def on_update(j: Any) -> None:
            if j.status == "cancelling":
                clock.now += 10.0

        handle = watch_job(job, poll_interval=0.01, background=True, show=False, on_update=on_update)
        assert "JobHandle(" in repr(handle) and job.id in repr(handle)
        handle.cancel()
        result = await handle
    finally:
        await client.aclose()
    assert handle.done() and result.stop_reason == "cancelled" and result.cancelled_count == 10
    assert handle.monitor.state == "cancelled" and handle.result(timeout=1) is result


# -- compare_batch over HTTP ---------------------------------------------------------------------------------
async def test_compare_batch_two_clients_one_with_faults(shared_server: MockServer, server: MockServer,
                                                         comm_log: CommLog) -> None:
    server.add_fault(Fault(status=400, match="question 7 "))
    gpt = OpenAIClient("gpt-4.1-mini", base_url=shared_server.url, api_key=TEST_KEY)
    claude = AnthropicClient("claude-haiku-4-5", base_url=server.anthropic_url, api_key=TEST_KEY, max_retries=0)
    prompts = [f"question {i} {XSS if i == 2 else ''}" for i in range(30)]
    grid = CompareGrid(["gpt", "claude"], prompts, page_size=10, throttle=Throttle(0.0))
    before_load: list[dict[str, Any]] = []
    load = grid.load
    grid.load = lambda results: (before_load.append(grid.window), load(results))  # type: ignore[method-assign]
    try:
        results = await compare_batch(prompts, {"gpt": gpt, "claude": claude}, max_concurrent=4, grid=grid,
                                      show=False, max_tokens=40)
    finally:
        await gpt.aclose()
        await claude.aclose()
    assert list(results) == ["gpt", "claude"]
    assert results["gpt"].successful_count == 30 and results["claude"].failed_count == 1
    assert results["claude"].status(7) == "failed" and results["claude"].provider == "anthropic"
    assert repr(grid) == "CompareGrid: 2 clients × 30 prompts · gpt: 30 ok, 0 failed · claude: 29 ok, 1 failed"
    rows = grid.window["rows"]
    assert rows[7][3][1] == "failed" and rows[7][3][0].startswith("BadRequestError")
    assert rows[2][1].startswith("question 2 <script>")  # text, drawn as text by the module
    assert [c["state"] for c in grid.clients] == ["success", "partial"]
    # The cells filled while the runs went on: the window's answers were there before the final load.
    # (Throttle(0.0): every answer pushes, so the last live window is the final one.)
    assert before_load == [grid.window]
    assert all(cell[1] != "waiting" for row in before_load[0]["rows"] for cell in row[2:])
    grid.select(7)
    assert grid.detail["answers"][1]["error_type"] == "BadRequestError"
    assert grid.detail["answers"][0]["text"] == results["gpt"].responses[7].content  # type: ignore[union-attr]
    html = grid._repr_mimebundle_()[0]["text/html"]
    assert "gpt: 30/30 · success · ✔ 30 ok" in html and "claude: 30/30 · partial · ✔ 29 ok · ✘ 1 failed" in html
    import seeds_nb.plots

    assert len(seeds_nb.plots.compare(results).data) > 0  # the dict feeds the comparison plots
