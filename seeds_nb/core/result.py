"""``BatchResult``: what a batch produced, aligned with its prompts, with totals and exports.

Totals come from the result's ``Ledger`` (the one account the engine, the panel and the grids read),
updated by ``record``. They count what *this run* spent: a cache hit costs nothing now, and its
would-be cost and carbon are reported as ``avoided_*``. Unknown costs are counted in
``unknown_cost_count`` rather than added as zero, and shown as unknown in the repr.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .exceptions import BudgetExceeded, Cancelled, ConfigurationError
from .ledger import Ledger
from .structured import field_value, parsed_fields
from .tables import Table
from .tooling import EXTRA_COLUMNS, extra_value, present_columns
from .types import Response

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = ["BatchResult", "cost_text", "status_of"]


def status_of(item: Response | BaseException | None) -> str:
    """'ok', 'cached', 'failed', 'cancelled' or 'budget' for one prompt's outcome."""
    if isinstance(item, Response):
        return "cached" if item.cached else "ok"
    if isinstance(item, Cancelled):
        return "cancelled"
    if isinstance(item, BudgetExceeded):
        return "budget"
    return "failed"


def cost_text(cost_usd: float, unknown: int, *, total: int | None = None) -> str:
    """``$0.0123``, ``$0.0123 + 3 unpriced``, or ``cost unknown`` when nothing was priced."""
    if unknown and not cost_usd:
        return "cost unknown"
    text = f"${cost_usd:.4f}"
    return f"{text} + {unknown:,} unpriced" if unknown else text


@dataclass(eq=False)
class BatchResult:
    """The outcome of a batch. ``responses[i]`` answers prompt ``i`` (``None`` if it failed, and
    then ``errors[i]`` says why): every index has exactly one of the two. Add to it with ``record``."""

    responses: list[Response | None] = field(default_factory=list)
    errors: dict[int, Exception] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    """An excerpt of each prompt (its last user message), for tables and plots."""
    started_s: list[float] = field(default_factory=list)
    """Seconds from the batch start to each request's start (NaN when never sent)."""
    finished_s: list[float] = field(default_factory=list)
    """Seconds from the batch start to each request's end (NaN when never sent)."""
    total_duration_seconds: float = 0.0
    started_at: float = 0.0
    """Wall-clock (Unix) time the batch started."""
    stop_reason: str | None = None
    """Why the batch stopped early: 'cancelled', 'max_cost_usd', 'max_gwp_kgco2eq', 'authentication', or None."""
    model: str = ""
    provider: str = ""
    electricity_mix_zone: str | None = None
    ledger: Ledger = None  # type: ignore[assignment]
    """The running account of counts, tokens, cost and carbon (built from the lists when not given)."""
    response_format: Any = None
    """The run's ``response_format``: its fields become columns in every export."""
    source: Table | None = None
    """The input table of a ``map`` run: its columns lead every export."""
    extra_columns: tuple[str, ...] = ()
    """Columns the run's parameters asked for: ``tool_calls`` (``tools=``), ``choices`` (``n > 1``), ``logprobs``
    (``logprobs=True``); exports add them, and any of them an answer carries, after ``content``."""

    def __post_init__(self) -> None:
        if self.ledger is None:
            self.ledger = Ledger(total=len(self.responses))
            for response in self.responses:
                if response is not None:
                    self.ledger.add(response)
            for error in self.errors.values():
                self.ledger.add(error)

    def record(self, index: int, item: Response | Exception) -> None:
        """Set prompt ``index``'s outcome (replacing an earlier one) and account for it in the ledger."""
        responses = self.responses
        if index >= len(responses):
            responses.extend([None] * (index + 1 - len(responses)))
        old: Response | Exception | None = responses[index]
        if old is None:
            old = self.errors.get(index)
        if old is not None:
            self.ledger.remove(old)
        if isinstance(item, Response):
            responses[index] = item
            if old is not None and not isinstance(old, Response):
                del self.errors[index]
        else:
            self.errors[index] = item
            responses[index] = None
        self.ledger.add(item)

    # -- counts ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.responses)

    @property
    def successful_count(self) -> int:
        return self.ledger.succeeded

    @property
    def failed_count(self) -> int:
        return self.ledger.failed

    @property
    def cached_count(self) -> int:
        return self.ledger.cached

    @property
    def cancelled_count(self) -> int:
        return self.ledger.cancelled

    @property
    def budget_stopped_count(self) -> int:
        return self.ledger.budget_stopped

    @property
    def cache_write_failures(self) -> int:
        """Answers returned but not stored in the cache (disk full, read-only file)."""
        return self.ledger.cache_write_failures

    # -- tokens (all responses, cached ones included: they are the batch's answers) ----------
    @property
    def total_prompt_tokens(self) -> int:
        return self.ledger.prompt_tokens

    @property
    def total_completion_tokens(self) -> int:
        return self.ledger.completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.ledger.tokens

    @property
    def unknown_usage_count(self) -> int:
        """Answers whose server sent no token usage (not in the token totals)."""
        return self.ledger.unknown_usage

    # -- what this run spent -----------------------------------------------------------------
    @property
    def total_cost_usd(self) -> float:
        """What the fresh answers cost; a lower bound when ``unknown_cost_count`` > 0."""
        return self.ledger.cost_usd

    @property
    def total_energy_kwh(self) -> float:
        return self.ledger.energy_kwh

    @property
    def total_energy_kwh_range(self) -> tuple[float, float]:
        return (self.ledger.energy_kwh_min, self.ledger.energy_kwh_max)

    @property
    def total_gwp_kgco2eq(self) -> float:
        return self.ledger.gwp_kgco2eq

    @property
    def total_gwp_kgco2eq_range(self) -> tuple[float, float]:
        return (self.ledger.gwp_kgco2eq_min, self.ledger.gwp_kgco2eq_max)

    @property
    def total_adpe_kgsbeq(self) -> float:
        """Abiotic resource depletion (kg Sb eq), mostly from making the hardware."""
        return self.ledger.adpe_kgsbeq

    @property
    def total_adpe_kgsbeq_range(self) -> tuple[float, float]:
        return (self.ledger.adpe_kgsbeq_min, self.ledger.adpe_kgsbeq_max)

    @property
    def total_pe_mj(self) -> float:
        """Primary energy (MJ): the energy taken from nature to supply the electricity and hardware."""
        return self.ledger.pe_mj

    @property
    def total_pe_mj_range(self) -> tuple[float, float]:
        return (self.ledger.pe_mj_min, self.ledger.pe_mj_max)

    @property
    def unknown_cost_count(self) -> int:
        """Fresh answers whose cost is unknown (an unpriced model, no usage from the server)."""
        return self.ledger.unknown_cost

    @property
    def impacts_method(self) -> str:
        """Where the energy and carbon totals come from: ``"measured"`` (a self-hosted server's own
        figures), ``"ecologits"`` (estimates), ``"mixed"`` or ``"none"``; per row: the ``tracking_method``
        column."""
        return self.ledger.impacts_method

    @property
    def measured_impacts_count(self) -> int:
        """Fresh answers whose energy and carbon the server measured."""
        return self.ledger.measured_impacts

    @property
    def unknown_impacts_count(self) -> int:
        """Fresh answers whose energy and carbon are unknown."""
        return self.ledger.unknown_impacts

    # -- what the cache saved ----------------------------------------------------------------
    @property
    def avoided_cost_usd(self) -> float:
        return self.ledger.avoided_cost_usd

    @property
    def avoided_energy_kwh(self) -> float:
        return self.ledger.avoided_energy_kwh

    @property
    def avoided_gwp_kgco2eq(self) -> float:
        return self.ledger.avoided_gwp_kgco2eq

    # -- access ------------------------------------------------------------------------------
    @property
    def contents(self) -> list[str | None]:
        """Each prompt's answer text, ``None`` where it failed."""
        return [r.content if r is not None else None for r in self.responses]

    def status(self, index: int) -> str:
        """'ok', 'cached', 'failed', 'cancelled' or 'budget' for one prompt index."""
        response = self.responses[index]
        return status_of(response if response is not None else self.errors.get(index))

    def __repr__(self) -> str:
        extra = f", stop_reason={self.stop_reason!r}" if self.stop_reason else ""
        ledger = self.ledger
        carbon = f"{ledger.gwp_kgco2eq * 1000:.3g} gCO2eq"
        if ledger.unknown_impacts:
            carbon += f" + {ledger.unknown_impacts} unknown"
        if ledger.measured_impacts:
            carbon += " measured" if ledger.impacts_method == "measured" else f" ({ledger.measured_impacts} measured)"
        return (
            f"BatchResult({len(self)} prompts: {ledger.succeeded} ok ({ledger.cached} cached), "
            f"{ledger.failed} failed, {ledger.tokens} tokens, {cost_text(ledger.cost_usd, ledger.unknown_cost)}, "
            f"{carbon}, {self.total_duration_seconds:.2f}s{extra})"
        )

    # -- export ------------------------------------------------------------------------------
    def _extra_columns(self) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
        """(the ``map`` input's columns, the parsed answer's fields) as columns, named so they never
        overwrite a standard column (a clash gets an ``input_`` / ``parsed_`` prefix)."""
        n = len(self.responses)
        inputs: dict[str, list[Any]] = {}
        if self.source is not None:
            for name, values in self.source.column_lists().items():
                inputs[f"input_{name}" if name in _COLUMN_SET else name] = (values + [None] * n)[:n]
        parsed: dict[str, list[Any]] = {}
        fields = parsed_fields(self.response_format)
        if not fields:  # no format given: the fields of whatever was parsed (a model or a dict)
            seen = (r.parsed for r in self.responses if r is not None and r.parsed is not None)
            first = next(seen, None)
            fields = parsed_fields(type(first)) if first is not None and not isinstance(first, dict) else (
                list(first) if isinstance(first, dict) else [])
        for key in fields:
            name = f"parsed_{key}" if key in _COLUMN_SET or key in inputs else key
            parsed[name] = [field_value(r.parsed, key) if r is not None and r.parsed is not None else None
                            for r in self.responses]
        for name in self._extra_names():
            key = f"parsed_{name}" if name in parsed else name
            parsed[key] = [extra_value(r, name) if r is not None else None for r in self.responses]
        return inputs, parsed

    def _extra_names(self) -> tuple[str, ...]:
        present = set(self.extra_columns) | set(present_columns(self.responses))
        return tuple(name for name in EXTRA_COLUMNS if name in present)

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per prompt (the row schema of ``to_pandas``): a ``map`` input's columns first,
        then the standard columns, with the parsed answer's fields after ``content``."""
        inputs, parsed = self._extra_columns()
        rows = []
        nan = float("nan")
        for i, response in enumerate(self.responses):
            error = self.errors.get(i)
            row: dict[str, Any] = {name: values[i] for name, values in inputs.items()}
            row.update({
                "index": i,
                "prompt": self.prompts[i] if i < len(self.prompts) else "",
                "status": self.status(i),
                "content": response.content if response is not None else None,
                **{name: values[i] for name, values in parsed.items()},
                "error_type": type(error).__name__ if error is not None else None,
                "error": str(error) if error is not None else None,
                "model": response.model if response is not None else self.model,
                "finish_reason": response.finish_reason if response is not None else None,
                "cached": bool(response is not None and response.cached),
                "attempts": response.attempts if response is not None else None,
                "started_s": self.started_s[i] if i < len(self.started_s) else nan,
                "finished_s": self.finished_s[i] if i < len(self.finished_s) else nan,
                "latency_s": response.latency_s if response is not None else None,
            })
            usage = response.usage.to_dict() if response is not None else dict.fromkeys(
                ("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                 "cache_write_tokens", "reasoning_tokens"), 0)
            row.update(usage)
            tracking = response.tracking.to_dict() if response is not None else {}
            for key in _TRACKING_COLUMNS:
                row[key] = tracking.get(key)
            row["electricity_mix_zone"] = tracking.get("electricity_mix_zone", self.electricity_mix_zone)
            row["tracking_method"] = tracking.get("method")
            rows.append(row)
        return rows

    def to_pandas(self) -> pd.DataFrame:
        """A DataFrame, one row per prompt (index = prompt index); cost/carbon columns hold what the
        request cost or, for cached rows (flagged in ``cached``), would have cost.

        Built column-wise (attribute getters in C, not a dict per row): 100k rows in ~0.3 s.
        """
        import numpy as np
        import pandas as pd

        n = len(self.responses)
        present = [r for r in self.responses if r is not None]
        ok = np.flatnonzero(np.fromiter((r is not None for r in self.responses), bool, n))
        owners = {"": present, "usage": list(map(attrgetter("usage"), present)),
                  "tracking": list(map(attrgetter("tracking"), present))}
        cols: dict[str, Any] = {}
        all_ok = len(ok) == n
        for name, path, kind in _RESPONSE_FIELDS:
            owner, _, attr = path.rpartition(".")
            column = list(map(attrgetter(attr), owners[owner]))
            if kind == "float":
                arr = np.full(n, np.nan)
                if len(ok):
                    arr[ok] = np.array(column, dtype=float)
            elif kind == "int" and None in column:  # a server sent no usage: unknown, not 0
                values = np.zeros(n, dtype=object)
                values[ok] = column
                arr = pd.array(values, dtype="Int64")
            elif kind == "int":
                arr = np.zeros(n, dtype=np.int64)
                if len(ok):
                    arr[ok] = column
            elif kind == "bool":
                arr = np.zeros(n, dtype=bool)
                if len(ok):
                    arr[ok] = column
            elif all_ok:
                arr = np.array(column, dtype=object)
            else:
                arr = np.full(n, None, dtype=object)
                if len(ok):
                    arr[ok] = np.array(column, dtype=object)
            cols[name] = arr
        if not all_ok:
            cols["model"][cols["model"] == None] = self.model  # noqa: E711 - elementwise
            cols["electricity_mix_zone"][cols["electricity_mix_zone"] == None] = self.electricity_mix_zone  # noqa: E711
        cols["total_tokens"] = cols["prompt_tokens"] + cols["completion_tokens"]
        status = np.where(cols["cached"], "cached", "ok").astype(object)
        error_type = np.full(n, None, dtype=object)
        error_text = np.full(n, None, dtype=object)
        for i in self.errors:
            status[i] = self.status(i)
            error_type[i] = type(self.errors[i]).__name__
            error_text[i] = str(self.errors[i])
        cols.update(status=status, error_type=error_type, error=error_text,
                    prompt=np.array(self.prompts[:n] + [""] * (n - len(self.prompts)), dtype=object),
                    started_s=_padded(self.started_s, n), finished_s=_padded(self.finished_s, n))
        frame = pd.DataFrame(cols, index=pd.RangeIndex(n, name="index"))
        inputs, parsed = self._extra_columns()
        order = list(_COLUMNS[1:])
        if parsed:
            at = order.index("content") + 1
            order[at:at] = list(parsed)
            for label, cells in parsed.items():
                frame[label] = pd.Series(cells, index=frame.index, dtype=object)
        if inputs:
            for label, cells in inputs.items():
                frame[label] = cells
            order = [*inputs, *order]
        return frame[order]

    def to_arrow(self) -> pa.Table:
        """A pyarrow ``Table`` with the columns of ``to_pandas`` (parsed fields as columns, nested models as
        structs); needs the ``data`` extra (pyarrow)."""
        pa = _need("pyarrow", "data")
        records = self.to_records()
        names = list(records[0]) if records else ["index", *_COLUMNS[1:]]
        return pa.table({name: [row.get(name) for row in records] for name in names})

    def to_polars(self) -> pl.DataFrame:
        """A polars ``DataFrame`` with the columns of ``to_pandas``; needs polars (``seeds_nb[polars]``)."""
        pl = _need("polars", "polars")
        records = self.to_records()
        names = list(records[0]) if records else ["index", *_COLUMNS[1:]]
        return pl.DataFrame({name: [row.get(name) for row in records] for name in names}, strict=False)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write the ``to_arrow`` table as Parquet (atomically: a temporary file renamed into place, so a
        crash never leaves a file that looks complete); returns the path."""
        pq = _need("pyarrow.parquet", "data")
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(self.to_arrow(), tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def to_jsonl(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON Lines, one object per prompt (the ``to_records`` rows); written to ``path`` when given
        (atomically), always returned."""
        text = "".join(json.dumps(row, default=str, ensure_ascii=False) + "\n" for row in self.to_records())
        if path is not None:
            target = Path(path)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, target)
        return text

    def plot(self) -> Any:
        """The summary dashboard, a ``plotly.graph_objects.Figure`` (``seeds_nb.plots.summary``); needs
        plotly, imported only here so the core never depends on it."""
        from seeds_nb.plots import summary

        return summary(self)


def _padded(values: list[float], n: int) -> Any:
    import numpy as np

    out = np.full(n, np.nan)
    out[: min(n, len(values))] = values[:n]
    return out


_TRACKING_COLUMNS = ("cost_usd", "energy_kwh", "energy_kwh_min", "energy_kwh_max", "gwp_kgco2eq",
                     "gwp_kgco2eq_min", "gwp_kgco2eq_max", "adpe_kgsbeq", "adpe_kgsbeq_min", "adpe_kgsbeq_max",
                     "pe_mj", "pe_mj_min", "pe_mj_max")

# (column, attribute path on Response, kind) for the columns read straight off a response.
_RESPONSE_FIELDS: list[tuple[str, str, str]] = [
    ("content", "content", "object"), ("model", "model", "object"), ("finish_reason", "finish_reason", "object"),
    ("cached", "cached", "bool"), ("attempts", "attempts", "float"), ("latency_s", "latency_s", "float"),
    *[(k, f"usage.{k}", "int") for k in ("prompt_tokens", "completion_tokens", "cached_tokens",
                                         "cache_write_tokens", "reasoning_tokens")],
    *[(k, f"tracking.{k}", "float") for k in _TRACKING_COLUMNS],
    ("electricity_mix_zone", "tracking.electricity_mix_zone", "object"),
    ("tracking_method", "tracking.method", "object"),
]

_COLUMNS = [
    "index", "prompt", "status", "content", "error_type", "error", "model", "finish_reason", "cached",
    "attempts", "started_s", "finished_s", "latency_s", "prompt_tokens", "completion_tokens",
    "total_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", *_TRACKING_COLUMNS,
    "electricity_mix_zone", "tracking_method",
]
_COLUMN_SET = frozenset(_COLUMNS)


def _need(module: str, extra: str) -> Any:
    """Import an optional library, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(f"this export needs {module.split('.')[0]}: pip install 'seeds_nb[{extra}]'") from None
