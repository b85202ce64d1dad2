"""``CompareGrid`` and ``compare_batch``: the same prompts through several clients, answers side by side.

``compare_batch`` runs ``seeds_nb.core.compare_models`` (so the comparison itself is one mechanism,
usable without a notebook): its ``on_result`` fills the cells as answers arrive, its ``on_progress``
one compact progress line per client; when the runs end, the grid loads their ``BatchResult`` s
(the final word, cancelled prompts included). Like ``ResultsGrid``, answers are kept as data and
only a window of ``page_size`` prompts is rendered into one ``HTML``; the progress lines and that
window (with its summary row) are redrawn together at most once per throttle period, with the
same table style, status words and colours.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ipywidgets import HTML, Button, HBox, IntText, Layout, VBox

from seeds_nb.core.compare import compare_models
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.result import cost_text, status_of
from seeds_nb.core.types import Response, normalize_prompt, prompt_text

from ._format import STATUS_COLOR, TABLE_CSS, esc, excerpt, fmt_gco2
from ._progress import _STATE_COLOR
from ._snapshot import StaticSnapshot, html_table, snapshot_box, text_lines
from ._throttle import Throttle
from ._tree import close_tree, display_live, refresh_fallback

if TYPE_CHECKING:
    from seeds_nb.core.batch import BatchRun
    from seeds_nb.core.client import BaseClient
    from seeds_nb.core.result import BatchResult

__all__ = ["CompareGrid", "compare_batch"]

_CELL_CHARS = 280
_TITLE_CHARS = 1000
_SNAPSHOT_ROWS = 10  # first prompts in the static snapshot
_EXTRA_CSS = """<style>
.seeds-compare td.w {white-space:normal;word-break:break-word}
.seeds-compare tr.sum td {background:var(--jp-layout-color2, #f5f5f5);font-size:11px}
.seeds-compare-bar {display:inline-block;width:8em;height:0.7em;background:var(--jp-layout-color3, #e0e0e0);
  vertical-align:middle;margin:0 6px}
</style>"""
_MUTED = "color: var(--jp-ui-font-color2, #757575)"


@dataclass
class _Column:
    """One client's column: the ledger of its run (live while it runs, its result's once loaded) and
    the state word. Nothing is counted here: the ledger is the one account (a cache hit is free now,
    an unknown cost is shown as unknown, the mean latency leaves out requests without one)."""

    ledger: Ledger = field(default_factory=Ledger)
    state: str = "pending"
    size: int | None = None
    """The prompts of a finished result (its ledger's total is unset when it was built by hand)."""

    @property
    def total(self) -> int | None:
        return self.size if self.size is not None else self.ledger.total

    @classmethod
    def of(cls, result: BatchResult) -> _Column:
        ledger = result.ledger
        column = cls(ledger=ledger, size=len(result))
        if result.stop_reason == "cancelled":
            column.state = "cancelled"
        elif result.stop_reason is not None:
            column.state = "stopped"
        elif len(result) and ledger.failed == len(result):
            column.state = "failed"
        else:
            column.state = "partial" if ledger.failed else "success"
        return column

    def stats_parts(self) -> list[str]:
        """The numbers of a progress line and of a summary cell: ok, failed, cost, carbon, mean latency."""
        ledger = self.ledger
        mean = ledger.mean_latency_s
        cached = f" ({ledger.cached:,} cached)" if ledger.cached else ""
        method = ledger.impacts_method  # a server's measurement is said so; an estimate is the default
        carbon = fmt_gco2(ledger.gwp_kgco2eq) + {"measured": " measured", "mixed": " (part measured)"}.get(method, "")
        return [f"✔ {ledger.succeeded:,} ok{cached}", f"✘ {ledger.failed:,} failed",
                cost_text(ledger.cost_usd, ledger.unknown_cost), carbon,
                f"{mean:.2f} s mean" if mean is not None else "– s mean"]

    def stats_html(self) -> str:
        parts = [esc(part) for part in self.stats_parts()]
        parts[1] = f'<span style="color:{"#c62828" if self.ledger.failed else "inherit"}">{parts[1]}</span>'
        return " · ".join(parts)

    def line(self, name: str) -> str:
        """The progress line as text: name, done/total, state, the numbers."""
        total, done = self.total, self.ledger.completed
        return f"{name}: {done:,}/{'?' if total is None else f'{total:,}'} · {self.state} · " + " · ".join(
            self.stats_parts())


class CompareGrid(StaticSnapshot, VBox):
    """Answers of several clients to the same prompts: a column per client, a row per prompt.

    On top, one progress line per client (``record`` feeds it, as ``compare_models``' ``on_progress``);
    under it, a table of ``page_size`` prompts with a summary row (cost, gCO2eq, mean latency,
    failures per client), browsed with **◀ prev** / **next ▶** / **from prompt #**, its cells
    filled by ``record_result`` (``compare_models``' ``on_result``) and finally by ``load``.
    Everything is HTML-escaped.

    Args:
        names: the client names (the columns), in order.
        prompts: the prompts, for the prompt column before results arrive (and the totals).
        page_size: prompts rendered at once.
        throttle: the redraw limiter while runs go on; default at most one redraw per 0.5 s.
    """

    def __init__(self, names: Iterable[str], prompts: Sequence[Any] | None = None, *, page_size: int = 10,
                 throttle: Throttle | None = None, **kwargs: Any) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1; got {page_size!r}")
        self.page_size = page_size
        self.throttle = throttle if throttle is not None else Throttle(0.5)
        self._lock = threading.RLock()  # a redraw from a run, a click from the main thread
        total = len(prompts) if prompts is not None else None
        self._columns = {str(name): _Column(Ledger(total=total)) for name in names}
        self._cells: dict[str, list[Response | BaseException | None]] = {}
        self._texts = [_prompt_excerpt(p) for p in prompts] if prompts is not None else []
        self._start = 0
        self._message = ""
        self.progress_html = HTML(self._render_progress(), layout=Layout(width="100%"))
        self.prev_button = Button(description="◀ prev", layout=Layout(width="auto"))
        self.next_button = Button(description="next ▶", layout=Layout(width="auto"))
        self.prev_button.on_click(lambda _: self.page(-1))
        self.next_button.on_click(lambda _: self.page(+1))
        self.index_input = IntText(value=0, description="from prompt #", layout=Layout(width="14em"),
                                   style={"description_width": "initial"})
        self.index_input.observe(lambda change: self.show_from(change["new"]), names="value")
        self.table_html = HTML(self._render_table(), layout=Layout(width="100%"))
        self.style_html = HTML(TABLE_CSS + _EXTRA_CSS, layout=Layout(height="0px", overflow="hidden"))
        controls = HBox([self.prev_button, self.next_button, self.index_input], layout=Layout(align_items="center"))
        kwargs.setdefault("layout", Layout(width="100%", max_width="1400px"))
        super().__init__([self.style_html, self.progress_html, controls, self.table_html], **kwargs)
        self.add_class("seeds-compare")

    @classmethod
    def from_results(cls, results: Mapping[str, BatchResult], prompts: Sequence[Any] | None = None,
                     **kwargs: Any) -> CompareGrid:
        """A grid over finished results (``compare_models``' dict)."""
        grid = cls(list(results), prompts, **kwargs)
        grid.load(results)
        return grid

    # -- data ----------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._columns)

    @property
    def row_count(self) -> int:
        """Prompts known so far (from the prompts given, or from the results)."""
        return max([len(self._texts), *(len(cells) for cells in self._cells.values())])

    def attach(self, name: str, run: BatchRun) -> None:
        """Show client ``name``'s live counts from its run's ledger (``compare_models``' ``on_run``)."""
        with self._lock:
            self._columns[name] = _Column(run.ledger, "running")

    def record_result(self, name: str, index: int, item: Response | BaseException) -> None:
        """Put client ``name``'s answer (or error) to prompt ``index`` in its cell, with the signature
        of ``compare_models``' ``on_result``; drawn with the next progress redraw (see ``record``)."""
        with self._lock:
            cells = self._cells.setdefault(name, [])
            if index >= len(cells):
                cells.extend([None] * (max(index + 1, len(self._texts)) - len(cells)))
            cells[index] = item

    def record(self, name: str, completed: int, total: int | None, response: Response | None) -> bool:
        """Client ``name`` made progress, with the signature of ``compare_models``' ``on_progress``
        (the counts come from its run's ledger, see ``attach``); True when the grid redrew (progress
        lines and table: two messages), at most once per throttle period."""
        with self._lock:
            column = self._columns.setdefault(name, _Column())
            column.state = "running"
            if not self.throttle.ready():
                return False
            self.progress_html.value = self._render_progress()
            self.table_html.value = self._render_table()
            return True

    def load(self, results: Mapping[str, BatchResult]) -> None:
        """Fill the cells and totals from finished results (one per client name), and redraw."""
        with self._lock:
            for name, result in results.items():
                self._columns[name] = _Column.of(result)
                self._cells[name] = [r if r is not None else result.errors.get(i)
                                     for i, r in enumerate(result.responses)]
                if len(result.prompts) > len(self._texts) or not any(self._texts):
                    self._texts = list(result.prompts)
            self._redraw()

    def finish(self, error: BaseException | None = None) -> None:
        """End a comparison that produced no results (an interrupt, an error): say so on every line."""
        interrupted = isinstance(error, asyncio.CancelledError)
        with self._lock:
            for column in self._columns.values():
                if column.state in ("pending", "running"):
                    column.state = "cancelled" if interrupted else "error"
            if interrupted:
                self._message = "interrupted: every run was cancelled, no results"
            elif error is not None:
                self._message = f"{type(error).__name__}: {error}"
            self._redraw()

    # -- window ----------------------------------------------------------------------------------------
    def visible_indices(self) -> range:
        """The prompt indices in the window."""
        with self._lock:
            size = self.row_count
            start = max(0, min(self._start, size - self.page_size))
            return range(start, min(start + self.page_size, size))

    def page(self, step: int) -> None:
        """Move the window ``step`` pages (negative: earlier prompts)."""
        self.show_from(self.visible_indices().start + step * self.page_size)

    def show_from(self, index: int) -> None:
        """Start the window at prompt ``index`` (clamped)."""
        with self._lock:
            self._start = max(0, min(int(index), self.row_count - self.page_size))
            self.table_html.value = self._render_table()

    # -- drawing ---------------------------------------------------------------------------------------
    def _redraw(self) -> None:
        self.throttle.mark()
        self.progress_html.value = self._render_progress()
        self.table_html.value = self._render_table()

    def _render_progress(self) -> str:
        lines = []
        for name, column in self._columns.items():
            total, done = column.total, column.ledger.completed
            share = done / total if total else (1.0 if column.state not in ("pending", "running") else 0.0)
            color = _STATE_COLOR.get(column.state, "#1565c0")
            bar = (f'<span class="seeds-compare-bar"><span style="display:block;height:100%;'
                   f'width:{min(share, 1.0) * 100:.1f}%;background:{color}"></span></span>')
            lines.append(f'<div><b>{esc(name)}</b>{bar}{done:,}/{"?" if total is None else f"{total:,}"} · '
                         f'<b style="color:{color}">{esc(column.state)}</b> · {column.stats_html()}</div>')
        if self._message:
            lines.append(f'<div style="color:#c62828">{esc(self._message)}</div>')
        return f'<div class="seeds-compare-progress" style="font-size:12px;line-height:1.6">{"".join(lines)}</div>'

    def _render_table(self) -> str:
        names = list(self._columns)
        rows = self.visible_indices()
        size = self.row_count
        head = (f'<div class="seeds-grid-head">prompts {rows.start + 1 if rows else 0:,}–{rows.stop:,} of {size:,} · '
                f"{len(names)} client{'s' if len(names) != 1 else ''}</div>")
        header = "<th>#</th><th>prompt</th>" + "".join(f'<th title="{esc(n)}">{esc(n)}</th>' for n in names)
        summary = ('<tr class="sum"><td></td><td>summary</td>'
                   + "".join(f"<td class='w'>{self._columns[n].stats_html()}</td>" for n in names) + "</tr>")
        body = "".join(self._render_row(index, names) for index in rows)
        if not rows:
            body = f'<tr><td colspan="{len(names) + 2}" style="{_MUTED}">no prompts yet</td></tr>'
        width = f"{70 / max(len(names), 1):.1f}%"
        cols = ('<colgroup><col style="width:3.5em"><col style="width:22%">'
                + "".join(f'<col style="width:{width}">' for _ in names) + "</colgroup>")
        return (f'{head}<table class="seeds-grid-table">{cols}<thead><tr>{header}</tr>{summary}</thead>'
                f"<tbody>{body}</tbody></table>")

    def _render_row(self, index: int, names: list[str]) -> str:
        prompt = self._texts[index] if index < len(self._texts) else ""
        cells = [f'<td class="n">{index}</td>',
                 f'<td class="w" title="{esc(excerpt(prompt, _TITLE_CHARS))}">{esc(excerpt(prompt, 160))}</td>']
        for name in names:
            column = self._cells.get(name)
            item = column[index] if column is not None and index < len(column) else None
            cells.append(_render_cell(item, waiting=self._columns[name].state in ("pending", "running")))
        return f'<tr data-index="{index}">{"".join(cells)}</tr>'

    # -- lifecycle and text ------------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        """A static HTML view (each client's line, the first rows side by side; no JavaScript)."""
        with self._lock:
            names = list(self._columns)
            lines = [column.line(name) for name, column in self._columns.items()]
            if self._message:
                lines.append(self._message)
            size = self.row_count
            rows = []
            for index in range(min(size, _SNAPSHOT_ROWS)):
                cells: list[object] = [index, excerpt(self._texts[index] if index < len(self._texts) else "", 100)]
                for name in names:
                    column = self._cells.get(name)
                    item = column[index] if column is not None and index < len(column) else None
                    cells.append(_cell_text(item))
                rows.append(cells)
        if size > len(rows):
            lines.append(f"first {len(rows)} of {size:,} prompts shown; run the notebook to browse them all")
        table = html_table(["#", "prompt", *names], rows) if rows else ""
        return snapshot_box(text_lines("Comparison", lines), "seeds-compare-snapshot", table=table)

    def close(self) -> None:
        """Close the grid and all its parts, and drop the answers it holds."""
        with self._lock:
            self._cells.clear()
        close_tree(self, super().close)

    def __repr__(self) -> str:
        """Deterministic one-liner (no address, no timings) for consoles and nbval."""
        total = "?" if self.row_count == 0 and not self._cells else f"{self.row_count:,}"
        per = " · ".join(f"{name}: {c.ledger.succeeded:,} ok, {c.ledger.failed:,} failed"
                         for name, c in self._columns.items())
        return f"CompareGrid: {len(self._columns)} clients × {total} prompts" + (f" · {per}" if per else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _render_cell(item: Response | BaseException | None, *, waiting: bool) -> str:
    if item is None:
        return f'<td class="w" style="{_MUTED}">{"…" if waiting else ""}</td>'
    status = status_of(item)
    if isinstance(item, Response):
        text, style = item.content, ""
        prefix = f'<span style="{_MUTED}">(cached)</span> ' if item.cached else ""
    else:
        text, style, prefix = f"{type(item).__name__}: {item}", f' style="color:{STATUS_COLOR[status]}"', ""
    return (f'<td class="w"{style} title="{esc(excerpt(text, _TITLE_CHARS))}">{prefix}'
            f"{esc(excerpt(text, _CELL_CHARS))}</td>")


def _cell_text(item: Response | BaseException | None) -> object:
    """A snapshot cell: the answer's excerpt, or the error in its status colour (a (text, colour) pair)."""
    if item is None:
        return ""
    if isinstance(item, Response):
        return excerpt(item.content, 160)
    return (excerpt(f"{type(item).__name__}: {item}", 160), STATUS_COLOR[status_of(item)])


def _prompt_excerpt(prompt: Any) -> str:
    try:
        return prompt_text(normalize_prompt(prompt))
    except Exception:  # shown only: the run itself reports a bad prompt
        return str(prompt)


async def compare_batch(prompts: Iterable[Any], clients: Mapping[str, BaseClient], *, max_concurrent: int = 5,
                        grid: CompareGrid | None = None, page_size: int = 10, refresh_s: float = 0.5,
                        show: bool = True, **params: Any) -> dict[str, BatchResult]:
    """Run ``compare_models`` with a live progress line per client, then the answers side by side.

    Returns ``compare_models``' ``dict[str, BatchResult]`` (in the order of ``clients``), ready for
    ``seeds_nb.plots.compare``. Cells fill as answers arrive. A kernel interrupt cancels every run
    and propagates (there is no partial comparison to return); the grid keeps the answers that
    arrived and says so.

    Args:
        clients: a name for each client, e.g. ``{"gpt-4.1-mini": gpt, "claude-haiku-4-5": claude}``.
        max_concurrent: requests in flight *per client*.
        grid: a ``CompareGrid`` to drive (default: a new one with ``page_size`` and ``refresh_s``).
        show: display the grid (False: drive it without displaying).
        params: generation parameters for every client (e.g. ``max_tokens``).
    """
    prompts = list(prompts)
    if grid is None:
        grid = CompareGrid(list(clients), prompts, page_size=page_size, throttle=Throttle(refresh_s))
    handle = display_live(grid) if show else None
    try:
        results = await compare_models(prompts, clients, max_concurrent, on_progress=grid.record,
                                       on_result=grid.record_result, on_run=grid.attach, **params)
    except BaseException as exc:
        grid.finish(exc)
        raise
    else:
        grid.load(results)
    finally:
        refresh_fallback(handle, grid)
    return results
