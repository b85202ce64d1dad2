"""``ResultsGrid``: one anywidget that shows a batch's rows, 100,000 of them as smoothly as ten.

Why this shape (see docs/widgets.md):

* Rows live in the kernel, as small lists holding references the ``BatchResult`` keeps anyway. The
  browser holds one *window* of formatted rows and draws only the ones in view (a fixed row height
  makes the scroll position a row number), so the DOM and each message stay small at any size.
* The kernel *pushes* the window and the counts, throttled like the panel: messages from the browser
  wait while a cell blocks (ipywidgets #3468; ipykernel >= 7.4 handles them while a cell *awaits*;
  marimo handles them between cells), so a grid that asked for its rows could freeze during a run.
* The list is the package's shared virtual list (``VirtualList`` in ``_vlist.py``, ``static/vlist.js``,
  also under the compare grid): the browser *asks* with custom messages, ``{"ask": {...}}`` naming the
  traits it wants changed (here also ``sort_by``, ``sort_desc``, ``status_filter``, ``query``), and the
  kernel sets them and answers with one push; ``_vlist.py`` says why the browser never writes a trait
  (seen in Chromium: as trait updates, a row click during an awaited run was never sent).
* marimo's widget model takes one event name per ``model.on`` call (Backbone, in Jupyter, also takes
  a space-separated list): grid.js registers each name on its own, or marimo's view would draw only
  what the model held when it rendered.
* Sorting, filtering and searching run in Python over the rows: the matching rows are kept in
  arrival order and extended incrementally (a new row is tested once), and sorted when a window is
  drawn (timsort on nearly sorted keys), so appending 100,000 rows and drawing a window stays well
  under a second of CPU.
* The module is plain ES + CSS shipped in the package (``static/``): no build step, no CDN.
"""

from __future__ import annotations

import keyword
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import traitlets

from seeds_nb.core.exceptions import BudgetExceeded, Cancelled, ConfigurationError
from seeds_nb.core.result import BatchResult, status_of
from seeds_nb.core.runner import Running, start_thread
from seeds_nb.core.structured import field_value, parsed_fields
from seeds_nb.core.types import Response

from ._format import STATUS_COLOR, cap, excerpt, fmt_gco2, fmt_usd, full_prompt, response_facts
from ._snapshot import html_table, snapshot_box, text_lines
from ._throttle import Throttle
from ._tree import close_tree
from ._vlist import VirtualList, module_text

if TYPE_CHECKING:
    import pandas as pd

    from seeds_nb.core.client import BaseClient

__all__ = ["EXPORT_FORMATS", "FILTERS", "ResultsGrid"]

FILTERS: dict[str, tuple[str, ...]] = {
    "all": (), "ok": ("ok",), "cached": ("cached",), "failed": ("failed",), "retrying": ("retrying",),
    "cancelled": ("cancelled", "budget"),
}
"""Filter name -> the row statuses it shows (``all`` shows every row)."""

EXPORT_FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
                                  ".ndjson": "jsonl"}
"""File suffix -> export format (``ResultsGrid.export``)."""

_SNAPSHOT_ROWS = 5  # first and last rows in the static snapshot

# a row: [prompt index, status, prompt text, Response | Exception | None]
Row = list[Any]


def _missing_last(value: Any, desc: bool) -> tuple[int, Any]:
    """A sort key that puts unknown values last in either direction."""
    if value is None:
        return (0 if desc else 1, 0)
    return (1 if desc else 0, value)


class ResultsGrid(VirtualList):
    """One row per prompt as it completes: a virtualised, sortable, searchable list with a detail pane.

    Args:
        prompts: the prompts the batch was given: the detail pane shows them in full, and "re-run
            failed" sends them again (without them, the detail shows the stored excerpt).
        page_size: rows visible at once (the list's height).
        throttle: the push limiter; default at most one window push per 0.5 s.
        fields: parsed fields of a ``response_format`` to show as columns (``run_batch`` and
            ``from_result`` fill them in from the run's ``response_format``).
        client / result / batch_params: what "re-run failed" needs: the client that ran the batch,
            its ``BatchResult`` (updated in place), and the ``client.batch`` arguments
            (``max_concurrent`` and generation parameters). ``run_batch`` passes all three.
    """

    _esm = module_text("vlist.js", "grid.js")
    _css = module_text("vlist.css", "grid.css")

    columns: traitlets.List[list[str]] = traitlets.List(help="[key, label, kind, width] per column").tag(sync=True)
    status_counts = traitlets.Dict(help="rows per status").tag(sync=True)
    sort_by = traitlets.Unicode("index", help="column key the view is sorted by").tag(sync=True)
    sort_desc = traitlets.Bool(False, help="sort descending").tag(sync=True)
    status_filter = traitlets.Unicode("all", help="one of FILTERS").tag(sync=True)
    query = traitlets.Unicode("", help="text searched in prompts, responses and errors").tag(sync=True)
    message = traitlets.Unicode("", help="what the last action did").tag(sync=True)
    busy = traitlets.Bool(False, help="a re-run is going on").tag(sync=True)
    can_rerun = traitlets.Bool(False, help="the grid holds what a re-run needs").tag(sync=True)

    _askable = ("sort_by", "sort_desc", "status_filter", "query", "viewport", "selected")

    def __init__(self, prompts: Sequence[Any] | None = None, *, page_size: int = 20,
                 throttle: Throttle | None = None, fields: Sequence[str] = (), client: BaseClient | None = None,
                 result: BatchResult | None = None, batch_params: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if page_size < 1:
            raise ConfigurationError(f"page_size must be >= 1; got {page_size!r}")
        self.fields = list(fields)
        self.client = client
        self.result = result
        self.batch_params = dict(batch_params or {})
        self._prompts = prompts
        self._rows: list[Row] = []
        self._pos: dict[int, int] = {}
        self._counts: Counter[str] = Counter()
        self._members: list[int] | None = []  # positions matching filter + search, arrival order; None: rescan
        self._scanned = 0  # rows already tested for membership
        self._view: list[int] | None = []  # members in sort order; None: sort again
        self._rerun_callbacks: list[Callable[[], object]] = []
        self._rerunning = False
        self.rerun_task: Running[int] | None = None
        """The thread of the last "re-run failed" click (``rerun_task.result()`` waits for it)."""
        kwargs.setdefault("height_rows", page_size)
        super().__init__(throttle=throttle if throttle is not None else Throttle(0.5), columns=self._column_specs(),
                         can_rerun=self._rerun_ready(), **kwargs)
        self.observe(self._on_criteria, names=["sort_by", "sort_desc", "status_filter", "query"])

    @classmethod
    def from_result(cls, result: BatchResult, prompts: Sequence[Any] | None = None, **kwargs: Any) -> ResultsGrid:
        """A grid over a finished ``BatchResult`` (rows in prompt order); pass ``client=`` to allow re-runs."""
        kwargs.setdefault("fields", parsed_fields(result.response_format))
        kwargs.setdefault("result", result)
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
        return {status: n for status, n in self._counts.items() if n}

    @property
    def page_size(self) -> int:
        return int(self.height_rows)

    def add(self, index: int, item: Response | BaseException, prompt: str = "") -> None:
        """Record the outcome of prompt ``index`` (no push: call ``refresh``). A row shown as
        'retrying' is completed in place; a finished row is never replaced (see ``replace``)."""
        status = status_of(item)
        with self._lock:
            pos = self._pos.get(index)
            if pos is None:
                self._pos[index] = len(self._rows)
                self._rows.append([index, status, prompt, item])
                self._counts[status] += 1
                self._view = None
            else:
                row = self._rows[pos]
                if row[1] != "retrying":
                    return
                self._set(row, status, item)
                row[2] = row[2] or prompt
            self._dirty = True

    def replace(self, index: int, item: Response | BaseException) -> None:
        """Set prompt ``index``'s row to a new outcome in place (a re-run's answer)."""
        with self._lock:
            pos = self._pos.get(index)
            if pos is None:
                self.add(index, item)
                return
            self._set(self._rows[pos], status_of(item), item)
            self._dirty = True

    def mark_retrying(self, index: int, prompt: str = "", error: BaseException | None = None) -> None:
        """Show prompt ``index`` as retrying (``error``: the failure being retried) until ``add``."""
        with self._lock:
            if index in self._pos:
                return
            self._pos[index] = len(self._rows)
            self._rows.append([index, "retrying", prompt, error])
            self._counts["retrying"] += 1
            self._view = None
            self._dirty = True

    def _set(self, row: Row, status: str, item: Any) -> None:
        """Change a row in place: counts, membership and order may all change."""
        self._counts[row[1]] -= 1
        self._counts[status] += 1
        row[1], row[3] = status, item
        if self.status_filter != "all" or self.query:
            self._members = None
        self._view = None

    def load(self, result: BatchResult) -> None:
        """Add a row for every index of ``result`` not shown yet (e.g. the ones a cancel never ran)."""
        for index in range(len(result)):
            pos = self._pos.get(index)
            if pos is not None and self._rows[pos][1] != "retrying":
                continue
            response = result.responses[index]
            item: Response | BaseException | None = response if response is not None else result.errors.get(index)
            if item is None:
                continue
            self.add(index, item, result.prompts[index] if index < len(result.prompts) else "")

    # -- the view: filter, search, sort ----------------------------------------------------------
    @property
    def current_filter(self) -> str:
        return str(self.status_filter)

    def set_filter(self, name: str) -> None:
        """Show only rows of one kind (see ``FILTERS``)."""
        self.status_filter = name

    def sort(self, column: str, *, descending: bool = False) -> None:
        """Order the rows by a column key (see ``columns``: index, status, prompt, response, a parsed
        field's ``field:<name>``, tokens, latency, cost, gco2, error)."""
        with self.hold_trait_notifications():
            self.sort_by = column
            self.sort_desc = descending

    def search(self, text: str) -> None:
        """Show only rows whose prompt, response or error contains ``text`` (case-insensitive)."""
        self.query = text

    @traitlets.validate("status_filter")
    def _valid_filter(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name not in FILTERS:
            raise ConfigurationError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
        return str(name)

    @traitlets.validate("sort_by")
    def _valid_sort(self, proposal: dict[str, Any]) -> str:
        key = proposal["value"]
        keys = [spec[0] for spec in self.columns]
        if key not in keys:
            raise ConfigurationError(f"cannot sort by {key!r}; choose one of {', '.join(keys)}")
        return str(key)

    def view_indices(self) -> list[int]:
        """The prompt indices of the current view, in its order."""
        with self._lock:
            rows = self._rows
            return [rows[p][0] for p in self._ensure_view()]

    def visible_rows(self) -> list[Row]:
        """The rows of the window last pushed to the browser, in view order (copies)."""
        with self._lock:
            view = self._ensure_view()
            start, stop = self._window_bounds(len(view))
            return [list(self._rows[p]) for p in view[start:stop]]

    def _matches(self, row: Row, statuses: tuple[str, ...], needle: str) -> bool:
        if statuses and row[1] not in statuses:
            return False
        if not needle:
            return True
        item = row[3]
        if needle in row[2].lower():
            return True
        if isinstance(item, Response):
            return needle in item.content.lower()
        return item is not None and needle in f"{type(item).__name__}: {item}".lower()

    def _ensure_view(self) -> list[int]:
        """The positions of the view, in order (called under the lock)."""
        statuses, needle = FILTERS[self.status_filter], self.query.strip().lower()
        rows = self._rows
        if self._members is None:
            self._members = [p for p, row in enumerate(rows) if self._matches(row, statuses, needle)]
            self._scanned = len(rows)
            self._view = None
        elif self._scanned < len(rows):
            self._members.extend(p for p in range(self._scanned, len(rows)) if self._matches(rows[p], statuses, needle))
            self._scanned = len(rows)
            self._view = None
        if self._view is None:
            key, desc = self._sort_key(), bool(self.sort_desc)
            self._view = sorted(self._members, key=key, reverse=desc)
        return self._view

    def _sort_key(self) -> Callable[[int], Any]:
        rows, column, desc = self._rows, str(self.sort_by), bool(self.sort_desc)
        if column == "index":
            return lambda p: rows[p][0]
        value = _SORT_VALUES.get(column)
        if value is None and column.startswith("field:"):
            name = column[len("field:"):]

            def value(row: Row) -> Any:
                item = row[3]
                return _cell(item.parsed, name) or None if isinstance(item, Response) else None
        if value is None:
            return lambda p: rows[p][0]
        getter = value
        return lambda p: (*_missing_last(getter(rows[p]), desc), rows[p][0])

    # -- the list (VirtualList) ----------------------------------------------------------------------
    def _view_handles(self) -> list[int]:
        return self._ensure_view()

    def _format_row(self, pos: int) -> list[Any]:
        return _cells(self._rows[pos], self.fields)

    def _push_more(self) -> None:
        self.status_counts = self.counts

    def _detail_version(self, index: int) -> object:
        pos = self._pos.get(index)
        return None if pos is None else (self._rows[pos][1], id(self._rows[pos][3]))

    def _detail_of(self, index: int) -> dict[str, Any] | None:
        pos = self._pos.get(index)
        return None if pos is None else self._detail(self._rows[pos])

    def _on_criteria(self, change: dict[str, Any]) -> None:
        with self._lock:
            if change["name"] in ("status_filter", "query"):
                self._members = None
            self._view = None
        self.throttle.mark()
        self._push()

    # -- detail --------------------------------------------------------------------------------------
    def _detail(self, row: Row) -> dict[str, Any]:
        index, status, prompt, item = row
        detail: dict[str, Any] = {"index": index, "status": status, "prompt": cap(self._full_prompt(index, prompt))}
        if isinstance(item, Response):
            detail.update(title="Response", text=cap(item.content), facts=response_facts(item),
                          fields=[[f, cap(_cell(item.parsed, f))] for f in self.fields] if item.parsed is not None
                          else [],
                          tool_calls=[[c.name, c.id, cap(c.raw_arguments)] for c in item.tool_calls],
                          choices=[[c.index, cap(c.content)] for c in item.choices] if len(item.choices) > 1 else [])
        else:
            detail.update(title="Error" if status != "retrying" else "Retrying after",
                          error_type=type(item).__name__ if item is not None else "",
                          text=cap(str(item)) if item is not None else "", facts=[], fields=[])
        return detail

    def _full_prompt(self, index: int, fallback: str) -> str:
        if self._prompts is None or not 0 <= index < len(self._prompts):
            return fallback
        return full_prompt(self._prompts[index])

    # -- actions -------------------------------------------------------------------------------------
    def _rerun_ready(self) -> bool:
        return self.client is not None and self._prompts is not None

    def on_rerun(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` whenever a re-run changed rows (throttled) and when it ends (``run_batch``
        redraws the panel from the updated ``BatchResult`` with it)."""
        self._rerun_callbacks.append(callback)

    def failed_indices(self) -> list[int]:
        """Prompt indices whose row failed (not the cancelled or budget-stopped ones: they were never sent)."""
        with self._lock:
            return sorted(row[0] for row in self._rows if row[1] == "failed")

    async def rerun_failed(self) -> int:
        """Send the failed rows' prompts again through the same client and update them in place, in the
        grid and in ``result`` (its ledger, hence the panel's counts and totals, follows). An answer
        replaces the failure; a new failure replaces the old one; a prompt the re-run did not send (it
        was cancelled) keeps its old error. ``client.last_run`` stays what it was (the run this grid
        shows, whose result takes the answers): a re-run is a repair, not a run of its own. Returns how
        many rows were sent."""
        if not self._rerun_ready():
            raise ConfigurationError("re-running failed rows needs the client and the prompts: use run_batch(...), "
                                     "or ResultsGrid.from_result(result, prompts, client=client)")
        assert self.client is not None and self._prompts is not None
        with self._lock:
            if self._rerunning:
                raise ConfigurationError("a re-run of the failed rows is already going on")
            indices = self.failed_indices()
            if not indices:
                self.message = "no failed rows to re-run"
                return 0
            self._rerunning = True
            old = {i: self._rows[self._pos[i]][3] for i in indices}
            for i in indices:
                self._set(self._rows[self._pos[i]], "retrying", old[i])
            self._dirty = True
        params = dict(self.batch_params)
        max_concurrent = int(params.pop("max_concurrent", 5))
        outcome: Counter[str] = Counter()
        try:
            self.busy = True
            self.message = f"re-running {len(indices):,} failed rows…"
            self.refresh(force=True)
            previous = self.client.last_run
            run = self.client.batch([self._prompts[i] for i in indices], max_concurrent, **params)
            if self.client.last_run is run:  # a repair of the run the grid shows, not a run of its own:
                self.client.last_run = previous  # last_run stays that run, whose result takes the answers
            async for j, item in run.stream():
                index = indices[j]
                kept = isinstance(item, Cancelled | BudgetExceeded)  # not sent: the old failure stands
                new = old[index] if kept else item
                if self.result is not None and not kept:
                    self.result.record(index, item)
                self.replace(index, new)
                outcome["kept" if kept else status_of(item)] += 1
                if self.refresh():
                    self._notify_rerun()
        finally:
            with self._lock:
                for i in indices:  # an interrupted re-run: rows it never answered show their old failure
                    row = self._rows[self._pos[i]]
                    if row[1] == "retrying":
                        self._set(row, "failed", old[i])
                self._rerunning = False
            done = ", ".join(f"{n:,} {s}" for s, n in outcome.items())
            with self.hold_sync():
                self.busy = False
                self.message = f"re-ran {len(indices):,} failed rows: {done or 'interrupted'}"
            self.refresh(force=True)
            self._notify_rerun()
        return len(indices)

    def rerun_failed_in_background(self) -> Running[int]:
        """What the "re-run failed" button does: ``rerun_failed`` on a thread of its own (the click
        handler must return at once); ``rerun_task.result()`` waits for it."""
        if not self._rerun_ready():
            raise ConfigurationError("re-running failed rows needs the client and the prompts: use run_batch(...), "
                                     "or ResultsGrid.from_result(result, prompts, client=client)")
        if self._rerunning or (self.rerun_task is not None and not self.rerun_task.done()):
            raise ConfigurationError("a re-run of the failed rows is already going on")
        self.rerun_task = start_thread(self.rerun_failed, name="seeds_nb-rerun")
        return self.rerun_task

    def _notify_rerun(self) -> None:
        for callback in list(self._rerun_callbacks):
            callback()

    def to_dataframe(self, *, view: bool = True) -> pd.DataFrame:
        """The rows as a DataFrame (``BatchResult.to_pandas`` columns, index = prompt index): the current
        view (filter, search and order applied) or, with ``view=False``, every row in prompt order."""
        with self._lock:
            order = self.view_indices() if view else sorted(self._pos)
            retrying = [row[0] for row in self._rows if row[1] == "retrying"]
            result = self.result if self.result is not None else self._as_result()
            frame = result.to_pandas()
        frame = frame.reindex(order)
        frame.index.name = "index"
        if retrying:
            frame.loc[frame.index.intersection(retrying), "status"] = "retrying"
        return frame

    def _as_result(self) -> BatchResult:
        """The grid's rows as a ``BatchResult`` (for a grid fed by hand, without a run's result)."""
        result = BatchResult()
        for index, _status, prompt, item in sorted(self._rows, key=lambda row: row[0]):
            if isinstance(item, Response | Exception):
                result.record(index, item)
                result.prompts.extend([""] * (index + 1 - len(result.prompts)))
                result.prompts[index] = prompt
        return result

    def bind_dataframe(self, name: str = "grid_df") -> pd.DataFrame:
        """Bind the current view as a DataFrame to ``name`` in the notebook's namespace (what the "copy
        as DataFrame" button does) and return it."""
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ConfigurationError(f"{name!r} is not a Python variable name; use letters, digits and _")
        from IPython import get_ipython

        shell = get_ipython()
        if shell is None:
            raise ConfigurationError("no IPython shell to bind a variable in: use df = grid.to_dataframe()")
        frame = self.to_dataframe(view=True)
        shell.user_ns[name] = frame
        self.message = f"{name} = DataFrame of {len(frame):,} rows × {len(frame.columns)} columns"
        return frame

    def export(self, path: str | os.PathLike[str], format: str | None = None, *, view: bool = True) -> Path:
        """Write the current view (or every row, ``view=False``) as CSV, Parquet or JSON Lines; the format
        comes from the suffix unless given. Written atomically (a temporary file renamed into place)."""
        target = Path(path).expanduser()
        fmt = format if format is not None else EXPORT_FORMATS.get(target.suffix.lower())
        if fmt not in set(EXPORT_FORMATS.values()):
            raise ConfigurationError(f"cannot export to {target.name!r} as {fmt or 'an unknown format'}: end the "
                                     "path in .csv, .parquet or .jsonl, or pass format='csv'|'parquet'|'jsonl'")
        if not target.parent.is_dir():
            raise ConfigurationError(f"cannot export to {str(target)!r}: the folder {str(target.parent)!r} "
                                     "does not exist")
        frame = self.to_dataframe(view=view)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            if fmt == "csv":
                frame.to_csv(tmp)
            elif fmt == "parquet":
                frame.to_parquet(tmp)
            else:
                frame.reset_index().to_json(tmp, orient="records", lines=True, force_ascii=False, date_format="iso")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.message = f"exported {len(frame):,} rows to {target}"
        return target

    def _on_action(self, content: Mapping[str, Any]) -> None:
        """A button in the browser: run the action; the outcome or the error is reported in ``message``."""
        action = content.get("action")
        try:
            if action == "rerun":
                self.rerun_failed_in_background()
            elif action == "dataframe":
                self.bind_dataframe(str(content.get("name") or "grid_df"))
            elif action == "export":
                self.export(str(content.get("path") or ""), content.get("format") or None)
        except Exception as exc:  # shown where it was asked for; the kernel's comm handler must not raise
            self.message = f"{action} failed: {type(exc).__name__}: {exc}"

    def _check_ask(self, changes: Mapping[str, Any]) -> None:
        # the cross-validators first: traitlets rolls a held change back on a TraitError only
        for name, check in (("status_filter", self._valid_filter), ("sort_by", self._valid_sort)):
            if name in changes:
                check({"value": changes[name]})

    def _refused(self, error: Exception) -> None:
        self.message = f"cannot show that: {type(error).__name__}: {error}"

    # -- columns and text ----------------------------------------------------------------------------
    def _column_specs(self) -> list[list[str]]:
        specs = [["index", "#", "n", "4.5em"], ["status", "status", "s", "5.5em"],
                 ["prompt", "prompt", "t", "minmax(6em,2fr)"], ["response", "response", "t", "minmax(8em,3fr)"]]
        specs += [[f"field:{f}", f, "t", "minmax(4em,1fr)"] for f in self.fields]
        specs += [["tokens", "tokens", "n", "5em"], ["latency", "latency", "n", "5.5em"],
                  ["cost", "cost", "n", "6.5em"], ["gco2", "gCO2eq", "n", "6em"],
                  ["error", "error", "t", "minmax(5em,1.5fr)"]]
        return specs

    def snapshot_html(self) -> str:
        """A static HTML view (counts, the first and last rows in prompt order; no JavaScript)."""
        with self._lock:
            ordered = sorted(self._rows, key=lambda row: row[0])
            shown = ordered if len(ordered) <= 2 * _SNAPSHOT_ROWS else (
                ordered[:_SNAPSHOT_ROWS] + ordered[-_SNAPSHOT_ROWS:])
            counts = ", ".join(f"{self._counts[s]:,} {s}" for s in STATUS_COLOR if self._counts[s])
            total = len(ordered)
        cells = []
        for row in shown:
            index, status, prompt, item = row
            if isinstance(item, Response):
                text = item.content
                tokens = f"{item.usage.total_tokens:,}" if item.usage.total_tokens is not None else "?"
                cost = fmt_usd(item.tracking.cost_usd, small=True)
            else:
                text = f"{type(item).__name__}: {item}" if item is not None else ""
                tokens = cost = ""
            cells.append([str(index), status, excerpt(prompt, 100), excerpt(text, 160), tokens, cost])
        lines = [f"{total:,} rows" + (f": {counts}" if counts else "")]
        if len(ordered) > len(shown):
            lines.append(f"first and last {_SNAPSHOT_ROWS} rows shown; run the notebook to browse them all")
        table = html_table(["#", "status", "prompt", "response / error", "tokens", "cost"], cells,
                           colors=[STATUS_COLOR.get(row[1]) for row in shown]) if shown else ""
        return snapshot_box(text_lines("Results", lines), "seeds-results-grid-snapshot", table=table)

    def close(self) -> None:
        """Close the grid (and its layout model), and drop its rows."""
        with self._lock:
            self._rows, self._pos, self._members, self._view = [], {}, [], []
            self._counts.clear()
            self._rerun_callbacks.clear()
            self.result = self.client = None
        close_tree(self, super().close)

    def __repr__(self) -> str:
        """Deterministic one-liner (no address) for consoles and nbval."""
        counts = ", ".join(f"{self._counts[s]} {s}" for s in STATUS_COLOR if self._counts[s])
        return f"ResultsGrid: {len(self._rows)} rows" + (f" ({counts})" if counts else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


def _response_or_none(getter: Callable[[Response], Any]) -> Callable[[Row], Any]:
    return lambda row: getter(row[3]) if isinstance(row[3], Response) else None


def _error_text(row: Row) -> str | None:
    item = row[3]
    return f"{type(item).__name__}: {item}" if isinstance(item, BaseException) else None


_SORT_VALUES: dict[str, Callable[[Row], Any]] = {
    "status": lambda row: row[1],
    "prompt": lambda row: row[2].lower(),
    "response": _response_or_none(lambda r: r.content.lower()),
    "tokens": _response_or_none(lambda r: r.usage.total_tokens),
    "latency": _response_or_none(lambda r: None if r.cached else r.latency_s),
    "cost": _response_or_none(lambda r: r.tracking.cost_usd),
    "gco2": _response_or_none(lambda r: r.tracking.gwp_kgco2eq),
    "error": _error_text,
}


def _cells(row: Row, fields: Sequence[str]) -> list[Any]:
    """One row as the browser shows it: [index, status, prompt, response, *fields, tokens, latency,
    cost, gCO2eq, error] (text; the browser escapes nothing because it only sets ``textContent``)."""
    index, status, prompt, item = row
    if isinstance(item, Response):
        tokens = item.usage.total_tokens
        gco2 = item.tracking.gwp_kgco2eq
        return [index, status, excerpt(prompt, 80), excerpt(item.content, 120),
                *(excerpt(_cell(item.parsed, f), 60) for f in fields),
                f"{tokens:,}" if tokens is not None else "?",
                "–" if item.cached else f"{item.latency_s:.3f}s", fmt_usd(item.tracking.cost_usd, small=True),
                fmt_gco2(gco2).split(" ")[0] if gco2 is not None else "?", ""]
    error = excerpt(f"{type(item).__name__}: {item}", 100) if item is not None else ""
    return [index, status, excerpt(prompt, 80), "", *("" for _ in fields), "", "", "", "", error]


def _cell(parsed: Any, field: str) -> str:
    """One parsed field as cell text: scalars as they are, lists and nested models as compact JSON."""
    import json

    if parsed is None:
        return ""
    value = field_value(parsed, field)
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)
