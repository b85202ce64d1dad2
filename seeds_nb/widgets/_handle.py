"""``ThreadHandle``: work that runs on a thread with its own event loop, waited on from a cell.

Why one base for ``run_batch(..., background=True)`` and ``watch_job(..., background=True)``: both
need the same plumbing (a daemon thread, a private connection pool, a future the cell can block on
with short waits so Ctrl-C stays deliverable, or ``await``; the widgets' final state re-sent from the
waiting cell), and differ only in what runs and in what an interrupt of the *waiter* means: stop a
batch (its spending), or merely stop waiting on a provider's job (which runs on, and is billed, anyway).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

if TYPE_CHECKING:
    from seeds_nb.core.client import BaseClient

__all__ = ["ThreadHandle"]

T = TypeVar("T")


class ThreadHandle(Generic[T]):
    """``_body()`` run on a thread of its own: ``done()``, ``result(timeout)``, ``await handle``.

    Subclasses implement ``_body`` (the coroutine), ``cancel`` and ``_resend`` (re-send the widgets'
    state). ``interrupt_cancels``: whether Ctrl-C / a kernel interrupt while *waiting* on the handle
    cancels the work (True) or only stops the wait (False: the work goes on in the background).
    """

    interrupt_cancels: ClassVar[bool] = True
    _thread_name: ClassVar[str] = "seeds_nb-background"

    def __init__(self, client: BaseClient) -> None:
        self._client = client
        self._future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._future.set_running_or_notify_cancel()  # a cancel from an awaiting task must not void it
        self._thread = threading.Thread(target=self._main, name=self._thread_name, daemon=True)

    # -- what subclasses provide -------------------------------------------------------------------
    async def _body(self) -> T:
        raise NotImplementedError

    def cancel(self) -> None:
        raise NotImplementedError

    def _resend(self) -> None:
        """Send the widgets' final state again, from the cell that waited (nbclient keeps only that)."""

    # -- the thread --------------------------------------------------------------------------------
    def _start(self) -> Self:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            result = asyncio.run(self._go())
        except BaseException as exc:  # handed to whoever waits on the handle
            self._future.set_exception(exc)
        else:
            self._future.set_result(result)

    async def _go(self) -> T:
        async with self._client.private_pool():  # the main pool belongs to the kernel's loop
            return await self._body()

    # -- waiting -----------------------------------------------------------------------------------
    def done(self) -> bool:
        return self._future.done()

    def outcome(self) -> T | None:
        """The result if the work ended without an error, else None (no waiting)."""
        if not self._future.done() or self._future.exception() is not None:
            return None
        return self._future.result()

    def result(self, timeout: float | None = None) -> T:
        """Block until the work ends and return its result.

        Raises ``TimeoutError`` after ``timeout`` seconds (the work goes on). On Ctrl-C / kernel
        interrupt: with ``interrupt_cancels`` the work is cancelled and, once it has unwound, the
        ``KeyboardInterrupt`` is re-raised; otherwise it is re-raised at once and the work goes on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                wait = 0.1 if deadline is None else min(0.1, max(deadline - time.monotonic(), 0.0))
                try:
                    result = self._future.result(timeout=wait)  # short waits keep Ctrl-C deliverable
                    break
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"still running after {timeout} s") from None
        except KeyboardInterrupt:
            if self.interrupt_cancels:
                self.cancel()
                self._thread.join()
                self._resend()
            raise
        self._resend()
        return result

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait().__await__()

    async def _wait(self) -> T:
        try:
            result = await asyncio.wrap_future(self._future)
        except asyncio.CancelledError:  # an interrupt while awaiting the handle
            if not self.interrupt_cancels:
                raise
            self.cancel()  # the same as in await mode: stop the work, hand back what it made
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            result = await asyncio.wrap_future(self._future)
        self._resend()
        return result
