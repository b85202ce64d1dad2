"""``VirtualList``: the kernel side of a virtualised list (static/vlist.js draws it in the browser).

Why a base of its own: the compare grid and the results grid show many rows the same way. The rows
live in the kernel; the browser holds one *window* of formatted rows and draws only those in view (a
fixed row height makes the scroll position a row number), so the DOM and each message stay small at
any size. The kernel *pushes* the window, throttled (one message per push, the final state always
forced), because messages from the browser wait while a cell runs (ipywidgets #3468) and a list that
asked for its rows would freeze during a foreground run.

The browser never writes a trait: it *asks* with a custom message, ``{"ask": {"viewport": [start,
size]}}`` or ``{"ask": {"selected": index}}``, and the kernel sets the trait and answers with one push.
Why: Jupyter's widget manager keeps one trait update per model in flight until the kernel reports
"idle" for it, which ipykernel 7.4 does not do for a comm message handled while a cell awaits (so
every later click would wait for the cell to end); in marimo a trait update would also become the
``mo.ui.anywidget`` element's value and re-run the cells reading it. A custom message has neither gate.
The traits stay synced, so Python reads ``widget.selected`` and may set any of them.

The JavaScript side is one module built from two plain files (``vlist.js`` + the widget's own), read
here and joined: no build step, no CDN.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

from ._snapshot import StaticSnapshot
from ._throttle import Throttle

__all__ = ["MAX_WINDOW", "VirtualList", "module_text"]

_STATIC = Path(__file__).parent / "static"
MAX_WINDOW = 400
"""Rows the browser may ask for at once (a screenful plus overscan is ~60-100)."""


def module_text(*names: str) -> str:
    """The text of shipped static files, joined (the files' text, not their paths: anywidget ties
    every instance to a path's change signal, so no widget would ever be freed)."""
    return "\n".join((_STATIC / name).read_text(encoding="utf-8") for name in names)


class VirtualList(StaticSnapshot, anywidget.AnyWidget):
    """A virtualised list whose rows stay in the kernel; subclasses say what the view is and how a row
    and a detail read (``_view_handles``, ``_format_row``, ``_detail_of``, ``_detail_version``) and may push more
    traits with the window (``_push_more``)."""

    height_rows = traitlets.Int(20, help="rows visible at once").tag(sync=True)
    viewport = traitlets.List([0, 60], help="[start, size] of the rows the browser wants (it asks)").tag(sync=True)
    window = traitlets.Dict(help="{'start': view position, 'rows': formatted rows} (pushed)").tag(sync=True)
    view_size = traitlets.Int(0, help="rows in the current view").tag(sync=True)
    selected = traitlets.Int(-1, help="index of the selected row (-1: none)").tag(sync=True)
    detail = traitlets.Dict(help="the selected row in full (pushed)").tag(sync=True)
    _view_key = traitlets.Unicode(help="this list, for the browser: a view drawn again opens where the last "
                                  "one was scrolled").tag(sync=True)

    _askable: ClassVar[tuple[str, ...]] = ("viewport", "selected")
    """The traits the browser may ask the kernel to set."""

    def __init__(self, *, throttle: Throttle, **kwargs: Any) -> None:
        self.throttle = throttle
        self._lock = threading.RLock()  # a run pushes from its thread or loop, the browser asks on the main thread
        self._dirty = False
        self._detail_token: object = None
        kwargs.setdefault("_view_key", uuid.uuid4().hex)
        super().__init__(**kwargs)
        self.observe(self._on_viewport, names="viewport")
        self.observe(self._on_selected, names="selected")
        self.on_msg(self._on_message)

    # -- what a subclass says ------------------------------------------------------------------------
    def _view_handles(self) -> Sequence[Any]:
        """The rows of the view, in order (any handle ``_format_row`` understands)."""
        raise NotImplementedError

    def _format_row(self, handle: Any) -> list[Any]:
        """One row as the browser shows it (JSON; text is drawn as text)."""
        raise NotImplementedError

    def _detail_of(self, index: int) -> dict[str, Any] | None:
        """Row ``index`` in full, or None when there is no such row yet."""
        raise NotImplementedError

    def _detail_version(self, index: int) -> object:
        """Changes when row ``index``'s content changed (the detail is pushed again then)."""
        raise NotImplementedError

    def _push_more(self) -> None:
        """Set the other traits a push carries (called under the lock, inside the push's ``hold_sync``)."""

    def _on_action(self, content: Mapping[str, Any]) -> None:
        """A custom message that is not an ``ask`` (a button)."""

    # -- the window ----------------------------------------------------------------------------------
    def _window_bounds(self, size: int) -> tuple[int, int]:
        start, want = (list(self.viewport) + [0, 60])[:2]
        want = max(1, min(int(want), MAX_WINDOW))
        start = max(0, min(int(start), max(size - want, 0)))
        return start, min(start + want, size)

    def mark_dirty(self) -> None:
        """Rows changed: the next ``refresh``/``tick`` the throttle allows pushes them."""
        self._dirty = True

    def refresh(self, *, force: bool = False) -> bool:
        """Push the window if rows changed and the throttle allows (or ``force``); True when pushed."""
        if force:
            self.throttle.mark()
        elif not self._dirty or not self.throttle.ready():
            return False
        self._push()
        return True

    def tick(self) -> bool:
        """Periodic push of rows still waiting for one (the time gate alone)."""
        if not self._dirty or not self.throttle.due():
            return False
        self._push()
        return True

    def _push(self) -> None:
        """One message: the window for the browser's viewport, the view size, the subclass's traits,
        and the selected row's detail when its content changed."""
        with self._lock:
            self._dirty = False
            view = self._view_handles()
            start, stop = self._window_bounds(len(view))
            window = {"start": start, "rows": [self._format_row(handle) for handle in view[start:stop]]}
            detail = None
            index = int(self.selected)
            if index >= 0:
                token = self._detail_version(index)
                if token != self._detail_token:
                    detail = self._detail_of(index)
                    self._detail_token = token
            with self.hold_sync():
                self.window = window
                self.view_size = len(view)
                self._push_more()
                if detail is not None:
                    self.detail = detail

    def _on_viewport(self, change: dict[str, Any]) -> None:
        self.throttle.mark()
        self._push()

    # -- selection -----------------------------------------------------------------------------------
    def select(self, index: int) -> None:
        """Select row ``index``: the detail shows it in full."""
        if self.selected == index:
            self._on_selected({"new": index})
        self.selected = index

    def _on_selected(self, change: dict[str, Any]) -> None:
        index = int(change["new"])
        with self._lock:
            detail = self._detail_of(index) if index >= 0 else None
            self._detail_token = self._detail_version(index) if detail is not None else None
            self.detail = detail if detail is not None else ({} if index < 0 else {"index": index, "missing": True})

    # -- the browser's messages ----------------------------------------------------------------------
    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        if isinstance(content.get("ask"), dict):
            self._on_ask(content["ask"])
        else:
            self._on_action(content)

    def _check_ask(self, changes: Mapping[str, Any]) -> None:
        """Refuse a request before anything changes (raise): traitlets rolls a held change back only
        on a ``TraitError``, so a subclass checks its cross-validated traits here."""

    def _refused(self, error: Exception) -> None:
        """A request could not be applied (a stale or bad one): a subclass may say so in its view."""

    def _on_ask(self, ask: Mapping[str, Any]) -> None:
        """Set the traits the browser asked for at once (checked together: a bad value changes none),
        so their observers answer with one message."""
        changes = {name: ask[name] for name in self._askable if name in ask}
        try:
            self._check_ask(changes)
            with self.hold_sync(), self.hold_trait_notifications():
                for name, value in changes.items():
                    setattr(self, name, value)
        except Exception as exc:  # never raise in the kernel's comm handler
            self._refused(exc)
