"""Walk a composed widget: re-send or close every model under it.

Why: a composed widget is many models (boxes, layouts, styles, buttons whose callbacks point back at
the owner). ``Widget.close()`` closes one model only, so the rest would stay registered, and keep
the owner (and a grid's rows) alive, until the kernel ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from ipywidgets import Widget

__all__ = ["close_tree", "display_live", "refresh_fallback", "send_tree"]


def display_live(widget: Widget) -> Any:
    """Display ``widget`` under a display id, so its ``text/plain`` fallback can be updated later."""
    from IPython.display import display

    return display(widget, display_id=True)


def refresh_fallback(handle: Any, widget: Widget) -> None:
    """Replace the ``text/plain`` captured at display time ("0/50 done") by the widget's final repr:
    nbclient saves it, and it is what a repository website or a plain console shows."""
    if handle is not None:
        with contextlib.suppress(Exception):  # a redraw must never change the batch's outcome
            handle.update(widget)


def _models(widget: Widget) -> Iterator[Widget]:
    """Every model under ``widget`` (children first, then their layout/style), then ``widget``."""
    for child in getattr(widget, "children", ()):
        yield from _models(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(part, Widget):
            yield part
    yield widget


def send_tree(widget: Widget) -> None:
    """Send the full state of every model again (from the calling cell: nbclient keeps only messages
    whose parent is the cell it runs, so a background run's updates would otherwise be lost)."""
    for model in _models(widget):
        model.send_state()


def close_tree(widget: Widget, close_self: Callable[[], None]) -> None:
    """Close every model under ``widget``; ``close_self`` closes ``widget`` itself (its super().close)."""
    for model in _models(widget):
        if model is widget:
            close_self()
        else:
            model.close()
