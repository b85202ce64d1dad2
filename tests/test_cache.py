"""The on-disk cache: real sqlite files in a temp dir, real HTTP to count what is sent."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from seeds_nb import CacheError, MockServer, OpenAIClient
from seeds_nb.core import cache as cache_module
from seeds_nb.core.cache import FILENAME, ResponseCache
from seeds_nb.mock import Fault

from _support import TEST_KEY


async def test_second_identical_batch_sends_nothing_and_costs_nothing(make_client, server: MockServer,
                                                                      tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path))
    prompts = [f"cache me {i}" for i in range(30)]
    first = await client.batch_generate(prompts, max_concurrent=8)
    assert server.request_count == 30 and first.cached_count == 0 and first.total_cost_usd > 0
    second = await client.batch_generate(prompts, max_concurrent=8)
    assert server.request_count == 30  # zero HTTP requests the second time
    assert second.cached_count == 30 and second.total_cost_usd == 0 and second.total_gwp_kgco2eq == 0
    assert second.avoided_cost_usd == pytest.approx(first.total_cost_usd)
    assert second.avoided_gwp_kgco2eq == pytest.approx(first.total_gwp_kgco2eq)
    assert second.contents == first.contents
    assert second.total_tokens == first.total_tokens


async def test_cache_is_shared_across_clients_and_keys_but_not_params(server: MockServer, tmp_path: Path) -> None:
    a = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-aaaa-1111111111", cache_dir=str(tmp_path))
    b = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-bbbb-2222222222", cache_dir=str(tmp_path))
    await a.agenerate("shared")
    assert (await b.agenerate("shared")).cached  # the API key is not part of the key
    assert not (await b.agenerate("shared", temperature=0.5)).cached  # parameters are
    c = OpenAIClient("gpt-4o-mini", base_url=server.url, api_key="sk-x", cache_dir=str(tmp_path))
    assert not (await c.agenerate("shared")).cached  # so is the model
    for client in (a, b, c):
        await client.aclose()
    assert server.request_count == 3


async def test_errors_are_never_cached(make_client, server: MockServer, tmp_path: Path) -> None:
    server.add_fault(Fault(kind="status", status=400, match="broken"))
    client = make_client(cache_dir=str(tmp_path))
    first = await client.batch_generate(["broken one", "fine one"])
    assert first.failed_count == 1
    server.clear_faults()
    second = await client.batch_generate(["broken one", "fine one"])
    assert second.failed_count == 0 and second.cached_count == 1
    assert second.responses[0] is not None and not second.responses[0].cached


async def test_identical_prompts_in_one_batch_are_sent_once(make_client, server: MockServer, tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path))
    result = await client.batch_generate(["same"] * 10 + ["other"], max_concurrent=11)
    assert server.request_count == 2
    assert result.successful_count == 11 and len({r.content for r in result.responses[:10]}) == 1
    assert result.cached_count == 9


async def test_without_a_cache_identical_prompts_are_all_sent(make_client, server: MockServer) -> None:
    """Sampling the same prompt several times is legitimate when nothing is cached."""
    await make_client().batch_generate(["same"] * 5)
    assert server.request_count == 5


async def test_the_api_key_never_reaches_the_cache_file(make_client, tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path))
    await client.batch_generate([f"secret check {i}" for i in range(5)])
    await client.aclose()
    assert_secret_absent(tmp_path)


def assert_secret_absent(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert TEST_KEY.encode() not in data and TEST_KEY[-12:].encode() not in data


def test_corrupt_file_gives_a_clear_cache_error(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="not a usable seeds_nb cache.*choose another cache_dir"):
        ResponseCache(tmp_path)


def test_foreign_sqlite_database_gives_a_clear_cache_error(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / FILENAME) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(CacheError, match="did not write.*invoices"):
        ResponseCache(tmp_path)


def test_cache_dir_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(CacheError, match="is a file, not a directory"):
        OpenAIClient("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", cache_dir=str(target))


def test_ttl_clear_and_stats(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path, ttl_s=3600)
    cache.set("k1", {"v": 1})
    assert cache.get("k1") == {"v": 1} and cache.get("nope") is None
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses, stats.writes) == (1, 1, 1, 1) and stats.size_bytes > 0
    with sqlite3.connect(cache.path) as conn:  # age the entry past the TTL
        conn.execute("UPDATE seeds_cache SET created = ?", (time.time() - 7200,))
    assert cache.get("k1") is None
    assert cache.clear() == 1 and len(cache) == 0
    cache.close()
    cache.close()  # idempotent


def test_reopening_sees_committed_entries(tmp_path: Path) -> None:
    first = ResponseCache(tmp_path)
    for i in range(200):
        first.set_nowait(f"k{i}", {"i": i})
    first.flush()
    second = ResponseCache(tmp_path)  # another "kernel" on the same directory, while the first is open
    assert len(second) == 200 and second.get("k199") == {"i": 199}
    first.set("late", {"x": 1})
    assert second.get("late") == {"x": 1}
    first.close()
    second.close()


def test_flush_and_close_do_not_wait_out_the_gathering_window(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """While writes stream in, the writer gathers a group for a window before committing; whoever only
    waits for the commits (flush, close) has it commit at once. With a ten-minute window, a flush that
    waited it out would time out here."""
    monkeypatch.setattr(cache_module, "_GROUP_WINDOW_S", 600.0)
    cache = ResponseCache(tmp_path)
    for round_ in range(3):  # groups of several rows put the writer in its gathering mode
        for i in range(300):
            cache.set_nowait(f"r{round_}-{i}", {"i": i})
        cache.flush(timeout=30)  # raises TimeoutError if it waited for the window
    assert cache.writes == 900 and len(cache) == 900
    cache.set_nowait("last", {"i": -1})
    cache.close()
    reopened = ResponseCache(tmp_path)
    assert reopened.get("last") == {"i": -1}
    reopened.close()


async def test_a_batch_whose_requests_all_answered_does_not_wait_out_the_window(
        make_client, server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers are reported once their cache write committed; when nothing is in flight any more the batch
    has the writer commit now instead of at the end of its gathering window (10 ms by default, here ten
    minutes: a batch that waited it out would not end within the test's limit)."""
    monkeypatch.setattr(cache_module, "_GROUP_WINDOW_S", 600.0)
    client = make_client(cache_dir=str(tmp_path))
    for round_ in range(3):
        result = await asyncio.wait_for(
            client.batch_generate([f"window {round_} {i}" for i in range(40)], max_concurrent=40), 60)
        assert result.successful_count == 40
    assert client.cache is not None and client.cache.writes == 120 and server.request_count == 120


def test_large_write_groups_keep_every_row_and_the_last_of_a_repeated_key(tmp_path: Path) -> None:
    """Writes queued faster than a commit are grouped (several multi-row statements per transaction):
    every row lands with its raw body, and a key written twice keeps the later value."""
    cache = ResponseCache(tmp_path)
    futures = [cache.set_nowait(f"k{i}", {"i": i}, f"raw{i}".encode()) for i in range(1200)]
    futures += [cache.set_nowait(f"k{i}", {"i": -i}) for i in range(0, 1200, 100)]
    cache.flush()
    assert all(f.done() and f.exception() is None for f in futures)
    assert len(cache) == 1200 and cache.writes == 1212
    assert cache.get("k7") == {"i": 7, "raw": b"raw7"}
    assert cache.get("k300") == {"i": -300}  # the later write replaced the row, raw body included
    cache.close()


async def test_cache_hits_are_priced_with_the_reading_clients_zone(server: MockServer, tmp_path: Path) -> None:
    world = OpenAIClient("gpt-4.1-mini", base_url=server.url, cache_dir=str(tmp_path), electricity_mix_zone="WOR")
    france = OpenAIClient("gpt-4.1-mini", base_url=server.url, cache_dir=str(tmp_path), electricity_mix_zone="FRA")
    first = await world.batch_generate(["zone a", "zone b"])
    again = await france.batch_generate(["zone a", "zone b"])
    assert again.cached_count == 2
    assert {r.tracking.electricity_mix_zone for r in again.responses} == {"FRA"}
    assert again.avoided_gwp_kgco2eq < first.total_gwp_kgco2eq / 3  # France's mix, not the world's
    for client in (world, france):
        await client.aclose()


async def test_the_cache_serves_any_thread(make_client, server: MockServer, tmp_path: Path) -> None:
    """A worker pool (or a distributed engine's actor) uses a client opened on another thread."""
    import concurrent.futures

    client = make_client(cache_dir=str(tmp_path))
    await client.batch_generate([f"threads {i}" for i in range(20)])

    def in_a_thread(i: int) -> tuple[bool, str]:
        response = client.generate(f"threads {i}")  # its own loop, on a pool thread
        client.cache.set(f"direct {i}", {"content": i})
        return response.cached, response.content

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(in_a_thread, range(40)))
    assert [cached for cached, _ in answers] == [True] * 20 + [False] * 20
    assert server.request_count == 40
    assert all(client.cache.get(f"direct {i}") == {"content": i} for i in range(40))


async def test_a_cache_written_before_the_raw_column_still_hits(make_client, server: MockServer,
                                                                tmp_path: Path) -> None:
    """Files from before the ``raw`` column (the body escaped inside the JSON) keep working: the column
    is added, old entries are read as they are, and older readers can still read new files."""
    client = make_client(cache_dir=str(tmp_path / "new"))
    fresh = await client.agenerate("old format")
    entry = client.pipeline.cache_entry(fresh)
    entry["raw"] = fresh.raw_bytes.decode()
    key = client.pipeline.key(client.pipeline.prepare("old format", {}).messages, {})
    old = tmp_path / "old"
    old.mkdir()
    conn = sqlite3.connect(old / FILENAME)
    conn.executescript("CREATE TABLE seeds_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
                       "INSERT INTO seeds_meta VALUES ('app', 'seeds_nb'), ('schema', '1');"
                       "CREATE TABLE seeds_cache (key TEXT PRIMARY KEY, value BLOB NOT NULL, created REAL NOT NULL);")
    conn.execute("INSERT INTO seeds_cache VALUES (?, ?, ?)", (key, json.dumps(entry).encode(), time.time()))
    conn.commit()
    conn.close()
    reader = make_client(cache_dir=str(old))
    hit = await reader.agenerate("old format")
    assert hit.cached and hit.content == fresh.content and hit.raw == fresh.raw
    await reader.aclose()
    columns = [row[1] for row in sqlite3.connect(old / FILENAME).execute("PRAGMA table_info(seeds_cache)")]
    assert columns == ["key", "value", "created", "raw"]
    value, = sqlite3.connect(tmp_path / "new" / FILENAME).execute("SELECT value FROM seeds_cache").fetchone()
    assert json.loads(value)["content"] == fresh.content  # what an older reader selects is complete
