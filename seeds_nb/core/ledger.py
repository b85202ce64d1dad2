"""The ledger: one running account of what a run produced and spent.

Why one: the batch engine, ``BatchResult``, the live panel, the compare grid and the Batch API job
monitor all show counts, tokens, cost and carbon. When each kept its own sums they disagreed (an
unpriced model showed $0 in the panel and "unknown" in the result). Now each result owns a
``Ledger`` that is updated as answers are recorded, and everything that shows a figure reads it.

Rules it keeps: a fresh answer's cost and carbon are *spent*; a cache hit's are *avoided*; an
unknown figure (an unpriced model, a server that sent no usage) is counted as unknown, never as 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .exceptions import BatchExpired, BudgetExceeded, Cancelled
from .types import Response

__all__ = ["Ledger"]

_NOT_SUMMED = frozenset({"total", "started", "in_flight", "retrying"})


@dataclass(slots=True)
class Ledger:
    """Counts and totals of one run; ``add`` an answer or error as it ends, ``remove`` one to replace it.

    One event loop (or one thread) writes a ledger; widgets on other threads only read numbers.
    """

    total: int | None = None
    """Prompts in the run; None while unknown (a generator)."""
    completed: int = 0
    succeeded: int = 0
    failed: int = 0
    """Every error, including prompts not sent (``cancelled``, ``budget_stopped``)."""
    cancelled: int = 0
    budget_stopped: int = 0
    expired: int = 0
    """Prompts a provider's Batch API job did not reach before it expired."""
    cached: int = 0
    retrying: int = 0
    in_flight: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    unknown_usage: int = 0
    """Answers whose server sent no token usage (their tokens are not in the sums)."""
    cost_usd: float = 0.0
    unknown_cost: int = 0
    """Fresh answers whose cost is unknown: ``cost_usd`` is then a lower bound."""
    energy_kwh: float = 0.0
    energy_kwh_min: float = 0.0
    energy_kwh_max: float = 0.0
    gwp_kgco2eq: float = 0.0
    gwp_kgco2eq_min: float = 0.0
    gwp_kgco2eq_max: float = 0.0
    adpe_kgsbeq: float = 0.0
    adpe_kgsbeq_min: float = 0.0
    adpe_kgsbeq_max: float = 0.0
    pe_mj: float = 0.0
    pe_mj_min: float = 0.0
    pe_mj_max: float = 0.0
    unknown_impacts: int = 0
    """Fresh answers whose energy and carbon are unknown."""
    measured_impacts: int = 0
    """Fresh answers whose energy and carbon the server measured (``Tracking.method == "measured"``); the
    others with known impacts are EcoLogits estimates."""
    latency_s_total: float = 0.0
    latency_count: int = 0
    """Fresh answers with a measured latency (a Batch API line has none), for the mean."""
    avoided_cost_usd: float = 0.0
    avoided_energy_kwh: float = 0.0
    avoided_gwp_kgco2eq: float = 0.0
    cache_write_failures: int = 0
    """Answers returned but not stored in the cache (disk full, read-only file)."""
    started: float = 0.0
    """``time.monotonic()`` when the run started (0 when not a live run)."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def mean_latency_s(self) -> float | None:
        return self.latency_s_total / self.latency_count if self.latency_count else None

    @property
    def impacts_method(self) -> str:
        """Where the energy and carbon totals come from: ``"measured"``, ``"ecologits"``, ``"mixed"`` (some
        answers measured, some estimated) or ``"none"`` (no fresh answer with known impacts)."""
        fresh = self.succeeded - self.cached - self.unknown_impacts
        if fresh <= 0:
            return "none"
        if self.measured_impacts == 0:
            return "ecologits"
        return "measured" if self.measured_impacts >= fresh else "mixed"

    @property
    def cost_known(self) -> bool:
        """False when some fresh answer had no known cost (``cost_usd`` then undercounts)."""
        return self.unknown_cost == 0

    def add(self, item: Response | BaseException) -> None:
        self._apply(item, 1)

    def add_many(self, error: BaseException, count: int) -> None:
        """``count`` prompts that all ended as ``error`` (not sent after a stop), in one step."""
        self.completed += count
        self.failed += count
        if isinstance(error, Cancelled):
            self.cancelled += count
        elif isinstance(error, BudgetExceeded):
            self.budget_stopped += count

    def remove(self, item: Response | BaseException) -> None:
        """Take back an earlier ``add`` (an answer replaced by a re-run)."""
        self._apply(item, -1)

    def _apply(self, item: Response | BaseException, sign: int) -> None:
        self.completed += sign
        if not isinstance(item, Response):
            self.failed += sign
            if isinstance(item, Cancelled):
                self.cancelled += sign
            elif isinstance(item, BudgetExceeded):
                self.budget_stopped += sign
            elif isinstance(item, BatchExpired):
                self.expired += sign
            return
        self.succeeded += sign
        usage = item.usage
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            self.unknown_usage += sign
        else:
            self.prompt_tokens += sign * usage.prompt_tokens
            self.completion_tokens += sign * usage.completion_tokens
        t = item.tracking
        if item.cached:
            self.cached += sign
            self.avoided_cost_usd += sign * (t.cost_usd or 0.0)
            self.avoided_energy_kwh += sign * (t.energy_kwh or 0.0)
            self.avoided_gwp_kgco2eq += sign * (t.gwp_kgco2eq or 0.0)
            return
        if t.cost_usd is None:
            self.unknown_cost += sign
        else:
            self.cost_usd += sign * t.cost_usd
        latency = item.latency_s
        if latency == latency and latency != math.inf:  # not NaN (a Batch API line), not infinite
            self.latency_s_total += sign * latency
            self.latency_count += sign
        if t.gwp_kgco2eq is None or t.energy_kwh is None:
            self.unknown_impacts += sign
            return
        if t.method == "measured":
            self.measured_impacts += sign
        self.energy_kwh += sign * t.energy_kwh
        self.energy_kwh_min += sign * (t.energy_kwh_min or 0.0)
        self.energy_kwh_max += sign * (t.energy_kwh_max or 0.0)
        self.gwp_kgco2eq += sign * t.gwp_kgco2eq
        self.gwp_kgco2eq_min += sign * (t.gwp_kgco2eq_min or 0.0)
        self.gwp_kgco2eq_max += sign * (t.gwp_kgco2eq_max or 0.0)
        self.adpe_kgsbeq += sign * (t.adpe_kgsbeq or 0.0)
        self.adpe_kgsbeq_min += sign * (t.adpe_kgsbeq_min or 0.0)
        self.adpe_kgsbeq_max += sign * (t.adpe_kgsbeq_max or 0.0)
        self.pe_mj += sign * (t.pe_mj or 0.0)
        self.pe_mj_min += sign * (t.pe_mj_min or 0.0)
        self.pe_mj_max += sign * (t.pe_mj_max or 0.0)

    def merge(self, other: Ledger) -> None:
        """Add ``other``'s counts and totals to this one (ledgers of parts of one run, kept apart: the
        batches of ``seeds_nb.ray``'s workers). ``total``, ``started`` and the gauges ``in_flight`` and
        ``retrying`` are left alone: they describe the whole run, not a part of it."""
        for f in fields(self):
            if f.name not in _NOT_SUMMED:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def snapshot(self) -> Ledger:
        """A copy (for a widget on another thread to render without tearing)."""
        return Ledger(**{f.name: getattr(self, f.name) for f in fields(self)})
