"""The results grid's kernel-side cost at 100,000 rows (issue #14: append + one window < 1 s of CPU).

What it measures, in one process with no server (the rows are built first, outside the timings, the way
a run hands them over: a ``Response`` with usage and tracking, one in 100 an error):

(a) append 100,000 rows with ``grid.add`` and push one window (``refresh(force=True)``): the target;
(b) the same with a throttled ``refresh()`` after every row, as ``run_batch`` does while a batch
    streams (the pushes it let through are counted);
(c) once the rows are in: sorting by cost, filtering the failed rows, searching a word, each with its
    window push; and ``to_dataframe()`` of the whole view.

CPU is ``time.process_time()``; medians of ``--reps`` fresh grids. Widget messages go to ipywidgets'
stand-in comm (no frontend), so what is timed is the kernel's own work: building rows, views and windows.

Run: ``python benchmarks/bench_grid.py [--n 100000] [--reps 3] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _shared import machine_info, print_machine

TARGET_S = 1.0


def _items(n: int) -> list[Any]:
    from seeds_nb.core.exceptions import ServerError
    from seeds_nb.core.types import Response, Tracking, Usage

    return [ServerError(f"HTTP 500 for prompt {i}", status_code=500) if i % 100 == 7 else
            Response(content=f"Mock answer to prompt {i}: a sentence or two about topic {i % 97}.",
                     model="gpt-4.1-mini", usage=Usage(40 + i % 23, 60 + i % 31), latency_s=0.01 + (i % 17) / 1000,
                     cached=i % 10 == 0, tracking=Tracking(cost_usd=(i % 13) * 1e-6, energy_kwh=2e-6,
                                                           gwp_kgco2eq=(i % 11) * 1e-7))
            for i in range(n)]


def _cpu(fn: Callable[[], Any]) -> float:
    gc.collect()
    started = time.process_time()
    fn()
    return time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from seeds_nb.widgets import ResultsGrid, Throttle

    info = machine_info()
    print_machine(info)
    items = _items(args.n)
    prompts = [f"Summarise abstract #{i} in one sentence." for i in range(args.n)]
    figures: dict[str, list[float]] = {k: [] for k in ("append_window", "append_live", "sort_cost", "filter_failed",
                                                       "search", "to_dataframe")}
    pushes: list[int] = []
    for _ in range(args.reps):
        grid = ResultsGrid(prompts)

        def append(grid: ResultsGrid = grid) -> None:
            for i, item in enumerate(items):
                grid.add(i, item, prompts[i])
            grid.refresh(force=True)

        figures["append_window"].append(_cpu(append))
        live = ResultsGrid(prompts, throttle=Throttle(0.5))

        def append_live(live: ResultsGrid = live) -> None:
            for i, item in enumerate(items):
                live.add(i, item, prompts[i])
                live.refresh()
            live.refresh(force=True)

        figures["append_live"].append(_cpu(append_live))
        pushes.append(live.throttle.draws)
        figures["sort_cost"].append(_cpu(lambda grid=grid: grid.sort("cost", descending=True)))
        figures["filter_failed"].append(_cpu(lambda grid=grid: grid.set_filter("failed")))
        grid.set_filter("all")
        figures["search"].append(_cpu(lambda grid=grid: grid.search("topic 42.")))
        grid.search("")
        figures["to_dataframe"].append(_cpu(lambda grid=grid: grid.to_dataframe()))
        assert grid.view_size == args.n and len(grid.window["rows"]) == 60
        grid.close()
        live.close()

    med = {k: statistics.median(v) for k, v in figures.items()}
    verdict = "PASS" if med["append_window"] < TARGET_S else "FAIL"
    print(f"N = {args.n:,} rows, medians of {args.reps} (kernel CPU):")
    print(f"  append + one window push:            {med['append_window']:.3f} s  (target < {TARGET_S} s: {verdict})")
    print(f"  append with a throttled push per row: {med['append_live']:.3f} s  "
          f"({statistics.median(pushes):.0f} pushes let through)")
    print(f"  sort by cost (desc) + window:         {med['sort_cost']:.3f} s")
    print(f"  filter failed + window:               {med['filter_failed']:.3f} s")
    print(f"  search a word + window:               {med['search']:.3f} s")
    print(f"  to_dataframe() of the view:           {med['to_dataframe']:.3f} s")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "figures": figures, "pushes": pushes,
                                         "machine": info}, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
