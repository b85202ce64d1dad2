"""Helpers shared by the benchmark scripts: the mock server as a subprocess, worker processes, prompts, memory.

Why a subprocess for the server: the embedded ``MockServer`` runs on a thread of the *client's* process,
so it would share the GIL (and the CPU-time counter) with the client being measured. As a separate
process it gets its own core on a 2-core machine, and ``time.process_time()`` in the client counts only
the client.

Why worker processes for the measured runs: each measured run happens in a fresh interpreter, so its
CPU time, peak RSS (``ru_maxrss`` is a per-process high-water mark) and traced memory are its own,
not polluted by an earlier run's heap, caches or garbage.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import select
import statistics
import subprocess
import sys
import sysconfig
import time
import zlib
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = [
    "API_KEY",
    "MODEL",
    "GCTimer",
    "MockServerProcess",
    "current_rss_bytes",
    "filesystem_of",
    "git_state",
    "load_average",
    "machine_info",
    "median",
    "peak_rss_bytes",
    "process_cpu_seconds",
    "process_cpu_split",
    "print_machine",
    "prompt_for",
    "run_worker",
    "spread",
    "system_cpu_seconds",
    "table",
    "thread_cpu_seconds",
    "verdict",
    "wait_for_quiet",
]

MODEL = "gpt-4.1-mini"  # a model genai-prices and EcoLogits both know, so tracking does its full work
API_KEY = "sk-bench"
_PACKAGES = ("seeds_nb", "aiohttp", "httpx", "httpx-aiohttp", "ecologits", "genai-prices", "pydantic")
_STARTUP_TIMEOUT_S = 30.0
_FILLER = ("data", "quality", "of", "the", "sample", "batch", "matters", "because", "results", "depend", "on",
           "careful", "measurement", "and", "clear", "reporting", "across", "many", "requests")


class GCTimer:
    """Time spent in CPython's cyclic garbage collector (``gc.callbacks``), and collections per generation.

    Why: a collection runs on whatever allocation crosses the threshold, so a profiler charges its cost
    to random functions; timed apart, it is one line of the CPU bill (a full collection walks every
    tracked object in the process, imported libraries' data included).
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


def prompt_for(index: int, tag: str, *, varied: bool = True) -> str:
    """A distinct prompt per (tag, index), so no cache or in-flight dedupe could ever merge two requests.

    ``varied`` appends 0-159 filler words (a deterministic function of tag and index), so prompts vary in
    length like real ones (~80 words on average). That matters beyond realism: seeds_nb prices a request
    through an LRU keyed on its exact token counts, which hits almost always when every prompt has the
    same length and almost never when lengths vary; equal-length prompts would hide that cost.
    """
    base = f"[{tag}] Request {index}: explain in one sentence why item {index} of this benchmark matters."
    if not varied:
        return base
    count = zlib.crc32(f"{tag}:{index}".encode()) % 160
    return base + " Context: " + " ".join(_FILLER[(index + k) % len(_FILLER)] for k in range(count))


class MockServerProcess:
    """``python -m seeds_nb.mock`` in a child process; ``url`` is read from its first stdout line."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "server not started"
        return self._proc.pid

    def __enter__(self) -> MockServerProcess:
        cmd = [sys.executable, "-m", "seeds_nb.mock", "--port", "0", "--latency", repr(self.latency_s)]
        self._proc = proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _STARTUP_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("seeds_nb mock server on "):
            self.__exit__()
            raise RuntimeError(f"mock server did not start within {_STARTUP_TIMEOUT_S:.0f} s (got {line!r})")
        self.url = line.rsplit(" ", 1)[-1].strip()
        return self

    def __exit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()  # SIGTERM: the server's handler stops it cleanly
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process (Linux ``/proc``); None where unavailable."""
    split = process_cpu_split(pid)
    return None if split is None else split[0] + split[1]


def process_cpu_split(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of another process (Linux ``/proc``); None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the ")" closing the command name, utime and stime are the 12th and 13th fields.
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def thread_cpu_seconds(native_id: int | None) -> float | None:
    """User + system CPU seconds of one thread of this process (``threading.Thread.native_id``), Linux only."""
    if native_id is None:
        return None
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def system_cpu_seconds() -> tuple[float, float, float] | None:
    """(user, system, steal) CPU seconds of the whole machine since boot, all cores (Linux ``/proc/stat``).

    User time (user + nice) minus the client's and the server's own user time over a run is what *other*
    processes took meanwhile (another engineer's test suite, say): a run where that is large is a
    disturbed run. System time is kept apart because part of it is the benchmark's own work done by
    kernel threads (the cache's file writes, loopback traffic), counted in no process; interrupt time is
    left out for the same reason. Steal is time the hypervisor gave our vCPUs to someone else.
    None where unavailable.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    user, nice, system = ticks[:3]
    steal = ticks[7] if len(ticks) > 7 else 0
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice) / hz, system / hz, steal / hz


def wait_for_quiet(max_cores: float, timeout_s: float, probe_s: float = 1.0) -> tuple[float, float]:
    """Wait until the machine's busy CPU over ``probe_s`` is at most ``max_cores`` (call it while nothing of
    the benchmark runs, so what is busy is someone else), at most ``timeout_s``.

    Returns (seconds waited, busy cores at the last probe); NaN cores where ``/proc/stat`` is unavailable.
    """
    started = time.perf_counter()
    while True:
        before = system_cpu_seconds()
        time.sleep(probe_s)
        after = system_cpu_seconds()
        if before is None or after is None:
            return time.perf_counter() - started, float("nan")
        cores = (after[0] + after[1] - before[0] - before[1]) / probe_s
        waited = time.perf_counter() - started
        if cores <= max_cores or waited >= timeout_s:
            return waited, cores


def filesystem_of(path: str | os.PathLike[str]) -> str:
    """The file-system type a path lives on (``ext4``, ``tmpfs``...), from ``/proc/mounts``; ``?`` if unknown."""
    target = str(Path(path).resolve())
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")) \
                    and len(parts[1]) > len(best):
                best, kind = parts[1], parts[2]
    return kind


def git_state() -> str:
    """``<commit> (+N uncommitted files under seeds_nb/)``: the tree may be shared with someone editing it,
    so a figure must say which code it measured."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "seeds_nb"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} (+{len(dirty)} uncommitted files under seeds_nb/)" if dirty else f"{head} (clean seeds_nb/)"


def current_rss_bytes() -> int:
    """Resident set size now (not the peak), from ``/proc/self/statm``; falls back to the peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return peak_rss_bytes()
    return pages * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """``ru_maxrss`` of this process in bytes (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def run_worker(script: Path, args: Sequence[str], timeout_s: float) -> dict[str, Any]:
    """Run ``script --worker ...`` in a fresh interpreter and return the JSON object on its last stdout line."""
    cmd = [sys.executable, str(script), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    """``min-max`` of repeated measurements, to show how much a median can be trusted."""
    if not values:
        return "-"
    return f"{min(values):,.0f}-{max(values):,.0f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What the figures depend on: cores, CPU, Python, and the versions of the packages on the path."""
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
        "git": git_state(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average_1m": os.getloadavg()[0],
    }


def print_machine(info: dict[str, Any]) -> None:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    print(f"machine: {info['cpus']} cpus ({info['cpu_model']}), {info['implementation']} {info['python']}, "
          f"{info['platform']}")
    print(f"packages: {packages}")
    print(f"code: {info['git']}")
    load = info["load_average_1m"]
    if load > 0.5:
        print(f"warning: 1-minute load average is {load:.2f} before starting: other processes are using the CPU "
              "(the benchmark needs one core for the client and one for the server), so figures will be noisy")


def load_average() -> float:
    """1-minute load average, printed at the end so a reader can tell whether the run was disturbed."""
    return os.getloadavg()[0]


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> Iterator[str]:
    """Fixed-width text table (first column left-aligned, the rest right-aligned)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for j, row in enumerate([header, *rows]):
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                              strict=True))]
        yield "  ".join(cells)
        if j == 0:
            yield "  ".join("-" * w for w in widths)


def short_path(filename: str) -> str:
    """``seeds_nb/core/types.py``, ``aiohttp/client_proto.py``, ``json/decoder.py``: enough to find the line."""
    if "/seeds_nb/" in filename:
        return "seeds_nb/" + filename.split("/seeds_nb/", 1)[1]
    for marker in ("site-packages/", sysconfig.get_paths()["stdlib"] + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
