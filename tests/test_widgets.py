"""Unit tests of ``seeds_nb.widgets``: throttling on a fake clock, message counts through a recording
comm, final states, reprs, HTML escaping, grid windowing, and ``run_batch`` on the mock server
in-process (no kernel: widgets talk to a recording comm)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from typing import Any

import pytest

from seeds_nb import MockServer, OpenAIClient
from seeds_nb.core.exceptions import BudgetExceeded, Cancelled, ServerError
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.result import BatchResult
from seeds_nb.core.types import Response, Tracking, Usage
from seeds_nb.mock import Fault
from seeds_nb.widgets import BatchProgress, ResultsGrid, Throttle, run_batch

from _support import CommLog, FakeClock, click_cancel, leftover_tasks, record_comms

XSS = "<script>alert('x')</script>"


def server_error(message: str) -> ServerError:
    return ServerError(message, status_code=500)


@pytest.fixture
def comm_log(monkeypatch: pytest.MonkeyPatch) -> CommLog:
    """Every widget created in the test gets a comm that records what it would send to the frontend."""
    return record_comms(monkeypatch)


def response(i: int, *, cached: bool = False, content: str | None = None) -> Response:
    return Response(content=content if content is not None else f"answer {i}", model="gpt-4.1-mini",
                    usage=Usage(10, 20), cached=cached, latency_s=0.01,
                    tracking=Tracking(cost_usd=1e-5, energy_kwh=2e-6, gwp_kgco2eq=1e-6))


def make_result(n: int, *, failed: set[int] = frozenset(), cancelled: set[int] = frozenset(),
                cached: set[int] = frozenset(), stop_reason: str | None = None) -> BatchResult:
    result = BatchResult(model="gpt-4.1-mini", provider="openai")
    for i in range(n):
        result.prompts.append(f"prompt {i}")
        if i in failed:
            result.record(i, server_error(f"boom {i}"))
        elif i in cancelled:
            result.record(i, Cancelled())
        else:
            result.record(i, response(i, cached=i in cached))
    result.stop_reason = stop_reason
    result.total_duration_seconds = 1.0
    return result


# -- Throttle -------------------------------------------------------------------------------------------
def test_throttle_first_event_draws_then_time_gate() -> None:
    """The first event draws at once; then one draw per interval."""
    clock = FakeClock()
    throttle = Throttle(0.1, clock)
    assert throttle.ready()
    assert not throttle.ready()
    clock.advance(0.05)
    assert not throttle.ready()
    clock.advance(0.06)
    assert throttle.ready()
    assert throttle.draws == 2


def test_throttle_bounds_draws_for_10k_events_and_reads_clock_rarely() -> None:
    """10,000 events over 10 s at a 0.1 s interval give about 100 draws, with few clock reads."""
    clock = FakeClock()
    throttle = Throttle(0.1, clock)
    draws = 0
    for _ in range(10_000):
        clock.advance(0.001)
        draws += throttle.ready()
    assert 90 <= draws <= 101
    assert clock.reads < 1_500  # the counter gate skips most reads


def test_throttle_slow_events_all_draw() -> None:
    """When events are sparse, every one is drawn (the counter gate never starves them)."""
    clock = FakeClock()
    throttle = Throttle(0.1, clock)
    for _ in range(50):  # a fast burst teaches the counter gate to skip
        clock.advance(0.0001)
        throttle.ready()
    drawn = []
    for _ in range(40):
        clock.advance(1.0)
        drawn.append(throttle.ready())
    assert sum(drawn) >= 40 - throttle.max_check_every


def test_throttle_due_and_mark() -> None:
    """``due`` is the time gate alone; ``mark`` records a forced draw and restarts the interval."""
    clock = FakeClock()
    throttle = Throttle(0.5, clock)
    assert throttle.due()
    clock.advance(0.4)
    assert not throttle.due()
    clock.advance(0.2)
    throttle.mark()
    assert not throttle.due()
    assert throttle.pending == 0
    with pytest.raises(ValueError, match="min_interval_s"):
        Throttle(-1)


# -- BatchProgress ----------------------------------------------------------------------------------
def simulate(progress: BatchProgress, grid: ResultsGrid | None, clock: FakeClock, n: int, dt: float) -> Ledger:
    stats = Ledger(total=n, started=clock.now)
    for i in range(n):
        clock.advance(dt)
        stats.add(response(i))  # 30 tokens, $1e-5, 1e-6 kgCO2eq
        if grid is not None:
            grid.add(i, response(i), f"prompt {i}")
            grid.refresh()
        progress.update(stats)
    return stats


def test_10k_events_send_at_most_20_messages_per_second_and_final_state(comm_log: CommLog) -> None:
    """A 10,000-item run over 10 s sends <= 20 widget messages/s, and the last ones are the final state."""
    clock = FakeClock()
    progress = BatchProgress(10_000, throttle=Throttle(0.2, clock), clock=clock)
    grid = ResultsGrid(throttle=Throttle(0.5, clock))
    comm_log.clear()
    simulate(progress, grid, clock, 10_000, 0.001)
    progress_finish = make_result(10_000)
    grid.load(progress_finish)
    grid.refresh(force=True)
    progress.finish(progress_finish)
    sent = comm_log.count("comm_msg")
    assert sent <= 20 * 10, sent
    updates = comm_log.updates(progress.model_id)
    final = updates[-1]  # the final state and the button, in one message
    assert final["bar_value"] == 10_000 and final["bar_style"] == "success" and final["button_label"] == "Done"
    assert "10000/10000 done" in final["bar_label"] and "✔ 10,000 ok" in final["stats"]


def test_hold_sync_groups_bar_changes(comm_log: CommLog) -> None:
    """One redraw of the panel is one message (bar and stats together), not one per trait."""
    clock = FakeClock()
    progress = BatchProgress(10, throttle=Throttle(0.2, clock), clock=clock)
    comm_log.clear()
    stats = Ledger(total=10, completed=3, succeeded=3, started=clock.now)
    assert progress.update(stats)
    assert comm_log.count("comm_msg") == 1


def test_final_state_drawn_even_when_throttled() -> None:
    """``finish`` ignores the throttle, and later updates never overwrite the final state."""
    clock = FakeClock()
    progress = BatchProgress(5, throttle=Throttle(10.0, clock), clock=clock)
    stats = Ledger(total=5, started=clock.now)
    stats.completed = stats.succeeded = 1
    assert progress.update(stats)
    stats.completed = stats.succeeded = 5
    assert not progress.update(stats)  # throttled
    progress.finish(make_result(5))
    assert progress.bar_value == 5 and progress.bar_style == "success"
    assert progress.state == "success" and progress.finished
    assert not progress.update(Ledger(total=5), force=True)
    assert progress.bar_value == 5
    assert progress.button_disabled


@pytest.mark.parametrize(("kwargs", "state", "style"), [
    ({}, "success", "success"),
    ({"failed": {1}}, "partial", "warning"),
    ({"failed": {0, 1, 2, 3}}, "failed", "danger"),
    ({"cancelled": {2, 3}, "stop_reason": "cancelled"}, "cancelled", "danger"),
])
def test_final_states_and_colours(kwargs: dict[str, Any], state: str, style: str) -> None:
    """Each way a batch can end has its own state word and bar colour."""
    progress = BatchProgress(4)
    progress.finish(make_result(4, **kwargs))
    assert progress.state == state
    assert progress.bar_style == style
    assert state in progress.stats


def test_budget_stop_and_error_states() -> None:
    """A budget stop reads 'stopped'; a crashed run reads 'error' with its (escaped) message."""
    result = make_result(3)
    result.record(2, BudgetExceeded("max_cost_usd", 0.1, 0.2))
    result.stop_reason = "max_cost_usd"
    progress = BatchProgress(3)
    progress.finish(result)
    assert progress.state == "stopped" and progress.bar_value == 2
    crashed = BatchProgress(3)
    crashed.finish(make_result(3), error=RuntimeError(XSS))
    assert crashed.state == "error" and crashed.bar_style == "danger"
    assert "<script>" not in crashed.stats and "&lt;script&gt;" in crashed.stats


def test_repr_is_deterministic_text_plain() -> None:
    """The text/plain repr has counts and totals, no address, no timings, and fits nbval's 110 chars."""
    progress = BatchProgress(50)
    bundle, _metadata = progress._repr_mimebundle_()
    assert bundle["text/plain"] == "BatchProgress: 0/50 done · 0 ok (0 cached) · 0 failed · $0.0000 · 0 gCO2eq"
    result = make_result(50, failed={3, 4}, cached=set(range(10, 20)))
    progress.finish(result)
    text = repr(progress)
    assert text == "BatchProgress: 50/50 done · 48 ok (10 cached) · 2 failed · $0.0004 · 0.038 gCO2eq · partial"
    assert "0x" not in text and len(text) <= 110
    assert repr(BatchProgress(None)).startswith("BatchProgress: 0/? done")
    cancelled = BatchProgress(400)
    cancelled.finish(make_result(400, cancelled=set(range(100, 400)), stop_reason="cancelled"))
    assert len(repr(cancelled)) <= 110 and repr(cancelled).endswith("cancelled")


def test_ticks_redraw_between_events_within_the_throttle() -> None:
    """Ticks redraw elapsed time without events, but never faster than the throttle allows."""
    clock = FakeClock()
    progress = BatchProgress(10, throttle=Throttle(0.2, clock), clock=clock)
    grid = ResultsGrid(throttle=Throttle(0.5, clock))
    stats = Ledger(total=10, completed=1, succeeded=1, started=clock.now)
    assert progress.tick(stats)
    assert not progress.tick(stats)
    clock.advance(65)
    assert progress.tick(stats) and "elapsed 1:05" in progress.stats
    assert not grid.tick()  # nothing new to draw
    grid.add(0, response(0), "p")
    assert grid.tick() and [row[0] for row in grid.window["rows"]] == [0]
    assert not grid.tick()


def test_unknown_total_shows_question_mark() -> None:
    """A generator batch shows done/? while running, then the real total."""
    clock = FakeClock()
    progress = BatchProgress(None, throttle=Throttle(0.2, clock), clock=clock)
    stats = Ledger(total=None, completed=7, succeeded=7, started=clock.now)
    progress.update(stats)
    assert progress.bar_label == "7/? done"
    progress.finish(make_result(9))
    assert progress.bar_label == "9/9 done" and progress.bar_max == 9


def test_cancel_button_calls_back_once() -> None:
    """A click shows 'cancelling', disables the button and calls the callbacks once."""
    calls: list[str] = []
    progress = BatchProgress(10)
    progress.on_cancel(lambda: calls.append("cancel"))
    click_cancel(progress)
    click_cancel(progress)
    assert calls == ["cancel"]
    assert progress.button_disabled and progress.state == "cancelling"


def test_title_is_escaped() -> None:
    """User text in the panel never becomes markup."""
    progress = BatchProgress(1, title=XSS)
    assert progress.title == XSS  # drawn as text (textContent) by panel.js
    html = progress._repr_mimebundle_()[0]["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html


# -- ResultsGrid (its model: tests/test_widgets_grid.py) ------------------------------------------------
def filled_grid(n: int) -> ResultsGrid:
    grid = ResultsGrid()
    for i in range(n):
        grid.add(i, response(i), f"prompt {i}")
    grid.refresh(force=True)
    return grid

def test_close_frees_every_model_and_the_rows() -> None:
    """``close()`` closes every model of a panel or grid, so nothing keeps their rows alive."""
    from ipywidgets.widgets.widget import _instances

    before = set(_instances)
    grid = filled_grid(1_000)
    progress = BatchProgress(10)
    progress.on_cancel(lambda: None)
    refs = [weakref.ref(grid), weakref.ref(progress)]
    assert len(set(_instances) - before) >= 4  # each an anywidget and its layout
    grid.close()
    progress.close()
    del grid, progress
    gc.collect()
    assert set(_instances) - before == set()
    assert [ref() for ref in refs] == [None, None]


# -- run_batch on the mock server (in-process, recording comm) ---------------------------------------------
def prompts(n: int) -> list[str]:
    return [f"question {i} {XSS if i == 3 else ''}" for i in range(n)]


async def test_run_batch_await_returns_result_and_draws_final_state(comm_log: CommLog, server: MockServer) -> None:
    """``await run_batch`` returns the BatchResult; the widgets end in its final state at a bounded rate."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test", max_retries=0)
    server.add_fault(Fault(kind="status", status=400, rate=1.0, match="question 17 "))
    try:
        comm_log.clear()
        started = time.monotonic()
        result = await run_batch(client, prompts(1500), max_concurrent=16, show=False)
        elapsed = time.monotonic() - started
    finally:
        server.clear_faults()
        await client.aclose()
    assert result.successful_count == 1499 and result.failed_count == 1
    run = client.last_run
    assert run is not None and run.done
    assert comm_log.count("comm_msg") <= 12 * elapsed + 15
    values = [u["bar_value"] for u in comm_log.updates() if "bar_value" in u]
    assert values[-1] == 1500


async def test_run_batch_lifetime_line_shows_the_clients_totals(comm_log: CommLog, server: MockServer,
                                                                tmp_path: Any) -> None:
    """``lifetime=True``: the panel's last line is ``client.tracking`` (earlier runs and this one, from one
    account); without it the panel has no such line."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test", cache_dir=str(tmp_path / "c"))
    try:
        without = run_batch(client, prompts(6), show=False, grid=False)
        plain = await without
        assert "client so far" not in without.progress.stats
        pending = run_batch(client, prompts(10), show=False, grid=False, lifetime=True)  # 6 from the cache
        first_html = pending.progress.stats
        second = await pending
        final_html = pending.progress.stats
    finally:
        await client.aclose()
    assert plain.cached_count == 0 and second.cached_count == 6
    t = client.tracking
    assert t.total_request_count == 16 and t.cached_request_count == 6
    assert "client so far: 6 answers (6 API, 0% from cache)" in first_html  # before this run: the first one
    assert "client so far: 16 answers (10 API, 38% from cache) · 0 errors" in final_html
    assert f"cache saved ${t.avoided_cost_usd:.4f}" in final_html


async def test_run_batch_cancel_returns_partial_result() -> None:
    """Cancel (a click) mid-run stops the batch: finished responses kept, the rest Cancelled."""
    slow = MockServer(latency_s=0.02).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    holder: dict[str, Any] = {}
    before = leftover_tasks()

    def on_progress(done: int, total: int | None, _response: Any) -> None:
        if done == 10:
            click_cancel(holder["progress"])

    try:
        pending = run_batch(client, prompts(200), max_concurrent=4, show=False, on_progress=on_progress)
        holder["progress"] = pending.progress
        result = await pending
    finally:
        await client.aclose()
        slow.stop()
    assert result.stop_reason == "cancelled"
    assert 10 <= result.successful_count < 200
    assert result.successful_count + result.failed_count == 200
    assert result.cancelled_count == result.failed_count
    progress = holder["progress"]
    assert progress.state == "cancelled" and progress.bar_style == "danger"
    assert leftover_tasks() - before == set()
    with pytest.raises(RuntimeError, match="awaited once"):
        await pending


async def test_run_batch_task_cancel_is_an_interrupt_that_propagates_with_the_partial_result() -> None:
    """Cancelling the awaiting task (what a kernel interrupt does) stops the batch and propagates: a
    library that swallowed it would break its caller's timeouts; the partial result rides along."""
    slow = MockServer(latency_s=0.02).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    reached = asyncio.Event()
    before = leftover_tasks()

    def on_progress(done: int, total: int | None, _response: Any) -> None:
        if done >= 8:
            reached.set()

    try:
        task = asyncio.ensure_future(run_batch(client, prompts(200), max_concurrent=4, show=False,
                                               on_progress=on_progress))
        await asyncio.wait_for(reached.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
    finally:
        await client.aclose()
        slow.stop()
    assert task.cancelled()
    result = info.value.partial_result
    assert result is client.last_run.result and result.stop_reason == "cancelled"
    assert 8 <= result.successful_count < 200
    assert result.successful_count + result.failed_count == 200
    assert leftover_tasks() - before - {task} == set()


async def test_run_batch_inside_a_timeout_raises_timeout_error() -> None:
    """``asyncio.timeout`` around ``run_batch`` works: the cancellation is not swallowed."""
    slow = MockServer(latency_s=0.05).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await run_batch(client, prompts(400), max_concurrent=2, show=False)
    finally:
        await client.aclose()
        slow.stop()
    result = client.last_run.result
    assert result.stop_reason == "cancelled" and result.successful_count + result.failed_count == 400


async def test_awaiting_a_background_handle_then_cancelling_cancels_the_batch() -> None:
    """Cancelling a task that awaits a background handle (an interrupt) cancels the batch, keeps its
    results (on the error and the handle), and propagates."""
    slow = MockServer(latency_s=0.02).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    reached = threading.Event()  # set on the batch's thread

    def on_progress(done: int, total: int | None, _response: Any) -> None:
        if done >= 8:
            reached.set()

    try:
        handle = run_batch(client, prompts(300), max_concurrent=4, background=True, show=False, grid=False,
                           on_progress=on_progress)
        waiter = asyncio.ensure_future(handle)
        assert await asyncio.to_thread(reached.wait, 10)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await waiter
    finally:
        await client.aclose()
        slow.stop()
    result = info.value.partial_result
    assert result is handle.outcome()
    assert result.stop_reason == "cancelled" and 8 <= result.successful_count < 300
    assert handle.done() and handle.progress.state == "cancelled"


async def test_background_handle(shared_server: MockServer) -> None:
    """Background mode returns at once; the handle is awaitable, blocking-waitable and done after."""
    client = OpenAIClient("gpt-4.1-mini", base_url=shared_server.url, api_key="sk-test")
    try:
        handle = run_batch(client, prompts(300), max_concurrent=8, background=True, show=False)
        assert "BatchHandle(" in repr(handle)
        result = await handle
        assert handle.done()
        assert handle.result(timeout=5) is result
    finally:
        await client.aclose()
    assert result.successful_count == 300
    assert handle.progress.state == "success" and handle.progress.bar_value == 300
    assert handle.grid is not None and handle.grid.row_count == 300


async def test_background_cancel_and_timeout() -> None:
    """``cancel()`` stops a background batch from another thread; ``result(timeout)`` times out first."""
    slow = MockServer(latency_s=0.05).start()
    client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key="sk-test")
    try:
        handle = run_batch(client, prompts(400), max_concurrent=2, background=True, show=False, grid=False)
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(handle.result, 0.2)
        handle.cancel()
        result = await asyncio.to_thread(handle.result, 10)
    finally:
        await client.aclose()
        slow.stop()
    assert result.stop_reason == "cancelled" and result.successful_count < 400
    assert handle.progress.state == "cancelled"
    assert handle.grid is None


# -- packaging ----------------------------------------------------------------------------------------------
def test_missing_ipywidgets_names_the_install_command() -> None:
    """Without ipywidgets the import fails with the pip command to fix it; core stays importable."""
    code = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "ipywidgets" or name.startswith("ipywidgets."):
                    raise ImportError("blocked")
        sys.meta_path.insert(0, Block())
        import seeds_nb, seeds_nb.core
        assert "ipywidgets" not in sys.modules and "IPython" not in sys.modules
        try:
            import seeds_nb.widgets
        except ImportError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert 'pip install "seeds_nb[notebook]"' in out.stdout


async def test_the_api_key_never_reaches_a_widget(comm_log: CommLog) -> None:
    """Nothing the panel and grid send to the frontend, nor their text/plain, holds the key, even
    when a request fails with an authentication error (whose message names the key variable)."""
    key = "sk-proj-VERYSECRETkey0123456789abcdefXYZ"
    with MockServer(api_key=key) as srv:
        good = OpenAIClient("gpt-4.1-mini", base_url=srv.url, api_key=key)
        bad = OpenAIClient("gpt-4.1-mini", base_url=srv.url, api_key=key[:-3] + "ABC", max_retries=0)
        try:
            ok = await run_batch(good, prompts(30), max_concurrent=4, show=False)
            failed = await run_batch(bad, prompts(3), max_concurrent=2, show=False)
        finally:
            await good.aclose()
            await bad.aclose()
    assert ok.successful_count == 30 and failed.failed_count == 3
    sent = repr(comm_log.messages) + repr(good.last_run) + repr(ok) + repr(failed.errors)
    assert "AuthenticationError" in repr(comm_log.messages)  # the failure itself was drawn
    for secret in (key, key[:-3] + "ABC", key[8:-4]):
        assert secret not in sent
