"""Sinks: a ``map``'s rows written to Parquet or JSON Lines as they complete, so a run can be bigger than
memory, survive a crash, and resume.

How it is laid out on disk, and why:

* Rows are grouped by *range* of input rows (``ROWS_PER_PART`` of them: rows 0-999, 1000-1999, ...).
  A range's rows are written as a *part*, ``<sink>.parts/part-<first row>-<n>.parquet`` (or ``.jsonl``),
  when all of them have finished, or, for what has finished so far, every ``SECONDS_PER_PART`` seconds.
  A part goes to a temporary name and is renamed, so a crash leaves whole parts only and loses at most
  a few seconds of answers (with a cache on, not even those are paid twice: they come back as hits).
* When the run ends, the parts are merged into the sink file range by range, in input order, one row
  per input row (the latest write of a row wins), to a temporary name renamed into place: a file at the
  sink's path is always complete, and the merge holds one range in memory at a time. Then the parts go.
* Two bookkeeping columns let a re-run resume: ``_row`` (the input row's position) and ``_prompt`` (a
  hash of the prompt that was sent). A row already written with status ``ok`` or ``cached`` and the same
  prompt is not sent again; a failed, cancelled or changed row is. A finished file is split back into
  range parts when a run resumes from it. A re-run reads only the range it is at: memory stays bounded
  by the concurrency and the range size, whatever the number of rows.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError, PromptError
from .images import json_default, normalize_parts

__all__ = ["DONE_STATUSES", "PROMPT", "ROW", "ROWS_PER_PART", "SECONDS_PER_PART", "Sink", "prompt_hash"]

ROWS_PER_PART = 1000
SECONDS_PER_PART = 5.0
DONE_STATUSES = frozenset({"ok", "cached"})
ROW, PROMPT = "_row", "_prompt"
_FORMATS = (".parquet", ".jsonl")


def prompt_hash(prompt: Any) -> str:
    """A short, stable fingerprint of a rendered prompt (a string or a list of messages)."""
    if isinstance(prompt, str):
        text = prompt
    else:
        text = json.dumps([m.to_dict() if hasattr(m, "to_dict") else _with_images(m) for m in prompt],
                          sort_keys=True, ensure_ascii=False, default=json_default)  # an image by its content hash
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _with_images(message: Any) -> Any:
    """A message dict whose image sources are read (a replaced file is a new prompt, not a row already done)."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    try:
        return {**message, "content": normalize_parts(message["content"])}
    except PromptError:  # the prompt fails when it is sent, with this error; its fingerprint needs no image
        return message


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet
    except ImportError:
        raise ConfigurationError("a Parquet sink needs pyarrow: pip install 'seeds_nb[data]' (or use a .jsonl sink)"
                                 ) from None
    return pa


class Sink:
    """Where a ``map``'s rows go (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str], *, status_column: str = "status",
                 rows_per_part: int = ROWS_PER_PART, seconds_per_part: float = SECONDS_PER_PART,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path).expanduser()
        self.format = self.path.suffix.lower()
        if self.format not in _FORMATS:
            raise ConfigurationError(f"sink must end in .parquet or .jsonl; got {str(path)!r}")
        if self.format == ".parquet":
            _pyarrow()
        if self.path.is_dir():
            raise ConfigurationError(f"sink {str(self.path)!r} is a directory; pass a file path such as "
                                     "results.parquet")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the sink's directory {str(self.path.parent)!r}: "
                                     f"{exc.strerror}") from None
        self.parts = self.path.with_name(self.path.name + ".parts")
        self.status_column = status_column
        self.rows_per_part = rows_per_part
        self.seconds_per_part = seconds_per_part
        self._clock = clock
        self._open: dict[int, list[dict[str, Any]]] = {}  # range start -> finished rows not written yet
        self._since = clock()
        self._seq = 0
        self.written = 0
        self._done_range: tuple[int, dict[int, str]] | None = None
        # Parts are written off the caller's thread (an event loop must not block on disk), one at a time.
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="seeds_nb-sink")
        self._pending: list[concurrent.futures.Future[None]] = []

    def __repr__(self) -> str:
        return f"Sink({str(self.path)!r})"

    # -- reading what an earlier run left -----------------------------------------------------------
    def _part_files(self, start: int | None = None) -> list[Path]:
        if not self.parts.is_dir():
            return []
        prefix = "part-" if start is None else f"part-{start:012d}-"
        return sorted(p for p in self.parts.iterdir() if p.name.startswith(prefix) and p.suffix == self.format)

    def _read(self, path: Path) -> Iterator[dict[str, Any]]:
        try:
            if self.format == ".jsonl":
                with path.open(encoding="utf-8") as fh:
                    for line in fh:
                        if line.strip():
                            yield json.loads(line)
            else:
                import pyarrow.parquet as pq

                for batch in pq.ParquetFile(path).iter_batches():
                    yield from batch.to_pylist()
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"sink file {path} cannot be read ({exc}); move it away to start the run "
                                     "afresh") from None

    def resume(self) -> None:
        """Before a run: split a finished sink file from an earlier run back into range parts (streaming), so
        that everything written before is in parts, read a range at a time."""
        if not self.path.is_file():
            return
        start: int | None = None
        rows: list[dict[str, Any]] = []
        for row in self._read(self.path):
            index = row.get(ROW)
            if not isinstance(index, int):
                raise ConfigurationError(f"sink file {self.path} was not written by seeds_nb's map (no {ROW} "
                                         "column); choose another sink path or move it away")
            first = index - index % self.rows_per_part
            if first != start and rows:
                self._write_part(start, rows, wait=True)  # type: ignore[arg-type]
                rows = []
            start = first
            rows.append(row)
        if rows and start is not None:
            self._write_part(start, rows, wait=True)
        self.path.unlink()

    def done(self, index: int) -> str | None:
        """The prompt hash row ``index`` was answered with before (ok or cached), or None. Reads the parts
        of that row's range only (kept while the run is in that range)."""
        start = index - index % self.rows_per_part
        if self._done_range is None or self._done_range[0] != start:
            found: dict[int, str] = {}
            for path in self._part_files(start):
                for row in self._read(path):
                    row_index = row.get(ROW)
                    if not isinstance(row_index, int):
                        continue
                    if row.get(self.status_column) in DONE_STATUSES:
                        found[row_index] = str(row.get(PROMPT))
                    else:
                        found.pop(row_index, None)
            self._done_range = (start, found)
        return self._done_range[1].get(index)

    def done_lookup(self) -> Callable[[int], str | None]:
        """A read-only ``done`` for row indices asked in increasing order (an estimate must not touch the
        files, where ``resume`` splits a finished file): the finished file is streamed alongside, and a row it
        holds wins over parts (which are then leftovers of the run that wrote it)."""
        finished = self._read(self.path) if self.path.is_file() else iter(())
        current: dict[str, Any] | None = None

        def lookup(index: int) -> str | None:
            nonlocal current
            while True:
                if current is None:
                    current = next(finished, None)
                    if current is None:
                        break
                row_index = current.get(ROW)
                if isinstance(row_index, int) and row_index >= index:
                    break
                current = None
            if current is not None and current.get(ROW) == index:
                return str(current.get(PROMPT)) if current.get(self.status_column) in DONE_STATUSES else None
            return self.done(index)

        return lookup

    # -- writing ---------------------------------------------------------------------------------
    def add(self, row: dict[str, Any], *, total: int | None = None) -> None:
        """One finished row (with its ``_row``); its range is written once complete (``total``: the input's
        length, when known, completes the last range), and every range's finished rows every few seconds."""
        index = row[ROW]
        start = index - index % self.rows_per_part
        rows = self._open.setdefault(start, [])
        rows.append(row)
        end = start + self.rows_per_part if total is None else min(start + self.rows_per_part, total)
        if len(rows) >= end - start:
            self._write_part(start, self._open.pop(start))
        if self._clock() - self._since >= self.seconds_per_part:
            self.flush()

    def flush(self) -> None:
        """Write every range's finished rows (a part each)."""
        self._since = self._clock()
        for start in sorted(self._open):
            self._write_part(start, self._open.pop(start))

    def _write_part(self, start: int, rows: list[dict[str, Any]], *, wait: bool = False) -> None:
        if not rows:
            return
        self._check_writes()
        self.parts.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        name = f"part-{start:012d}-{time.time_ns():020d}-{os.getpid()}-{self._seq:06d}{self.format}"
        write = self._writer.submit(self._write, self.parts / name, rows)
        if wait:
            write.result()
        else:
            self._pending.append(write)
        self.written += len(rows)
        if self._done_range is not None and self._done_range[0] == start:
            self._done_range = None  # re-read when asked again

    def _check_writes(self, *, wait: bool = False) -> None:
        """Raise the first failed part write (a full disk: the run must not go on as if rows were saved)."""
        if wait:
            concurrent.futures.wait(self._pending)
        still = []
        for write in self._pending:
            if not write.done():
                still.append(write)
            elif write.exception() is not None:
                raise ConfigurationError(f"cannot write to sink {self.path}: {write.exception()}")
        self._pending = still

    def _write(self, target: Path, rows: list[dict[str, Any]]) -> None:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            if self.format == ".jsonl":
                with tmp.open("w", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                import pyarrow.parquet as pq

                pq.write_table(_pyarrow().Table.from_pylist(rows), tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def finish(self, rows: int | None = None) -> Path:
        """Merge all parts into the sink file, range by range in input order, one row per input row (the
        latest write of a row wins; rows past ``rows`` are dropped), atomically; then remove the parts."""
        self.flush()
        self._check_writes(wait=True)
        self._writer.shutdown()
        starts = sorted({int(p.name.split("-")[1]) for p in self._part_files()})
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            if self.format == ".jsonl":
                with tmp.open("w", encoding="utf-8") as fh:
                    for start in starts:
                        fh.writelines(json.dumps(row, ensure_ascii=False, default=str) + "\n"
                                      for row in self._range(start, rows))
                    fh.flush()
                    os.fsync(fh.fileno())
            else:
                self._merge_parquet(starts, rows, tmp)
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        shutil.rmtree(self.parts, ignore_errors=True)
        return self.path

    def _range(self, start: int, rows: int | None) -> list[dict[str, Any]]:
        latest: dict[int, dict[str, Any]] = {}
        for path in self._part_files(start):  # oldest first: the latest write of a row wins
            for row in self._read(path):
                index = row.get(ROW)
                if isinstance(index, int) and (rows is None or index < rows):
                    latest[index] = row
        return [latest[index] for index in sorted(latest)]

    def _merge_parquet(self, starts: list[int], rows: int | None, tmp: Path) -> None:
        pa = _pyarrow()
        import pyarrow.parquet as pq

        schemas = [pq.read_schema(path) for path in self._part_files()]
        schema = pa.unify_schemas(schemas, promote_options="permissive") if schemas else pa.schema([(ROW, pa.int64())])
        with pq.ParquetWriter(tmp, schema) as writer:  # one row group per range: a range in memory at a time
            for start in starts:
                chunk = self._range(start, rows)
                if chunk:  # columns a part lacked become nulls; types take the unified schema's
                    writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
