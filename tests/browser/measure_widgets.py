"""Measure what the widgets cost: run time with and without them, and the widget message rate.

    .venv/bin/python tests/browser/measure_widgets.py [N] [ROUNDS]

In one real kernel (jupyter_client), against one 0-latency mock server, it alternates
``await client.batch_generate(prompts, max_concurrent=64)`` and
``await run_batch(client, prompts, max_concurrent=64)`` (displayed: the widgets send real comm
messages), alternating the order each round. Each run is timed inside the kernel, in wall time and
in process CPU time (client and mock server share the process; CPU time is much less sensitive to
other load on the machine), and in two extra runs the CPU time spent inside the widget code is summed
(every call the runner makes into the panel and the grid wrapped with a ``time.thread_time`` timer).
The widget message rate is counted from the iopub ``comm_msg`` updates of the ``run_batch`` cells.
Not a test: timings on a shared 2-core box are too noisy to assert on.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_widgets_kernel import Kernel

SETUP = """\
import functools, gc, time
from ipywidgets.widgets.widget import _instances
from seeds_nb import MockServer, OpenAIClient
from seeds_nb.widgets import BatchProgress, ResultsGrid, run_batch

server = MockServer(latency_s=0.0).start()
client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-test")
prompts = [f"question {{i}}" for i in range({n})]
await client.batch_generate(prompts[:500], max_concurrent=64)  # warm up the pool and the tracker

def close_widgets():  # widgets live until closed (and keep their rows): start each run from the same heap
    for w in list(_instances.values()):
        w.close()

widget_time = [0.0]
def _timed(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t = time.thread_time()  # CPU time of this thread: waits for the GIL (held by the server thread) excluded
        try:
            return fn(*args, **kwargs)
        finally:
            widget_time[0] += time.thread_time() - t
    return wrapper

def instrument():  # only for the last, separate run: the timers themselves cost a little
    for cls, names in ((BatchProgress, ("__init__", "update", "tick", "finish")),
                       (ResultsGrid, ("__init__", "add", "refresh", "tick", "load"))):
        for name in names:
            setattr(cls, name, _timed(getattr(cls, name)))

def prepare():  # same state before every run: empty request log, no live widgets, collected heap
    server.reset(); close_widgets(); gc.collect(); widget_time[0] = 0.0
"""
PLAIN = ("r = None; prepare(); t0, c0 = time.perf_counter(), time.process_time()\n"
         "r = await client.batch_generate(prompts, max_concurrent=64)\n"
         "dt, cpu = time.perf_counter() - t0, time.process_time() - c0")
WIDGETS = ("r = None; prepare(); t0, c0 = time.perf_counter(), time.process_time()\n"
           "r = await run_batch(client, prompts, max_concurrent=64)\n"
           "dt, cpu = time.perf_counter() - t0, time.process_time() - c0")


def main(n: int = 10_000, rounds: int = 4) -> None:
    kernel = Kernel(Path(tempfile.mkdtemp()))
    wall: dict[str, list[float]] = {PLAIN: [], WIDGETS: []}
    cpu: dict[str, list[float]] = {PLAIN: [], WIDGETS: []}
    inside: list[float] = []
    rates: list[float] = []
    try:
        kernel.run(SETUP.format(n=n), timeout=120)
        for round_ in range(rounds):
            for code in (PLAIN, WIDGETS) if round_ % 2 == 0 else (WIDGETS, PLAIN):
                start = len(kernel.iopub)
                got = kernel.run(code, timeout=300, dt="dt", cpu="cpu", ok="r.successful_count")
                assert got["ok"] == n
                wall[code].append(got["dt"])
                cpu[code].append(got["cpu"])
                if code is WIDGETS:
                    updates = [m for _, m in kernel.iopub[start:] if m["msg_type"] == "comm_msg"]
                    rates.append(len(updates) / got["dt"])
            print(f"plain {wall[PLAIN][-1]:.2f} s (cpu {cpu[PLAIN][-1]:.2f} s) | run_batch {wall[WIDGETS][-1]:.2f} s "
                  f"(cpu {cpu[WIDGETS][-1]:.2f} s) | "
                  f"{rates[-1]:.1f} widget messages/s", flush=True)
        kernel.run("instrument()")
        for _ in range(2):
            inside.append(kernel.run(WIDGETS, timeout=300, inside="widget_time[0]")["inside"])
    finally:
        kernel.close()
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    print(f"N={n}, {rounds} rounds, medians: wall plain {med[PLAIN]:.2f} s vs run_batch {med[WIDGETS]:.2f} s "
          f"({100 * (med[WIDGETS] / med[PLAIN] - 1):+.1f}%); CPU plain {med_cpu[PLAIN]:.2f} s vs run_batch "
          f"{med_cpu[WIDGETS]:.2f} s ({100 * (med_cpu[WIDGETS] / med_cpu[PLAIN] - 1):+.1f}%)")
    print(f"CPU inside the widget code: {statistics.median(inside) * 1000:.0f} ms per run "
          f"({100 * statistics.median(inside) / med_cpu[PLAIN]:.2f}% of the plain run's CPU time); "
          f"widget messages: {statistics.median(rates):.1f}/s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
