"""A Ray map's sink: a directory of Parquet files written by Ray Data, and what a re-run reads of it.

Why a directory and Ray's own writer: on a cluster every write task writes its blocks where it runs (shared
storage), and Ray writes each output block once, also when it re-ran the task of a killed actor. Each row
carries ``_key`` (its ``key`` column, or a fingerprint of its input values) and ``_prompt`` (a hash of the
prompt sent). A re-run skips the rows held with status ``ok``/``cached`` and the same prompt, sends the
rest, and once its own files are written drops from the earlier files the rows it has replaced (failed,
budget-stopped, cancelled or re-prompted ones): one row per key in the directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.sink import DONE_STATUSES, PROMPT

from ._worker import KEY

__all__ = ["compact", "parquet_files", "read_done", "sink_dir"]


def sink_dir(path: str | os.PathLike[str]) -> Path:
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ConfigurationError(f"a Ray map's sink is a directory of Parquet files; {str(target)!r} is a file: "
                                 "pass a directory path such as 'results/' (client.map's sink is the one file)")
    return target


def parquet_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if p.is_file()) if directory.is_dir() else []


def _read(path: Path, status: str) -> pa.Table | None:
    """The bookkeeping columns of one file, or None when it cannot be read (a write cut short)."""
    try:
        return pq.read_table(path, columns=[KEY, PROMPT, status])
    except (OSError, ValueError, pa.ArrowException):
        return None


def read_done(files: list[Path], status: str) -> dict[str, str]:
    """``{row key: prompt hash}`` of the rows already answered (``ok`` or ``cached``)."""
    done: dict[str, str] = {}
    for path in files:
        table = _read(path, status)
        if table is None:
            continue
        for key, prompt, state in zip(table.column(KEY).to_pylist(), table.column(PROMPT).to_pylist(),
                                      table.column(status).to_pylist(), strict=True):
            if state in DONE_STATUSES and key is not None:
                done.setdefault(key, prompt)
    return done


def compact(files: list[Path], done: dict[str, str], status: str) -> None:
    """Rewrite the earlier ``files`` to hold only the rows the re-run skipped (one per key): every other row
    of theirs has been sent again and written anew. A file that cannot be read held nothing counted as done."""
    seen: set[str] = set()
    for path in files:
        if _read(path, status) is None:
            path.unlink(missing_ok=True)
            continue
        table = pq.read_table(path)
        keep = []
        for key, prompt, state in zip(table.column(KEY).to_pylist(), table.column(PROMPT).to_pylist(),
                                      table.column(status).to_pylist(), strict=True):
            ok = state in DONE_STATUSES and key is not None and done.get(key) == prompt and key not in seen
            if ok:
                seen.add(key)
            keep.append(ok)
        if all(keep):
            continue
        if not any(keep):
            path.unlink()
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table.filter(pa.array(keep, pa.bool_())), tmp)
        os.replace(tmp, path)
