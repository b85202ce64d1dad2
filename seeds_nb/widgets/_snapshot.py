"""Static ``text/html`` snapshots of a widget, for wherever the live view cannot render.

Why: GitHub, nbviewer and ``nbconvert --to html`` show a widget only from saved widget state
(JupyterLab does not save it by default; GitHub never renders it), so a saved notebook would show a
one-line ``text/plain`` of the batch at most. Every widget's mimebundle therefore also carries a
plain HTML snapshot: escaped text, inline styles only, no JavaScript, bounded in size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._format import esc

__all__ = ["SNAPSHOT_LIMIT", "html_table", "snapshot_html"]

SNAPSHOT_LIMIT = 50_000
"""Most characters a snapshot may take (a saved notebook holds one per displayed widget)."""

def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], *,
               colors: Sequence[str | None] | None = None) -> str:
    """A small table; every header and cell is escaped (``colors``: an optional colour per row for its
    second cell, the status). Styles are inline and few: static viewers drop ``<style>`` blocks, and
    a saved notebook holds one snapshot per displayed widget."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for n, row in enumerate(rows):
        color = colors[n] if colors is not None else None
        cells = [f"<td>{esc(cell)}</td>" for cell in row]
        if color and len(cells) > 1:
            cells[1] = f'<td style="color:{esc(color)};font-weight:600">{esc(row[1])}</td>'
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table style="border-collapse:collapse;font-size:12px;text-align:left"><thead><tr>{head}</tr>'
            f"</thead><tbody>{''.join(body)}</tbody></table>")


def snapshot_html(css_class: str, title: str, lines: Sequence[str], table: str = "") -> str:
    """One snapshot: a bold ``title`` and ``lines`` (both escaped here) above an optional ``table``
    (built by ``html_table``). Past ``SNAPSHOT_LIMIT`` the table is dropped and a line says so."""
    text = "".join(f"<div>{esc(line)}</div>" for line in lines)
    head = f'<div class="{esc(css_class)}" style="font-size:12px"><b>{esc(title)}</b>{text}'
    html = f"{head}{table}</div>"
    if len(html) > SNAPSHOT_LIMIT:
        html = f"{head}<div>(rows left out: the snapshot is kept under {SNAPSHOT_LIMIT:,} characters)</div></div>"
    return html
