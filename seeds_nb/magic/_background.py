"""``--background``: the handle bound as ``<out>_run``, which also binds ``<out>`` when the work ends.

Why a wrapper around the widgets' ``BatchHandle`` rather than a done-callback alone: a later cell
typically does ``seeds_result_run.result()`` and reads ``seeds_result`` on the next line; a
callback racing the waiter could bind it a moment too late. Here ``result()`` and ``await`` bind
before they return, and the handle's done-callback covers the user who never waits. The handle is
the widgets' ``BatchHandle`` (a batch) or ``JobHandle`` (a ``--submit`` job being watched).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

from seeds_nb.core.result import BatchResult

__all__ = ["BackgroundBatch"]


class BackgroundBatch:
    """The ``<out>_run`` of a ``--background`` cell: the widgets' handle, plus binding ``<out>``.

    ``result()`` and ``await`` bind ``<out>`` before they return, so the next line of the cell can
    read it; the handle's done-callback binds it too when nobody waits. Everything else (``cancel()``,
    ``done()``, ``run``, ``progress``, ``grid``) is the handle's.
    """

    def __init__(self, handle: Any, user_ns: dict[str, Any], out: str, plot_area: Any = None) -> None:
        self.handle = handle
        self.out = out
        self._user_ns = user_ns
        self._plot_area = plot_area
        self._bind_lock = threading.Lock()
        self._bound = False
        handle.add_done_callback(lambda _: self._bind())  # on the worker thread, as the work ends

    def _bind(self) -> None:
        """Bind the final result once (``outcome()`` is the object ``result()`` returns; None when the
        watching of a job failed: nothing to bind)."""
        result = self.handle.outcome()
        if result is None:
            return
        with self._bind_lock:  # held while binding: a waiter returning early must find <out> bound
            if self._bound:
                return
            self._user_ns[self.out] = result
            self._bound = True
        if self._plot_area is not None:
            from seeds_nb.plots import summary

            try:
                figure = summary(result)
            except Exception as exc:  # on the watcher thread nobody would see the traceback
                self._plot_area.append_stderr(f"seeds_nb: --plot failed: {type(exc).__name__}: {exc}\n")
            else:
                self._plot_area.append_display_data(figure)

    def result(self, timeout: float | None = None) -> BatchResult:
        """Block until the batch ends (Ctrl-C cancels it), bind ``<out>`` and return the result."""
        try:
            return self.handle.result(timeout)
        finally:
            if self.handle.done():
                self._bind()

    def __await__(self) -> Generator[Any, None, BatchResult]:
        return self._wait().__await__()

    async def _wait(self) -> BatchResult:
        try:
            return await self.handle
        finally:
            if self.handle.done():
                self._bind()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __repr__(self) -> str:
        return f"{self.handle!r} -> {self.out}"
