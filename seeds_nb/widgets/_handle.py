"""``ThreadHandle``: work that runs on the core's thread runner, waited on from a cell.

Why one base for ``run_batch(..., background=True)`` and ``watch_job(..., background=True)``: both
need the same plumbing (the core's ``Running``: a thread with its own loop, awaitable, cancellable,
short waits so Ctrl-C stays deliverable; plus the widgets' final state re-sent from the waiting cell),
and differ only in what runs and in what an interrupt of the *waiter* means: stop a batch (its
spending), or merely stop waiting on a provider's job (which runs on, and is billed, anyway).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Generator
from typing import Any, ClassVar, Generic, Self, TypeVar

from seeds_nb.core.runner import Running

__all__ = ["ThreadHandle"]

T = TypeVar("T")


class ThreadHandle(Generic[T]):
    """``_body()`` run on a thread of its own: ``done()``, ``result(timeout)``, ``await handle``.

    Subclasses implement ``_body`` (the coroutine), ``cancel`` and ``_resend`` (re-send the widgets'
    state). ``interrupt_cancels``: whether Ctrl-C / a kernel interrupt while *waiting* on the handle
    cancels the work (True) or only stops the wait (False: the work goes on in the background).
    Either way the interrupt propagates to the waiter.
    """

    interrupt_cancels: ClassVar[bool] = True
    _thread_name: ClassVar[str] = "seeds_nb-background"

    def __init__(self) -> None:
        self._running: Running[T] = Running(self._body, name=self._thread_name)

    # -- what subclasses provide -------------------------------------------------------------------
    async def _body(self) -> T:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def _resend(self) -> None:
        """Send the widgets' final state again, from the cell that waited (nbclient keeps only that)."""

    # -- the thread --------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the work on its thread; returns the handle."""
        self._running.start()
        return self

    def add_done_callback(self, fn: Callable[[concurrent.futures.Future[T]], Any]) -> None:
        """``fn(future)`` once the work ended (on the worker thread, or at once if it has)."""
        self._running.add_done_callback(fn)

    # -- waiting -----------------------------------------------------------------------------------
    def done(self) -> bool:
        return self._running.done()

    def outcome(self) -> T | None:
        """The result if the work ended without an error, else None (no waiting)."""
        return self._running.outcome()

    def result(self, timeout: float | None = None) -> T:
        """Block until the work ends and return its result.

        Raises ``TimeoutError`` after ``timeout`` seconds (the work goes on). On Ctrl-C / kernel
        interrupt: with ``interrupt_cancels`` the work is cancelled and, once it has unwound, the
        ``KeyboardInterrupt`` is re-raised; otherwise it is re-raised at once and the work goes on.
        """
        try:
            result = self._running.result(timeout, interrupt_cancels=False)
        except KeyboardInterrupt:
            if self.interrupt_cancels:
                self.cancel()  # the work's own way to stop (a batch keeps what finished)
                self._running.join()
                self._resend()
            raise
        self._resend()
        return result

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    async def _wait(self) -> T:
        try:
            result = await self._running.wait(interrupt_cancels=False)
        except asyncio.CancelledError as exc:  # an interrupt while awaiting the handle
            if self.interrupt_cancels:
                self.cancel()  # stop the work as Cancel does, wait for it, then let the interrupt go on
                await self._running.joined()
                self._resend()
                exc.partial_result = self.outcome()  # type: ignore[attr-defined]
            raise
        self._resend()
        return result
