"""The on-disk response cache: stdlib sqlite3 in WAL mode, safe against SIGKILL and shared kernels.

Why this shape (measured in shared/notes/dependencies.md): sqlite in WAL with
``synchronous=NORMAL`` survived every SIGKILL and two processes writing one directory; point
reads take ~10 µs, so they run inline; writes are committed by one writer thread that groups
whatever is queued into one transaction (20k+/s). ``await cache.aset()`` returns only once the
entry is committed, so anything a batch has reported is on disk.

Only successful responses are stored; keys never include the API key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import CacheError

__all__ = ["CacheStats", "ResponseCache", "cache_key"]

FILENAME = "seeds_nb_cache.sqlite3"
_APP_ID = "seeds_nb"
_SCHEMA_VERSION = "1"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS seeds_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS seeds_cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL)",
)
_OPEN_TIMEOUT_S = 30.0


def cache_key(identity: dict[str, Any]) -> str:
    """A content address over everything that changes the output (never the API key)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    size_bytes: int
    hits: int
    misses: int
    writes: int
    path: str


class ResponseCache:
    """A directory of cached responses. Values are JSON-able dicts; see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], *, ttl_s: float | None = None) -> None:
        self.directory = Path(directory).expanduser()
        self.path = self.directory / FILENAME
        self.ttl_s = ttl_s
        self.hits = self.misses = self.writes = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[str | None, bytes, Future[None]] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._closed = False
        if self.directory.exists() and not self.directory.is_dir():
            raise CacheError(f"cache_dir {str(self.directory)!r} is a file, not a directory; "
                             "pass a directory path (it is created if missing)")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create cache_dir {str(self.directory)!r}: {exc.strerror}") from None
        self._reader = self._connect()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r})"

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """Open (and on first use create) the cache file, waiting out other processes doing the same.

        Why the retry: sqlite answers "database is locked" at once, without waiting, when two
        connections both hold a read lock and want to write (it would deadlock), which is what
        two kernels opening a new cache_dir together do while switching it to WAL.
        """
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                return self._open()
            except sqlite3.OperationalError as exc:
                busy = "locked" in str(exc) or "busy" in str(exc)
                if not busy or time.monotonic() > deadline:
                    raise CacheError(f"cache file {self.path} is not a usable seeds_nb cache ({exc}); "
                                     "move it away or choose another cache_dir") from None
                time.sleep(0.02)  # another process is creating or converting the file
            except sqlite3.DatabaseError as exc:
                raise CacheError(f"cache file {self.path} is not a usable seeds_nb cache ({exc}); "
                                 "move it away or choose another cache_dir") from None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_OPEN_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(_OPEN_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            meta = self._meta(conn)
            if meta is None:
                # Create tables and metadata in one transaction, so another process sees either
                # nothing or a complete cache (never tables without their metadata).
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if self._meta(conn) is None:
                        for statement in _SCHEMA:
                            conn.execute(statement)
                        conn.execute("INSERT OR IGNORE INTO seeds_meta VALUES ('app', ?), ('schema', ?)",
                                     (_APP_ID, _SCHEMA_VERSION))
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                meta = self._meta(conn)
            if meta is None or meta.get("app") != _APP_ID or meta.get("schema") != _SCHEMA_VERSION:
                raise CacheError(f"{self.path} has an unknown cache format {meta}; "
                                 "clear it with client.cache.clear() or choose another cache_dir")
            return conn
        except BaseException:
            conn.close()
            raise

    def _meta(self, conn: sqlite3.Connection) -> dict[str, str] | None:
        """The cache's metadata; None for a file with no tables yet (new or empty)."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "seeds_meta" not in tables:
            raise CacheError(f"{self.path} is an SQLite database that seeds_nb did not write "
                             f"(tables: {', '.join(sorted(tables))}); choose another cache_dir")
        return dict(conn.execute("SELECT name, value FROM seeds_meta"))

    # -- reads (inline: a hot point read is ~10 µs) ------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with self._lock:
                row = self._reader.execute("SELECT value, created FROM seeds_cache WHERE key=?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot read cache {self.path}: {exc}") from None
        if row is None or (self.ttl_s is not None and time.time() - row[1] > self.ttl_s):
            self.misses += 1
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            self.misses += 1  # a damaged entry is a miss; the fresh answer overwrites it
            return None
        self.hits += 1
        return value

    # -- writes (one writer thread, grouped commits) -----------------------------------------
    def set_nowait(self, key: str, value: dict[str, Any]) -> Future[None]:
        """Queue a write; the future resolves once it is committed."""
        if self._closed:
            raise CacheError("the cache is closed")
        fut: Future[None] = Future()
        blob = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        self._queue.put((key, blob, fut))
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="seeds_nb-cache", daemon=True)
                    self._writer.start()
        return fut

    async def aset(self, key: str, value: dict[str, Any]) -> None:
        await asyncio.wrap_future(self.set_nowait(key, value))

    def set(self, key: str, value: dict[str, Any]) -> None:
        self.set_nowait(key, value).result()

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            stop = False
            while len(batch) < 500:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                if conn is None:
                    conn = self._connect()
                now = time.time()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO seeds_cache VALUES (?, ?, ?)",
                                 [(k, v, now) for k, v, _ in batch if k is not None])
                conn.execute("COMMIT")
            except (sqlite3.Error, CacheError) as exc:
                error = exc if isinstance(exc, CacheError) else CacheError(f"cannot write cache {self.path}: {exc}")
                for _, _, fut in batch:
                    fut.set_exception(error)
            else:
                self.writes += sum(1 for k, _, _ in batch if k is not None)
                for _, _, fut in batch:
                    fut.set_result(None)
            if stop:
                break
        if conn is not None:
            conn.close()

    # -- management --------------------------------------------------------------------------
    def flush(self) -> None:
        """Block until every queued write is committed."""
        if self._writer is not None and self._writer.is_alive():
            fut: Future[None] = Future()
            self._queue.put((None, b"", fut))  # a marker: resolved once everything before it is committed
            fut.result()

    def __len__(self) -> int:
        with self._lock:
            return int(self._reader.execute("SELECT COUNT(*) FROM seeds_cache").fetchone()[0])

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        self.flush()
        with self._lock:
            count = int(self._reader.execute("SELECT COUNT(*) FROM seeds_cache").fetchone()[0])
            self._reader.execute("DELETE FROM seeds_cache")
            self._reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def stats(self) -> CacheStats:
        size = sum(p.stat().st_size for p in self.directory.glob(FILENAME + "*") if p.is_file())
        return CacheStats(len(self), size, self.hits, self.misses, self.writes, str(self.path))

    def close(self) -> None:
        """Commit what is queued and close; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(None)
            self._writer.join()
        with self._lock:
            self._reader.close()
