"""``Panel``: the frame a live panel is drawn in (title, bar, Cancel button, stats lines), as one anywidget.

Why an anywidget (one ES module and one CSS file shipped in ``static/``, no build, no CDN) and not
composed stock ipywidgets: marimo renders anywidgets but no stock ipywidgets, and the results grid
is an anywidget too, so one technology serves every frontend (JupyterLab, Notebook 7, VS Code,
Colab, marimo). It is also one model: a redraw is one message (``hold_sync``), where the bar and the
stats ``HTML`` were two.

Why a base: ``BatchProgress`` (a batch this kernel sends) and ``BatchJobMonitor`` (a provider's
Batch API job) show different numbers but must behave alike: a click is handled once, thread-safely
(a background run draws from its thread, clicks come on the main one), the final state is drawn once
and then frozen, and the saved notebook keeps a static copy (``StaticSnapshot``).

Cancel during a foreground run: the click is a custom comm message, which ipykernel >= 7.4
dispatches while a cell awaits (see docs/widgets.md), exactly as it did for a ``Button``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from ._format import esc
from ._snapshot import StaticSnapshot, snapshot_box
from ._throttle import Throttle
from ._tree import close_tree

__all__ = ["BAR_COLORS", "Panel"]

_STATIC = Path(__file__).parent / "static"
BAR_COLORS = {"": "#2196f3", "running": "#2196f3", "info": "#00bcd4", "success": "#4caf50", "warning": "#ff9800",
              "danger": "#f44336"}
"""The bar's colour per style, in the live view (panel.css) and the static snapshot alike."""


class Panel(StaticSnapshot, anywidget.AnyWidget):
    """Title, bar and Cancel button on one line, the stats lines under them; subclasses draw.

    The synced traits are what the browser shows; ``stats`` is HTML built (and escaped) here.
    """

    # the files' text, not their paths: anywidget ties every instance to a path's change signal, so no
    # panel would ever be freed
    _esm = (_STATIC / "panel.js").read_text(encoding="utf-8")
    _css = (_STATIC / "panel.css").read_text(encoding="utf-8")

    kind = traitlets.Unicode("").tag(sync=True)
    """The CSS class of the panel's root (``seeds-batch-progress``, ``seeds-job-monitor``)."""
    title = traitlets.Unicode("").tag(sync=True)
    bar_max = traitlets.Int(1).tag(sync=True)
    bar_value = traitlets.Int(0).tag(sync=True)
    bar_label = traitlets.Unicode("").tag(sync=True)
    bar_style = traitlets.Unicode("").tag(sync=True)
    """'' (running), 'info', 'success', 'warning' or 'danger'."""
    stats = traitlets.Unicode("").tag(sync=True)
    button_label = traitlets.Unicode("Cancel").tag(sync=True)
    button_tooltip = traitlets.Unicode("").tag(sync=True)
    button_disabled = traitlets.Bool(False).tag(sync=True)

    # class-level defaults: a subclass renders its first stats text before calling __init__
    _final = False
    _cancel_requested = False

    def __init__(self, *, title: str, bar_max: int, bar_label: str, stats: str, cancel_tooltip: str,
                 css_class: str, throttle: Throttle, **kwargs: Any) -> None:
        self.throttle = throttle
        self._lock = threading.RLock()
        self._cancel_callbacks: list[Callable[[], object]] = []
        super().__init__(kind=css_class, title=title, bar_max=max(bar_max, 1), bar_label=bar_label, stats=stats,
                         button_tooltip=cancel_tooltip, **kwargs)
        self.on_msg(self._on_frontend_msg)

    @property
    def finished(self) -> bool:
        return self._final

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the Cancel button is clicked (or ``request_cancel()`` is called)."""
        self._cancel_callbacks.append(callback)

    def _on_frontend_msg(self, _widget: object, content: Any, _buffers: object) -> None:
        if isinstance(content, dict) and content.get("event") == "cancel":
            self.request_cancel()

    def request_cancel(self) -> None:
        """What a click does: show 'cancelling', disable the button, call the ``on_cancel`` callbacks once."""
        with self._lock:
            if self._final or self._cancel_requested:
                return
            self._cancel_requested = True
            with self.hold_sync():
                self.button_disabled = True
                self.button_label = "Cancelling…"
                self._draw_cancelling()
        for callback in list(self._cancel_callbacks):
            callback()

    def _draw_cancelling(self) -> None:
        raise NotImplementedError

    def _set_view(self, bar_max: int, value: int, label: str, style: str, stats: str) -> None:
        """One message for everything a redraw changes."""
        with self.hold_sync():
            self.bar_max = bar_max
            self.bar_value = value
            self.bar_label = label
            self.bar_style = style
            self.stats = stats

    def _end_button(self, label: str) -> None:
        """The button after the final draw: disabled, saying how it ended."""
        with self.hold_sync():
            self.button_disabled = True
            self.button_label = label

    def snapshot_html(self) -> str:
        """The bar and the stats lines as they stand, without script (what a saved notebook shows)."""
        percent = 100.0 * min(self.bar_value, self.bar_max) / max(self.bar_max, 1)
        head = f"<b>{esc(self.title)}</b> " if self.title else ""
        bar = (f'<div style="background:#eee;height:8px;border-radius:3px;margin:2px 0">'
               f'<div style="width:{percent:.1f}%;height:8px;border-radius:3px;'
               f'background:{BAR_COLORS.get(self.bar_style, BAR_COLORS[""])}"></div></div>')
        return snapshot_box(f"<div>{head}{esc(self.bar_label)}</div>{bar}{self.stats}", f"{self.kind}-snapshot")

    def close(self) -> None:
        """Close the panel and its layout model (the callbacks refer back to the run)."""
        self._cancel_callbacks.clear()
        close_tree(self, super().close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))
