"""Price each step of seeds_nb's request path on its own: µs per call, one thread, nothing in flight.

Why: ``bench_throughput.py`` gives the total CPU per request and ``profile_client.py`` where it goes under
load; this says what each step costs *by itself*, so a change to one step can be measured in seconds
(run it before and after). Each step is timed with ``timeit`` on realistic inputs (a real response body
and headers captured from the mock server, prompts of varied length), best of 5 runs of many calls.

What it does not show: costs that only appear under concurrency (the event loop, task switches, the GIL
handed between the loop and the cache's writer thread, sqlite lock waits). Compare with the profile.

The steps use seeds_nb's internals (``client.pipeline``, its codec, tracker and cache); a step whose API
has changed is reported as skipped rather than failing the script.

Run: ``python benchmarks/bench_steps.py [--number 20000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import API_KEY, MODEL, MockServerProcess, machine_info, print_machine, prompt_for

GROUP_SIZES = (1, 4, 16, 64, 256)


def _time(fn: Callable[[], Any], number: int) -> float:
    """Best of 5 runs of ``number`` calls, in µs per call."""
    return min(timeit.timeit(fn, number=number) / number * 1e6 for _ in range(5))


async def measure(url: str, number: int) -> list[dict[str, Any]]:
    import httpx

    from seeds_nb import OpenAIClient

    steps: list[dict[str, Any]] = []

    def step(area: str, label: str, make: Callable[[], Callable[[], Any]], calls: int = number, per: int = 1) -> None:
        """Time ``make()``'s function; ``per``: how many items one call handles (µs are per item)."""
        try:
            fn = make()
            us = _time(fn, calls) / per
        except (AttributeError, TypeError, ImportError, KeyError) as exc:  # an internal API changed
            steps.append({"area": area, "step": label, "us": None, "skipped": f"{type(exc).__name__}: {exc}"})
            print(f"  {'skipped':>9}  {area:8s} {label}  ({type(exc).__name__}: {exc})", flush=True)
            return
        steps.append({"area": area, "step": label, "us": us})
        print(f"  {us:7.2f} us  {area:8s} {label}", flush=True)

    prompts = [prompt_for(i, "steps") for i in range(1000)]
    counter = iter(range(10**12))

    def next_prompt() -> str:
        return prompts[next(counter) % len(prompts)]

    with tempfile.TemporaryDirectory(prefix="seeds_nb_steps_") as cache_dir:
        async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY, cache_dir=cache_dir) as client:
            await client.batch_generate([prompt_for(i, "steps-warm") for i in range(50)], max_concurrent=8)
            p = client.pipeline
            from seeds_nb.core.http import post
            from seeds_nb.core.types import Message, normalize_prompt

            prepared = p.prepare(prompts[0], {})
            url_ = httpx.URL(p.base_url + prepared.path)
            answer = await post(p.pool(), url_, prepared.payload, p._headers, 60.0)
            body, headers = answer.content, answer.headers
            response = p.codec.parse_response(body, headers, {})
            print(f"  (a request body is {len(prepared.payload):,} B, the response body {len(body):,} B with "
                  f"{len(headers.raw)} headers)")
            messages = normalize_prompt(prompts[0])
            cache = p.cache

            # -- preparing
            step("prepare", "Message(role='user', content=prompt) (pydantic)",
                 lambda: lambda: Message(role="user", content=next_prompt()))
            step("prepare", "normalize_prompt(str)", lambda: lambda: normalize_prompt(next_prompt()))
            step("prepare", "codec.build_request (the body as a dict)",
                 lambda: lambda: p.codec.build_request(messages, {}))
            _, request_body = p.codec.build_request(messages, {})
            step("prepare", "pipeline._dumps(body) (JSON encoding)", lambda: _dumper(request_body))

            def prepare_without_cache() -> Callable[[], Any]:
                def run() -> Any:
                    saved, p.cache = p.cache, None
                    try:
                        return p.prepare(next_prompt(), {})
                    finally:
                        p.cache = saved
                return run

            step("prepare", "pipeline.prepare, no cache (normalize, build, encode)", prepare_without_cache)
            step("prepare", "pipeline.prepare, with a cache (+ the cache key)",
                 lambda: lambda: p.prepare(next_prompt(), {}))
            step("prepare", "pipeline.key (cache_key: sorted JSON + sha256)", lambda: lambda: p.key(messages, {}))

            # -- the HTTP objects seeds_nb builds around aiohttp
            timeout = {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": 60.0}
            step("http", "httpx.Request(...) as seeds_nb.core.http.post builds it",
                 lambda: lambda: httpx.Request("POST", url_, content=prepared.payload, headers=p._headers,
                                               extensions={"timeout": timeout}))
            raw_headers = list(headers.raw)
            step("http", "httpx.Response(headers=raw) as the httpx-aiohttp transport builds it",
                 lambda: lambda: httpx.Response(200, headers=raw_headers))
            step("http", "response headers.get('x-request-id') (httpx.Headers)",
                 lambda: lambda: headers.get("x-request-id"))

            # -- the answer
            step("answer", "codec.parse_response (json.loads + Usage + Response)",
                 lambda: lambda: p.codec.parse_response(body, headers, {}))
            step("answer", "pipeline._observe (rate-limit headers)", lambda: lambda: p._observe(headers, False))
            step("answer", "tracker.track (price + EcoLogits' linear model)",
                 lambda: lambda: p.tracker.track(response.model, response.usage, 0.01))
            step("answer", "json.loads(body) alone", lambda: lambda: json.loads(body))

            # -- the cache
            if cache is not None:
                keys = iter(range(10**12))
                step("cache", "cache.get, a miss (sqlite point read)",
                     lambda: lambda: cache.get(f"{next(keys):064x}"), max(1000, number // 4))
                entry = p.cache_entry(response)
                step("cache", "pipeline.cache_entry(response)", lambda: lambda: p.cache_entry(response))
                step("cache", "json.dumps(entry) (what set_nowait encodes)",
                     lambda: lambda: json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode())
                blob = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode()
                print(f"  (a cache entry is {len(blob):,} B of JSON for a {len(body):,} B response body)")
                conn = cache._connect()
                try:
                    for size in GROUP_SIZES:
                        rows = iter(range(10**12))

                        def commit(size: int = size, rows: Any = rows) -> None:
                            cache._commit(conn, [(f"steps-{size}-{next(rows):056x}", blob) for _ in range(size)])

                        step("cache", f"cache._commit, per row, in transactions of {size} rows",
                             lambda commit=commit: commit, max(20, 4000 // size), per=size)
                finally:
                    conn.close()

            loop = asyncio.get_running_loop()
            step("loop", "loop.call_soon_threadsafe(...) (a self-pipe write per call)",
                 lambda: lambda: loop.call_soon_threadsafe(int), max(1000, number // 4))
            step("loop", "loop.create_task(...) of a trivial coroutine",
                 lambda: _task_maker(loop), max(1000, number // 4))
            await asyncio.sleep(0.2)  # let the queued callbacks and tasks run
    return steps


def _dumper(body: Any) -> Callable[[], Any]:
    from seeds_nb.core.pipeline import _dumps

    return lambda: _dumps(body)


def _task_maker(loop: asyncio.AbstractEventLoop) -> Callable[[], Any]:
    async def nothing() -> None:
        return None

    return lambda: loop.create_task(nothing())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run (best of 5 runs)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    info = machine_info()
    print_machine(info)
    with MockServerProcess(0.0) as server:
        print(f"steps of one request, {args.number:,} calls per run, best of 5 (us per call):")
        steps = asyncio.run(measure(server.url, args.number))
    if args.json is not None:
        args.json.write_text(json.dumps({"benchmark": "steps", "machine": info, "steps": steps}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
