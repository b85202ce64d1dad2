"""``seeds_nb.ray.map`` on a local Ray against one local ``client.map`` (issue #16).

What it answers:

(a) Throughput: 2 actors x ``max_concurrent`` 16 on a local Ray (2 CPUs) against one local ``client.map`` with
    the same total concurrency (32), both against the mock server at 50 ms (a subprocess), N rows. A Ray map
    starts its own actors, so its steady rate is read from its progress actor (rows done from the moment
    10% were done to the end), and the startup overhead (actors, imports) is the time to its first row
    done. Target: steady rate >= 0.8x the local map's.
(b) The cluster-wide rate limit, counted at the server: ``requests_per_minute`` set in the spec, 2 actors,
    the embedded mock's request log (arrival times): the most requests the server saw in any window of 1, 5
    and 10 s, against what the one token bucket allows (its burst of five seconds' worth plus the rate).
(c) ``ray.init`` time (local, 2 CPUs, no dashboard).

Run: ``python benchmarks/bench_ray.py [--n 6000] [--rpm 3000] [--rate-n 1000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import API_KEY, MODEL, MockServerProcess, load_average, machine_info, print_machine

RATIO_TARGET = 0.8


def rows(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"id": i, "text": f"{tag} row {i}: say one thing about topic {i % 97}"} for i in range(n)]


async def local_map(url: str, n: int, concurrency: int) -> float:
    from seeds_nb import OpenAIClient

    async with OpenAIClient(MODEL, base_url=url, api_key=API_KEY) as client:
        await client.batch_generate([f"warm {i}" for i in range(200)], max_concurrent=concurrency)
        started = time.perf_counter()
        out = await client.map(rows(n, "local"), "{text}", max_concurrent=concurrency)
        elapsed = time.perf_counter() - started
    assert len(out) == n and all(r["status"] == "ok" for r in out)
    return elapsed


def ray_map(url: str, n: int, tag: str, actors: int, per_actor: int) -> dict[str, float]:
    """Wall time of the whole map, and its steady rate: rows done between the moment 10% were done and the
    end, read from the run's progress actor every 50 ms (the actors' startup is then outside it)."""
    import threading

    import ray

    import seeds_nb.ray as sray
    from seeds_nb import OpenAIClient

    spec = sray.ClientSpec(OpenAIClient, model=MODEL, base_url=url)
    marks: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch(job: sray.RayMap) -> None:
        def poll() -> None:
            while not stop.wait(0.05):
                marks.append((time.perf_counter(), job.snapshot().completed))

        threading.Thread(target=poll, daemon=True).start()

    started = time.perf_counter()
    ds = ray.data.from_items(rows(n, tag), override_num_blocks=max(4, n // 500))
    result = asyncio.run(sray.run(ds, "{text}", client=spec, concurrency=actors, max_concurrent=per_actor,
                                  progress=False, on_start=watch))
    ended = time.perf_counter()
    stop.set()
    assert result.ledger.succeeded == n
    first = next(t for t, done in marks if done > 0)
    t10, n10 = next((t, done) for t, done in marks if done >= n // 10)
    return {"wall_s": ended - started, "first_row_s": first - started, "steady_rps": (n - n10) / (ended - t10)}


def rate_limit(rpm: int, n: int) -> dict[str, Any]:
    import ray

    import seeds_nb.ray as sray
    from seeds_nb import MockServer, OpenAIClient

    with MockServer() as server:
        spec = sray.ClientSpec(OpenAIClient, model=MODEL, base_url=server.url, requests_per_minute=rpm)
        out = sray.map(ray.data.from_items(rows(n, "paced"), override_num_blocks=8), "{text}", client=spec,
                       concurrency=2, max_concurrent=16).take_all()
        times = sorted(entry["time"] for entry in server.requests)
    assert len(out) == n and len(times) == n
    rate = rpm / 60.0
    burst = max(1.0, rate * 5.0)
    windows = {}
    for width in (1.0, 5.0, 10.0):
        most, j = 0, 0
        for i, stamp in enumerate(times):
            while times[j] < stamp - width:
                j += 1
            most = max(most, i - j + 1)
        windows[width] = {"max_seen": most, "bucket_bound": burst + rate * width, "rate_only": rate * width}
    span = times[-1] - times[0]
    steady = (n - burst) / span * 60 if span > 0 else float("inf")
    return {"rpm": rpm, "n": n, "span_s": span, "steady_rpm": steady, "windows": windows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", dest="n2", type=int, default=6000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--per-actor", type=int, default=16)
    parser.add_argument("--rpm", type=int, default=3000)
    parser.add_argument("--rate-n", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--strict", action="store_true", help="exit 1 when the throughput target fails")
    args = parser.parse_args()
    os.environ["OPENAI_API_KEY"] = API_KEY  # the actors read the key from their environment, as on a cluster
    info = machine_info()
    print_machine(info)
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False,
             runtime_env={"env_vars": {"OPENAI_API_KEY": API_KEY}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    init_s = time.perf_counter() - started
    total = args.actors * args.per_actor
    with MockServerProcess(0.05) as server:
        local_s = asyncio.run(local_map(server.url, args.n2, total))
        measured = ray_map(server.url, args.n2, "large", args.actors, args.per_actor)
    local_rate = args.n2 / local_s
    steady = measured["steady_rps"]
    ratio = steady / local_rate
    whole = args.n2 / measured["wall_s"]
    paced = rate_limit(args.rpm, args.rate_n)
    ray.shutdown()
    print(f"\nray.init (local, 2 CPUs, no dashboard): {init_s:.1f} s")
    print(f"local client.map, {args.n2:,} rows, max_concurrent={total}: {local_rate:,.0f} req/s ({local_s:.1f} s)")
    print(f"seeds_nb.ray.map, {args.actors} actors x {args.per_actor}, {args.n2:,} rows: {measured['wall_s']:.1f} s")
    print(f"  steady rate (from 10% done to the end) {steady:,.0f} req/s = {ratio:.2f}x the local map "
          f"(target >= {RATIO_TARGET}x): {'PASS' if ratio >= RATIO_TARGET else 'FAIL'}")
    print(f"  startup overhead (actors, imports, to the first row done) {measured['first_row_s']:.1f} s; "
          f"with it: {whole:,.0f} req/s = {whole / local_rate:.2f}x")
    print(f"\nrequests_per_minute={args.rpm} across {args.actors} actors, {args.rate_n:,} requests in "
          f"{paced['span_s']:.1f} s at the server (steady {paced['steady_rpm']:,.0f}/min after the burst):")
    held = True
    for width, figures in paced["windows"].items():
        ok = figures["max_seen"] <= figures["bucket_bound"] + 1
        held &= ok
        print(f"  any {width:>4.0f} s window: at most {figures['max_seen']} seen; the bucket allows "
              f"{figures['bucket_bound']:.0f} (burst + rate), the rate alone {figures['rate_only']:.0f}: "
              f"{'PASS' if ok else 'FAIL'}")
    print(f"\nload average at the end: {load_average():.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": info, "init_s": init_s, "local_rps": local_rate, "ray": measured,
                                         "ratio": ratio,
                                         "rate_limit": paced}, indent=2, default=str))
    if args.strict and (ratio < RATIO_TARGET or not held):
        sys.exit(1)


if __name__ == "__main__":
    main()
