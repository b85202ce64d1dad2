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
import threading
from dataclasses import dataclass, fields

from .exceptions import BatchExpired, BudgetExceeded, Cancelled
from .types import Response

__all__ = ["Ledger", "LifetimeTracking"]

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
    cached_prompt_tokens: int = 0
    """The part of ``prompt_tokens`` that cache hits account for (not sent: the API/cached split)."""
    cached_completion_tokens: int = 0
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
            if usage.prompt_tokens is not None and usage.completion_tokens is not None:
                self.cached_prompt_tokens += sign * usage.prompt_tokens
                self.cached_completion_tokens += sign * usage.completion_tokens
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

    def merge(self, other: Ledger, sign: int = 1) -> None:
        """Add (``sign=-1``: take away) ``other``'s counts and totals: ledgers of parts of one run, kept
        apart (the batches of ``seeds_nb.ray``'s workers), or a client's lifetime account adding each run's.
        ``total``, ``started`` and the gauges ``in_flight`` and ``retrying`` are left alone: they describe
        one run as a whole."""
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))

    def snapshot(self) -> Ledger:
        """A copy (for a widget on another thread to render without tearing)."""
        return Ledger(**{f.name: getattr(self, f.name) for f in fields(self)})


_SUMMED = tuple(f.name for f in fields(Ledger) if f.name not in _NOT_SUMMED)


class LifetimeTracking:
    """What a client has done over its life: the sum of every run's ``Ledger`` and of every single
    request, as ``client.tracking`` (the original library's ``client.cumulative_tracking``).

    Why built from ledgers and not counted again per answer: one account, so the lifetime figures are
    exactly the sum of the runs' (and a run costs no extra work per request). A batch's ledger is
    *watched* while it runs (read live, so a panel or another cell sees it grow) and added in when it
    ends; ``generate``/``agenerate`` add their one answer; a Batch API job adds its result's ledger
    when its results are first read. Thread-safe: runs on the thread runner, a background run and the
    kernel's loop may all report at once, and ``reset()`` may come from any of them.

    Every figure is read from a fresh ``snapshot()``: take one yourself for a consistent set while a
    run is going on. As everywhere: *api* / spent figures are fresh answers (what was sent and billed,
    what consumed energy); *cached* / avoided figures are what the cache hits would have cost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = Ledger()
        self._live: dict[int, tuple[Ledger, Ledger | None]] = {}  # id -> (a running run's ledger, its baseline)

    # -- what writes it ------------------------------------------------------------------------------
    def add(self, item: Response | BaseException) -> None:
        """One single request's answer or error (``generate``/``agenerate``)."""
        with self._lock:
            self._done.add(item)

    def add_ledger(self, ledger: Ledger) -> None:
        """A finished account (a Batch API job's results), added once."""
        with self._lock:
            self._done.merge(ledger)

    def begin(self, ledger: Ledger) -> None:
        """A run starts: its ledger counts from now on, read live until ``end``."""
        with self._lock:
            self._live[id(ledger)] = (ledger, None)

    def end(self, ledger: Ledger) -> None:
        """The run ended: its final ledger joins the totals (less what a ``reset`` during it had seen)."""
        with self._lock:
            entry = self._live.pop(id(ledger), None)
            if entry is None:
                return
            self._done.merge(ledger)
            if entry[1] is not None:
                self._done.merge(entry[1], -1)

    def reset(self) -> None:
        """Start counting from zero (runs in progress count only what they do from now on)."""
        with self._lock:
            self._done = Ledger()
            self._live = {key: (ledger, ledger.snapshot()) for key, (ledger, _) in self._live.items()}

    # -- reading -------------------------------------------------------------------------------------
    def snapshot(self) -> Ledger:
        """The lifetime account as one ``Ledger`` (runs in progress included as they stand)."""
        with self._lock:
            total = self._done.snapshot()
            for ledger, baseline in self._live.values():
                total.merge(ledger.snapshot())
                if baseline is not None:
                    total.merge(baseline, -1)
        total.total = None
        return total

    @property
    def api_request_count(self) -> int:
        """Answers the API sent (fresh: billed, and what consumed energy)."""
        s = self.snapshot()
        return s.succeeded - s.cached

    @property
    def cached_request_count(self) -> int:
        """Answers that came from the cache (nothing sent)."""
        return self.snapshot().cached

    @property
    def total_request_count(self) -> int:
        """Every answer, fresh or cached (errors are ``error_count``)."""
        return self.snapshot().succeeded

    @property
    def error_count(self) -> int:
        """Prompts that ended as an error (including those a stop left unsent)."""
        return self.snapshot().failed

    @property
    def cache_hit_rate(self) -> float:
        """Cached answers over all answers (0.0 before the first)."""
        s = self.snapshot()
        return s.cached / s.succeeded if s.succeeded else 0.0

    @property
    def api_prompt_tokens(self) -> int:
        s = self.snapshot()
        return s.prompt_tokens - s.cached_prompt_tokens

    @property
    def api_completion_tokens(self) -> int:
        s = self.snapshot()
        return s.completion_tokens - s.cached_completion_tokens

    @property
    def cached_prompt_tokens(self) -> int:
        return self.snapshot().cached_prompt_tokens

    @property
    def cached_completion_tokens(self) -> int:
        return self.snapshot().cached_completion_tokens

    @property
    def total_prompt_tokens(self) -> int:
        """Prompt tokens of every answer, fresh and cached (as ``BatchResult.total_prompt_tokens``)."""
        return self.snapshot().prompt_tokens

    @property
    def total_completion_tokens(self) -> int:
        return self.snapshot().completion_tokens

    @property
    def total_tokens(self) -> int:
        return self.snapshot().tokens

    @property
    def api_cost_usd(self) -> float:
        """What fresh answers cost (a lower bound when ``unknown_cost_count`` > 0)."""
        return self.snapshot().cost_usd

    @property
    def api_energy_kwh(self) -> float:
        return self.snapshot().energy_kwh

    @property
    def api_gwp_kgco2eq(self) -> float:
        return self.snapshot().gwp_kgco2eq

    total_cost_usd = api_cost_usd
    """Spent, as a ``BatchResult``'s totals: cache hits cost nothing (they are ``avoided_cost_usd``)."""
    total_energy_kwh = api_energy_kwh
    total_gwp_kgco2eq = api_gwp_kgco2eq

    @property
    def avoided_cost_usd(self) -> float:
        """What the cache hits would have cost had they been sent (priced when they were read)."""
        return self.snapshot().avoided_cost_usd

    @property
    def avoided_energy_kwh(self) -> float:
        return self.snapshot().avoided_energy_kwh

    @property
    def avoided_gwp_kgco2eq(self) -> float:
        return self.snapshot().avoided_gwp_kgco2eq

    # the original library's names for the avoided figures
    cached_cost_usd = avoided_cost_usd
    cached_energy_kwh = avoided_energy_kwh
    cached_gwp_kgco2eq = avoided_gwp_kgco2eq
    emissions_avoided_kgco2eq = avoided_gwp_kgco2eq

    @property
    def unknown_cost_count(self) -> int:
        """Fresh answers whose cost is unknown (not counted as 0)."""
        return self.snapshot().unknown_cost

    @property
    def unknown_impacts_count(self) -> int:
        """Fresh answers whose energy and carbon are unknown (not counted as 0)."""
        return self.snapshot().unknown_impacts

    def __repr__(self) -> str:
        s = self.snapshot()
        cost = f"${s.cost_usd:.4f}" + (f" + {s.unknown_cost} unknown" if s.unknown_cost else "")
        return (f"LifetimeTracking({s.succeeded} answers: {s.succeeded - s.cached} api, {s.cached} cached; "
                f"{s.failed} errors; {s.tokens} tokens; spent {cost}, {s.energy_kwh:.3g} kWh, "
                f"{s.gwp_kgco2eq * 1000:.3g} gCO2eq; cache avoided ${s.avoided_cost_usd:.4f}, "
                f"{s.avoided_gwp_kgco2eq * 1000:.3g} gCO2eq)")
