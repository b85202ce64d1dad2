"""The on-disk response cache: stdlib sqlite3 in WAL mode, safe against SIGKILL and shared kernels.

Why this shape (measured in shared/notes/dependencies.md): sqlite in WAL with
``synchronous=NORMAL`` survived every SIGKILL and two processes writing one directory; point
reads take ~10 µs, so they run inline, from any thread; writes go to one writer thread that groups
whatever is queued into one transaction (20k+/s) and resolves each write's future once committed.

What it promises:

* Durability: a write's future resolves only after its transaction committed. With WAL and
  ``synchronous=NORMAL`` a committed transaction survives the process being killed (it may be
  lost only if the whole machine loses power before the next checkpoint).
* Nothing waits forever on it: the writer thread never dies of a caller's cancel or a failed write
  (a failed transaction is rolled back and its writes fail; later writes go on), futures cannot be
  cancelled by an awaiting task, and a writer that died anyway is restarted.
* A cache that cannot be written (read-only file or directory, disk full) still serves reads; each
  failed write fails its future with a ``CacheError`` (callers keep the answer and say so).
* A damaged file (pages corrupted mid-file): an unreadable entry is a miss, and the user is told once
  how to repair or move the file.

Only successful responses are stored; keys never include the API key.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exceptions import CacheError, CacheWarning
from .images import json_default
from .log import logger

__all__ = ["CacheStats", "ResponseCache", "cache_key"]

FILENAME = "seeds_nb_cache.sqlite3"
_APP_ID = "seeds_nb"
_SCHEMA_VERSION = "1"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS seeds_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS seeds_cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL, "
    "raw BLOB)",  # not WITHOUT ROWID: with ~1 KB rows that made a lookup 3-15x slower (measured)
)
# ``raw`` (the provider's body, stored as is rather than escaped inside the JSON value) came later; a file
# from before gets the column added. Older readers select (value, created) and still work.
_ADD_RAW = "ALTER TABLE seeds_cache ADD COLUMN raw BLOB"
_GET_MANY = 500  # keys per query (well under SQLite's limit on bound parameters)
_GROUP_WINDOW_S = 0.01
"""While answers arrive faster than one per commit, the writer gathers for this long before committing:
fewer, larger transactions and no wake-up of the writer per answer (a sending slot never waits on it)."""
_OPEN_TIMEOUT_S = 30.0
_GROUP_MAX = 500
_INSERT = "INSERT OR REPLACE INTO seeds_cache (key, value, created, raw) VALUES "
_INSERT_ROWS = 200
"""Rows per INSERT statement: 4 bound values each, under the 999 that every SQLite build allows."""
Done = Callable[[BaseException | None], object]
_Item = tuple[str | None, bytes, bytes | None, Done]


def cache_key(identity: dict[str, Any]) -> str:
    """A content address over everything that changes the output (never the API key); an image enters
    by its content hash (or URL), so two images never share a key and one image from a path or bytes does."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    size_bytes: int
    hits: int
    misses: int
    writes: int
    path: str
    write_failures: int = 0
    read_only: bool = False


def _call(done: Done, error: BaseException | None = None) -> None:
    """Tell a write's waiter how it ended; nothing it raises may stop the writer."""
    try:
        done(error)
    except Exception:
        logger.exception("a cache write callback raised")


def _settle(fut: Future[None], error: BaseException | None = None) -> None:
    """Resolve a write's future unless it already is (it never raises: the writer must not die)."""
    if fut.done():
        return
    try:
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)
    except Exception:
        pass


def _new_future() -> Future[None]:
    fut: Future[None] = Future()
    # Running from the start, so an awaiting task that is cancelled cannot cancel it (wrap_future
    # forwards cancellation): a cancelled future is what once made the writer thread die.
    fut.set_running_or_notify_cancel()
    return fut


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class ResponseCache:
    """A directory of cached responses. Values are JSON-able dicts; see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], *, ttl_s: float | None = None) -> None:
        self.directory = Path(directory).expanduser()
        self.path = self.directory / FILENAME
        self.ttl_s = ttl_s
        self.hits = self.misses = self.writes = self.write_failures = 0
        self.read_only = False
        self._lock = threading.Lock()
        # Writes wait in a deque; the writer sleeps on an event set only when it is idle, so queueing
        # an answer is an append (no lock, no wake-up while a group gathers).
        self._pending: collections.deque[_Item | None] = collections.deque()
        self._signal = threading.Event()
        # Set by ``hurry``: a waiter has nothing left to do but wait for commits, so the writer commits
        # what it has now rather than at the end of its gathering window.
        self._hurry = threading.Event()
        self._writer: threading.Thread | None = None
        self._closed = False
        self._warned: set[str] = set()
        if self.directory.exists() and not self.directory.is_dir():
            raise CacheError(f"cache_dir {str(self.directory)!r} is a file, not a directory; "
                             "pass a directory path (it is created if missing)")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create cache_dir {str(self.directory)!r}: {exc.strerror}") from None
        self._reader = self._connect()
        raw = "raw" if self._has_raw(self._reader) else "NULL"  # NULL: a read-only file from before the column
        self._select = f"SELECT value, created, {raw} FROM seeds_cache WHERE key=?"
        self._select_many = f"SELECT key, value, created, {raw} FROM seeds_cache WHERE key IN ({{}})"
    def __repr__(self) -> str:
        flag = ", read_only=True" if self.read_only else ""
        return f"ResponseCache({str(self.directory)!r}{flag})"

    def _warn_once(self, kind: str, message: str) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        logger.warning(message)
        warnings.warn(message, CacheWarning, stacklevel=4)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        """Open (and on first use create) the cache file, waiting out other processes doing the same.

        Why the retry: sqlite answers "database is locked" at once, without waiting, when two
        connections both hold a read lock and want to write (it would deadlock), which is what
        two kernels opening a new cache_dir together do while switching it to WAL.
        A file that cannot be written is opened read-only (see ``_open_read_only``).
        """
        deadline = time.monotonic() + _OPEN_TIMEOUT_S
        while True:
            try:
                return self._open()
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("readonly" in text or "unable to open" in text) and self.path.is_file():
                    return self._open_read_only(exc)
                busy = "locked" in text or "busy" in text
                if not busy or time.monotonic() > deadline:
                    raise self._unusable(exc) from None
                time.sleep(0.02)  # another process is creating or converting the file
            except sqlite3.DatabaseError as exc:
                raise self._unusable(exc) from None

    def _unusable(self, exc: BaseException) -> CacheError:
        return CacheError(f"cache file {self.path} is not a usable seeds_nb cache ({exc}); "
                          "move it away or choose another cache_dir")

    def _open_read_only(self, cause: BaseException) -> sqlite3.Connection:
        """Serve reads from a cache we may not write (a shared, read-only copy; wrong permissions).

        WAL needs a writable ``-shm`` file beside the database; when even that cannot be made, the
        file is opened ``immutable`` (no locking: fine for a file nobody can write).
        """
        last: BaseException = cause
        for query in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?{query}", uri=True,
                                       timeout=_OPEN_TIMEOUT_S, check_same_thread=False, isolation_level=None)
            except sqlite3.Error as exc:
                last = exc
                continue
            try:
                meta = self._meta(conn)
                if meta is None or meta.get("app") != _APP_ID or meta.get("schema") != _SCHEMA_VERSION:
                    raise CacheError(f"{self.path} has an unknown cache format {meta}; choose another cache_dir")
            except sqlite3.Error as exc:
                conn.close()
                last = exc
                continue
            except BaseException:
                conn.close()
                raise
            self.read_only = True
            self._warn_once("read_only", (
                f"cache file {self.path} cannot be written ({cause}): answers are read from it but new ones "
                f"are not stored. Check the permissions of the file and of {self.directory} (they must be "
                "writable by this user, e.g. chmod u+w), or choose another cache_dir"))
            return conn
        raise self._unusable(last)

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
            if not self._has_raw(conn):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if not self._has_raw(conn):  # another process may have added it meanwhile
                        conn.execute(_ADD_RAW)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            return conn
        except BaseException:
            conn.close()
            raise

    @staticmethod
    def _has_raw(conn: sqlite3.Connection) -> bool:
        return any(row[1] == "raw" for row in conn.execute("PRAGMA table_info(seeds_cache)"))

    def _meta(self, conn: sqlite3.Connection) -> dict[str, str] | None:
        """The cache's metadata; None for a file with no tables yet (new or empty)."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if "seeds_meta" not in tables:
            raise CacheError(f"{self.path} is an SQLite database that seeds_nb did not write "
                             f"(tables: {', '.join(sorted(tables))}); choose another cache_dir")
        return dict(conn.execute("SELECT name, value FROM seeds_meta"))

    # -- reads (inline from any thread: a hot point read is ~10 µs) --------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key``, or None (absent, expired, or unreadable: a damaged page is a miss)."""
        try:
            with self._lock:
                row = self._reader.execute(self._select, (key,)).fetchone()
        except sqlite3.ProgrammingError as exc:  # closed
            raise CacheError(f"cannot read cache {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            self._damaged(exc)
            row = None
        return self._entry(row)

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The entries found for ``keys`` (absent, expired and unreadable ones left out), in one query
        per 500 keys: a batch looks up a window of prompts at once rather than paying a query (and a
        switch of the interpreter lock with the writer thread) per prompt."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), _GET_MANY):
            chunk = keys[start:start + _GET_MANY]
            query = self._select_many.format(", ".join("?" * len(chunk)))
            try:
                with self._lock:
                    rows = self._reader.execute(query, chunk).fetchall()
            except sqlite3.ProgrammingError as exc:  # closed
                raise CacheError(f"cannot read cache {self.path}: {exc}") from None
            except sqlite3.Error:  # a damaged page somewhere: read them one by one, so only it is missed
                for key in chunk:
                    entry = self.get(key)
                    if entry is not None:
                        found[key] = entry
                continue
            by_key = {row[0]: row[1:] for row in rows}
            for key in chunk:
                entry = self._entry(by_key.get(key))
                if entry is not None:
                    found[key] = entry
        return found

    def _entry(self, row: Any) -> dict[str, Any] | None:
        """A row ``(value, created, raw)`` as an entry; counts the hit or miss."""
        if row is None or (self.ttl_s is not None and time.time() - row[1] > self.ttl_s):
            self.misses += 1
            return None
        try:
            value = json.loads(row[0])
        except ValueError as exc:
            self._damaged(exc)
            self.misses += 1  # a damaged entry is a miss; the fresh answer overwrites it
            return None
        if row[2] is not None:
            value["raw"] = row[2]  # bytes, as stored
        self.hits += 1
        return value

    def _damaged(self, exc: BaseException) -> None:
        self._warn_once("damaged", (
            f"cache file {self.path} is damaged ({_describe(exc)}): unreadable entries are fetched again. "
            f"To repair it, close the clients using it and run `sqlite3 {self.path} \".recover\" | sqlite3 "
            f"repaired.sqlite3`, then move repaired.sqlite3 in its place; or move the file away to start afresh"))

    # -- writes (one writer thread, grouped commits) -----------------------------------------
    def put(self, key: str, value: dict[str, Any], raw: bytes | None, done: Done) -> None:
        """Queue a write; ``done(None)`` once it is committed, ``done(CacheError)`` if it failed, called on
        the writer thread (or at once for a read-only cache). The batch engine's path: no future per
        answer. ``raw``: a body kept as bytes beside the JSON ``value`` (``get`` returns it as
        ``value["raw"]``)."""
        if self._closed:
            raise CacheError("the cache is closed")
        if self.read_only:
            self.write_failures += 1
            _call(done, CacheError(f"cache file {self.path} is read-only; the answer was not stored"))
            return
        blob = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
        self._enqueue((key, blob, raw, done))

    def _enqueue(self, item: _Item | None) -> None:
        self._pending.append(item)
        if not self._signal.is_set():
            self._signal.set()
        self._ensure_writer()

    def hurry(self) -> None:
        """Commit what is queued without waiting out the gathering window: a batch whose requests have
        all answered waits only for these commits (the window would add up to 10 ms to its end)."""
        if not self._hurry.is_set():
            self._hurry.set()

    def set_nowait(self, key: str, value: dict[str, Any], raw: bytes | None = None) -> Future[None]:
        """Queue a write; the future resolves once it is committed, or fails with ``CacheError``."""
        fut = _new_future()
        self.put(key, value, raw, functools.partial(_settle, fut))
        return fut

    def _ensure_writer(self) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            return
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="seeds_nb-cache", daemon=True)
                self._writer.start()

    async def aset(self, key: str, value: dict[str, Any], raw: bytes | None = None) -> None:
        """Write and wait for the commit; cancelling the wait never cancels the write."""
        await asyncio.shield(asyncio.wrap_future(self.set_nowait(key, value, raw)))

    def set(self, key: str, value: dict[str, Any], raw: bytes | None = None) -> None:
        self.set_nowait(key, value, raw).result()

    def _write_loop(self) -> None:
        conn: sqlite3.Connection | None = None
        batch: list[_Item] = []
        busy = False
        pending, signal = self._pending, self._signal
        try:
            while True:
                if not pending:
                    signal.wait()
                    signal.clear()
                    continue  # re-check: the append that set it is visible now
                if busy:  # answers are streaming in: let a group gather (see _GROUP_WINDOW_S)
                    self._hurry.wait(_GROUP_WINDOW_S)
                    self._hurry.clear()
                batch = []
                stop = False
                while pending and len(batch) < _GROUP_MAX:
                    more = pending.popleft()
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                rows = [(k, v, r) for k, v, r, _ in batch if k is not None]
                busy = len(rows) > 1
                try:
                    if conn is None:
                        conn = self._connect()
                    if rows:
                        self._commit(conn, rows)
                except Exception as exc:  # the writer outlives any failed write
                    self._failed(exc, batch)
                else:
                    self.writes += len(rows)
                    for *_, done in batch:
                        _call(done)
                batch = []
                if stop:
                    break
        finally:
            for *_, done in batch:  # only if the loop itself broke: nobody may wait on these
                _call(done, CacheError(f"the cache writer of {self.path} stopped"))
            if conn is not None:
                conn.close()

    @staticmethod
    def _commit(conn: sqlite3.Connection, rows: list[tuple[str, bytes, bytes | None]]) -> None:
        """One transaction for the group, its rows inserted by one multi-row statement per ``_INSERT_ROWS``.

        Why not ``executemany``: it steps the statement once per row, and the sqlite3 module releases and
        takes back the interpreter lock around every step, so each row was a lock hand-off with the
        event loop (a thread switch when the loop holds it). One statement binds the group's values
        under one hold of the lock and runs them in one step.
        """
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(rows), _INSERT_ROWS):
                chunk = rows[start:start + _INSERT_ROWS]
                values: list[object] = []
                for k, v, r in chunk:
                    values += (k, v, now, r)
                conn.execute(_INSERT + ",".join(("(?,?,?,?)",) * len(chunk)), values)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # else later writes fail with "cannot start a transaction within a transaction"
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _failed(self, exc: BaseException, batch: list[_Item]) -> None:
        writes = sum(1 for k, *_ in batch if k is not None)
        first = self.write_failures == 0
        self.write_failures += writes
        text = _describe(exc)
        if "malformed" in text or "not a database" in text:
            self._damaged(exc)  # the one message that says how to repair or move the file
            hint = "the file is damaged"
        elif "full" in text:
            hint = "the disk is full: free some space"
        elif "readonly" in text or "permission" in text:
            hint = "check that the file and its directory are writable"
        else:
            hint = "move the file away or choose another cache_dir if it persists"
        error = exc if isinstance(exc, CacheError) else CacheError(
            f"cannot write cache {self.path}: {text} ({hint}); the answer was returned but not stored")
        if writes:  # the first failure loudly, the rest for whoever debugs
            logger.log(logging.WARNING if first else logging.DEBUG, "cache write of %d answer(s) failed: %s",
                       writes, error)
        for *_, done in batch:
            _call(done, error)

    # -- management --------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Block until every queued write is committed (or has failed); at most ``timeout`` s."""
        writer = self._writer
        if writer is None or not writer.is_alive():
            return
        fut = _new_future()
        self._enqueue((None, b"", None, functools.partial(_settle, fut)))  # resolved once all before it is
        self.hurry()
        try:
            fut.result(timeout)
        except CacheError:
            pass

    def __len__(self) -> int:
        with self._lock:
            return int(self._reader.execute("SELECT COUNT(*) FROM seeds_cache").fetchone()[0])

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        if self.read_only:
            raise CacheError(f"cache file {self.path} is read-only; it cannot be cleared")
        self.flush()
        with self._lock:
            count = int(self._reader.execute("SELECT COUNT(*) FROM seeds_cache").fetchone()[0])
            self._reader.execute("DELETE FROM seeds_cache")
            self._reader.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    def stats(self) -> CacheStats:
        size = sum(p.stat().st_size for p in self.directory.glob(FILENAME + "*") if p.is_file())
        return CacheStats(len(self), size, self.hits, self.misses, self.writes, str(self.path),
                          self.write_failures, self.read_only)

    def close(self) -> None:
        """Commit what is queued and close; idempotent."""
        if self._closed:
            return
        self._closed = True
        writer = self._writer
        if writer is not None and writer.is_alive():
            self._enqueue(None)
            self.hurry()
            writer.join()
        with self._lock:
            self._reader.close()
