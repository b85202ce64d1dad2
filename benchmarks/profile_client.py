"""Profile the seeds_nb client path (``batch_generate``, tracking on) against the mock server at 0 ms.

Why: ``bench_throughput.py`` says *how much* CPU a request costs; this says *where*. It runs one warmed-up
batch under ``cProfile`` (default) or ``pyinstrument`` (``--pyinstrument``, if installed) and prints

* own time (tottime) grouped by package, so the split between seeds_nb, httpx, the httpx-aiohttp
  transport, aiohttp, asyncio and the tracking libraries is visible at a glance;
* the top functions by own time, and seeds_nb's own functions by cumulative time.

cProfile adds overhead to every Python call, so absolute figures are inflated (roughly 2x); compare the
shares, and use ``bench_throughput.py`` for the real per-request CPU.

``--send-paths`` instead measures (unprofiled, real CPU per request) three ways of sending the same request
that ``BaseClient._send_once`` could use, with the same worker-pool harness: ``httpx.AsyncClient.post``
over the httpx-aiohttp transport (what seeds_nb did first), an ``httpx.Request`` handed straight to that
transport (no AsyncClient layer; what ``seeds_nb.core.http.post`` does), and an ``aiohttp.ClientSession``
directly. It prices the options for cutting the HTTP layer's cost.

Run: ``python benchmarks/profile_client.py [--n 2000] [--concurrency 64] [--top 25] [--pyinstrument]``,
``python benchmarks/profile_client.py --send-paths [--reps 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import API_KEY, MODEL, MockServerProcess, median, prompt_for, short_path

HEADERS = {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}
Send = Callable[[bytes], Awaitable[Any]]

# Longest match wins: the transport package before httpx, seeds_nb before everything.
GROUPS = (
    ("/seeds_nb/", "seeds_nb"),
    ("httpx_aiohttp/", "httpx-aiohttp transport"),
    ("/httpx/", "httpx"),
    ("/aiohttp/", "aiohttp"),
    ("/multidict/", "aiohttp"),
    ("/yarl/", "aiohttp"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("/genai_prices/", "genai-prices"),
    ("/ecologits/", "ecologits"),
    ("/pydantic", "pydantic"),
)


def group_of(filename: str) -> str:
    for marker, name in GROUPS:
        if marker in filename:
            return name
    if filename == "~":
        return "builtins (C)"
    return "other"


async def batch(url: str, n: int, concurrency: int, start: Callable[[], Any], stop: Callable[[], Any]) -> float:
    """A warmed-up client sends ``n`` prompts; only that batch runs between ``start()`` and ``stop()``."""
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY) as client:
        await client.batch_generate([prompt_for(i, "warm") for i in range(200)], max_concurrent=concurrency)
        prompts = [prompt_for(i, "profiled") for i in range(n)]
        start()
        result = await client.batch_generate(prompts, max_concurrent=concurrency)
        stop()
        assert result.successful_count == n, result
        return result.total_duration_seconds


def report_cprofile(profiler: cProfile.Profile, n: int, top: int) -> None:
    stats = pstats.Stats(profiler)
    raw = stats.stats  # type: ignore[attr-defined]  # {(file, line, func): (cc, nc, tottime, cumtime, callers)}
    total = sum(v[2] for v in raw.values())
    by_group: dict[str, float] = defaultdict(float)
    for (filename, _line, _func), (_cc, _nc, tottime, _cum, _callers) in raw.items():
        by_group[group_of(filename)] += tottime
    print(f"\nown time by package (cProfile, {n:,} requests; us per request, share)")
    for name, seconds in sorted(by_group.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / n * 1e6:8.1f} us  {seconds / total:6.1%}  {name}")
    print(f"  {total / n * 1e6:8.1f} us  total (inflated by cProfile)")

    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"\ntop {top} functions by own time (us per request)")
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in rows:
        where = f"{short_path(filename)}:{line}({func})"
        print(f"  {tottime / n * 1e6:7.1f} own {cumtime / n * 1e6:8.1f} cum {ncalls / n:6.2f} calls/req  {where}")

    ours = [kv for kv in raw.items() if "/seeds_nb/" in kv[0][0]]
    ours.sort(key=lambda kv: -kv[1][3])
    print(f"\nseeds_nb functions by cumulative time (us per request, top {top})")
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in ours[:top]:
        where = f"{short_path(filename)}:{line}({func})"
        print(f"  {cumtime / n * 1e6:8.1f} cum {tottime / n * 1e6:7.1f} own {ncalls / n:6.2f} calls/req  {where}")



# ------------------------------------------------------------------------------------------ send paths
@contextlib.asynccontextmanager
async def via_async_client(endpoint: str) -> AsyncIterator[Send]:
    """``AsyncClient.post`` (URL merge, header merge, auth/redirect flow, cookie extraction on every
    response, response wrapping) over the httpx-aiohttp transport."""
    from seeds_nb.core.http import make_http_client

    async with make_http_client(60.0) as client:

        async def send(payload: bytes) -> Any:
            response = await client.post(endpoint, content=payload, headers=HEADERS)
            return json.loads(response.content)

        yield send


@contextlib.asynccontextmanager
async def via_transport(endpoint: str) -> AsyncIterator[Send]:
    """Same transport, no ``AsyncClient``: a pre-parsed ``httpx.URL``, an ``httpx.Request`` per call, and
    ``transport.handle_async_request``. Keeps the ``transport=`` hook (tests inject httpx transports)."""
    import httpx
    from httpx_aiohttp import AiohttpTransport

    from seeds_nb.core.http import POOL_SIZE

    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=30.0)
    transport = AiohttpTransport(limits=limits)
    url = httpx.URL(endpoint)
    extensions = {"timeout": httpx.Timeout(60.0).as_dict()}
    try:

        async def send(payload: bytes) -> Any:
            request = httpx.Request("POST", url, content=payload, headers=HEADERS, extensions=extensions)
            response = await transport.handle_async_request(request)
            await response.aread()
            return json.loads(response.content)

        yield send
    finally:
        await transport.aclose()


@contextlib.asynccontextmanager
async def via_aiohttp(endpoint: str) -> AsyncIterator[Send]:
    """An ``aiohttp.ClientSession`` used directly (what the transport wraps), reading one header as the
    client's parser does."""
    import aiohttp

    from seeds_nb.core.http import POOL_SIZE

    timeout = aiohttp.ClientTimeout(total=60.0)
    connector = aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=30.0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(payload: bytes) -> Any:
            async with session.post(endpoint, data=payload, headers=HEADERS, timeout=timeout) as response:
                body = await response.read()
                response.headers.get("x-request-id")
                return json.loads(body)

        yield send


SEND_PATHS: dict[str, Callable[[str], contextlib.AbstractAsyncContextManager[Send]]] = {
    "httpx.AsyncClient.post + aiohttp transport": via_async_client,
    "httpx.Request -> transport.handle_async_request": via_transport,
    "aiohttp.ClientSession directly": via_aiohttp,
}


async def _send_all(send: Send, payloads: list[bytes], concurrency: int) -> None:
    work = iter(payloads)

    async def worker() -> None:
        for payload in work:
            await send(payload)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def compare_send_paths(url: str, n: int, concurrency: int, reps: int) -> None:
    def body(prompt: str) -> bytes:
        return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}]},
                          separators=(",", ":"), ensure_ascii=False).encode()

    endpoint = url + "/chat/completions"
    warm = [body(prompt_for(i, "warm")) for i in range(200)]
    payloads = [body(prompt_for(i, "paths")) for i in range(n)]
    cpu: dict[str, list[float]] = defaultdict(list)
    rate: dict[str, list[float]] = defaultdict(list)
    for _ in range(reps):  # take turns, so drift on a shared machine hits every path
        for name, make in SEND_PATHS.items():
            async with make(endpoint) as send:
                await _send_all(send, warm, concurrency)
                gc.collect()
                cpu_before, wall_before = time.process_time(), time.perf_counter()
                await _send_all(send, payloads, concurrency)
                cpu[name].append((time.process_time() - cpu_before) / n * 1e6)
                rate[name].append(n / (time.perf_counter() - wall_before))
    print(f"send paths, {n:,} requests x {reps} runs, concurrency {concurrency}, server latency 0 ms "
          f"(median client CPU per request, median req/s):")
    now = median(cpu[next(iter(SEND_PATHS))])
    for name in SEND_PATHS:
        us = median(cpu[name])
        print(f"  {us:6.0f} us  ({us - now:+5.0f})  {median(rate[name]):7,.0f} req/s  {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--pyinstrument", action="store_true", help="use pyinstrument instead of cProfile")
    parser.add_argument("--send-paths", action="store_true", help="compare ways of sending a request instead")
    parser.add_argument("--reps", type=int, default=3, help="runs per variant (--send-paths)")
    args = parser.parse_args(argv)
    with MockServerProcess(0.0) as server:
        if args.send_paths:
            asyncio.run(compare_send_paths(server.url, args.n, args.concurrency, args.reps))
            return 0
        if args.pyinstrument:
            from pyinstrument import Profiler

            sampler = Profiler(async_mode="disabled")
            asyncio.run(batch(server.url, args.n, args.concurrency, sampler.start, sampler.stop))
            print(sampler.output_text(unicode=True, color=False, show_all=False))
            return 0
        profiler = cProfile.Profile()
        seconds = asyncio.run(batch(server.url, args.n, args.concurrency, profiler.enable, profiler.disable))
    print(f"batch of {args.n:,} under cProfile: {seconds:.2f} s ({args.n / seconds:,.0f} req/s, profiled)")
    report_cprofile(profiler, args.n, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
