"""Tables in, the same kind of table out: pandas, polars, Arrow, Hugging Face datasets, or dicts.

``client.map`` reads its input's rows lazily (as dicts) through a ``Table``, and hands back a table of
the input's own kind with the result columns added, in input order. Each library is imported only
when its kind of table is given (none of them is a dependency of the core): the type is recognised by
its module and class name first, so a pandas DataFrame is never mistaken for an iterable of prompts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .exceptions import ConfigurationError, PromptError

__all__ = ["TABLE_KINDS", "Table", "as_table", "table_kind"]

TABLE_KINDS = ("pandas", "polars", "arrow", "datasets", "records")
_EXTRA = {"polars": "polars", "arrow": "data", "datasets": "datasets", "pandas": "notebook"}


def table_kind(data: Any) -> str | None:
    """``pandas``/``polars``/``arrow``/``datasets`` for those tables (without importing their library),
    None for anything else."""
    kind = type(data)
    root, name = kind.__module__.split(".")[0], kind.__name__
    if root == "pandas" and name == "DataFrame":
        return "pandas"
    if root == "polars" and name == "DataFrame":
        return "polars"
    if root == "pyarrow" and name == "Table":
        return "arrow"
    if root == "datasets" and name == "Dataset":
        return "datasets"
    return None


class Table:
    """One input table: its ``kind``, ``columns`` (None while unknown: dicts from a generator), ``len``
    (None when unknown), its rows as dicts (``rows()``, lazily), and ``with_columns`` to build the output."""

    def __init__(self, data: Any, kind: str) -> None:
        self.data = data
        self.kind = kind
        self.columns: list[str] | None
        self.length: int | None
        if kind == "pandas":
            self.columns = [str(c) for c in data.columns]
            self.length = len(data)
        elif kind in ("polars", "arrow"):
            self.columns = list(data.columns) if kind == "polars" else list(data.column_names)
            self.length = data.height if kind == "polars" else data.num_rows
        elif kind == "datasets":
            self.columns = list(data.column_names)
            self.length = len(data)
        else:
            self.columns = None
            self.length = len(data) if isinstance(data, Sequence) else None
        self._records: list[dict[str, Any]] | None = [] if kind == "records" else None

    def __repr__(self) -> str:
        return f"Table({self.kind}, {self.length if self.length is not None else '?'} rows)"

    def rows(self, *, keep: bool = True) -> Iterator[dict[str, Any]]:
        """The rows as dicts, in order, read lazily (an Arrow table a batch at a time). Dicts from an
        iterable are kept for ``with_columns`` unless ``keep`` is False (a sink writes each row instead)."""
        data, kind = self.data, self.kind
        if kind == "pandas":
            names = [str(c) for c in data.columns]
            for values in data.itertuples(index=False, name=None):
                yield dict(zip(names, values, strict=True))
        elif kind == "polars":
            yield from data.iter_rows(named=True)
        elif kind == "arrow":
            for batch in data.to_batches():
                yield from batch.to_pylist()
        elif kind == "datasets":
            yield from data
        else:
            records = self._records if keep else None
            for index, row in enumerate(data):
                if not isinstance(row, Mapping):
                    raise PromptError(f"row {index} of the data is a {type(row).__name__}, not a dict: map() takes "
                                      "a table (pandas, polars, Arrow, a Hugging Face dataset) or an iterable of "
                                      "dicts; for plain prompts use batch_generate")
                row = row if isinstance(row, dict) else dict(row)
                if records is not None:
                    records.append(row)
                yield row

    def column_lists(self) -> dict[str, list[Any]]:
        """The input's columns as lists (for exports of a ``map`` result); for dicts, the union of keys."""
        data, kind = self.data, self.kind
        if kind == "pandas":
            return {str(c): data[c].tolist() for c in data.columns}
        if kind == "polars":
            return {c: data[c].to_list() for c in data.columns}
        if kind == "arrow":
            return {c: data.column(c).to_pylist() for c in data.column_names}
        if kind == "datasets":
            return {c: list(data[c]) for c in data.column_names}
        records = self._records or []
        names = list(dict.fromkeys(key for row in records for key in row))
        return {name: [row.get(name) for row in records] for name in names}

    def with_columns(self, added: Mapping[str, list[Any]]) -> Any:
        """The input with ``added`` columns (every list as long as the input), of the input's kind."""
        data, kind = self.data, self.kind
        if kind == "pandas":
            out = data.copy()
            for name, values in added.items():
                out[name] = values
            return out
        if kind == "polars":
            import polars as pl

            return data.with_columns([pl.Series(name, values, strict=False) for name, values in added.items()])
        if kind == "arrow":
            import pyarrow as pa

            for name, values in added.items():
                data = data.append_column(name, pa.array(values))
            return data
        if kind == "datasets":
            for name, values in added.items():
                data = data.add_column(name, values)
            return data
        records = self._records if self._records is not None else []
        return [{**row, **{name: values[i] for name, values in added.items()}} for i, row in enumerate(records)]


def as_table(data: Any) -> Table:
    """``data`` as a ``Table``, or an error that says what ``map`` takes."""
    kind = table_kind(data)
    if kind is not None:
        return Table(data, kind)
    if isinstance(data, str | bytes | Mapping) or not isinstance(data, Iterable):
        raise ConfigurationError(
            f"map() takes a table (a pandas or polars DataFrame, a pyarrow Table, a Hugging Face Dataset) or an "
            f"iterable of dicts (one per row); got {type(data).__name__}")
    return Table(data, "records")


def missing_library(kind: str, exc: ImportError) -> ConfigurationError:
    extra = _EXTRA.get(kind, "data")
    return ConfigurationError(f"{kind} output needs {exc.name or kind}: pip install 'seeds_nb[{extra}]'")
