"""Throughput and client CPU of a seeds_nb batch against the same batch sent with raw aiohttp.

What it answers: how much does seeds_nb's convenience (httpx API, retries, rate gate, per-request cost
and EcoLogits carbon tracking, result bookkeeping) cost next to the leanest reasonable client, a bare
``aiohttp.ClientSession`` with a pool of workers? Two reference rows: seeds_nb's own HTTP path (httpx
objects over the httpx-aiohttp transport) used bare, which splits the gap into "HTTP layer" and "seeds_nb's
own code"; and plain ``httpx.AsyncClient`` once, the obvious alternative, known to be slow under concurrency.

How it measures, and why:

* the mock server runs as a subprocess (one per latency setting), so it does not share the GIL or the
  CPU-time counter with the client;
* every measured run is a fresh worker process (``--worker``) that first sends a warm-up batch on the
  same client (connections open, EcoLogits calibrated, code paths warm), then the timed batch; so the
  CPU time (``time.process_time()``) and peak RSS (``ru_maxrss``) are that client's alone;
* seeds_nb, raw aiohttp and the bare HTTP path take turns, ``--reps`` times each, so drift on a shared
  machine hits all of them;
* every request has a distinct prompt and no cache is configured: nothing is deduplicated or skipped;
  prompts vary in length like real ones (``--uniform-prompts`` for equal lengths; see ``prompt_for``);
* the server's own CPU time per request is read from ``/proc`` and printed, with the share of one core it
  used ("server busy"): near 100% at 0 ms latency means the *server* was the bottleneck (then raw
  aiohttp's req/s is the server's limit, not the client's, and the ratio flatters seeds_nb).

Run: ``python benchmarks/bench_throughput.py [--n 2000] [--concurrency 64] [--reps 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import (
    API_KEY,
    MODEL,
    MockServerProcess,
    current_rss_bytes,
    load_average,
    machine_info,
    median,
    peak_rss_bytes,
    print_machine,
    process_cpu_seconds,
    prompt_for,
    run_worker,
    spread,
    table,
    verdict,
)

SCRIPT = Path(__file__).resolve()
VARIANTS = ("seeds_nb", "httpx_aiohttp", "aiohttp", "httpx")
ALTERNATING = ("seeds_nb", "aiohttp", "httpx_aiohttp")  # httpx (slow) runs once, after these
LABELS = {"seeds_nb": "seeds_nb (tracking on)", "httpx_aiohttp": "seeds_nb's HTTP path, bare",
          "aiohttp": "raw aiohttp", "httpx": "httpx.AsyncClient (default)"}
RATIO_TARGETS = {0.0: 0.30, 0.05: 0.85}  # seeds_nb / raw aiohttp throughput, by server latency (s)
CPU_TARGET_US = 600.0  # seeds_nb client CPU per request, tracking on
WORKER_TIMEOUT_S = 600.0


# ------------------------------------------------------------------------------------------ worker side
def _body(prompt: str) -> bytes:
    """The JSON body seeds_nb's OpenAIClient sends for a one-message prompt (same keys, same encoding)."""
    payload = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


HEADERS = {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}


async def _pool(prompts: Sequence[str], concurrency: int, send: Callable[[str], Awaitable[Any]]) -> list[Any]:
    """``concurrency`` workers pulling from one iterator: the lean hand-written batch loop.

    A worker pool (rather than a task per prompt behind a semaphore) keeps the raw baselines as cheap
    as a careful person would write them, so the ratio is not flattered.
    """
    results: list[Any] = [None] * len(prompts)
    work: Iterator[tuple[int, str]] = iter(enumerate(prompts))

    async def worker() -> None:
        for index, prompt in work:
            results[index] = await send(prompt)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def _run_seeds_nb(url: str, warm: list[str], prompts: list[str], concurrency: int,
                       server_pid: int) -> dict[str, Any]:
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY) as client:
        await client.batch_generate(warm, max_concurrent=concurrency)
        result, timing = await _timed(server_pid, lambda: client.batch_generate(prompts, max_concurrent=concurrency))
    timing["ok"] = result.successful_count
    # Proof that tracking ran for every response (a None would mean it silently did not).
    timing["tracked"] = sum(1 for r in result.responses
                            if r is not None and r.tracking.cost_usd is not None and r.tracking.gwp_kgco2eq)
    timing["cost_usd"] = result.total_cost_usd
    timing["gwp_kgco2eq"] = result.total_gwp_kgco2eq
    return timing


async def _run_aiohttp(url: str, warm: list[str], prompts: list[str], concurrency: int,
                       server_pid: int) -> dict[str, Any]:
    import aiohttp

    endpoint = url + "/chat/completions"
    connector = aiohttp.TCPConnector(limit=concurrency)  # one connection per concurrent request
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(prompt: str) -> Any:
            async with session.post(endpoint, data=_body(prompt), headers=HEADERS) as response:
                data = json.loads(await response.read())
                return data if response.status == 200 else None

        await _pool(warm, concurrency, send)
        results, timing = await _timed(server_pid, lambda: _pool(prompts, concurrency, send))
    timing["ok"] = sum(1 for r in results if r is not None and r["choices"])
    return timing


async def _run_httpx_aiohttp(url: str, warm: list[str], prompts: list[str], concurrency: int,
                             server_pid: int) -> dict[str, Any]:
    """seeds_nb's own HTTP path (httpx objects over the httpx-aiohttp transport) without seeds_nb around it.

    Sits between raw aiohttp and seeds_nb, so the gap splits into "cost of the httpx layer" and "cost of
    seeds_nb's own code" (batch engine, parsing, tracking). It sends the way ``BaseClient._send_once``
    does: through ``seeds_nb.core.http.post`` (straight to the transport) when that exists, else with
    ``AsyncClient.post`` as older versions did; ``http_path`` in the output says which.
    """
    import httpx

    from seeds_nb.core import http as seeds_http

    endpoint = httpx.URL(url + "/chat/completions")
    direct = getattr(seeds_http, "post", None)
    async with seeds_http.make_http_client(60.0) as client:

        async def send(prompt: str) -> Any:
            if direct is not None:
                response = await direct(client, endpoint, _body(prompt), HEADERS, 60.0)
            else:
                response = await client.post(endpoint, content=_body(prompt), headers=HEADERS)
            return json.loads(response.content) if response.status_code == 200 else None

        await _pool(warm, concurrency, send)
        results, timing = await _timed(server_pid, lambda: _pool(prompts, concurrency, send))
    timing["ok"] = sum(1 for r in results if r is not None and r["choices"])
    timing["http_path"] = "seeds_nb.core.http.post" if direct is not None else "httpx.AsyncClient.post"
    return timing


async def _run_httpx(url: str, warm: list[str], prompts: list[str], concurrency: int,
                   server_pid: int) -> dict[str, Any]:
    import httpx

    endpoint = url + "/chat/completions"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:

        async def send(prompt: str) -> Any:
            response = await client.post(endpoint, content=_body(prompt), headers=HEADERS)
            return response.json() if response.status_code == 200 else None

        await _pool(warm, concurrency, send)
        results, timing = await _timed(server_pid, lambda: _pool(prompts, concurrency, send))
    timing["ok"] = sum(1 for r in results if r is not None and r["choices"])
    return timing


async def _timed(server_pid: int, run: Callable[[], Awaitable[Any]]) -> tuple[Any, dict[str, Any]]:
    """Await ``run()`` between wall-clock, process-CPU, server-CPU and RSS readings."""
    gc.collect()  # start from a clean heap, so one run does not pay for the warm-up's garbage
    rss_before = current_rss_bytes()
    server_before = process_cpu_seconds(server_pid) if server_pid else None
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    out = await run()
    wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
    server_after = process_cpu_seconds(server_pid) if server_pid else None
    server_cpu = server_after - server_before if server_before is not None and server_after is not None else None
    return out, {"wall_s": wall, "cpu_s": cpu, "server_cpu_s": server_cpu, "rss_before": rss_before,
                 "rss_after": current_rss_bytes()}


def worker_main(args: argparse.Namespace) -> None:
    """One measured run in this (fresh) process; prints a JSON line for the parent."""
    varied = not args.uniform_prompts
    warm = [prompt_for(i, f"warm-{args.tag}", varied=varied) for i in range(args.warmup)]
    prompts = [prompt_for(i, "timed", varied=varied) for i in range(args.n)]  # same bodies for every client/rep
    runner = {"seeds_nb": _run_seeds_nb, "aiohttp": _run_aiohttp, "httpx_aiohttp": _run_httpx_aiohttp,
              "httpx": _run_httpx}[args.worker]
    out = asyncio.run(runner(args.url, warm, prompts, args.concurrency, args.server_pid))
    out.update(variant=args.worker, n=args.n, peak_rss=peak_rss_bytes())
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------ parent side
def _worker_args(variant: str, server: MockServerProcess, n: int, args: argparse.Namespace, tag: str) -> list[str]:
    return ["--worker", variant, "--url", server.url, "--server-pid", str(server.pid), "--n", str(n),
            "--concurrency", str(args.concurrency), "--warmup", str(args.warmup), "--tag", tag,
            *(["--uniform-prompts"] if args.uniform_prompts else [])]


def _per_request_us(run: dict[str, Any], key: str) -> float:
    value = run.get(key)
    return float("nan") if value is None else value / run["n"] * 1e6


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["ok"] / r["wall_s"] for r in runs]
    cpu = [_per_request_us(r, "cpu_s") for r in runs]
    server = [_per_request_us(r, "server_cpu_s") for r in runs]
    busy = [r["server_cpu_s"] / r["wall_s"] for r in runs if r.get("server_cpu_s") is not None]
    return {
        "n": runs[0]["n"], "runs": len(runs), "req_s": median(rates), "req_s_all": rates,
        "cpu_us_per_req": median(cpu), "cpu_us_all": cpu, "server_cpu_us_per_req": median(server),
        "server_busy": median(busy),
        "peak_rss_mb": max(r["peak_rss"] for r in runs) / 1e6,
        "errors": sum(r["n"] - r["ok"] for r in runs),
    }


def bench_latency(latency_s: float, args: argparse.Namespace) -> dict[str, Any]:
    """All runs against one server process: seeds_nb / raw aiohttp / bare HTTP path in turn, then httpx once."""
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    with MockServerProcess(latency_s) as server:
        print(f"\n== server latency {latency_s * 1000:.0f} ms: {server.url} (pid {server.pid})", flush=True)
        for rep in range(1, args.reps + 1):
            for variant in ALTERNATING:
                run = run_worker(SCRIPT, _worker_args(variant, server, args.n, args, f"{variant}-{rep}"),
                                 WORKER_TIMEOUT_S)
                runs[variant].append(run)
                print(f"   rep {rep} {variant:13s} {run['ok'] / run['wall_s']:8,.0f} req/s  "
                      f"{_per_request_us(run, 'cpu_s'):6,.0f} us CPU/req  ok {run['ok']}/{run['n']}", flush=True)
        if args.httpx_n > 0:
            run = run_worker(SCRIPT, _worker_args("httpx", server, args.httpx_n, args, "httpx"), WORKER_TIMEOUT_S)
            runs["httpx"].append(run)
            print(f"   once  httpx         {run['ok'] / run['wall_s']:8,.0f} req/s  "
                  f"{_per_request_us(run, 'cpu_s'):6,.0f} us CPU/req  ok {run['ok']}/{run['n']}", flush=True)
    summary = {v: _summary(r) for v, r in runs.items() if r}
    summary["ratio"] = summary["seeds_nb"]["req_s"] / summary["aiohttp"]["req_s"]
    seeds_runs = runs["seeds_nb"]
    summary["tracking_complete"] = all(r["tracked"] == r["n"] for r in seeds_runs)
    return {"latency_s": latency_s, "summary": summary, "runs": runs}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Print the per-latency tables and the targets; return the target verdicts."""
    targets: list[dict[str, Any]] = []
    for res in results:
        latency_ms = res["latency_s"] * 1000
        s = res["summary"]
        rows = []
        for variant in VARIANTS:
            if variant not in s:
                continue
            v = s[variant]
            rows.append([LABELS[variant], f"{v['n']:,} x{v['runs']}", f"{v['req_s']:,.0f}",
                         spread(v["req_s_all"]), f"{v['cpu_us_per_req']:,.0f}", spread(v["cpu_us_all"]),
                         f"{v['server_cpu_us_per_req']:,.0f}", f"{v['server_busy']:.0%}", f"{v['peak_rss_mb']:,.0f}",
                         str(v["errors"])])
        header = ["client", "N x runs", "req/s (median)", "req/s range", "CPU us/req", "CPU range",
                  "server CPU us/req", "server busy", "peak RSS MB", "errors"]
        print(f"\n-- latency {latency_ms:.0f} ms, concurrency {args.concurrency}")
        for line in table(rows, header):
            print("   " + line)
        print(f"   ratio seeds_nb/raw aiohttp = {s['ratio']:.2f}; tracking on every response: "
              f"{s['tracking_complete']}")
        if "httpx_aiohttp" in s:
            raw, stack, ours = (s[v]["cpu_us_per_req"] for v in ("aiohttp", "httpx_aiohttp", "seeds_nb"))
            path = res["runs"]["httpx_aiohttp"][0].get("http_path", "?")
            print(f"   client CPU per request = {raw:,.0f} us raw aiohttp {stack - raw:+,.0f} us httpx layer "
                  f"({path}) {ours - stack:+,.0f} us seeds_nb's own code = {ours:,.0f} us")
        goal = RATIO_TARGETS.get(round(res["latency_s"], 3))
        if goal is not None:
            targets.append({"target": f"throughput ratio at {latency_ms:.0f} ms >= {goal:.2f}",
                            "value": round(s["ratio"], 3), "pass": s["ratio"] >= goal})
        cpu = s["seeds_nb"]["cpu_us_per_req"]
        targets.append({"target": f"seeds_nb CPU per request at {latency_ms:.0f} ms <= {CPU_TARGET_US:.0f} us",
                        "value": round(cpu, 1), "pass": cpu <= CPU_TARGET_US})
    print("\n-- targets")
    for t in targets:
        print(f"   {verdict(t['pass'])}  {t['target']}: {t['value']}")
    return targets


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per measured batch (default 2000)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--reps", type=int, default=3, help="alternating repetitions per client (default 3)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests before each timed batch")
    parser.add_argument("--httpx-n", type=int, default=None,
                        help="requests for the single plain-httpx reference run (default: --n; 0 skips it)")
    parser.add_argument("--latencies", default="0,50", help="server latencies in ms, comma-separated")
    parser.add_argument("--uniform-prompts", action="store_true",
                        help="equal-length prompts (seeds_nb's price cache then hits; default: varied lengths)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    # Worker mode (used by the parent; not meant to be called by hand).
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.httpx_n is None:
        args.httpx_n = args.n
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    info = machine_info()
    print_machine(info)
    print(f"config: N={args.n}, concurrency={args.concurrency}, reps={args.reps}, warm-up={args.warmup}, "
          f"httpx N={args.httpx_n}, model={MODEL}, no cache, distinct prompts of "
          f"{'equal' if args.uniform_prompts else 'varied'} length")
    started = time.perf_counter()
    latencies = [float(x) / 1000 for x in args.latencies.split(",") if x.strip()]
    results = [bench_latency(latency, args) for latency in latencies]
    targets = report(results, args)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s; load average at the end {load_average():.2f} "
          "(the benchmark itself accounts for up to ~2)")
    if args.json is not None:
        config = {k: v for k, v in vars(args).items() if k not in ("worker", "url", "server_pid", "tag", "json")}
        args.json.write_text(json.dumps({"benchmark": "throughput", "machine": info, "config": config,
                                         "results": results, "targets": targets}, indent=2, default=str))
        print(f"wrote {args.json}")
    return 1 if args.strict and not all(t["pass"] for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
