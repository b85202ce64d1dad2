"""The one thread runner: a coroutine on a private event loop in a worker thread, awaitable from any
loop, cancellable from any thread, waited on with short waits so Ctrl-C stays deliverable.

It serves the sync API (``client.generate``, ``batch_generate_sync``), background runs
(``run_batch(..., background=True)``, ``watch_job``) and the magic's blocking path.

Why not nest_asyncio: measured in a kernel it loses Cancel clicks and leaves requests running
after Ctrl-C. Why not ``loop.run_until_complete`` on a thread we join: an interrupted
``Thread.join()`` on Python 3.11 may mark the thread stopped early. Here the caller waits on a
future in 0.1 s steps; on Ctrl-C it cancels the task on the private loop and waits until that task
has unwound (and the loop has closed its HTTP pools), then re-raises: nothing is left running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

__all__ = ["Running", "run_sync", "start_thread"]

T = TypeVar("T")

_WAIT_STEP_S = 0.1


class Running(Generic[T]):
    """``fn()`` running on its own thread and loop: ``done()``, ``cancel()``, ``result()``, ``await``."""

    def __init__(self, fn: Callable[[], Awaitable[T]], *, name: str = "seeds_nb-runner") -> None:
        self._fn = fn
        self._future: concurrent.futures.Future[T] = concurrent.futures.Future()
        # Running from the start: cancelling an awaiter's wrapper must not void the work's outcome.
        self._future.set_running_or_notify_cancel()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[T] | None = None
        self._lock = threading.Lock()
        self._cancel_requested = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self) -> Running[T]:
        self._thread.start()
        return self

    # -- the worker thread -----------------------------------------------------------------------
    def _main(self) -> None:
        try:
            result = asyncio.run(self._body())  # closes the loop's pools in shutdown_asyncgens()
        except BaseException as exc:  # handed to whoever waits
            self._future.set_exception(exc)
        else:
            self._future.set_result(result)

    async def _body(self) -> T:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            if self._cancel_requested:
                raise asyncio.CancelledError
        return await self._fn()

    # -- control ---------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Cancel the work (from any thread); it unwinds on its own loop."""
        with self._lock:
            self._cancel_requested = True
            loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: nothing left to cancel
                pass

    def done(self) -> bool:
        return self._future.done()

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[T]], Any]) -> None:
        """``fn(future)`` once the work ended (on the worker thread, or at once if it has)."""
        self._future.add_done_callback(fn)

    def outcome(self) -> T | None:
        """The result if the work ended without an error, else None (never waits)."""
        if not self._future.done() or self._future.exception() is not None:
            return None
        return self._future.result()

    # -- waiting ---------------------------------------------------------------------------------
    def join(self, timeout: float | None = None) -> bool:
        """Block until the work ended (without raising its error); False if ``timeout`` passed first."""
        done, _ = concurrent.futures.wait([self._future], timeout=timeout)
        return bool(done)

    async def joined(self) -> None:
        """Await the work's end from another loop, without raising its error."""
        await asyncio.wait([asyncio.wrap_future(self._future)])

    def result(self, timeout: float | None = None, *, interrupt_cancels: bool = True) -> T:
        """Block until the work ends and return its result (or raise its error).

        ``TimeoutError`` after ``timeout`` s (the work goes on). On Ctrl-C: with ``interrupt_cancels``
        the work is cancelled and waited for, then ``KeyboardInterrupt`` is re-raised; without, it is
        re-raised at once and the work goes on.
        """
        waited = 0.0
        try:
            while True:
                step = _WAIT_STEP_S if timeout is None else min(_WAIT_STEP_S, max(timeout - waited, 0.0))
                try:
                    return self._future.result(timeout=step)  # short waits keep Ctrl-C deliverable
                except concurrent.futures.TimeoutError:
                    waited += step
                    if timeout is not None and waited >= timeout:
                        raise TimeoutError(f"still running after {timeout} s") from None
        except KeyboardInterrupt:
            if interrupt_cancels:
                self.cancel()
                self.join()
            raise

    def __await__(self) -> Generator[Any, None, T]:
        return self.wait().__await__()

    async def wait(self, *, interrupt_cancels: bool = True) -> T:
        """Await the work from another event loop. If the awaiting task is cancelled: with
        ``interrupt_cancels`` the work is cancelled and waited for; the cancellation is re-raised."""
        try:
            return await asyncio.wrap_future(self._future)
        except asyncio.CancelledError:
            if interrupt_cancels and not self._future.done():
                self.cancel()
                await self.joined()
            raise


def start_thread(fn: Callable[[], Awaitable[T]], *, name: str = "seeds_nb-runner") -> Running[T]:
    """Start ``fn()`` on a worker thread with its own event loop; returns at once."""
    return Running(fn, name=name).start()


def run_sync(fn: Callable[[], Awaitable[T]]) -> T:
    """Return ``await fn()`` from sync code, even inside a running loop (a Jupyter cell).

    On the main thread with no running loop this is ``asyncio.run`` (which turns Ctrl-C into
    cancelling the task); otherwise the work runs on a private loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if threading.current_thread() is threading.main_thread():
            return asyncio.run(_call(fn))
    return Running(fn, name="seeds_nb-sync").start().result()


async def _call(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()
