"""``client.map`` against ``batch_generate``, and the memory of a ``map`` into a sink (issue #13).

What it answers:

(a) What does ``map`` cost next to sending the same prompts with ``batch_generate``? It reads a pandas
    DataFrame's rows, fills a template per row and builds the output table with the added columns.
    Both run against the same mock server at 0 ms (a subprocess), N rows, alternating in fresh worker
    processes; the figure is the ratio of their req/s (target >= 0.9) and their CPU per row.
(b) Does a ``map`` with ``sink=`` stay flat in memory as the rows grow? Peak RSS of a worker mapping a
    generator of N rows into a Parquet sink, at N and 10 N (target: within +40 MB).
(c) Without a sink, what does a row cost while the output table and the run's result are alive?
    ``tracemalloc`` bytes after the map minus before (the input frame built before tracing starts), per
    row, in a fresh worker over ``--sink-n`` rows (target: <= 2.5 KB).

Run: ``python benchmarks/bench_map.py [--n 100000] [--sink-n 20000] [--reps 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import API_KEY, MODEL, MockServerProcess, machine_info, median, peak_rss_bytes, print_machine, run_worker

SCRIPT = Path(__file__).resolve()
RATIO_TARGET = 0.9
RETAINED_TARGET_B = 2500
FLAT_TARGET_MB = 40.0
WORKER_TIMEOUT_S = 1800.0


async def _worker(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=args.url, api_key=API_KEY) as client:
        await client.batch_generate([f"warm {i}" for i in range(200)], max_concurrent=args.concurrency)
        if args.worker == "sink":
            rows = ({"n": i, "topic": f"topic {i % 97}"} for i in range(args.n))
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                path = await client.map(rows, "Row {n}: say one thing about {topic}", sink=Path(tmp) / "out.parquet",
                                        max_concurrent=args.concurrency)
                elapsed = time.perf_counter() - started
                ok = client.last_run.ledger.succeeded if client.last_run else 0
                size = path.stat().st_size
            return {"elapsed_s": elapsed, "ok": ok, "peak_rss": peak_rss_bytes(), "file_bytes": size}
        frame = pd.DataFrame({"n": range(args.n), "topic": [f"topic {i % 97}" for i in range(args.n)]})
        if args.worker == "retained":
            import gc
            import tracemalloc

            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            kept = await client.map(frame, "Row {n}: say one thing about {topic}", max_concurrent=args.concurrency)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            alive = client.last_run is not None and len(client.last_run.result) == len(kept)
            return {"retained_b_per_row": (after - before) / args.n, "alive": alive}
        started_cpu, started = time.process_time(), time.perf_counter()
        if args.worker == "map":
            out = await client.map(frame, "Row {n}: say one thing about {topic}", max_concurrent=args.concurrency)
            ok = int((out["status"] == "ok").sum())
        else:
            prompts = [f"Row {n}: say one thing about {t}" for n, t in zip(frame["n"], frame["topic"], strict=True)]
            result = await client.batch_generate(prompts, max_concurrent=args.concurrency)
            ok = result.successful_count
        elapsed = time.perf_counter() - started
        return {"elapsed_s": elapsed, "cpu_s": time.process_time() - started_cpu, "ok": ok,
                "req_s": args.n / elapsed}


def worker_main(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_worker(args))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=100_000, help="rows for the throughput comparison")
    parser.add_argument("--sink-n", type=int, default=20_000, help="rows of the small sink run (the big one: 10x)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--worker", choices=("map", "batch", "sink", "retained"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    info = machine_info()
    print_machine(info)
    runs: dict[str, list[dict[str, Any]]] = {"map": [], "batch": [], "sink_small": [], "sink_big": [], "retained": []}
    with MockServerProcess(0.0) as server:
        for rep in range(args.reps):
            for variant in ("batch", "map"):
                run = run_worker(SCRIPT, ["--worker", variant, "--url", server.url, "--n", str(args.n),
                                          "--concurrency", str(args.concurrency)], WORKER_TIMEOUT_S)
                runs[variant].append(run)
                print(f"   rep {rep + 1} {variant:5s} {run['req_s']:8,.0f} rows/s  "
                      f"{run['cpu_s'] / args.n * 1e6:5.0f} us CPU/row  ok {run['ok']:,}/{args.n:,}", flush=True)
        for label, n in (("sink_small", args.sink_n), ("sink_big", 10 * args.sink_n)):
            run = run_worker(SCRIPT, ["--worker", "sink", "--url", server.url, "--n", str(n),
                                      "--concurrency", str(args.concurrency)], WORKER_TIMEOUT_S)
            runs[label].append(run)
            print(f"   {label}: {n:,} rows into a Parquet sink, peak RSS {run['peak_rss'] / 2**20:,.1f} MB, "
                  f"{run['elapsed_s']:.1f} s, ok {run['ok']:,}", flush=True)
        run = run_worker(SCRIPT, ["--worker", "retained", "--url", server.url, "--n", str(args.sink_n),
                                  "--concurrency", str(args.concurrency)], WORKER_TIMEOUT_S)
        runs["retained"].append(run)
        print(f"   no sink: {run['retained_b_per_row']:,.0f} B retained per row (table + result)", flush=True)
    ratio = median([r["req_s"] for r in runs["map"]]) / median([r["req_s"] for r in runs["batch"]])
    growth = (runs["sink_big"][0]["peak_rss"] - runs["sink_small"][0]["peak_rss"]) / 2**20
    retained = runs["retained"][0]["retained_b_per_row"]
    print(f"\n-- map / batch_generate throughput: {ratio:.2f} (medians of {args.reps})")
    print(f"-- sink peak RSS growth from {args.sink_n:,} to {10 * args.sink_n:,} rows: {growth:+.1f} MB")
    targets = [("map / batch_generate throughput >= 0.90", ratio >= RATIO_TARGET, f"{ratio:.2f}"),
               (f"sink peak RSS growth for 10x the rows <= +{FLAT_TARGET_MB:.0f} MB", growth <= FLAT_TARGET_MB,
                f"{growth:+.1f} MB"),
               (f"retained per row without a sink <= {RETAINED_TARGET_B:,} B", retained <= RETAINED_TARGET_B,
                f"{retained:,.0f} B")]
    for text, ok, value in targets:
        print(f"   {'PASS' if ok else 'FAIL'}  {text}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "runs": runs, "ratio": ratio, "growth_mb": growth,
                                         "retained_b_per_row": retained},
                                        indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
