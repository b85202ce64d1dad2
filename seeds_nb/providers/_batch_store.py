"""The saved form of a batch job: a small JSON file per job plus a sidecar with prompt excerpts.

Why a file per job: a provider batch runs for hours and is billed whether or not anyone is
watching, so its ids must survive a kernel restart. The job file is rewritten (atomically) after
every provider batch is created and on every refresh; the sidecar (excerpts for the result table,
cache keys so answers can be written to the response cache) is written once, at submission.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seeds_nb.core.exceptions import ConfigurationError

if TYPE_CHECKING:
    from seeds_nb.core.client import BaseClient

__all__ = ["JobStore", "ProviderBatch", "aggregate_status", "new_job_id", "ranges_of", "resolve_jobs_dir"]

FORMAT = 1
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_SEVERITY = ("cancelled", "failed", "expired", "completed")  # a finished job reports its worst part


@dataclass
class ProviderBatch:
    """One batch on the provider's side (one input file or request), as last seen."""

    id: str
    status: str = "validating"
    """Normalised: validating, in_progress, finalizing, completed, failed, expired, cancelling, cancelled."""
    raw_status: str = ""
    count: int = 0
    ranges: list[list[int]] = field(default_factory=list)
    """The prompt indices it carries, as ``[start, stop)`` runs."""
    counts: dict[str, int] = field(default_factory=dict)
    """``succeeded``, ``failed``, ``cancelled``, ``expired`` so far."""
    created_at: float | None = None
    ended_at: float | None = None
    has_results: bool = True
    """False when the provider produced no result lines at all (e.g. input validation failed)."""
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    """Provider-specific ids (input/output/error file ids)."""


def new_job_id() -> str:
    """Sortable and readable: ``job_20261129_214000_a1b2c3``."""
    return f"job_{time.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(3)}"


def ranges_of(indices: list[int]) -> list[list[int]]:
    """Sorted indices -> ``[start, stop)`` runs (a 50,000-prompt batch is usually one run)."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return runs


def resolve_jobs_dir(client: BaseClient, jobs_dir: str | os.PathLike[str] | None) -> Path:
    """``jobs_dir``, else ``<cache_dir>/batch_jobs``, else ``$XDG_CACHE_HOME/seeds_nb/batch_jobs``."""
    if jobs_dir is not None:
        return Path(jobs_dir).expanduser()
    if client.cache is not None:
        return client.cache.directory / "batch_jobs"
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "seeds_nb" / "batch_jobs"


def aggregate_status(statuses: list[str]) -> str:
    """One status for several provider batches: unfinished wins, then the most severe ending."""
    if not statuses:
        return "completed"
    running = [s for s in statuses if s not in TERMINAL]
    if running:
        if "cancelling" in running:
            return "cancelling"
        if len(running) == len(statuses) and all(s == "validating" for s in running):
            return "validating"
        if all(s == "finalizing" for s in running):
            return "finalizing"
        return "in_progress"
    return next(s for s in _SEVERITY if s in statuses)


class JobStore:
    """A job's saved state; ``BatchJob`` reads and updates it."""

    def __init__(self, directory: Path, meta: dict[str, Any]) -> None:
        self.directory = directory
        self.id: str = meta["id"]
        self.provider: str = meta["provider"]
        self.model: str = meta["model"]
        self.base_url: str = meta["base_url"]
        self.created_at: float = meta["created_at"]
        self.size: int = meta.get("size", 0)
        self.status: str = meta.get("status", "validating")
        self.params: dict[str, Any] = meta.get("params", {})
        self.batches = [ProviderBatch(**b) for b in meta.get("batches", [])]
        self.cached: list[int] = [i for a, b in meta.get("cached", []) for i in range(a, b)]
        self.errors: dict[int, list[str]] = {int(k): v for k, v in meta.get("errors", {}).items()}
        """index -> [kind, message]; kind is "prompt" (could not be sent) or "submit" (its batch was not created)."""
        self.prompts: list[str] = []
        self.keys: list[str] = []

    @property
    def path(self) -> Path:
        return self.directory / f"{self.id}.json"

    @property
    def prompts_path(self) -> Path:
        return self.directory / f"{self.id}.prompts.json"

    @classmethod
    def new(cls, directory: Path, job_id: str, client: BaseClient, params: dict[str, Any]) -> JobStore:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create jobs_dir {str(directory)!r}: {exc.strerror}") from None
        identity = json.loads(json.dumps(client.pipeline.codec.cache_params(params), default=str))
        return cls(directory, {"id": job_id, "provider": client.provider, "model": client.model,
                               "base_url": client.base_url, "created_at": time.time(), "params": identity})

    @classmethod
    def open(cls, directory: Path, job_id: str, client: BaseClient) -> JobStore:
        path = directory / f"{job_id}.json"
        skipped: list[Path] = []
        if not path.is_file():  # maybe a provider batch id: find the job that holds it
            path = _find_batch(directory, job_id, skipped) or path
        if not path.is_file():
            damaged = ""
            if skipped:
                names = ", ".join(p.name for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
                were = "s were" if len(skipped) > 1 else " was"
                damaged = f" ({len(skipped)} damaged job file{were} skipped: {names})"
            raise ConfigurationError(f"no saved batch job {job_id!r} in {str(directory)!r}{damaged}; pass jobs_dir= "
                                     "where it was saved (the default is <cache_dir>/batch_jobs)")
        meta = _read(path)
        if meta.get("format") != FORMAT:
            raise ConfigurationError(f"{path} has an unknown batch job format {meta.get('format')!r}")
        _check_meta(meta, path)
        if meta["provider"] != client.provider or meta["base_url"] != client.base_url:
            raise ConfigurationError(f"batch job {meta['id']} was submitted to {meta['provider']} at "
                                     f"{meta['base_url']}; load it with a client for that provider and base_url")
        store = cls(directory, meta)
        if store.prompts_path.is_file():
            side = _read(store.prompts_path)
            store.prompts, store.keys = side.get("prompts", []), side.get("keys", [])
            _check_sidecar(store, store.prompts_path)
        return store

    def refresh_summary(self) -> None:
        self.status = aggregate_status([b.status for b in self.batches])

    def save(self, *, prompts: bool = False) -> None:
        self.size = max(self.size, len(self.prompts))
        self.refresh_summary()
        meta = {"format": FORMAT, "id": self.id, "provider": self.provider, "model": self.model,
                "base_url": self.base_url, "created_at": self.created_at, "size": self.size, "status": self.status,
                "params": self.params, "batches": [asdict(b) for b in self.batches],
                "cached": ranges_of(self.cached), "errors": {str(k): v for k, v in self.errors.items()}}
        _write(self.path, meta)
        if prompts:
            _write(self.prompts_path, {"prompts": self.prompts, "keys": self.keys})

    def delete(self) -> None:
        for path in (self.path, self.prompts_path):
            path.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read saved batch job {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError included
        raise _damaged(path, f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _damaged(path, f"a JSON {type(data).__name__} where an object was expected")
    return data


def _damaged(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"saved batch job file {path} is damaged ({reason}); restore it from a backup, or move it away and submit "
        "the prompts again (a provider batch it started can still be looked up by its id at the provider)")


def _find_batch(directory: Path, batch_id: str, skipped: list[Path]) -> Path | None:
    """The job file holding provider batch ``batch_id``; damaged job files are skipped (and listed)."""
    for path in sorted(directory.glob("job_*.json")):
        if path.name.endswith(".prompts.json"):
            continue
        try:
            batches = _read(path).get("batches", [])
        except ConfigurationError:  # unreadable, not JSON, not an object
            skipped.append(path)
            continue
        if not (isinstance(batches, list) and all(isinstance(b, dict) for b in batches)):
            skipped.append(path)
        elif any(b.get("id") == batch_id for b in batches):
            return path
    return None


def _is(value: Any, kinds: type | tuple[type, ...]) -> bool:
    """``isinstance``, except that a JSON ``true`` is not a number."""
    return isinstance(value, kinds) and (not isinstance(value, bool) or kinds is bool)


_NUMBER = (int, float)
_META: dict[str, Any] = {"id": str, "provider": str, "model": str, "base_url": (str, type(None)),
                         "created_at": _NUMBER}
_META_OPTIONAL: dict[str, Any] = {"size": int, "status": str, "params": dict, "batches": list, "cached": list,
                                  "errors": dict}
_BATCH: dict[str, Any] = {"id": str, "status": str, "raw_status": str, "count": int, "ranges": list, "counts": dict,
                          "created_at": (*_NUMBER, type(None)), "ended_at": (*_NUMBER, type(None)),
                          "has_results": bool, "errors": list, "extra": dict}
_COUNTS = frozenset({"succeeded", "failed", "cancelled", "expired"})


def _check_meta(meta: dict[str, Any], path: Path) -> None:
    """Raise a ``ConfigurationError`` naming ``path`` unless ``meta`` has the shape ``JobStore.save`` writes.

    Linear in the file, with plain type checks only: cheap next to reading and parsing it.
    """
    def damaged(reason: str) -> ConfigurationError:
        return _damaged(path, reason)

    for key, kinds in _META.items():
        if key not in meta:
            raise damaged(f"no {key!r}")
        if not _is(meta[key], kinds):
            raise damaged(f"{key!r} is {_show(meta[key])}")
    for key, kinds in _META_OPTIONAL.items():
        if key in meta and not _is(meta[key], kinds):
            raise damaged(f"{key!r} is {_show(meta[key])}")
    if meta["id"] != path.stem:
        raise damaged(f"it holds job {meta['id']!r}, not {path.stem!r}")
    size = meta.get("size", 0)
    if size < 0:
        raise damaged(f"'size' is {size}")

    def check_ranges(ranges: list[Any], where: str) -> None:
        for run in ranges:
            if not (isinstance(run, list) and len(run) == 2 and _is(run[0], int) and _is(run[1], int)
                    and 0 <= run[0] < run[1] <= size):
                raise damaged(f"{where} holds {_show(run)}, not a [start, stop) run of prompt indices below {size}")

    fields = {f.name for f in dataclasses.fields(ProviderBatch)}
    for n, batch in enumerate(meta.get("batches", [])):
        where = f"provider batch {n + 1}"
        if not isinstance(batch, dict):
            raise damaged(f"{where} is {_show(batch)}")
        if "id" not in batch:
            raise damaged(f"{where} has no 'id'")
        unknown = sorted(set(batch) - fields)
        if unknown:
            raise damaged(f"{where} has unknown field(s) {', '.join(map(repr, unknown))}")
        for key, value in batch.items():
            if key in _BATCH and not _is(value, _BATCH[key]):
                raise damaged(f"{where}: {key!r} is {_show(value)}")
        check_ranges(batch.get("ranges", []), f"{where}: 'ranges'")
        counts = batch.get("counts", {})
        if not (set(counts) <= _COUNTS and all(_is(v, int) for v in counts.values())):
            raise damaged(f"{where}: 'counts' is {_show(counts)}")
        if not all(isinstance(e, str) for e in batch.get("errors", [])):
            raise damaged(f"{where}: 'errors' is not a list of texts")
    check_ranges(meta.get("cached", []), "'cached'")
    for key, value in meta.get("errors", {}).items():
        if not key.isdecimal():
            raise damaged(f"'errors' has the key {key!r}, not a prompt index")
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise damaged(f"'errors' of prompt {key} is {_show(value)}, not [kind, message]")


def _check_sidecar(store: JobStore, path: Path) -> None:
    """The sidecar's ``prompts`` and ``keys`` are lists of texts, no longer than the job."""
    for name, value in (("prompts", store.prompts), ("keys", store.keys)):
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise _damaged(path, f"{name!r} is not a list of texts")
        if len(value) > store.size:
            raise _damaged(path, f"{len(value):,} {name} for a job of {store.size:,} prompts")
    if store.cached and max(store.cached) >= len(store.keys):
        raise _damaged(path, f"only {len(store.keys):,} cache key(s), but prompt {max(store.cached)} was answered "
                             "from the cache at submission")


def _show(value: Any) -> str:
    """A short description of a wrong value, for a damaged-file message."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:39] + '…'}"


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write a temporary file then rename it: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)
