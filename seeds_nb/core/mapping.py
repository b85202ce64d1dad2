"""``client.map``'s two halves: rows -> prompts (a template or a function per row), and a run's results ->
the columns added to the input table.

Kept apart from the client so the rules are in one place and testable without HTTP: which columns are
added and how they are named, how a structured answer becomes columns (one per field of the
``response_format``; a nested model as a struct/dict), and that a row a template cannot fill ends as
its own ``PromptError`` rather than stopping the run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError, PromptError
from .result import BatchResult, status_of
from .sink import PROMPT, ROW, Sink, prompt_hash
from .structured import field_value, parsed_fields
from .tables import Table
from .template import Template
from .tooling import extra_value
from .types import Message, Response, Unsendable

if TYPE_CHECKING:
    from .batch import BatchRun

__all__ = ["RESULT_COLUMNS", "MapJob", "PromptRows", "check_clash", "parsed_fields", "result_columns", "row_columns",
           "sized"]

RESULT_COLUMNS = ("response", "status", "error", "cached", "prompt_tokens", "completion_tokens", "cost_usd",
                  "gwp_kgco2eq", "energy_kwh", "latency_s", "tracking_method")
"""The columns ``map`` adds (the parsed fields of a ``response_format`` come right after ``response``);
``tracking_method`` says where a row's energy and carbon come from, as in ``BatchResult.to_pandas()``."""

RowPrompt = Callable[[dict[str, Any]], Any]


class PromptRows:
    """The prompts of a table's rows, pulled lazily: ``prompt`` is a template (``"... {column} ..."``) or a
    function ``row -> str | list[Message]``; ``system`` an optional template for a system message. A row
    that cannot be rendered becomes an ``Unsendable`` (its index ends as that ``PromptError``)."""

    def __init__(self, table: Table, prompt: str | RowPrompt, system: str | None = None) -> None:
        self.table = table
        self.template = Template(prompt, "prompt template") if isinstance(prompt, str) else None
        if self.template is None and not callable(prompt):
            raise ConfigurationError(f"map() takes the prompt as a template string ('Summarise {{abstract}}') "
                                     f"or a function of the row; got {type(prompt).__name__}")
        self.function = None if isinstance(prompt, str) else prompt
        self.system = Template(system, "system template") if system is not None else None
        columns = table.columns
        if columns is not None:  # a table whose columns are known: a wrong field fails before anything is sent
            for template in (t for t in (self.template, self.system) if t is not None):
                missing = template.missing(columns)
                if missing:
                    listed = ", ".join(f"{{{name}}}" for name in missing)
                    raise ConfigurationError(f"the {template.where} uses {listed}, which the data does not have; "
                                             f"its columns are: {', '.join(columns)}")
        self._hint = "each row must have these keys (map() renders the template once per row)"

    def __iter__(self) -> Iterator[Any]:
        return (prompt for _, _, prompt in self.pairs())

    def pairs(self, *, keep: bool = True) -> Iterator[tuple[int, dict[str, Any], Any]]:
        """``(row index, row, prompt)`` for every row, in order (a sink keeps the row beside its answer
        until it is written: ``keep=False``, so the table keeps none of them)."""
        for index, row in enumerate(self.table.rows(keep=keep)):
            try:
                yield index, row, self._prompt(index, row)
            except PromptError as exc:
                yield index, row, Unsendable(exc)

    def _prompt(self, index: int, row: Mapping[str, Any]) -> Any:
        where = f"row {index}"
        if self.template is not None:
            text: Any = self.template.render(row, where=f"{where}: prompt template", hint=self._hint)
        else:
            try:
                text = self.function(dict(row))  # type: ignore[misc]
            except Exception as exc:  # the user's function: its error is this row's, the run goes on
                raise PromptError(f"{where}: the prompt function raised {type(exc).__name__}: {exc}") from None
        if self.system is None:
            return text
        system = self.system.render(row, where=f"{where}: system template", hint=self._hint)
        if not isinstance(text, str):
            raise PromptError(f"{where}: with system=, the prompt must be text; the function returned "
                              f"{type(text).__name__}")
        return [Message(role="system", content=system), Message(role="user", content=text)]


def sized(rows: PromptRows) -> Iterable[Any]:
    """``rows`` with a length when the table has one (the run's total, its progress bar's end)."""
    if rows.table.length is None:
        return iter(rows)
    return _Sized(rows, rows.table.length)


class _Sized:
    """An iterable with a length, read once (not a sequence: rows are not indexable)."""

    def __init__(self, rows: PromptRows, length: int) -> None:
        self._rows, self._length = rows, length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


def field_column(field: str) -> str:
    """A parsed field's column: its own name, or ``parsed_<name>`` when map() has a column of that name."""
    return f"parsed_{field}" if field in RESULT_COLUMNS else field


def column_names(fields: list[str], prefix: str, extras: tuple[str, ...] = ()) -> list[str]:
    """The names of the added columns: ``response``, the parsed fields, the ``extras`` the parameters asked for
    (``tool_calls``, ``choices``, ``logprobs``), then the rest, with ``prefix``."""
    return [prefix + name for name in (RESULT_COLUMNS[0], *map(field_column, fields), *extras, *RESULT_COLUMNS[1:])]


def check_clash(table: Table, fields: list[str], prefix: str, extras: tuple[str, ...] = ()) -> None:
    """Added columns never silently overwrite input columns: a clash is an error naming the fix."""
    if table.columns is None:
        return
    clash = [name for name in column_names(fields, prefix, extras) if name in table.columns]
    if clash:
        raise ConfigurationError(
            f"map() would add column(s) {', '.join(clash)}, which the data already has; pass prefix='llm_' "
            f"(or another) to name the new columns {prefix or 'llm_'}response, {prefix or 'llm_'}status, ...")


def row_columns(item: Response | Exception, fields: list[str], prefix: str = "",
                extras: tuple[str, ...] = ()) -> dict[str, Any]:
    """The columns ``map`` adds, for one row's outcome (what a sink writes as each row finishes)."""
    out: dict[str, Any] = dict.fromkeys(column_names(fields, prefix, extras))
    out[prefix + "status"] = status_of(item)
    if not isinstance(item, Response):
        out[prefix + "error"] = f"{type(item).__name__}: {item}"
        out[prefix + "cached"] = False
        return out
    usage, tracking = item.usage, item.tracking
    out.update({prefix + "response": item.content, prefix + "cached": item.cached,
                prefix + "prompt_tokens": usage.prompt_tokens, prefix + "completion_tokens": usage.completion_tokens,
                prefix + "cost_usd": tracking.cost_usd, prefix + "gwp_kgco2eq": tracking.gwp_kgco2eq,
                prefix + "energy_kwh": tracking.energy_kwh, prefix + "latency_s": item.latency_s,
                prefix + "tracking_method": tracking.method})
    if item.parsed is not None:
        for field in fields:
            out[prefix + field_column(field)] = field_value(item.parsed, field)
    for name in extras:
        out[prefix + name] = extra_value(item, name)
    return out


def result_columns(result: BatchResult, fields: list[str], prefix: str = "",
                   extras: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    """The columns ``map`` adds, one value per prompt index, in input order."""
    n = len(result)
    out: dict[str, list[Any]] = {name: [None] * n for name in column_names(fields, prefix, extras)}
    response_col, status_col, error_col = out[prefix + "response"], out[prefix + "status"], out[prefix + "error"]
    cached_col = out[prefix + "cached"]
    field_cols = [(field, out[prefix + field_column(field)]) for field in fields]
    usage_cols = (out[prefix + "prompt_tokens"], out[prefix + "completion_tokens"])
    tracking_cols = (out[prefix + "cost_usd"], out[prefix + "gwp_kgco2eq"], out[prefix + "energy_kwh"])
    latency_col = out[prefix + "latency_s"]
    method_col = out[prefix + "tracking_method"]
    errors = result.errors
    for index, response in enumerate(result.responses):
        status_col[index] = result.status(index)
        if response is None:
            error = errors.get(index)
            error_col[index] = f"{type(error).__name__}: {error}" if error is not None else None
            cached_col[index] = False
            continue
        _fill(index, response, response_col, cached_col, field_cols, usage_cols, tracking_cols, latency_col)
        method_col[index] = response.tracking.method
    for name in extras:
        column = out[prefix + name]
        for index, response in enumerate(result.responses):
            if response is not None:
                column[index] = extra_value(response, name)
    return out


def _fill(index: int, response: Response, response_col: list[Any], cached_col: list[Any],
          field_cols: list[tuple[str, list[Any]]], usage_cols: tuple[list[Any], list[Any]],
          tracking_cols: tuple[list[Any], list[Any], list[Any]], latency_col: list[Any]) -> None:
    response_col[index] = response.content
    cached_col[index] = response.cached
    parsed = response.parsed
    if field_cols and parsed is not None:
        for field, column in field_cols:
            column[index] = field_value(parsed, field)
    usage_cols[0][index] = response.usage.prompt_tokens
    usage_cols[1][index] = response.usage.completion_tokens
    tracking = response.tracking
    tracking_cols[0][index] = tracking.cost_usd
    tracking_cols[1][index] = tracking.gwp_kgco2eq
    tracking_cols[2][index] = tracking.energy_kwh
    latency_col[index] = response.latency_s


class MapJob:
    """One ``map`` over a table, in the parts a driver runs: ``start()`` (a sink picks up an earlier run),
    ``run`` (the ``BatchRun`` to stream), ``accept(index, item)`` for each finished row (a sink writes it),
    and ``finish()`` (the output: the table with its new columns, or the sink's path).

    ``client.map`` drives it with ``execute()``; ``run_batch`` drives the same parts under its widgets, so a
    map with a live panel and one without cannot disagree. Create it with ``client.prepare_map(...)``.
    """

    def __init__(self, batch: Callable[..., BatchRun], table: Table, rows: PromptRows, fields: list[str], prefix: str,
                 sink: Sink | None, *, max_concurrent: int, params: dict[str, Any],
                 extras: tuple[str, ...] = ()) -> None:
        self.table, self.rows, self.fields, self.prefix, self.sink = table, rows, fields, prefix, sink
        #: the columns the parameters ask for beside the standard ones (``tool_calls``, ``choices``, ``logprobs``)
        self.extras = extras
        self._waiting: dict[int, tuple[int, dict[str, Any], str | None]] = {}  # engine index -> (row, input, hash)
        self._counter = itertools.count()
        if sink is None:
            self.run = batch(sized(rows), max_concurrent, **params)
            self.run.result.source = table  # its exports lead with the input's columns
        else:  # nothing kept per row: only the rows in flight are held, beside their answers
            self.run = batch(self._unanswered(sink), max_concurrent, keep_results=False, **params)

    def _unanswered(self, sink: Sink) -> Iterator[Any]:
        for row_index, row, prompt in self.rows.pairs(keep=False):
            fingerprint = None if isinstance(prompt, Unsendable) else prompt_hash(prompt)
            if fingerprint is not None and sink.done(row_index) == fingerprint:
                continue  # answered by an earlier run of this map
            self._waiting[next(self._counter)] = (row_index, row, fingerprint)  # the engine numbers prompts in order
            yield prompt

    async def start(self) -> None:
        """Before the run: a sink splits a finished file of an earlier run back into parts (off the loop)."""
        if self.sink is not None:
            await asyncio.to_thread(self.sink.resume)

    def accept(self, index: int, item: Response | Exception) -> None:
        """Prompt ``index`` ended: a sink writes its row (a write failure stops the run: rows must not be
        thought saved when they are not)."""
        if self.sink is None:
            return
        row_index, row, fingerprint = self._waiting.pop(index)
        columns = row_columns(item, self.fields, self.prefix, self.extras)
        self.sink.add({**row, **columns, ROW: row_index, PROMPT: fingerprint}, total=self.table.length)

    async def finish(self) -> Any:
        """The output once the run has ended: the input's kind of table with the columns added, or the sink's
        path (its parts merged, in input order)."""
        if self.sink is not None:
            path: Path = await asyncio.to_thread(self.sink.finish, self.table.length)
            return path
        return self.table.with_columns(result_columns(self.run.result, self.fields, self.prefix, self.extras))

    async def execute(self) -> Any:
        """Run it all, without widgets (what ``client.map`` does)."""
        await self.start()
        async with self.run.stream() as stream:
            async for index, item in stream:
                self.accept(index, item)
        return await self.finish()
