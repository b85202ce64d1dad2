"""``watch_job``: show a ``BatchJobMonitor`` and drive it by polling a ``BatchJob`` until it ends.

Polling is ``job.wait(poll_interval, timeout, on_update=...)``, the job's own mechanism; around it
run a slow ticker (elapsed time and ETA move between polls) and, when Cancel is clicked, one task
that asks the provider to cancel. The click may come on the main thread while the watching runs on a
background thread's loop, so it is handed over with ``call_soon_threadsafe``.

What it returns, and why:

* the job reached an end (completed, failed, expired, or cancelled with the button): the
  ``BatchResult`` of ``job.results()``: finished answers, and ``Cancelled`` / ``BatchExpired`` errors
  for the rest, as ``run_batch`` returns a cancelled batch's partial result;
* watching stopped first (kernel interrupt, ``timeout``): there is no result yet, and the job goes on
  (and is billed) at the provider, so the ``CancelledError`` / ``TimeoutError`` propagates and the
  panel says "detached". An interrupt never cancels the job: that is what the Cancel button is for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Literal, overload

from ._handle import ThreadHandle
from ._job import BatchJobMonitor
from ._throttle import Throttle
from ._tree import display_live, refresh_fallback, send_tree

if TYPE_CHECKING:
    from seeds_nb.core.batch_api import Job
    from seeds_nb.core.result import BatchResult

__all__ = ["JobHandle", "PendingJob", "watch_job"]

TICK_S = 1.0
"""How often the ticker offers a redraw between polls (it still goes through the throttle)."""


class PendingJob:
    """What ``watch_job`` returns in await mode: ``await`` it (once) to watch the job to its end and get
    its ``BatchResult``. ``job`` and ``monitor`` exist before it runs (e.g. to click Cancel from code)."""

    def __init__(self, job: Job, monitor: BatchJobMonitor, poll_interval: float, timeout: float | None,
                 on_update: Callable[[Job], Any] | None, show: bool) -> None:
        self.job, self.monitor = job, monitor
        self.poll_interval, self.timeout, self.on_update = poll_interval, timeout, on_update
        self._show = show
        self._awaited = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Task[Any] | None = None
        self._cancelling: asyncio.Task[None] | None = None
        monitor.on_cancel(self._cancel_clicked)

    def cancel(self) -> None:
        """What the Cancel button does: ask the provider to cancel the job (sent once watching starts)."""
        self.monitor.request_cancel()

    def __await__(self) -> Generator[Any, None, BatchResult]:
        if self._awaited:
            raise RuntimeError("watch_job(...) can be awaited once; call watch_job(job) again to watch again")
        self._awaited = True
        return self._in_cell().__await__()

    async def _in_cell(self) -> BatchResult:
        handle = display_live(self.monitor) if self._show else None
        try:
            return await self.drive()
        finally:
            refresh_fallback(handle, self.monitor)

    def __repr__(self) -> str:
        state = "awaited" if self._awaited else "not awaited yet: use await watch_job(job)"
        return f"PendingJob(job {self.job.id}, {state})"

    # -- cancel --------------------------------------------------------------------------------------
    def _cancel_clicked(self) -> None:
        """On the clicking thread: hand the cancel to the watching loop (``drive`` picks up a click
        that came before it started)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the job already ended
                loop.call_soon_threadsafe(self._start_cancel)

    def _start_cancel(self) -> None:
        if self._cancelling is None and self._loop is not None:
            self._cancelling = self._loop.create_task(self._cancel_job(), name="seeds_nb-job-cancel")

    async def _cancel_job(self) -> None:
        try:
            await self.job.cancel()
        except Exception as exc:  # e.g. the provider is unreachable: say so, offer the button again
            self._cancelling = None
            self.monitor.cancel_failed(exc)
            return
        self.monitor.update(force=True)
        if self.job.done and self._waiter is not None:
            self._waiter.cancel()  # ended already: no need to wait for the next poll

    # -- watching ------------------------------------------------------------------------------------
    def _polled(self, job: Job) -> Any:
        self.monitor.update()
        return self.on_update(job) if self.on_update is not None else None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.monitor.tick()

    async def drive(self) -> BatchResult:
        """Poll until the job ends and return its results; the monitor's final state is drawn however
        it ends."""
        loop = self._loop = asyncio.get_running_loop()
        if self.monitor.cancel_requested:  # clicked before watching started (after setting _loop: no race)
            self._start_cancel()
        ticker = loop.create_task(self._tick(), name="seeds_nb-job-ticker")
        self._waiter = waiter = loop.create_task(self.job.wait(self.poll_interval, self.timeout, self._polled),
                                                 name="seeds_nb-job-wait")
        try:
            try:
                await waiter
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if (task is not None and task.cancelling()) or not self.job.done:
                    raise  # an interrupt, not our own wake-up after a cancel that ended the job
            result = await self.job.results()
        except asyncio.CancelledError:
            self.monitor.detach(f"stopped watching (interrupted); job {self.job.id} goes on at the provider: "
                                "watch_job(job) watches it again, job.cancel() stops it")
            raise
        except TimeoutError:
            self.monitor.detach(f"stopped watching after {self.timeout} s; job {self.job.id} goes on at the "
                                "provider: watch_job(job) watches it again")
            raise
        except BaseException as exc:
            self.monitor.finish(error=exc)
            raise
        finally:
            self._loop = None
            helpers = [task for task in (ticker, waiter, self._cancelling) if task is not None]
            for task in helpers:
                task.cancel()
            await asyncio.wait(helpers)  # their own ends (cancelled, a failed redraw) are not the outcome
        self.monitor.finish(result)
        return result


class JobHandle(ThreadHandle["BatchResult"]):
    """A job watched from its own thread: ``cancel()``, ``done()``, ``result(timeout)``, ``await handle``.

    ``job`` is the ``BatchJob``, ``monitor`` its panel. Unlike a batch's handle, an interrupt while
    waiting on it only stops the *wait*: the watching goes on, and so does the job.
    """

    interrupt_cancels = False
    _thread_name = "seeds_nb-job"

    def __init__(self, watcher: PendingJob) -> None:
        super().__init__()
        self._watcher = watcher
        self.job: Job = watcher.job
        self.monitor: BatchJobMonitor = watcher.monitor

    async def _body(self) -> BatchResult:
        return await self._watcher.drive()

    def cancel(self) -> None:
        """Ask the provider to cancel the job (what the Cancel button does; thread-safe). Answers finished
        by then are kept; the handle's result is then the partial ``BatchResult``."""
        self.monitor.request_cancel()

    def _resend(self) -> None:
        send_tree(self.monitor)

    def __repr__(self) -> str:
        return f"JobHandle({'done' if self.done() else 'watching'}, job {self.job.id} {self.job.status})"


@overload
def watch_job(job: Job, *, poll_interval: float = ..., timeout: float | None = ...,
              background: Literal[False] = ..., monitor: BatchJobMonitor | None = ..., title: str | None = ...,
              refresh_s: float = ..., show: bool = ...,
              on_update: Callable[[Job], Any] | None = ...) -> PendingJob: ...


@overload
def watch_job(job: Job, *, poll_interval: float = ..., timeout: float | None = ...,
              background: Literal[True], monitor: BatchJobMonitor | None = ..., title: str | None = ...,
              refresh_s: float = ..., show: bool = ...,
              on_update: Callable[[Job], Any] | None = ...) -> JobHandle: ...


def watch_job(job: Job, *, poll_interval: float = 10.0, timeout: float | None = None, background: bool = False,
              monitor: BatchJobMonitor | None = None, title: str | None = None, refresh_s: float = 0.5,
              show: bool = True, on_update: Callable[[Job], Any] | None = None,
              ) -> PendingJob | JobHandle:
    """Show a live ``BatchJobMonitor`` for a Batch API job and poll it until it ends.

    ``result = await watch_job(job)`` (a ``PendingJob``, awaited once) returns the ``BatchResult`` of
    ``job.results()`` once the job has ended, including when it was cancelled (with the button or
    ``job.cancel()``): finished answers are kept, the rest are ``Cancelled``. A kernel interrupt or
    ``timeout`` stops only the watching (the job goes on at the provider): the panel shows "detached"
    and the ``CancelledError`` / ``TimeoutError`` propagates. ``handle = watch_job(job,
    background=True)`` returns a ``JobHandle`` at once and watches from a thread.

    Args:
        poll_interval: seconds between two polls (one request per unfinished provider batch).
        timeout: stop watching after this many seconds (``TimeoutError``); None waits for the end.
        monitor: a ``BatchJobMonitor`` of this job to drive (default: a new one).
        title / refresh_s: the new monitor's label and least time between two redraws.
        show: display the monitor (False: drive it without displaying, e.g. to embed it).
        on_update: ``on_update(job)`` after each poll (sync or async), as for ``job.wait``.
    """
    if not poll_interval > 0:
        raise ValueError(f"poll_interval must be a number of seconds > 0; got {poll_interval!r}")
    if monitor is None:
        monitor = BatchJobMonitor(job, title=title, throttle=Throttle(refresh_s))
    elif monitor.job is not job:
        raise ValueError("monitor= shows another job; pass BatchJobMonitor(job) for this one")
    watcher = PendingJob(job, monitor, poll_interval, timeout, on_update, show)
    if not background:
        return watcher
    if show:
        from IPython.display import display

        display(monitor)
    return JobHandle(watcher).start()
