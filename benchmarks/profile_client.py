"""Profile the seeds_nb client path (``batch_generate``, tracking on) against the mock server at 0 ms.

Why: ``bench_throughput.py`` says *how much* CPU a request costs; this says *where*. It runs one warmed-up
batch under ``cProfile`` (default), ``pyinstrument`` (``--pyinstrument``) or the ``py-spy`` sampler
(``--py-spy``), optionally with a response cache (``--cache``: ``cache_dir=`` a fresh temporary directory,
every prompt distinct, so every answer is a miss that is written), and prints

* own time grouped by package, so the split between seeds_nb, httpx, the httpx-aiohttp transport,
  aiohttp, asyncio and the tracking libraries is visible at a glance;
* the top functions by own time, overall and per layer: seeds_nb's (``seeds_nb/core``,
  ``seeds_nb/providers``) and the HTTP layer's (httpx, httpx-aiohttp, aiohttp with multidict and yarl),
  in µs per request with their ``file:line``;
* (cProfile) seeds_nb's own functions by cumulative time.

cProfile adds overhead to every Python call, so its absolute figures are inflated (roughly 2x, more for
small functions called often) and it sees only the thread that enabled it (not the cache's writer
thread); compare its shares and call counts. ``--py-spy`` samples every thread of a fresh worker process
from outside (``pip install py-spy``; not a project dependency), so it barely slows the client, and turns
samples into µs per request by scaling them to the worker's measured CPU time (the sum over functions is
the real CPU per request). Its "own" time is a function's own Python code *plus* the C code it calls
directly (``json.loads``' C scanner shows under ``raw_decode``, aiohttp's C parser under its caller), and it
adds an "attributed" view that charges standard-library and builtin time to the nearest seeds_nb / HTTP
layer / tracking-library caller, i.e. what that function's line of code costs. It runs the batch without
and with a cache (``--configs``) and prints what the cache adds, function by function. Time in CPython's
cyclic garbage collector is measured apart (``gc.callbacks``): a collection runs on whichever allocation
crosses the threshold, so its samples land on random functions, inflating those that allocate.

``--send-paths`` instead measures (unprofiled, real CPU per request) three ways of sending the same request
that ``BaseClient._send_once`` could use, with the same worker-pool harness: ``httpx.AsyncClient.post``
over the httpx-aiohttp transport (what seeds_nb did first), an ``httpx.Request`` handed straight to that
transport (no AsyncClient layer; what ``seeds_nb.core.http.post`` does), and an ``aiohttp.ClientSession``
directly. It prices the options for cutting the HTTP layer's cost.

Run: ``python benchmarks/profile_client.py [--n 2000] [--concurrency 64] [--top 25] [--cache] [--pyinstrument]``,
``python benchmarks/profile_client.py --py-spy [--n 20000] [--rate 1000] [--configs nocache,cache] [--json out.json]``,
``python benchmarks/profile_client.py --send-paths [--reps 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import (
    API_KEY,
    MODEL,
    GCTimer,
    MockServerProcess,
    median,
    prompt_for,
    run_worker,
    short_path,
    thread_cpu_seconds,
)

SCRIPT = Path(__file__).resolve()

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
    ("/sqlite3/", "sqlite3"),
)
HTTP_LAYER = frozenset({"httpx", "httpx-aiohttp transport", "aiohttp"})
# Groups whose functions the "attributed" view charges library time to (the code someone could change).
OWNERS = frozenset({"seeds_nb", "genai-prices", "ecologits", "pydantic", *HTTP_LAYER})
_STDLIB = sysconfig.get_paths()["stdlib"]


def group_of(filename: str) -> str:
    for marker, name in GROUPS:
        if marker in filename:
            return name
    if filename == "~":
        return "builtins (C)"
    if filename.startswith(_STDLIB) and "site-packages" not in filename:
        return "stdlib (other)"
    if filename == str(SCRIPT):
        return "this script"
    return "other"


async def batch(url: str, n: int, concurrency: int, start: Callable[[], Any], stop: Callable[[], Any],
                cache_dir: str | None = None) -> float:
    """A warmed-up client sends ``n`` prompts; only that batch runs between ``start()`` and ``stop()``.

    With ``cache_dir`` every prompt is distinct (the warm-up's too), so each is a miss that is written.
    """
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY, cache_dir=cache_dir) as client:
        await client.batch_generate([prompt_for(i, "warm") for i in range(200)], max_concurrent=concurrency)
        prompts = [prompt_for(i, "profiled") for i in range(n)]
        start()
        result = await client.batch_generate(prompts, max_concurrent=concurrency)
        stop()
        assert result.successful_count == n, result
        assert not any(r.cached for r in result.responses if r is not None), "a profiled prompt was a cache hit"
        return result.total_duration_seconds


# (where, group, seconds, calls or None): one function's own time, however it was measured.
Row = tuple[str, str, float, float | None]


def print_layers(rows: Iterable[Row], n: int | None, top: int, what: str) -> None:
    """The top functions of seeds_nb, of the HTTP layer and of the rest, in µs per request (rows in
    seconds over ``n`` requests, or already in µs per request when ``n`` is None)."""
    scale = 1.0 if n is None else 1e6 / n
    rows = sorted(((w, g, v * scale, None if c is None or n is None else c / n) for w, g, v, c in rows),
                  key=lambda r: -r[2])
    layers = (("seeds_nb (seeds_nb/core, seeds_nb/providers)", lambda g: g == "seeds_nb"),
              ("HTTP layer (httpx, httpx-aiohttp, aiohttp + multidict/yarl)", lambda g: g in HTTP_LAYER),
              ("everything else", lambda g: g != "seeds_nb" and g not in HTTP_LAYER))
    for title, member in layers:
        chosen = [r for r in rows if member(r[1])]
        total = sum(r[2] for r in chosen)
        print(f"\n{what}, {title}: {total:.1f} us/req in all; top {top}")
        for where, group, us, calls in chosen[:top]:
            per_call = f"{calls:6.2f} calls/req " if calls is not None else ""
            print(f"  {us:7.1f} us/req  {per_call}{where}{'' if member is layers[0][1] else f'  [{group}]'}")


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

    print_layers(((f"{short_path(f)}:{line}({func})", group_of(f), v[2], v[1]) for (f, line, func), v in raw.items()),
                 n, top, "cProfile own time")

    ours = [kv for kv in raw.items() if "/seeds_nb/" in kv[0][0]]
    ours.sort(key=lambda kv: -kv[1][3])
    print(f"\nseeds_nb functions by cumulative time (us per request, top {top})")
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in ours[:top]:
        where = f"{short_path(filename)}:{line}({func})"
        print(f"  {cumtime / n * 1e6:8.1f} cum {tottime / n * 1e6:7.1f} own {ncalls / n:6.2f} calls/req  {where}")



# ------------------------------------------------------------------------------------------ py-spy
CONFIGS = ("nocache", "cache")
_FRAME = re.compile(r"^(?P<func>.+) \((?P<file>[^()]+):(?P<line>\d+)\)$")


def _pyspy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("--py-spy needs py-spy: pip install py-spy (into this venv; it is not a project dependency)")
    return found


def _attach_spy(rate: int, out: str) -> tuple[subprocess.Popen[str], str]:
    """Start py-spy on this process and return once it samples (blocking on purpose: nothing else runs).

    ``--function``: one row per function (its first line); ``--threads``: each stack starts with its
    thread's name (the cache's writer is ``seeds_nb-cache``); ``--nonblocking``: read the process's memory
    without stopping it (no slow-down of the client); ``--full-filenames``: paths to group by package.
    """
    spy = subprocess.Popen([_pyspy(), "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format",
                            "raw", "--function", "--threads", "--full-filenames", "--nonblocking", "-o", out],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert spy.stdout is not None
    first = spy.stdout.readline()  # "py-spy> Sampling process ..." once it is attached
    time.sleep(0.3)  # idle, so not sampled: let it settle
    return spy, first


def _detach_spy(spy: subprocess.Popen[str]) -> str:
    spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    rest, _ = spy.communicate(timeout=120)
    return rest


async def _spied_batch(url: str, n: int, concurrency: int, cache_dir: str | None, rate: int,
                       out: str) -> dict[str, Any]:
    """Warm up, attach py-spy to this process, run the batch, detach: only the batch is sampled."""
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY, cache_dir=cache_dir) as client:
        await client.batch_generate([prompt_for(i, "warm") for i in range(200)], max_concurrent=concurrency)
        prompts = [prompt_for(i, "spied") for i in range(n)]
        gc.collect()
        spy, first = _attach_spy(rate, out)
        threads_before = {t.native_id: thread_cpu_seconds(t.native_id) for t in threading.enumerate()}
        gc_timer = GCTimer()
        gc.callbacks.append(gc_timer)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        result = await client.batch_generate(prompts, max_concurrent=concurrency)
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        gc.callbacks.remove(gc_timer)
        threads = {}
        for t in threading.enumerate():  # exact CPU per thread (py-spy's split between threads is not)
            before, after = threads_before.get(t.native_id), thread_cpu_seconds(t.native_id)
            if after is not None:
                threads[str(t.native_id)] = {"name": t.name, "cpu_s": after - (before or 0.0)}
        rest = _detach_spy(spy)
        writes = client.cache.writes if client.cache is not None else 0
    assert result.successful_count == n, result
    cached = sum(1 for r in result.responses if r is not None and r.cached)
    return {"cpu_s": cpu, "wall_s": wall, "n": n, "rate": rate, "cached": cached, "writes": writes,
            "threads": threads, "gc_s": gc_timer.seconds, "gc_collections": gc_timer.collections,
            "pyspy": (first + rest).strip().splitlines()[-3:]}


def spy_worker(args: argparse.Namespace) -> None:
    """One sampled batch in this fresh process; prints a JSON line for the parent."""
    if args.spy_worker == "cache":
        with tempfile.TemporaryDirectory(prefix="seeds_nb_profile_cache_") as cache_dir:
            out = asyncio.run(_spied_batch(args.url, args.n, args.concurrency, cache_dir, args.rate, args.out))
    else:
        out = asyncio.run(_spied_batch(args.url, args.n, args.concurrency, None, args.rate, args.out))
    print(json.dumps(out))


Stack = tuple[str, list[tuple[str, str, int]], int]  # (thread id, frames root first, samples)


def parse_collapsed(path: Path) -> list[Stack]:
    """py-spy's raw output: one ``thread (tid): name;root;...;leaf count`` line per distinct stack.

    Frames that are not ``func (file.py:line)`` are dropped: the thread marker (kept as the thread's
    name), and the odd garbled frame that sampling without stopping the process can read.
    """
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread = "?"
        frames = []
        for frame in stack.split(";"):
            frame = frame.strip()
            if frame.startswith("thread ("):  # "thread (12345): MainThread"
                thread = frame[len("thread ("):].split(")", 1)[0]
                continue
            m = _FRAME.match(frame)
            if m and (m["file"].endswith(".py") or m["file"].startswith("<")):
                frames.append((m["func"], m["file"], int(m["line"])))
        if frames:
            stacks.append((thread, frames, int(count)))
    return stacks


def spy_profile(stacks: list[Stack], run: dict[str, Any]) -> dict[str, Any]:
    """Samples -> µs per request: own (leaf) and attributed time per function, per package, per thread.

    Each thread's samples are scaled to that thread's CPU time, measured from ``/proc`` (threads py-spy saw
    that the worker could not measure share what is left of the process's CPU): py-spy counts a thread
    that is runnable but waiting for a core as active, and on 2 cores shared with the server and py-spy
    itself that happens unevenly (the cache's writer thread waits for a core, and for the GIL, more).
    """
    n = run["n"]
    samples: dict[str, int] = defaultdict(int)
    for thread, _, count in stacks:
        samples[thread] += count
    measured = {tid: info["cpu_s"] for tid, info in run.get("threads", {}).items() if tid in samples}
    rest_cpu = max(0.0, run["cpu_s"] - sum(measured.values()))
    rest_samples = sum(c for tid, c in samples.items() if tid not in measured)
    scale = {tid: (measured[tid] / c if tid in measured else rest_cpu / rest_samples if rest_samples else 0.0)
             / n * 1e6 for tid, c in samples.items() if c}
    names = {tid: info["name"] for tid, info in run.get("threads", {}).items()}
    total = sum(samples.values())
    own: dict[tuple[str, str], float] = defaultdict(float)
    attributed: dict[tuple[str, str], float] = defaultdict(float)
    groups: dict[str, float] = defaultdict(float)
    threads: dict[str, float] = defaultdict(float)
    for thread, frames, count in stacks:
        us = count * scale.get(thread, 0.0)
        func, file, line = frames[-1]
        group = group_of(file)
        own[(f"{short_path(file)}:{line}({func})", group)] += us
        groups[group] += us
        threads[names.get(thread, f"thread {thread}")] += us
        for caller, where, first in reversed(frames):  # the nearest caller someone could change
            if group_of(where) in OWNERS:
                attributed[(f"{short_path(where)}:{first}({caller})", group_of(where))] += us
                break
        else:  # none (the event loop's own work): the leaf itself
            attributed[(f"{short_path(file)}:{line}({func})", group)] += us
    return {"samples": total, "sampled_s": total / run["rate"], "cpu_s": run["cpu_s"], "n": run["n"],
            "gc_us_per_req": run["gc_s"] / n * 1e6, "gc_collections": run["gc_collections"],
            "cpu_us_per_req": run["cpu_s"] / run["n"] * 1e6, "req_s": run["n"] / run["wall_s"],
            "own": {f"{w}\t{g}": v for (w, g), v in own.items()},
            "attributed": {f"{w}\t{g}": v for (w, g), v in attributed.items()},
            "groups": dict(groups), "threads": dict(threads)}


def _rows(table_: dict[str, float]) -> list[Row]:
    rows: list[Row] = []
    for key, us in table_.items():
        where, group = key.split("\t")
        rows.append((where, group, us, None))  # already µs per request
    return rows


def report_spy(name: str, prof: dict[str, Any], top: int) -> None:
    print(f"\n==== py-spy, {name}: {prof['n']:,} requests, {prof['req_s']:,.0f} req/s while sampled, "
          f"{prof['cpu_us_per_req']:.0f} us CPU/req (process_time); {prof['samples']:,} samples = "
          f"{prof['sampled_s']:.2f} s of {prof['cpu_s']:.2f} s CPU")
    print(f"cyclic GC: {prof['gc_us_per_req']:.1f} us/req (collections by generation: {prof['gc_collections']}); "
          "its samples are scattered over the functions that happened to allocate when it ran")
    print("CPU per request by thread (measured from /proc; samples are scaled to it per thread):")
    for thread, us in sorted(prof["threads"].items(), key=lambda kv: -kv[1]):
        print(f"  {us:7.1f} us/req  {thread}")
    print("own time by package (us per request; C code called directly counts with its caller):")
    for group, us in sorted(prof["groups"].items(), key=lambda kv: -kv[1]):
        print(f"  {us:7.1f} us/req  {group}")
    print_layers(_rows(prof["own"]), None, top, f"py-spy own time ({name})")
    print_layers(_rows(prof["attributed"]), None, top,
                 f"py-spy attributed time ({name}: own + the stdlib/builtins it calls)")


def report_spy_diff(base: dict[str, Any], other: dict[str, Any], top: int) -> None:
    """What the cache adds (or removes), function by function, attributed view."""
    a, b = base["attributed"], other["attributed"]
    diff = {k: b.get(k, 0.0) - a.get(k, 0.0) for k in set(a) | set(b)}
    print(f"\n==== what the cache changes (attributed us/req, cache minus no cache; total "
          f"{other['cpu_us_per_req'] - base['cpu_us_per_req']:+.1f} us/req of process CPU)")
    for key, us in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:top]:
        where, group = key.split("\t")
        print(f"  {us:+7.1f} us/req  ({a.get(key, 0.0):6.1f} -> {b.get(key, 0.0):6.1f})  {where}  [{group}]")


def run_spy(args: argparse.Namespace) -> int:
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"--configs: unknown {', '.join(sorted(unknown))}; choose from {', '.join(CONFIGS)}")
    _pyspy()
    profiles: dict[str, dict[str, Any]] = {}
    with MockServerProcess(0.0) as server, tempfile.TemporaryDirectory(prefix="seeds_nb_spy_") as tmp:
        for config in configs:
            out = Path(tmp) / f"{config}.txt"
            run = run_worker(SCRIPT, ["--spy-worker", config, "--url", server.url, "--n", str(args.n),
                                      "--concurrency", str(args.concurrency), "--rate", str(args.rate),
                                      "--out", str(out)], 900.0)
            if config == "cache" and (run["writes"] < args.n or run["cached"]):
                raise SystemExit(f"the cache run did not write every answer: {run}")
            profiles[config] = spy_profile(parse_collapsed(out), run)
            profiles[config]["pyspy_output"] = run["pyspy"]
    for config, prof in profiles.items():
        report_spy(config, prof, args.top)
    if "nocache" in profiles and "cache" in profiles:
        report_spy_diff(profiles["nocache"], profiles["cache"], args.top)
    if args.json is not None:
        args.json.write_text(json.dumps({"benchmark": "profile", "tool": "py-spy", "config": {
            "n": args.n, "concurrency": args.concurrency, "rate": args.rate}, "profiles": profiles}, indent=2))
        print(f"wrote {args.json}")
    return 0


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
    parser.add_argument("--n", type=int, default=None, help="requests (default 2000; 20000 with --py-spy)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--cache", action="store_true",
                        help="cache_dir= a fresh temp dir (every answer a miss that is written)")
    parser.add_argument("--pyinstrument", action="store_true", help="use pyinstrument instead of cProfile")
    parser.add_argument("--py-spy", action="store_true",
                        help="sample with py-spy in fresh workers, without and with a cache (default N 20000)")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="--py-spy: which of nocache,cache to run")
    parser.add_argument("--json", type=Path, default=None, help="--py-spy: also write every figure to this file")
    parser.add_argument("--send-paths", action="store_true", help="compare ways of sending a request instead")
    parser.add_argument("--reps", type=int, default=3, help="runs per variant (--send-paths)")
    parser.add_argument("--spy-worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.spy_worker:
        spy_worker(args)
        return 0
    if args.py_spy:
        if args.n is None:
            args.n = 20_000
        return run_spy(args)
    if args.n is None:
        args.n = 2000
    with MockServerProcess(0.0) as server, contextlib.ExitStack() as stack:
        cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="seeds_nb_profile_cache_")) \
            if args.cache else None
        if args.send_paths:
            asyncio.run(compare_send_paths(server.url, args.n, args.concurrency, args.reps))
            return 0
        if args.pyinstrument:
            from pyinstrument import Profiler

            sampler = Profiler(async_mode="disabled")
            asyncio.run(batch(server.url, args.n, args.concurrency, sampler.start, sampler.stop, cache_dir))
            print(sampler.output_text(unicode=True, color=False, show_all=False))
            return 0
        profiler = cProfile.Profile()
        seconds = asyncio.run(batch(server.url, args.n, args.concurrency, profiler.enable, profiler.disable,
                                    cache_dir))
    print(f"batch of {args.n:,} under cProfile{' with a cache (all misses)' if args.cache else ''}: {seconds:.2f} s "
          f"({args.n / seconds:,.0f} req/s, profiled)")
    report_cprofile(profiler, args.n, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
