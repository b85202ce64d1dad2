"""``ResultsGrid``: a streaming results table that stays fast at 10,000+ rows.

Why rows are kept as data and only a window is rendered: re-rendering every row on each update
would make a 10,000-row batch cost O(n^2) HTML and megabytes per message. Each row is a small
list holding references the ``BatchResult`` keeps anyway (the prompt excerpt, the Response or the
exception); per-filter position lists make filtering O(1) per row; a redraw renders at most
``page_size`` rows into one ``HTML`` widget (one message), throttled like the panel.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ipywidgets import HTML, Button, Dropdown, HBox, IntText, Layout, VBox

from seeds_nb.core.result import status_of
from seeds_nb.core.structured import field_value, parsed_fields
from seeds_nb.core.types import Response, normalize_prompt

from ._format import esc, excerpt, fmt_gco2, fmt_num, fmt_usd
from ._throttle import Throttle
from ._tree import close_tree

if TYPE_CHECKING:
    from seeds_nb.core.result import BatchResult

__all__ = ["FILTERS", "ResultsGrid"]

FILTERS: dict[str, tuple[str, ...]] = {
    "all": (), "ok": ("ok",), "cached": ("cached",), "failed": ("failed",), "cancelled": ("cancelled", "budget"),
}
"""Filter name -> the final row statuses it shows (``all`` shows every row, retrying ones too)."""
_FILTERS_OF = {status: [name for name, statuses in FILTERS.items() if status in statuses]
               for status in ("ok", "cached", "failed", "cancelled", "budget", "retrying")}
_STATUS_COLOR = {"ok": "#2e7d32", "cached": "#1565c0", "failed": "#c62828", "retrying": "#b26a00",
                 "cancelled": "#757575", "budget": "#757575"}
_DETAIL_LIMIT = 20_000
_FALLBACK_CHARS = 2_000
_CSS = """<style>
.seeds-grid-table {border-collapse:collapse;font-size:12px;width:100%;table-layout:fixed}
.seeds-grid-table th, .seeds-grid-table td {padding:2px 6px;vertical-align:top;text-align:left;
  border-bottom:1px solid var(--jp-border-color2, #e0e0e0)}
.seeds-grid-table td.n {text-align:right;white-space:nowrap}
.seeds-grid-table td.t {overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.seeds-grid-table td.s {font-weight:600}
.seeds-grid-head {font-size:12px;margin:2px 0}
</style>"""

# a row: [prompt index, status, prompt excerpt, Response | Exception | None]
Row = list[Any]


class ResultsGrid(VBox):
    """One row per prompt as it completes, browsed through a bounded window.

    Args:
        prompts: the prompt sequence the batch was given, to show full prompts in the detail
            view (without it, the detail shows the stored excerpt).
        page_size: rows rendered at once.
        throttle: the redraw limiter; default at most one redraw per 0.5 s.
        fields: the parsed fields of a ``response_format`` to show as columns (``run_batch`` and
            ``from_result`` fill them in from the run's ``response_format``).
    """

    def __init__(self, prompts: Sequence[Any] | None = None, *, page_size: int = 20,
                 throttle: Throttle | None = None, fields: Sequence[str] = (), **kwargs: Any) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1; got {page_size!r}")
        self.page_size = page_size
        self.fields = list(fields)
        self.throttle = throttle if throttle is not None else Throttle(0.5)
        self._prompts = prompts
        self._lock = threading.RLock()
        self._rows: list[Row] = []
        self._pos: dict[int, int] = {}
        self._by_filter: dict[str, list[int]] = {name: [] for name in FILTERS if name != "all"}
        self._dirty = False
        self._counts: Counter[str] = Counter()
        self._filter = "all"
        self._start: int | None = None  # window start in the filtered rows; None follows the newest
        self.filter_dropdown = Dropdown(options=list(FILTERS), value="all", description="show",
                                        layout=Layout(width="12em"), style={"description_width": "initial"})
        self.filter_dropdown.observe(self._on_filter, names="value")
        self.older_button = Button(description="◀ older", layout=Layout(width="auto"))
        self.newer_button = Button(description="newer ▶", layout=Layout(width="auto"))
        self.latest_button = Button(description="latest", layout=Layout(width="auto"))
        self.older_button.on_click(lambda _: self.page(-1))
        self.newer_button.on_click(lambda _: self.page(+1))
        self.latest_button.on_click(lambda _: self.follow())
        self.table_html = HTML(self._render_table(), layout=Layout(width="100%"))
        self.index_input = IntText(value=0, description="prompt #", layout=Layout(width="12em"),
                                   style={"description_width": "initial"})
        self.show_button = Button(description="show", layout=Layout(width="auto"))
        self.show_button.on_click(lambda _: self.select(self.index_input.value))
        self.index_input.observe(lambda change: self.select(change["new"]), names="value")
        self.detail_html = HTML("", layout=Layout(width="100%"))
        self.style_html = HTML(_CSS, layout=Layout(height="0px", overflow="hidden"))  # sent once, not per redraw
        controls = HBox([self.filter_dropdown, self.older_button, self.newer_button, self.latest_button,
                         self.index_input, self.show_button], layout=Layout(align_items="center", flex_flow="row wrap"))
        kwargs.setdefault("layout", Layout(width="100%", max_width="1100px"))
        super().__init__([self.style_html, controls, self.table_html, self.detail_html], **kwargs)
        self.add_class("seeds-results-grid")

    @classmethod
    def from_result(cls, result: BatchResult, prompts: Sequence[Any] | None = None, **kwargs: Any) -> ResultsGrid:
        """A grid over a finished ``BatchResult`` (rows in prompt order)."""
        kwargs.setdefault("fields", parsed_fields(result.response_format))
        grid = cls(prompts, **kwargs)
        grid.load(result)
        grid.refresh(force=True)
        return grid

    # -- data ----------------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def counts(self) -> dict[str, int]:
        """Rows per status."""
        return dict(self._counts)

    def add(self, index: int, item: Response | BaseException, prompt: str = "") -> None:
        """Record the outcome of prompt ``index`` (no redraw: call ``refresh``). A row shown as
        'retrying' is completed in place; a finished row is never replaced."""
        status = status_of(item)
        with self._lock:
            pos = self._pos.get(index)
            if pos is None:
                pos = self._pos[index] = len(self._rows)
                self._rows.append([index, status, prompt, item])
            else:
                row = self._rows[pos]
                if row[1] != "retrying":
                    return
                self._counts["retrying"] -= 1
                row[1], row[3] = status, item
                row[2] = row[2] or prompt
            for name in _FILTERS_OF[status]:
                self._by_filter[name].append(pos)
            self._counts[status] += 1
            self._dirty = True

    def mark_retrying(self, index: int, prompt: str = "", error: BaseException | None = None) -> None:
        """Show prompt ``index`` as retrying (``error``: the failure being retried) until ``add``."""
        with self._lock:
            if index in self._pos:
                return
            self._pos[index] = len(self._rows)
            self._rows.append([index, "retrying", prompt, error])
            self._counts["retrying"] += 1
            self._dirty = True

    def load(self, result: BatchResult) -> None:
        """Add a row for every index of ``result`` not shown yet (e.g. the ones a cancel never ran)."""
        for index in range(len(result)):
            if index in self._pos and self._rows[self._pos[index]][1] != "retrying":
                continue
            response = result.responses[index]
            item: Response | BaseException | None = response if response is not None else result.errors.get(index)
            if item is None:
                continue
            self.add(index, item, result.prompts[index] if index < len(result.prompts) else "")

    # -- window ----------------------------------------------------------------------------------------
    @property
    def current_filter(self) -> str:
        return self._filter

    def set_filter(self, name: str) -> None:
        """Show only rows of one kind (see ``FILTERS``); jumps back to the newest rows."""
        if name not in FILTERS:
            raise ValueError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
        with self._lock:
            self._filter = name
            self._start = None
        if self.filter_dropdown.value != name:
            self.filter_dropdown.value = name  # its observer redraws
        else:
            self.refresh(force=True)

    def page(self, step: int) -> None:
        """Move the window ``step`` pages (negative: older rows)."""
        with self._lock:
            size = self._filtered_size()
            start = self._window_start(size) + step * self.page_size
            start = max(0, min(start, max(size - self.page_size, 0)))
            self._start = None if start + self.page_size >= size else start
        self.refresh(force=True)

    def follow(self) -> None:
        """Keep the window on the newest rows."""
        with self._lock:
            self._start = None
        self.refresh(force=True)

    def visible_rows(self) -> list[Row]:
        """The rows in the window, oldest first (what the table renders)."""
        with self._lock:
            size = self._filtered_size()
            start = self._window_start(size)
            stop = min(start + self.page_size, size)
            if self._filter == "all":
                return [list(row) for row in self._rows[start:stop]]
            positions = self._by_filter[self._filter]
            return [list(self._rows[p]) for p in positions[start:stop]]

    def _filtered_size(self) -> int:
        return len(self._rows) if self._filter == "all" else len(self._by_filter[self._filter])

    def _window_start(self, size: int) -> int:
        if self._start is None:
            return max(size - self.page_size, 0)
        return min(self._start, max(size - self.page_size, 0))

    # -- drawing ---------------------------------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> bool:
        """Redraw the table if rows changed and the throttle allows (or ``force``)."""
        if force:
            self.throttle.mark()
        elif not self._dirty or not self.throttle.ready():
            return False
        self._redraw()
        return True

    def tick(self) -> bool:
        """Periodic redraw of rows still waiting for one (the time gate alone)."""
        if not self._dirty or not self.throttle.due():
            return False
        self._redraw()
        return True

    def _redraw(self) -> None:
        with self._lock:  # a background run redraws from its thread, the controls from the main one
            self._dirty = False
            self.table_html.value = self._render_table()

    def _render_table(self) -> str:
        rows = self.visible_rows()
        with self._lock:
            size = self._filtered_size()
            start = self._window_start(size)
            counts = " · ".join(f"{self._counts[s]:,} {s}" for s in _STATUS_COLOR if self._counts[s])
            total = len(self._rows)
        where = "newest" if self._start is None else "paused"
        first, last = (start + 1, start + len(rows)) if rows else (0, 0)
        head = (f'<div class="seeds-grid-head">rows {first:,}–{last:,} of {size:,} '
                f"({esc(self._filter)}; {where}) · {total:,} rows{' · ' + counts if counts else ''}</div>")
        fields = self.fields
        header = "".join(f"<th>{esc(name)}</th>" for name in
                         ("#", "status", "prompt", "response / error", *fields, "tokens", "latency", "cost", "gCO2eq"))
        body = "".join(self._render_row(row, fields) for row in rows)
        if not rows:
            body = f'<tr><td colspan="{8 + len(fields)}" style="color:#757575">no rows yet</td></tr>'
        # parsed fields share the text columns' width: a row stays one line however many there are
        prompt_w, text_w = (30, 40) if not fields else (20, 25)
        field_cols = "".join(f'<col style="width:{max(4, 25 // len(fields))}%">' for _ in fields)
        cols = (f'<colgroup><col style="width:5em"><col style="width:6em"><col style="width:{prompt_w}%">'
                f'<col style="width:{text_w}%">{field_cols}<col style="width:5em"><col style="width:5em">'
                '<col style="width:6em"><col style="width:5em"></colgroup>')
        return (f'{head}<table class="seeds-grid-table">{cols}<thead><tr>{header}</tr></thead>'
                f"<tbody>{body}</tbody></table>")

    @staticmethod
    def _render_row(row: Row, fields: Sequence[str] = ()) -> str:
        index, status, prompt, item = row
        color = _STATUS_COLOR.get(status, "inherit")
        parsed = item.parsed if isinstance(item, Response) else None
        cells = [_cell(parsed, f) for f in fields]
        values = "".join(f'<td class="t" title="{esc(excerpt(c, 300))}">{esc(excerpt(c, 40))}</td>' for c in cells)
        if isinstance(item, Response):
            text, text_style = item.content, ""
            tokens = f"{item.usage.total_tokens:,}"
            latency = f"{item.latency_s:.3f}s" if not item.cached else "–"
            cost, gco2 = fmt_usd(item.tracking.cost_usd, small=True), fmt_gco2(item.tracking.gwp_kgco2eq).split(" ")[0]
        else:
            text = f"{type(item).__name__}: {item}" if item is not None else ""
            text_style = f' style="color:{color}"'
            tokens = latency = cost = gco2 = ""
        return (f'<tr data-index="{index}"><td class="n">{index}</td>'
                f'<td class="s" style="color:{color}">{esc(status)}</td>'
                f'<td class="t" title="{esc(excerpt(prompt, 300))}">{esc(excerpt(prompt, 80))}</td>'
                f'<td class="t"{text_style} title="{esc(excerpt(text, 300))}">{esc(excerpt(text, 100))}</td>'
                f'{values}<td class="n">{tokens}</td><td class="n">{latency}</td>'
                f'<td class="n">{cost}</td><td class="n">{gco2}</td></tr>')

    # -- detail ----------------------------------------------------------------------------------------
    def select(self, index: int) -> None:
        """Show the full prompt and response (or error) of prompt ``index`` below the table."""
        with self._lock:
            pos = self._pos.get(index)
            row = list(self._rows[pos]) if pos is not None else None
        if row is None:
            self.detail_html.value = f'<div style="color:#757575">prompt #{esc(index)}: no row yet</div>'
            return
        self.detail_html.value = self._render_detail(row)

    def _full_prompt(self, index: int, fallback: str) -> str:
        if self._prompts is None or not 0 <= index < len(self._prompts):
            return fallback
        prompt = self._prompts[index]
        try:
            messages = normalize_prompt(prompt)
        except Exception:  # a prompt that could not be sent: its repr, bounded (it may hold an image's bytes)
            text = str(prompt)
            return text if len(text) <= _FALLBACK_CHARS else text[:_FALLBACK_CHARS - 3] + "..."
        if len(messages) == 1 and messages[0].role == "user":
            return messages[0].text()
        return "\n\n".join(f"[{m.role}] {m.text()}" for m in messages)

    def _render_detail(self, row: Row) -> str:
        index, status, prompt, item = row
        color = _STATUS_COLOR.get(status, "inherit")
        facts = [f'<b>#{index}</b>', f'<b style="color:{color}">{esc(status)}</b>']
        if isinstance(item, Response):
            facts += [f"{item.usage.total_tokens:,} tokens", f"latency {item.latency_s:.3f}s",
                      fmt_usd(item.tracking.cost_usd, small=True),
                      fmt_gco2(item.tracking.gwp_kgco2eq) + (" measured" if item.tracking.method == "measured" else ""),
                      f"{item.attempts} attempt{'s' if item.attempts != 1 else ''}", esc(item.model)]
            if item.tracking.energy_kwh is not None:
                facts.insert(5, f"{fmt_num(item.tracking.energy_kwh)} kWh")
            answer_title, answer, answer_color = "Response", item.content, "inherit"
            if self.fields and item.parsed is not None:
                parsed = "".join(f"<tr><td><b>{esc(f)}</b></td><td>{esc(_cap(_cell(item.parsed, f)))}</td></tr>"
                                 for f in self.fields)
                facts_table = f'<div><b>Parsed</b></div><table class="seeds-grid-parsed">{parsed}</table>'
            else:
                facts_table = ""
            facts_table += _tool_calls_and_choices(item)
        else:
            answer_title = "Error" if status != "retrying" else "Retrying after"
            answer = f"{type(item).__name__}: {item}" if item is not None else ""
            answer_color = color
            facts_table = ""
        pre = ("white-space:pre-wrap;word-break:break-word;max-height:20em;overflow:auto;margin:2px 0 6px;"
               "padding:4px;background:var(--jp-layout-color2, #f5f5f5)")
        return (f'<div class="seeds-grid-detail" style="font-size:12px">{" · ".join(facts)}'
                f'<div><b>Prompt</b></div><pre style="{pre}">{esc(_cap(self._full_prompt(index, prompt)))}</pre>'
                f'<div><b>{answer_title}</b></div><pre style="{pre};color:{answer_color}">{esc(_cap(answer))}</pre>'
                f"{facts_table}</div>")

    def close(self) -> None:
        """Close the grid and all its parts (their callbacks refer back to it), and drop its rows."""
        with self._lock:
            self._rows, self._pos = [], {}
            self._by_filter = {name: [] for name in self._by_filter}
            self._counts.clear()
        close_tree(self, super().close)

    # -- events and text -------------------------------------------------------------------------------
    def _on_filter(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._filter = change["new"]
            self._start = None
        self.refresh(force=True)

    def __repr__(self) -> str:
        """Deterministic one-liner (no address) for consoles and nbval."""
        counts = ", ".join(f"{self._counts[s]} {s}" for s in _STATUS_COLOR if self._counts[s])
        return f"ResultsGrid: {len(self._rows)} rows" + (f" ({counts})" if counts else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _tool_calls_and_choices(item: Response) -> str:
    """The detail's tool calls (name, id, arguments as sent) and, for ``n > 1``, every other answer."""
    out = ""
    if item.tool_calls:
        rows = "".join(f"<tr><td><b>{esc(c.name)}</b></td><td>{esc(c.id)}</td><td>{esc(_cap(c.raw_arguments))}</td>"
                       "</tr>" for c in item.tool_calls)
        out += f'<div><b>Tool calls</b></div><table class="seeds-grid-tool-calls">{rows}</table>'
    if len(item.choices) > 1:
        rows = "".join(f"<tr><td><b>{c.index}</b></td><td>{esc(_cap(c.content))}</td></tr>" for c in item.choices)
        out += f'<div><b>Choices</b></div><table class="seeds-grid-choices">{rows}</table>'
    return out


def _cap(text: str) -> str:
    if len(text) <= _DETAIL_LIMIT:
        return text
    return text[:_DETAIL_LIMIT] + f"\n… ({len(text) - _DETAIL_LIMIT:,} more characters)"


def _cell(parsed: Any, field: str) -> str:
    """One parsed field as cell text: scalars as they are, lists and nested models as compact JSON."""
    if parsed is None:
        return ""
    value = field_value(parsed, field)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
