"""What a hostile tester found (issue #12), one regression test per defect, over real HTTP and real files.

Each was seen failing on the code before the fix: a Cancel that killed the cache writer, paid answers
lost to a failed cache write, ``parsed`` lost on hits, budgets that ignored unknown cost, a stream that
skipped unsent prompts and ran on after ``break``, the key in traceback locals, errors outside the
``SeedsError`` tree, unchecked arguments, a wrong key sent N times, and 429 herding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import sqlite3
import subprocess
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from seeds_nb import (
    AnthropicClient,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    CacheWarning,
    Cancelled,
    ConfigurationError,
    MockServer,
    OpenAIClient,
    PromptError,
    ResponseParseError,
    SeedsError,
    TransportError,
)
from seeds_nb.core.cache import FILENAME, ResponseCache
from seeds_nb.mock import Fault

from _support import TEST_KEY, leftover_tasks

WORKER = Path(__file__).parent / "workers" / "cache_worker.py"
HANG_GUARD_S = 60  # a wait that never ends is the defect; this only turns a hang into a failure


def drop_file_privileges() -> None:
    """In a child process: give up root's right to ignore file modes (CAP_DAC_OVERRIDE and friends), so a
    read-only file is read-only for it, as for any user. Linux ``capset`` through ctypes (stdlib only)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    dac = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
    for cap in dac:  # from the bounding set: root gets its capabilities back from it at exec
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
    header, data = Header(0x20080522, 0), (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    mask = ~sum(1 << cap for cap in dac)
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def run_worker(mode: str, url: str, cache_dir: Path, *, unprivileged: bool = False) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    proc = subprocess.run([sys.executable, str(WORKER), mode, url, str(cache_dir)], capture_output=True, text=True,
                          timeout=120, env=env, preexec_fn=drop_file_privileges if unprivileged else None)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- 1. a Cancel never stops the cache writer ------------------------------------------------------------------
async def test_cancelling_waits_for_cache_writes_never_stops_the_writer(tmp_path: Path) -> None:
    """Before: the waiter's cancel cancelled the write's future, the writer thread died on
    ``set_result`` and every later write waited forever."""
    cache = ResponseCache(tmp_path)
    for i in range(20):
        waiter = asyncio.ensure_future(cache.aset(f"k{i}", {"content": i}))
        await asyncio.sleep(0)  # it is waiting on its write now
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
    await asyncio.wait_for(cache.aset("after", {"content": "after"}), HANG_GUARD_S)
    assert cache.get("after") == {"content": "after"}
    assert all(cache.get(f"k{i}") == {"content": i} for i in range(20))  # cancelled waits, kept writes
    cache.close()


async def test_cancelled_batches_leave_the_next_batch_working(make_client, tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path))
    for round_ in range(6):
        run = client.batch([f"cancel {round_} {i}" for i in range(60)], max_concurrent=16)
        run.on_progress = lambda done, total, response, run=run: run.cancel() if done == 5 else None
        result = await asyncio.wait_for(run, HANG_GUARD_S)
        assert result.stop_reason == "cancelled" and result.successful_count + result.failed_count == 60
    after = await asyncio.wait_for(client.batch_generate([f"after {i}" for i in range(100)], max_concurrent=16),
                                   HANG_GUARD_S)
    assert after.successful_count == 100


# -- 2. a failed cache write never loses a paid answer ---------------------------------------------------------
def test_a_full_disk_returns_every_answer_counts_the_failed_writes_and_recovers(server: MockServer,
                                                                               tmp_path: Path) -> None:
    got = run_worker("full", server.url, tmp_path / "cache")
    assert got["first"] == {"ok": 5, "failed": 0, "cached": 0, "write_failures": 0}
    # the disk is "full": every answer is still returned (they were paid for), none is stored
    assert got["second"] == {"ok": 10, "failed": 0, "cached": 0, "write_failures": 10}
    assert got["second_contents"] == 10
    # space again: writes work (the failed transaction was rolled back, not left open)
    assert got["third"] == {"ok": 10, "failed": 0, "cached": 0, "write_failures": 0}
    assert got["reread"] == {"ok": 25, "failed": 0, "cached": 15, "write_failures": 0}
    assert len(got["warnings"]) == 1 and "could not be stored" in got["warnings"][0]
    assert "within a transaction" not in got["warnings"][0]


def test_a_read_only_cache_serves_reads_and_names_permissions(server: MockServer, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, cache_dir=str(cache_dir))
    client.batch_generate_sync([f"stored {i}" for i in range(5)])
    client.close()
    for path in cache_dir.iterdir():
        path.chmod(0o444)
    cache_dir.chmod(0o555)
    try:  # root ignores file modes: the worker gives up that right first
        got = run_worker("readonly", server.url, cache_dir, unprivileged=True)
    finally:
        cache_dir.chmod(0o755)
    assert got["read_only"] is True
    assert got["batch"] == {"ok": 10, "failed": 0, "cached": 5, "write_failures": 5}
    assert any("permissions" in w and "writable" in w for w in got["warnings"])


async def test_a_cache_damaged_mid_file_refetches_what_it_cannot_read_and_says_how_to_repair(
        server: MockServer, tmp_path: Path) -> None:
    prompts = [f"damaged page {i} " + "x" * 900 for i in range(400)]
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, cache_dir=str(tmp_path))
    await client.batch_generate(prompts, max_concurrent=16)
    await client.aclose()
    path = tmp_path / FILENAME
    size = path.stat().st_size
    assert not (tmp_path / (FILENAME + "-wal")).exists() or (tmp_path / (FILENAME + "-wal")).stat().st_size == 0
    page = 4096  # SQLite's default page size
    with path.open("r+b") as fh:  # scribble over whole pages in the middle of the file
        first = (size // 2) // page * page
        for offset in range(first, first + 8 * page, page):
            fh.seek(offset)
            fh.write(os.urandom(page))
    sent = server.request_count
    again = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, cache_dir=str(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await again.batch_generate(prompts, max_concurrent=16)
    await again.aclose()
    assert result.successful_count == 400 and result.failed_count == 0
    refetched = server.request_count - sent
    assert 0 < refetched < 400 and result.cached_count == 400 - refetched
    repair = [str(w.message) for w in caught if issubclass(w.category, CacheWarning) and ".recover" in str(w.message)]
    assert len(repair) == 1 and "is damaged" in repair[0] and "move the file away" in repair[0]


# -- 3. hits and duplicates are validated like fresh answers ------------------------------------------------
class Verdict(BaseModel):
    label: str
    score: float


async def test_cache_hits_and_duplicates_keep_parsed(make_client, server: MockServer, tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path))
    first = await client.batch_generate(["judge a", "judge a", "judge b"], response_format=Verdict)
    assert server.request_count == 2 and first.cached_count == 1  # the duplicate was sent once
    assert all(isinstance(r.parsed, Verdict) for r in first.responses)
    second = await client.batch_generate(["judge a", "judge b"], response_format=Verdict)
    assert server.request_count == 2 and second.cached_count == 2
    assert all(isinstance(r.parsed, Verdict) for r in second.responses)
    hit = await client.agenerate("judge b", response_format=Verdict)
    assert hit.cached and isinstance(hit.parsed, Verdict) and hit.parsed == second.responses[1].parsed


async def test_an_answer_that_fails_validation_is_never_cached(make_client, server: MockServer,
                                                               tmp_path: Path) -> None:
    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4.1-mini",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "not json at all"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}})
    server.add_fault(Fault(kind="malformed", body=body, match="judge c"))
    client = make_client(cache_dir=str(tmp_path), max_retries=0)
    with pytest.raises(ResponseParseError, match="is not JSON .*cannot be a Verdict") as info:
        await client.agenerate("judge c", response_format=Verdict)
    assert info.value.content == "not json at all"  # the paid answer is kept on the error
    server.clear_faults()
    fresh = await client.agenerate("judge c", response_format=Verdict)
    assert not fresh.cached and isinstance(fresh.parsed, Verdict) and server.request_count == 2


# -- 4. budgets never silently do nothing ------------------------------------------------------------------------
async def test_a_missing_usage_is_unknown_not_zero(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="no_usage", match="no usage"))
    result = await make_client().batch_generate(["no usage here", "with usage"])
    blind, seen = result.responses
    assert blind.usage.prompt_tokens is None and blind.usage.total_tokens is None
    assert blind.tracking.cost_usd is None and blind.tracking.gwp_kgco2eq is None
    assert seen.tracking.cost_usd > 0
    assert result.unknown_cost_count == 1 and result.total_cost_usd == pytest.approx(seen.tracking.cost_usd)
    assert "1 unpriced" in repr(result) and result.unknown_usage_count == 1
    frame = result.to_pandas()
    assert frame["prompt_tokens"].isna().tolist() == [True, False] and math.isnan(frame["cost_usd"][0])


async def test_a_budget_stops_at_the_first_answer_whose_cost_is_unknown(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="no_usage", match="blind"))
    prompts = ["priced 0", "priced 1", "blind 2", *(f"priced {i}" for i in range(3, 40))]
    result = await make_client().batch_generate(prompts, max_concurrent=1, max_cost_usd=10.0)
    assert result.stop_reason == "max_cost_usd"
    assert result.successful_count == 3 and server.request_count == 3  # stopped right after the blind answer
    stop = result.errors[3]
    assert isinstance(stop, BudgetExceeded) and stop.spent is None and "cannot be enforced" in str(stop)
    assert "usage" in str(stop) and result.budget_stopped_count == 37


async def test_a_budget_on_an_unpriced_model_is_refused_before_anything_is_sent(make_client,
                                                                                server: MockServer) -> None:
    client = make_client(model="mock-model")
    with pytest.raises(ConfigurationError, match="max_cost_usd is set but model 'mock-model' has no known price"):
        await client.batch_generate(["a", "b"], max_cost_usd=1.0)
    with pytest.raises(ConfigurationError, match="max_gwp_kgco2eq is set but EcoLogits cannot estimate"):
        await client.batch_generate(["a", "b"], max_gwp_kgco2eq=1.0)
    assert server.request_count == 0
    priced = make_client(model="mock-model", price_model="gpt-4.1-mini")  # the fix the message names
    assert (await priced.batch_generate(["a"], max_cost_usd=1.0)).successful_count == 1


# -- 5. the stream yields every index, and stops at once when its block is left ---------------------------
async def test_the_stream_yields_every_index_after_a_budget_stop(make_client) -> None:
    client = make_client()
    seen: dict[int, Any] = {}
    async with client.batch_generate_iter([f"s {i}" for i in range(30)], max_concurrent=2,
                                          max_cost_usd=1e-9) as stream:
        async for index, item in stream:
            seen[index] = item
    assert sorted(seen) == list(range(30))
    assert sum(isinstance(v, BudgetExceeded) for v in seen.values()) >= 27
    assert client.last_run.ledger.completed == 30


async def test_the_stream_yields_every_index_after_a_cancel(make_client) -> None:
    run = make_client().batch([f"c {i}" for i in range(50)], max_concurrent=3, keep_results=False)
    seen: dict[int, Any] = {}
    async for index, item in run:
        seen[index] = item
        if len(seen) == 5:
            run.cancel()
    assert sorted(seen) == list(range(50))
    assert sum(isinstance(v, Cancelled) for v in seen.values()) >= 42


async def test_leaving_an_async_with_block_cancels_what_is_in_flight_at_once(server: MockServer) -> None:
    server.add_fault(Fault(kind="slow", delay_s=30.0, match="slow"))  # these would not answer during the test
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    before = leftover_tasks()
    prompts = ["fast 0", *(f"slow {i}" for i in range(1, 40))]
    with pytest.raises(ZeroDivisionError):
        async with client.batch_generate_iter(prompts, max_concurrent=5) as stream:
            async for index, item in stream:
                assert index == 0 and not isinstance(item, Exception)
                while server.request_count < 5:  # noqa: ASYNC110 - the four slow ones reached the server (a thread)
                    await asyncio.sleep(0.01)
                1 / 0  # noqa: B018 - the block is left by an error, four requests still on the wire
    run = client.last_run
    assert run.done and run.ledger.in_flight == 0 and leftover_tasks() - before == set()
    assert run.ledger.completed == 40 and run.ledger.succeeded == 1 and run.ledger.cancelled == 39
    assert run.result.stop_reason == "cancelled" and server.request_count == 5  # nothing new was sent
    await client.aclose()


# -- 6. the key is in no traceback, log or message --------------------------------------------------------------
def traceback_text(exc: BaseException) -> str:
    """What a traceback printed with local variables shows of *our* frames (plain Python's and IPython's
    ``%xmode Verbose``), for the error and its chained causes; the caller's own frames are the caller's."""
    from IPython.core.ultratb import VerboseTB

    ours = traceback.TracebackException.from_exception(exc, capture_locals=True)
    parts = [str(exc)]
    for te in (ours, ours.__cause__, ours.__context__):
        if te is not None:
            parts += [f"{f.name}: {f.locals}" for f in te.stack if "/seeds_nb/" in f.filename]
    verbose = VerboseTB(theme_name="nocolor").text(type(exc), exc, exc.__traceback__)
    parts += [block for block in verbose.split("\nFile ") if "/seeds_nb/" in block.split("\n", 1)[0]]
    return "\n".join(parts)


async def test_the_key_is_not_in_traceback_locals(server: MockServer) -> None:
    server.add_fault(Fault(status=401, match="unauthorized"))
    for client in (OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, max_retries=0),
                   AnthropicClient("claude-haiku-4-5", base_url=server.anthropic_url, api_key=TEST_KEY,
                                   max_retries=0)):
        with pytest.raises(AuthenticationError) as status:
            await client.agenerate("unauthorized")
        batch = await client.batch_generate(["unauthorized", "ok"])
        await client.aclose()
        for exc in (status.value, *batch.errors.values()):
            assert TEST_KEY not in traceback_text(exc)
    dead = OpenAIClient("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY, max_retries=0)
    with pytest.raises(TransportError) as refused:
        await dead.agenerate("anyone?")
    assert TEST_KEY not in traceback_text(refused.value)
    with pytest.raises(ConfigurationError) as bad:
        OpenAIClient("gpt-4.1-mini", api_key=TEST_KEY, base_url="http://", timeout=1.0)
    assert TEST_KEY not in traceback_text(bad.value)


async def test_a_key_echoed_by_the_server_is_scrubbed(server: MockServer, caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {TEST_KEY}.", "type": "invalid_request_error",
                                 "code": "invalid_api_key"}})
    server.add_fault(Fault(status=400, body=body, match="echo"))
    caplog.set_level(logging.DEBUG, logger="seeds_nb")
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, max_retries=0)
    with pytest.raises(BadRequestError) as info:
        await client.agenerate("echo me")
    await client.aclose()
    error = info.value
    assert TEST_KEY not in str(error) and TEST_KEY not in error.body and TEST_KEY not in repr(error.args)
    assert "sk-...abcd" in str(error)  # the masked form says which key it was
    assert TEST_KEY not in caplog.text and TEST_KEY not in traceback_text(error)


# -- 7. every error is a SeedsError that names the fix ----------------------------------------------------------
async def test_a_lone_surrogate_is_a_prompt_error_per_item(make_client, server: MockServer) -> None:
    client = make_client()
    result = await client.batch_generate(["fine", "half an emoji \ud83d here"])
    assert result.successful_count == 1 and isinstance(result.errors[1], PromptError)
    assert "lone surrogate" in str(result.errors[1]) and "encode('utf-8', 'replace')" in str(result.errors[1])
    with pytest.raises(PromptError, match="lone surrogate"):
        await client.agenerate("\udc00")
    assert server.request_count == 1


@pytest.mark.parametrize("fmt", [object, "json", {"type": "json_schema", "json_schema": {"schema": {"x": object()}}}])
async def test_an_unsendable_response_format_fails_up_front(make_client, server: MockServer, fmt: Any) -> None:
    client = make_client()
    with pytest.raises(ConfigurationError, match="response_format|JSON"):
        await client.batch_generate(["a", "b"], response_format=fmt)
    with pytest.raises(ConfigurationError):
        await client.agenerate("a", response_format=fmt)
    assert server.request_count == 0


# -- 8. bad arguments fail in the caller's line -------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"timeout": math.nan}, "timeout must be a finite number"),
    ({"timeout": math.inf}, "timeout must be a finite number"),
    ({"max_retry_wait_s": -1}, "max_retry_wait_s must be a finite number >= 0"),
    ({"requests_per_minute": 0}, "requests_per_minute must be a finite number > 0"),
    ({"requests_per_minute": -5}, "requests_per_minute must be a finite number > 0"),
    ({"tokens_per_minute": math.nan}, "tokens_per_minute must be a finite number > 0"),
    ({"cache_dir": ""}, "cache_dir must be a directory path, or None"),
    ({"base_url": "http://"}, "has no host"),
    ({"base_url": "ftp://example.com"}, "must start with http:// or https://"),
    ({"cache_ttl_s": 0}, "cache_ttl_s must be a finite number > 0"),
])
def test_client_arguments_are_checked(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"base_url": "http://127.0.0.1:9/v1", "api_key": TEST_KEY, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        OpenAIClient("gpt-4.1-mini", **kwargs)


async def test_call_arguments_are_checked(make_client, server: MockServer) -> None:
    client = make_client()
    with pytest.raises(ConfigurationError, match="max_cost_usd must be a finite number >= 0"):
        await client.batch_generate(["a"], max_cost_usd=math.nan)
    with pytest.raises(ConfigurationError, match=r"temperature=nan is not a finite number"):
        await client.agenerate("a", temperature=math.nan)
    with pytest.raises(PromptError, match="not bytes; decode it first"):
        await client.agenerate(b"raw bytes")
    result = await client.batch_generate([b"raw", "text"])
    assert isinstance(result.errors[0], PromptError) and result.successful_count == 1
    with pytest.raises(PromptError, match="pandas DataFrame, not a list of prompts"):
        import pandas as pd

        await client.batch_generate(pd.DataFrame({"text": ["a", "b"]}))
    assert server.request_count == 1  # only "text" was ever sent


# -- 9. a wrong key is not sent N times -------------------------------------------------------------------------
async def test_a_wrong_key_stops_the_run_after_the_first_authentication_error() -> None:
    with MockServer(api_key="sk-the-right-key-000000") as guarded:
        client = OpenAIClient("gpt-4.1-mini", base_url=guarded.url, api_key=TEST_KEY)
        result = await client.batch_generate([f"k {i}" for i in range(30)], max_concurrent=1)
        await client.aclose()
    assert guarded.request_count == 1
    assert result.stop_reason == "authentication" and result.failed_count == 30
    assert all(isinstance(e, AuthenticationError) for e in result.errors.values())
    assert "not sent" not in str(result.errors[0]) and "OPENAI_API_KEY" in str(result.errors[29])


# -- 10. after a 429 pause, queued requests do not all fire at once -------------------------------------------
async def test_a_rate_limited_run_sends_close_to_one_request_per_prompt() -> None:
    with MockServer(rpm_limit=600, rate_window_s=1.0) as limited:  # 10 requests in any second
        client = OpenAIClient("gpt-4.1-mini", base_url=limited.url, api_key=TEST_KEY, max_retries=20)
        result = await client.batch_generate([f"herd {i}" for i in range(60)], max_concurrent=16)
        await client.aclose()
        rejected = sum(1 for entry in limited.requests if entry["status"] == 429)
    assert result.successful_count == 60
    # Only the first window may be wasted (16 sent at once, before any answer told the limit); before the
    # fix every pause ended in such a burst: ~100 requests, ~40 rejected.
    assert rejected <= 16 and limited.request_count == 60 + rejected


# -- the errors above are all SeedsErrors -----------------------------------------------------------------------
def test_every_error_class_used_above_is_a_seeds_error() -> None:
    for cls in (AuthenticationError, BadRequestError, BudgetExceeded, Cancelled, ConfigurationError, PromptError,
                ResponseParseError, TransportError):
        assert issubclass(cls, SeedsError)
    assert not issubclass(sqlite3.Error, SeedsError)  # the cache translates it at its boundary


# -- the seeds_nb logger: silent by default, says what happened when asked -----------------------------------
async def test_the_logger_reports_retries_pauses_and_stops(server: MockServer,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    server.add_fault(Fault(status=429, retry_after_ms=10, times=1, match="limited"))
    caplog.set_level(logging.INFO, logger="seeds_nb")
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    await client.agenerate("limited once")
    await client.batch_generate([f"b {i}" for i in range(5)], max_concurrent=1, max_cost_usd=1e-9)
    await client.aclose()
    text = caplog.text
    assert "retry 1 of 4 in 0.01 s (the whole client pauses)" in text
    assert "batch stopped (max_cost_usd)" in text and TEST_KEY not in text


def test_logging_is_silent_by_default_and_configured_by_environment() -> None:
    code = ("import logging, seeds_nb; log = logging.getLogger('seeds_nb'); "
            "print(log.getEffectiveLevel(), [type(h).__name__ for h in log.handlers])")
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if k != "SEEDS_NB_LOG_LEVEL"})
    assert quiet.stdout.split()[1:] == ["['NullHandler']"]
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "SEEDS_NB_LOG_LEVEL": "debug"})
    assert loud.stdout.split(" ", 1) == ["10", "['NullHandler', 'StreamHandler']\n"]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "SEEDS_NB_LOG_LEVEL": "chatty"})
    assert "unknown log level 'chatty'" in bad.stderr


async def test_with_a_cache_prompts_looked_up_ahead_are_still_accounted_for(make_client, server: MockServer,
                                                                            tmp_path: Path) -> None:
    """With a cache, a window of prompts is pulled and looked up at once: a stop must still account for
    the pulled ones (hits handed out as answers, the rest as the stop's error), each index once."""
    client = make_client(cache_dir=str(tmp_path))
    await client.batch_generate([f"ahead {i}" for i in range(0, 100, 2)])  # every other prompt is cached
    seen: dict[int, Any] = {}
    async with client.batch_generate_iter([f"ahead {i}" for i in range(100)], max_concurrent=4,
                                          max_cost_usd=1e-9) as stream:
        async for index, item in stream:
            assert index not in seen
            seen[index] = item
    assert sorted(seen) == list(range(100))
    hits = [i for i, item in seen.items() if not isinstance(item, Exception) and item.cached]
    assert all(i % 2 == 0 for i in hits) and len(hits) >= 2
    assert all(isinstance(item, BudgetExceeded) for i, item in seen.items() if i % 2 and not hasattr(item, "content")
               and not isinstance(item, AuthenticationError))
    assert server.request_count <= 50 + 4 + 1  # the first batch, then the answers in flight at the stop
