"""Memory of seeds_nb batches: bytes kept per response, and whether streaming stays flat in N.

What it answers:

(a) ``batch_generate`` keeps a ``BatchResult`` with every ``Response``: how many bytes does one response
    cost while the result is alive? Measured two ways, each in its own fresh worker process:
    ``tracemalloc`` (traced bytes after the batch minus before, exact and allocator-independent) and the
    RSS delta (what the OS sees, including allocator slack; measured without tracemalloc, whose own
    bookkeeping would inflate it).
(b) ``batch_generate_iter`` consumed and discarded item by item: does the peak traced memory stay flat
    when N grows 4x (5,000 -> 20,000)? If something keeps every item, the peak grows with N.

Prompts come from a generator (the batch never sees a list), every prompt is distinct, no cache, and the
mock server (0 ms latency) is a subprocess so its memory is not in the figures. Each worker warms the
client up first (connections open, tracking calibrated) and only then starts ``tracemalloc``, so what is
traced is what the measured batch allocated. Tracing slows the client a few times; these runs measure
memory, not speed.

Run: ``python benchmarks/bench_memory.py [--n 20000] [--small-n 5000] [--concurrency 64] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Iterator, Sequence
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
    peak_rss_bytes,
    print_machine,
    prompt_for,
    run_worker,
    short_path,
    table,
    verdict,
)

SCRIPT = Path(__file__).resolve()
MODES = ("retained-traced", "retained-rss", "iter")
RETAINED_TARGET_B = 2000  # bytes per response kept by a batch result (2 KB, decimal; issue #12)
FLAT_TARGET = 1.25  # peak(N) / peak(N/4) for the streaming API: ~1 means flat, 4 means linear
WARMUP = 300
WORKER_TIMEOUT_S = 900.0
TOP_SITES = 8


def prompts(n: int, tag: str) -> Iterator[str]:
    """A generator, as a caller streaming prompts from a file or a database would pass."""
    return (prompt_for(i, tag) for i in range(n))


# ------------------------------------------------------------------------------------------ worker side
def _start_tracing() -> int:
    """Trace from here on (after imports and warm-up, so they cost nothing and the snapshots stay small);
    what is traced afterwards is what the measured batch allocated."""
    gc.collect()
    tracemalloc.start(1)
    return tracemalloc.get_traced_memory()[0]


def _top_sites(n: int) -> list[dict[str, Any]]:
    """Where the traced bytes still alive were allocated (file:line), biggest first, per item."""
    stats = tracemalloc.take_snapshot().statistics("lineno")
    out = []
    for stat in stats[:TOP_SITES]:
        frame = stat.traceback[0]
        out.append({"site": f"{short_path(frame.filename)}:{frame.lineno}", "bytes_per_item": stat.size / n,
                    "blocks_per_item": stat.count / n})
    return out



async def _retained(url: str, n: int, concurrency: int, traced: bool) -> dict[str, Any]:
    """(a): keep the ``BatchResult`` alive and measure what it (and anything else the batch left) holds."""
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY) as client:
        await client.batch_generate(prompts(WARMUP, "warm"), max_concurrent=concurrency)
        client.last_run = None  # the warm-up's result is garbage, not baseline
        gc.collect()
        rss_before = current_rss_bytes()
        traced_before = _start_tracing() if traced else 0
        started = time.perf_counter()
        result = await client.batch_generate(prompts(n, "kept"), max_concurrent=concurrency)
        seconds = time.perf_counter() - started
        gc.collect()
        out: dict[str, Any] = {"ok": result.successful_count, "seconds": seconds}
        if traced:
            out["traced_delta"] = tracemalloc.get_traced_memory()[0] - traced_before
            out["top_sites"] = _top_sites(n)
        else:
            out["rss_delta"] = current_rss_bytes() - rss_before
        sample = next(r for r in result.responses if r is not None)
        out["sample_raw_bytes"] = len(sample._raw)
        out["sample_content_chars"] = len(sample.content)
        del result
    return out


async def _iterate(url: str, n: int, concurrency: int) -> dict[str, Any]:
    """(b): consume ``batch_generate_iter`` item by item, keep nothing, record the traced peak."""
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY) as client:
        await client.batch_generate(prompts(WARMUP, "warm"), max_concurrent=concurrency)
        client.last_run = None
        baseline = _start_tracing()
        ok = 0
        started = time.perf_counter()
        async for _index, item in client.batch_generate_iter(prompts(n, "iter"), max_concurrent=concurrency):
            ok += not isinstance(item, Exception)
            del item  # discard: the only reference the caller had
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - baseline
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - baseline  # what stays once the loop is over
        sites = _top_sites(n)
    return {"ok": ok, "seconds": seconds, "peak_delta": peak, "after_delta": after, "top_sites": sites}


def worker_main(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints a JSON line for the parent."""
    if args.worker == "iter":
        out = asyncio.run(_iterate(args.url, args.n, args.concurrency))
    else:
        out = asyncio.run(_retained(args.url, args.n, args.concurrency, traced=args.worker == "retained-traced"))
    out.update(mode=args.worker, n=args.n, peak_rss=peak_rss_bytes())
    print(json.dumps(out))


# ------------------------------------------------------------------------------------------ parent side
def _run(mode: str, n: int, server: MockServerProcess, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    out = run_worker(SCRIPT, ["--worker", mode, "--url", server.url, "--n", str(n),
                              "--concurrency", str(args.concurrency)], WORKER_TIMEOUT_S)
    print(f"   {mode:16s} N={n:>6,}: done in {time.perf_counter() - started:5.1f} s, ok {out['ok']}/{n}", flush=True)
    return out


def report(traced: dict[str, Any], rss: dict[str, Any], small: dict[str, Any], big: dict[str, Any],
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    n = traced["n"]
    per_response = traced["traced_delta"] / n
    rss_per_response = rss["rss_delta"] / rss["n"]
    flat = big["peak_delta"] / small["peak_delta"] if small["peak_delta"] > 0 else float("inf")
    slope = (big["peak_delta"] - small["peak_delta"]) / (big["n"] - small["n"])
    print(f"\n-- (a) batch_generate, N={n:,}, result kept alive (a response body is "
          f"{traced['sample_raw_bytes']} B of JSON, content {traced['sample_content_chars']} chars)")
    rows = [["tracemalloc: traced bytes retained", f"{traced['traced_delta'] / 1e6:,.1f} MB",
             f"{per_response:,.0f} B"],
            ["RSS delta (no tracemalloc)", f"{rss['rss_delta'] / 1e6:,.1f} MB", f"{rss_per_response:,.0f} B"]]
    for line in table(rows, ["measure", "total", "per response"]):
        print("   " + line)
    print("   where the retained bytes were allocated (per response):")
    for site in traced["top_sites"]:
        print(f"     {site['bytes_per_item']:7,.0f} B  {site['blocks_per_item']:5.1f} blocks  {site['site']}")
    print("\n-- (b) batch_generate_iter, items discarded as they arrive")
    rows = [[f"N={r['n']:,}", f"{r['peak_delta'] / 1e6:,.2f} MB", f"{r['peak_delta'] / r['n']:,.0f} B",
             f"{r['after_delta'] / 1e6:,.2f} MB"] for r in (small, big)]
    for line in table(rows, ["batch", "peak traced", "peak / N", "still held after the loop"]):
        print("   " + line)
    print(f"   peak ratio N={big['n']:,} / N={small['n']:,} = {flat:.2f} (1 = flat, "
          f"{big['n'] / small['n']:.0f} = linear); growth {slope:,.0f} B per extra item")
    if big["after_delta"] > 0.1 * big["peak_delta"]:
        print(f"   still held after the N={big['n']:,} loop, by allocation site (per item):")
        for site in big["top_sites"][:5]:
            print(f"     {site['bytes_per_item']:7,.0f} B  {site['blocks_per_item']:5.1f} blocks  {site['site']}")
    targets = [
        {"target": f"retained per response (tracemalloc) <= {RETAINED_TARGET_B:,} B", "value": round(per_response),
         "pass": per_response <= RETAINED_TARGET_B},
        {"target": f"batch_generate_iter peak flat in N (ratio <= {FLAT_TARGET})", "value": round(flat, 2),
         "pass": flat <= FLAT_TARGET},
    ]
    print("\n-- targets")
    for t in targets:
        print(f"   {verdict(t['pass'])}  {t['target']}: {t['value']}")
    summary = {"retained_traced_b_per_response": per_response, "retained_rss_b_per_response": rss_per_response,
               "iter_peak_small_b": small["peak_delta"], "iter_peak_big_b": big["peak_delta"],
               "iter_peak_ratio": flat, "iter_growth_b_per_item": slope}
    return summary, targets


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=20_000, help="prompts in the big batches (default 20000)")
    parser.add_argument("--small-n", type=int, default=5_000, help="prompts in the small streaming batch")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    info = machine_info()
    print_machine(info)
    print(f"config: N={args.n:,} (streaming also N={args.small_n:,}), concurrency={args.concurrency}, "
          f"model={MODEL}, prompts from a generator, no cache, server latency 0 ms")
    started = time.perf_counter()
    with MockServerProcess(0.0) as server:
        print(f"\n== {server.url} (pid {server.pid})", flush=True)
        rss = _run("retained-rss", args.n, server, args)
        traced = _run("retained-traced", args.n, server, args)
        small = _run("iter", args.small_n, server, args)
        big = _run("iter", args.n, server, args)
    summary, targets = report(traced, rss, small, big)
    print(f"\ntotal time {time.perf_counter() - started:.0f} s; load average at the end {load_average():.2f} "
          "(the benchmark itself accounts for up to ~2)")
    if args.json is not None:
        config = {k: v for k, v in vars(args).items() if k not in ("worker", "url", "json")}
        runs = {"retained_traced": traced, "retained_rss": rss, "iter_small": small, "iter_big": big}
        args.json.write_text(json.dumps({"benchmark": "memory", "machine": info, "config": config, "runs": runs,
                                         "summary": summary, "targets": targets}, indent=2, default=str))
        print(f"wrote {args.json}")
    return 1 if args.strict and not all(t["pass"] for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
