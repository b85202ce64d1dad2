"""The run's two small actors: the gate (rate limits, 429 pauses, budgets, cancel) and the progress account.

Why one gate actor holding the core's ``RateGate``: the limits and the 429 pauses then behave exactly as in
one local client (one mechanism, in ``seeds_nb.core.ratelimit``), only shared by every worker of the run.
Workers ask it for permits in batches (``grant``), so the cost is one call per batch of requests, not per
request; and each call carries what the worker spent since its last one, so budgets are checked against the
whole run's spending and a stop reaches every worker at its next call.

Why the progress actor keeps a batch's figures apart until the batch is done: when Ray restarts a killed
actor, its unfinished batch runs again; its partial figures are dropped (the restarted actor registers
under the same actor id), and a finished batch is known by a fingerprint of its rows' keys, so nothing is
counted twice.
"""

from __future__ import annotations

from typing import Any

from seeds_nb.core.ledger import Ledger
from seeds_nb.core.ratelimit import RateGate

__all__ = ["GateActor", "ProgressActor", "StopState"]

StopState = tuple[str, float | None, float | None, str | None]
"""``(reason, limit, spent, why)``: 'cancelled', or a budget's name, its value, what was spent, and why it
cannot be enforced (an answer of unknown cost), as ``BudgetExceeded`` takes them."""


class GateActor:
    """One per run (``ray.remote(num_cpus=0)``): permits, pauses, budgets and the stop of the whole run."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None,
                 max_cost_usd: float | None, max_gwp_kgco2eq: float | None) -> None:
        self.gate = RateGate(requests_per_minute, tokens_per_minute)
        self.max_cost_usd = max_cost_usd
        self.max_gwp_kgco2eq = max_gwp_kgco2eq
        self.cost_usd = 0.0
        self.gwp_kgco2eq = 0.0
        self.stop: StopState | None = None
        self.granted = 0

    async def grant(self, count: int, estimated_tokens: int, spent: tuple[float, float, int, int]) -> tuple[
            int, bool, StopState | None]:
        """Wait for one permit as a local client's request would (pauses, recovery, buckets), then add up to
        ``count - 1`` that need no wait. Returns (permits, whether the first is a recovery probe, the stop)."""
        self.spend(*spent)
        if self.stop is not None:
            return 0, False, self.stop
        probe = await self.gate.acquire(estimated_tokens)
        if self.stop is not None:  # stopped while this caller waited
            return 0, False, self.stop
        extra = 0 if probe else self.gate.take_ready(count - 1, estimated_tokens)
        self.granted += 1 + extra
        return 1 + extra, probe, None

    def spend(self, cost_usd: float, gwp_kgco2eq: float, unknown_cost: int, unknown_gwp: int) -> StopState | None:
        """Add a worker's spending; a spent budget (or one that can no longer be enforced) stops the run."""
        self.cost_usd += cost_usd
        self.gwp_kgco2eq += gwp_kgco2eq
        if self.stop is None:
            for name, limit, total, unknown, what in (
                    ("max_cost_usd", self.max_cost_usd, self.cost_usd, unknown_cost, "cost"),
                    ("max_gwp_kgco2eq", self.max_gwp_kgco2eq, self.gwp_kgco2eq, unknown_gwp, "carbon")):
                if limit is None:
                    continue
                if unknown:
                    self.stop = (name, limit, None, f"the {what} of an answer is unknown")
                elif total >= limit:
                    self.stop = (name, limit, total, None)
                if self.stop is not None:
                    break
        return self.stop

    def pause(self, seconds: float) -> None:
        """A 429 (or a used-up limit) seen by any worker holds every worker."""
        self.gate.pause(seconds)

    def probe_answered(self, remaining: int | None, reset_s: float | None, ok: bool) -> None:
        self.gate.probe_answered(remaining, reset_s, ok=ok)

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None:
        self.gate.settle(estimated_tokens, actual_tokens)

    def cancel(self) -> None:
        if self.stop is None:
            self.stop = ("cancelled", None, None, None)

    def state(self) -> dict[str, Any]:
        return {"stop": self.stop, "cost_usd": self.cost_usd, "gwp_kgco2eq": self.gwp_kgco2eq,
                "pauses": self.gate.pauses, "granted": self.granted}


class ProgressActor:
    """One per run (``ray.remote(num_cpus=0)``): the run's ledger, fed by the workers, read by the driver."""

    def __init__(self, total: int | None) -> None:
        self.done = Ledger(total=total)
        self.partial: dict[str, Ledger] = {}
        self.gauges: dict[str, tuple[int, int]] = {}
        self.workers: dict[str, Any] = {}
        self.seen: set[str] = set()
        self.batches = 0

    def register(self, worker: str, handle: Any) -> None:
        """A worker (re)started: what it had not finished is dropped (Ray runs that batch again)."""
        self.partial.pop(worker, None)
        self.gauges.pop(worker, None)
        self.workers[worker] = handle

    def report(self, worker: str, delta: Ledger, in_flight: int, retrying: int) -> None:
        """Rows that ended since the worker's last report, in its current batch."""
        self.partial.setdefault(worker, Ledger()).merge(delta)
        self.gauges[worker] = (in_flight, retrying)

    def batch_done(self, worker: str, batch: str, ledger: Ledger) -> None:
        """A batch ended: its own complete ledger replaces the partial reports. A batch Ray ran again (its
        actor was killed after finishing it, before handing it back) counts once: the first run paid."""
        self.partial.pop(worker, None)
        self.gauges.pop(worker, None)
        if batch in self.seen:
            return
        self.seen.add(batch)
        self.done.merge(ledger)
        self.batches += 1

    def snapshot(self) -> Ledger:
        """What the driver's panel shows now (finished batches plus what runs)."""
        out = self.done.snapshot()
        for ledger in self.partial.values():
            out.merge(ledger)
        out.in_flight = sum(g[0] for g in self.gauges.values())
        out.retrying = sum(g[1] for g in self.gauges.values())
        return out

    def final(self) -> Ledger:
        """The finished batches only: the run's account once it has ended."""
        return self.done.snapshot()

    def worker_handles(self) -> list[Any]:
        return list(self.workers.values())

    def batch_count(self) -> int:
        return self.batches
