"""Static ``text/html`` snapshots of a widget, for wherever the live view cannot render.

Why: a widget view renders only where a widget manager runs and its state was saved. JupyterLab does
not save widget state by default, GitHub never renders widget views, and ``nbconvert --to html``
needs the widget JavaScript from a CDN. Every renderer picks the richest type it knows from an
output's mimebundle, so a plain ``text/html`` beside the view (escaped text, inline styles only: static
renderers drop ``<style>``; no JavaScript; bounded in size) is what a saved notebook shows of a batch
there. The display is refreshed at the end of a run (``_tree.refresh_fallback``), so what is saved
is the final state.

One module for every widget (panel, confirm gate, job monitor, results grid, compare grid): one
frame, one table style, one size limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ._format import esc

__all__ = ["SNAPSHOT_LIMIT", "StaticSnapshot", "html_table", "snapshot_box", "text_lines"]

SNAPSHOT_LIMIT = 50_000
"""Most characters a snapshot may take in a saved notebook (it is sent once per display)."""


class StaticSnapshot:
    """Mixin for a widget class: adds ``snapshot_html()`` as ``text/html`` to its mimebundle."""

    def snapshot_html(self) -> str:
        """The widget's current state as static, escaped HTML without JavaScript."""
        raise NotImplementedError

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        if bundle is None:
            return None
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, None)  # anywidget: (data, metadata)
        html = self.snapshot_html()
        if len(html) > SNAPSHOT_LIMIT:  # a subclass went over its budget: say so rather than bloat the notebook
            html = snapshot_box(f"<i>{esc(type(self).__name__)}: snapshot too large to save</i>")
        data = {**data, "text/html": html}
        return data if metadata is None else (data, metadata)


def snapshot_box(body: str, css_class: str = "", *, table: str = "") -> str:
    """The frame every snapshot is drawn in: ``body`` (HTML, escaped by the caller) above an optional
    ``table`` (from ``html_table``). Past ``SNAPSHOT_LIMIT`` the table is dropped and a line says so."""
    head = (f'<div class="seeds-snapshot {esc(css_class)}" style="max-width:1100px;font-size:13px;'
            f'line-height:1.5">{body}')
    html = f"{head}{table}</div>"
    if table and len(html) > SNAPSHOT_LIMIT:
        html = f"{head}<div>(rows left out: the snapshot is kept under {SNAPSHOT_LIMIT:,} characters)</div></div>"
    return html


def text_lines(title: str, lines: Sequence[str]) -> str:
    """A bold ``title`` and one ``<div>`` per line, all escaped here (a snapshot's ``body``)."""
    return f"<b>{esc(title)}</b>" + "".join(f"<div>{esc(line)}</div>" for line in lines)


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *,
               colors: Sequence[str | None] | None = None, color_column: int = 1) -> str:
    """A small table; every header and cell is escaped. ``colors``: an optional colour per row for its
    cell ``color_column`` (the status); a colour may also be given per cell as a ``(text, colour)``
    pair. Styles are inline and few: static viewers drop ``<style>`` blocks."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for n, row in enumerate(rows):
        color = colors[n] if colors is not None else None
        cells = []
        for i, cell in enumerate(row):
            text, cell_color = cell if isinstance(cell, tuple) else (cell, None)
            if i == color_column and color:
                cell_color = color
            style = f' style="color:{esc(cell_color)};font-weight:600"' if cell_color else ""
            cells.append(f"<td{style}>{esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table style="border-collapse:collapse;font-size:12px;text-align:left"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table>")
