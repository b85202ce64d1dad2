"""``run_batch(..., confirm=True)``: the estimate, a Run and a Don't-run button, and nothing sent until one
is clicked.

Why a future set from the click rather than a blocking wait: the await-mode run waits on the kernel's own
loop (ipykernel >= 7.4 dispatches a click while a cell awaits), the background run on its thread's loop,
and the click handler always runs on the kernel's main thread; ``call_soon_threadsafe`` reaches either
loop. A click that comes before anything waits is kept and answers the first wait.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from ipywidgets import HTML, Button, HBox, Layout, VBox

from ._snapshot import StaticSnapshot, snapshot_box

if TYPE_CHECKING:
    from seeds_nb.core.estimate import Estimate

__all__ = ["ConfirmRun"]


class ConfirmRun(StaticSnapshot, VBox):
    """The estimate of a run with Run / Don't run buttons; ``await wait()`` gives the choice (True: run)."""

    def __init__(self, estimate: Estimate, **kwargs: Any) -> None:
        self.estimate = estimate
        self.estimate_html = HTML(estimate._repr_html_(), layout=Layout(width="100%"))
        self.run_button = Button(description="Run", button_style="primary", icon="play")
        self.decline_button = Button(description="Don't run", icon="times")
        self.status_html = HTML("<span style='opacity:.7'>nothing is sent until you click Run</span>")
        self.run_button.on_click(lambda _: self.decide(True))
        self.decline_button.on_click(lambda _: self.decide(False))
        self._lock = threading.Lock()
        self._choice: bool | None = None
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]] | None = None
        super().__init__([self.estimate_html, HBox([self.run_button, self.decline_button, self.status_html],
                                                   layout=Layout(align_items="center"))], **kwargs)
        self.add_class("seeds-confirm")

    @property
    def choice(self) -> bool | None:
        """True once Run was clicked, False after Don't run, None before."""
        return self._choice

    def decide(self, run: bool) -> None:
        """What the buttons do (callable from code too); only the first choice counts."""
        with self._lock:
            if self._choice is not None:
                return
            self._choice = run
            waiter = self._waiter
        self.run_button.disabled = self.decline_button.disabled = True
        self.status_html.value = ("<b>running</b>" if run else
                                  "<b>not sent</b>: every prompt ends as cancelled")
        if waiter is not None:
            loop, future = waiter
            try:
                loop.call_soon_threadsafe(_settle, future, run)
            except RuntimeError:  # the waiting loop has closed: nobody waits any more
                pass

    async def wait(self) -> bool:
        """Wait for a click (or ``decide``); returns True to run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            if self._choice is not None:
                return self._choice
            self._waiter = (loop, future)
        return await future

    def snapshot_html(self) -> str:
        """The estimate and the choice, without the buttons (what a saved notebook shows)."""
        return snapshot_box(f"{self.estimate_html.value}<div>{self.status_html.value}</div>", "seeds-confirm-snapshot")

    def __repr__(self) -> str:
        state = {None: "waiting for Run", True: "run", False: "not sent"}[self._choice]
        return f"{self.estimate!r}\n[{state}]"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)
