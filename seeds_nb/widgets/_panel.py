"""``Panel``: the frame a live panel is drawn in (title, bar, Cancel button, one stats ``HTML``).

Why a base: ``BatchProgress`` (a batch this kernel sends) and ``BatchJobMonitor`` (a provider's
Batch API job) show different numbers but must behave alike: a click is handled once, thread-safely
(a background run draws from its thread, clicks come on the main one), the final state is drawn once
and then frozen, a redraw of the bar is one message (``hold_sync``), and ``close`` frees every model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ipywidgets import HTML, Button, HBox, IntProgress, Layout, VBox

from ._format import esc
from ._throttle import Throttle
from ._tree import close_tree

__all__ = ["Panel"]


class Panel(VBox):
    """Title, bar and Cancel button on one line, a stats ``HTML`` under them; subclasses draw."""

    # class-level defaults: a subclass renders its first stats text before calling __init__
    _final = False
    _cancel_requested = False

    def __init__(self, *, title: str, bar_max: int, bar_label: str, stats: str, cancel_tooltip: str,
                 css_class: str, throttle: Throttle, **kwargs: Any) -> None:
        self.throttle = throttle
        self._lock = threading.RLock()
        self._cancel_callbacks: list[Callable[[], object]] = []
        self.bar = IntProgress(value=0, min=0, max=max(bar_max, 1), description=bar_label,
                               style={"description_width": "initial"},
                               layout=Layout(flex="1 1 auto", width="auto", min_width="12em"))
        self.cancel_button = Button(description="Cancel", icon="stop", tooltip=cancel_tooltip,
                                    layout=Layout(width="auto", flex="0 0 auto"))
        self.cancel_button.on_click(lambda _button: self.request_cancel())
        self.title_html = HTML(f"<b>{esc(title)}</b>" if title else "", layout=Layout(flex="0 0 auto"))
        self.stats_html = HTML(stats)
        header = HBox([self.title_html, self.bar, self.cancel_button],
                      layout=Layout(align_items="center", width="100%"))
        kwargs.setdefault("layout", Layout(width="100%", max_width="1100px"))
        super().__init__([header, self.stats_html], **kwargs)
        self.add_class(css_class)

    @property
    def finished(self) -> bool:
        return self._final

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the Cancel button is clicked (or ``request_cancel()`` is called)."""
        self._cancel_callbacks.append(callback)

    def request_cancel(self) -> None:
        """What a click does: show 'cancelling', disable the button, call the ``on_cancel`` callbacks once."""
        with self._lock:
            if self._final or self._cancel_requested:
                return
            self._cancel_requested = True
            with self.cancel_button.hold_sync():
                self.cancel_button.disabled = True
                self.cancel_button.description = "Cancelling…"
            self._draw_cancelling()
        for callback in list(self._cancel_callbacks):
            callback()

    def _draw_cancelling(self) -> None:
        raise NotImplementedError

    def _set_bar(self, bar_max: int, value: int, description: str, style: str) -> None:
        """One message for all the bar's traits."""
        with self.bar.hold_sync():
            if bar_max != self.bar.max:
                self.bar.max = bar_max  # clamps a larger value; the value is set right after
            self.bar.value = value
            self.bar.description = description
            self.bar.bar_style = style

    def _end_button(self, label: str) -> None:
        """The button after the final draw: disabled, saying how it ended."""
        with self.cancel_button.hold_sync():
            self.cancel_button.disabled = True
            self.cancel_button.description = label
            self.cancel_button.icon = ""

    def close(self) -> None:
        """Close the panel and all its parts (the button's callback refers back to it)."""
        self._cancel_callbacks.clear()
        close_tree(self, super().close)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))
