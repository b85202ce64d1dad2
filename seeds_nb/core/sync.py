"""Run a coroutine to completion from sync code, even inside a running loop (a Jupyter cell).

Why not nest_asyncio: measured in a kernel it loses Cancel clicks and leaves requests running
after Ctrl-C. Instead the coroutine runs on a private loop in a worker thread while the caller
waits with short joins, so a KeyboardInterrupt reaches the caller promptly; it then cancels the
task on the private loop and waits for it to unwind (nothing is left running).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(fn: Callable[[], Awaitable[T]]) -> T:
    """Return ``await fn()``; on KeyboardInterrupt cancel it, wait for cleanup, re-raise."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop and threading.current_thread() is threading.main_thread():
        return asyncio.run(_as_coro(fn))  # asyncio.run turns Ctrl-C into cancelling the task

    box: dict[str, Any] = {}
    ready = threading.Event()
    finished = threading.Event()  # not thread.join(): after an interrupted join, 3.11 may return early

    def runner() -> None:
        loop = asyncio.new_event_loop()
        box["loop"] = loop
        try:
            box["task"] = loop.create_task(_as_coro(fn))
            ready.set()
            box["result"] = loop.run_until_complete(box["task"])
        except BaseException as exc:  # delivered to the caller's thread below
            box["error"] = exc
        finally:
            ready.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                finished.set()

    thread = threading.Thread(target=runner, name="seeds_nb-sync", daemon=True)
    thread.start()
    try:
        while not finished.wait(0.1):  # short waits keep Ctrl-C deliverable
            pass
    except KeyboardInterrupt:
        ready.wait()
        loop, task = box.get("loop"), box.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: nothing left to cancel
                pass
        finished.wait()
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


async def _as_coro(fn: Callable[[], Awaitable[T]]) -> T:
    return await fn()
