"""``CompareGrid`` and ``compare_batch``: the same prompts through several clients, answers side by side.

``compare_batch`` runs ``seeds_nb.core.compare_models`` (so the comparison itself is one mechanism,
usable without a notebook): its ``on_result`` fills the cells as answers arrive, its ``on_progress``
one compact progress line per client; when the runs end, the grid loads their ``BatchResult`` s
(the final word, cancelled prompts included).

The grid is one anywidget on the same virtualised list as the results grid (``VirtualList`` here,
``static/vlist.js`` in the browser): the answers stay in the kernel, the kernel pushes the visible
window with the progress lines and summaries (one message, throttled, the final state always), and
a click on a row asks for its detail: each client's full answer, or its error with its type, and
its numbers. So it renders wherever anywidget does (marimo included) and scrolls through any
number of prompts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import traitlets

from seeds_nb.core.compare import compare_models
from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.result import cost_text, status_of
from seeds_nb.core.types import Response, normalize_prompt, prompt_text

from ._format import STATE_COLOR, STATUS_COLOR, cap, excerpt, fmt_gco2, full_prompt, response_facts
from ._snapshot import html_table, snapshot_box, text_lines
from ._throttle import Throttle
from ._tree import close_tree, display_live, refresh_fallback
from ._vlist import VirtualList, module_text

if TYPE_CHECKING:
    from seeds_nb.core.batch import BatchRun
    from seeds_nb.core.client import BaseClient
    from seeds_nb.core.result import BatchResult

__all__ = ["CompareGrid", "compare_batch"]

_CELL_CHARS = 240  # an answer's excerpt in its cell (two lines are shown; the title holds the rest)
_PROMPT_CHARS = 160
_SNAPSHOT_ROWS = 10  # first prompts in the static snapshot
_TICK_S = 0.5  # how often compare_batch offers a push between answers (it still goes through the throttle)

Item = Response | BaseException | None


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

    @property
    def running(self) -> bool:
        return self.state in ("pending", "running")

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

    def count_text(self) -> str:
        total = self.total
        return f"{self.ledger.completed:,}/{'?' if total is None else f'{total:,}'}"

    def view(self, name: str) -> dict[str, Any]:
        """What the browser draws of this client: its progress line and its summary cell."""
        total, done = self.total, self.ledger.completed
        share = done / total if total else (0.0 if self.running else 1.0)
        return {"name": name, "state": self.state, "color": STATE_COLOR.get(self.state, "#1565c0"),
                "share": min(share, 1.0), "count": self.count_text(), "failed": self.ledger.failed,
                "stats": self.stats_parts()}

    def line(self, name: str) -> str:
        """The progress line as text: name, done/total, state, the numbers."""
        return f"{name}: {self.count_text()} · {self.state} · " + " · ".join(self.stats_parts())


class CompareGrid(VirtualList):
    """Answers of several clients to the same prompts: a column per client, a row per prompt.

    On top, one progress line per client (``record`` feeds it, as ``compare_models``' ``on_progress``);
    under it a summary row (cost, gCO2eq, mean latency, failures per client) and a virtualised list of
    every prompt, its cells filled by ``record_result`` (``compare_models``' ``on_result``) and finally
    by ``load``. A click on a row (or ``select(i)``) shows every client's full answer below the list;
    ``grid.selected`` is the selected prompt's index. Text is drawn as text, never as markup.

    Args:
        names: the client names (the columns), in order.
        prompts: the prompts, for the prompt column before results arrive and for the detail.
        page_size: rows visible at once (the list's height).
        throttle: the push limiter while runs go on; default at most one push per 0.5 s.
    """

    _esm = module_text("vlist.js", "compare.js")
    _css = module_text("vlist.css", "compare.css")

    names = traitlets.List(traitlets.Unicode(), help="the client names, one column each").tag(sync=True)
    clients: traitlets.List[dict[str, Any]] = traitlets.List(
        help="per client: its progress line and summary (pushed)").tag(sync=True)
    message = traitlets.Unicode("", help="how the comparison ended, when it produced no results").tag(sync=True)

    def __init__(self, names: Iterable[str], prompts: Sequence[Any] | None = None, *, page_size: int = 10,
                 throttle: Throttle | None = None, **kwargs: Any) -> None:
        if page_size < 1:
            raise ConfigurationError(f"page_size must be >= 1; got {page_size!r}")
        total = len(prompts) if prompts is not None else None
        self._columns = {str(name): _Column(Ledger(total=total)) for name in names}
        self._answers: dict[str, list[Item]] = {}
        self._prompts: list[Any] = list(prompts) if prompts is not None else []
        self._texts = [_prompt_excerpt(p) for p in self._prompts]
        kwargs.setdefault("height_rows", page_size)
        super().__init__(throttle=throttle if throttle is not None else Throttle(0.5), names=list(self._columns),
                         **kwargs)
        self._push()

    @classmethod
    def from_results(cls, results: Mapping[str, BatchResult], prompts: Sequence[Any] | None = None,
                     **kwargs: Any) -> CompareGrid:
        """A grid over finished results (``compare_models``' dict)."""
        grid = cls(list(results), prompts, **kwargs)
        grid.load(results)
        return grid

    # -- data ----------------------------------------------------------------------------------------
    @property
    def page_size(self) -> int:
        return int(self.height_rows)

    @property
    def row_count(self) -> int:
        """Prompts known so far (from the prompts given, or from the results)."""
        return max([len(self._texts), *(len(cells) for cells in self._answers.values())])

    def attach(self, name: str, run: BatchRun) -> None:
        """Show client ``name``'s live counts from its run's ledger (``compare_models``' ``on_run``)."""
        with self._lock:
            self._columns[name] = _Column(run.ledger, "running")
            self.mark_dirty()

    def record_result(self, name: str, index: int, item: Response | BaseException) -> None:
        """Put client ``name``'s answer (or error) to prompt ``index`` in its cell, with the signature
        of ``compare_models``' ``on_result``; pushed with the next allowed push (see ``record``)."""
        with self._lock:
            cells = self._answers.setdefault(name, [])
            if index >= len(cells):
                cells.extend([None] * (max(index + 1, len(self._texts)) - len(cells)))
            cells[index] = item
            self.mark_dirty()

    def record(self, name: str, completed: int, total: int | None, response: Response | None) -> bool:
        """Client ``name`` made progress, with the signature of ``compare_models``' ``on_progress`` (the
        counts come from its run's ledger, see ``attach``); True when the grid pushed (one message: the
        lines, the summaries and the visible window), at most once per throttle period."""
        with self._lock:
            column = self._columns.setdefault(name, _Column())
            column.state = "running"
            self.mark_dirty()
        return self.refresh()

    def load(self, results: Mapping[str, BatchResult]) -> None:
        """Fill the cells and totals from finished results (one per client name), and push (always)."""
        with self._lock:
            for name, result in results.items():
                self._columns[name] = _Column.of(result)
                self._answers[name] = [r if r is not None else result.errors.get(i)
                                     for i, r in enumerate(result.responses)]
                if len(result.prompts) > len(self._prompts) or not any(self._texts):
                    self._prompts = list(result.prompts)
                    self._texts = [_prompt_excerpt(p) for p in self._prompts]
            if list(self.names) != list(self._columns):
                self.names = list(self._columns)
        self.refresh(force=True)

    def finish(self, error: BaseException | None = None) -> None:
        """End a comparison that produced no results (an interrupt, an error): say so on every line."""
        interrupted = isinstance(error, asyncio.CancelledError)
        with self._lock, self.hold_sync():  # the message goes with the final push: one message
            for column in self._columns.values():
                if column.running:
                    column.state = "cancelled" if interrupted else "error"
            if interrupted:
                self.message = "interrupted: every run was cancelled, no results"
            elif error is not None:
                self.message = f"{type(error).__name__}: {error}"
            self.refresh(force=True)

    def item(self, name: str, index: int) -> Item:
        """Client ``name``'s answer (or error) to prompt ``index``; None while it waits."""
        cells = self._answers.get(name)
        return cells[index] if cells is not None and index < len(cells) else None

    def visible_indices(self) -> range:
        """The prompt indices of the window last pushed to the browser."""
        with self._lock:
            start, stop = self._window_bounds(self.row_count)
            return range(start, stop)

    # -- the list (VirtualList) --------------------------------------------------------------------
    def _view_handles(self) -> Sequence[int]:
        return range(self.row_count)

    def _cells_of(self, index: int) -> list[Any]:
        return [[*_cell(self.item(name, index), waiting=column.running)] for name, column in self._columns.items()]

    def _format_row(self, index: int) -> list[Any]:
        text = self._texts[index] if index < len(self._texts) else ""
        return [index, excerpt(text, _PROMPT_CHARS), *self._cells_of(index)]

    def _detail_version(self, index: int) -> object:
        return tuple(id(self.item(name, index)) for name in self._columns)

    def _detail_of(self, index: int) -> dict[str, Any] | None:
        if not 0 <= index < self.row_count:
            return None
        prompt = full_prompt(self._prompts[index]) if index < len(self._prompts) else (
            self._texts[index] if index < len(self._texts) else "")
        answers = []
        for name, column in self._columns.items():
            item = self.item(name, index)
            answer: dict[str, Any] = {"name": name}
            if isinstance(item, Response):
                answer.update(status=status_of(item), title="Response", text=cap(item.content),
                              facts=response_facts(item))
            elif item is not None:
                answer.update(status=status_of(item), title="Error", error_type=type(item).__name__,
                              text=cap(str(item)), facts=[])
            else:
                answer.update(status="waiting" if column.running else "none", title="No answer",
                              text="waiting for the answer…" if column.running else "", facts=[])
            answers.append(answer)
        return {"index": index, "prompt": cap(prompt), "answers": answers}

    def _push_more(self) -> None:
        self.clients = [column.view(name) for name, column in self._columns.items()]

    # -- lifecycle and text ------------------------------------------------------------------------------
    def snapshot_html(self) -> str:
        """A static HTML view (each client's line, the first rows side by side; no JavaScript)."""
        with self._lock:
            names = list(self._columns)
            lines = [column.line(name) for name, column in self._columns.items()]
            if self.message:
                lines.append(self.message)
            size = self.row_count
            rows = []
            for index in range(min(size, _SNAPSHOT_ROWS)):
                cells: list[object] = [index, excerpt(self._texts[index] if index < len(self._texts) else "", 100)]
                cells += [_snapshot_cell(self.item(name, index)) for name in names]
                rows.append(cells)
        if size > len(rows):
            lines.append(f"first {len(rows)} of {size:,} prompts shown; run the notebook to browse them all")
        table = html_table(["#", "prompt", *names], rows) if rows else ""
        return snapshot_box(text_lines("Comparison", lines), "seeds-compare-snapshot", table=table)

    def close(self) -> None:
        """Close the grid (and its layout model), and drop the answers it holds."""
        with self._lock:
            self._answers.clear()
        close_tree(self, super().close)

    def __repr__(self) -> str:
        """Deterministic one-liner (no address, no timings) for consoles and nbval."""
        total = "?" if self.row_count == 0 and not self._answers else f"{self.row_count:,}"
        per = " · ".join(f"{name}: {c.ledger.succeeded:,} ok, {c.ledger.failed:,} failed"
                         for name, c in self._columns.items())
        return f"CompareGrid: {len(self._columns)} clients × {total} prompts" + (f" · {per}" if per else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _cell(item: Item, *, waiting: bool) -> tuple[str, str]:
    """(text, status) of one answer cell: the answer's excerpt, the error with its type, or nothing yet."""
    if item is None:
        return ("", "waiting" if waiting else "none")
    if isinstance(item, Response):
        return (excerpt(item.content, _CELL_CHARS), status_of(item))
    return (excerpt(f"{type(item).__name__}: {item}", _CELL_CHARS), status_of(item))


def _snapshot_cell(item: Item) -> object:
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
    ticker = asyncio.get_running_loop().create_task(_tick(grid), name="seeds_nb-compare-ticker")
    try:
        results = await compare_models(prompts, clients, max_concurrent, on_progress=grid.record,
                                       on_result=grid.record_result, on_run=grid.attach, **params)
    except BaseException as exc:
        grid.finish(exc)
        raise
    else:
        grid.load(results)
    finally:
        ticker.cancel()
        await asyncio.wait([ticker])  # its own end (cancelled, a failed push) is not ours to raise
        refresh_fallback(handle, grid)
    return results


async def _tick(grid: CompareGrid) -> None:
    """Push answers the throttle held back while no other answer came (a slow client's tail)."""
    while True:
        await asyncio.sleep(_TICK_S)
        grid.tick()
