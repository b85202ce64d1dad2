"""``ClusterGate``: the worker side of the run's gate actor, given to each actor's client as its ``gate``.

The pipeline asks it for a permit before every attempt, exactly as it asks a local ``RateGate``; permits
come from the gate actor in batches (one call per batch, one call in flight per worker) and expire after
``PERMIT_TTL_S`` unused, so none is hoarded and spent in a burst later. A 429 seen here pauses this worker
at once and every other one through the actor. A stopped run (a budget spent, a cancel) makes ``acquire``
raise the stop's error: the pipeline then ends that prompt as it, unsent.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from seeds_nb.core.exceptions import BudgetExceeded, Cancelled, SeedsError
from seeds_nb.core.types import Response

from ._actors import StopState

__all__ = ["PERMIT_TTL_S", "ClusterGate", "stop_error"]

PERMIT_TTL_S = 1.0
"""Permits not used within this many seconds of their grant are dropped."""


def stop_error(stop: StopState) -> SeedsError:
    """The error a prompt not sent after the run stopped ends as (the same as a local run's)."""
    reason, limit, spent, why = stop
    if reason == "cancelled" or limit is None:
        return Cancelled()
    return BudgetExceeded(reason, limit, spent, why)


class ClusterGate:
    """A ``seeds_nb.core.ratelimit.Gate`` whose permits, pauses and stop are the run's (one actor's)."""

    def __init__(self, actor: Any, *, requests_per_minute: float | None, tokens_per_minute: float | None,
                 batch: int, clock: Any = time.monotonic) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.actor = actor
        self.batch = max(1, batch)
        self.clock = clock
        self.stop: StopState | None = None
        self._permits = 0
        self._permits_until = 0.0
        self._paused_until = 0.0
        self._locks: dict[int, asyncio.Lock] = {}  # one per event loop (each batch runs on its own)
        self._spent = [0.0, 0.0, 0, 0]  # cost, carbon, answers of unknown cost, of unknown carbon

    # -- what the worker reports ------------------------------------------------------------------
    def spent(self, item: Response | BaseException) -> None:
        """A fresh answer's cost and carbon count against the run's budgets (sent with the next call)."""
        if not isinstance(item, Response) or item.cached:
            return
        tracking, spent = item.tracking, self._spent
        if tracking.cost_usd is None:
            spent[2] += 1
        else:
            spent[0] += tracking.cost_usd
        if tracking.gwp_kgco2eq is None:
            spent[3] += 1
        else:
            spent[1] += tracking.gwp_kgco2eq

    def take_spent(self) -> tuple[float, float, int, int]:
        spent = self._spent
        self._spent = [0.0, 0.0, 0, 0]
        return spent[0], spent[1], int(spent[2]), int(spent[3])

    async def flush(self) -> None:
        """Hand the spending not yet reported to the gate actor (at the end of a batch)."""
        stop = await self.actor.spend.remote(*self.take_spent())
        if stop is not None:
            self.stop = stop

    # -- the Gate protocol ------------------------------------------------------------------------
    async def acquire(self, estimated_tokens: int = 0) -> bool:
        while True:
            if self.stop is not None:
                raise stop_error(self.stop)
            now = self.clock()
            if self._paused_until > now:
                await asyncio.sleep(self._paused_until - now)
                continue
            if self._permits > 0 and now < self._permits_until:
                self._permits -= 1
                return False
            loop = id(asyncio.get_running_loop())
            lock = self._locks.get(loop)
            if lock is None:
                self._locks = {loop: asyncio.Lock()}  # an earlier batch's loop is gone
                lock = self._locks[loop]
            async with lock:
                if self._permits > 0 and self.clock() < self._permits_until:
                    continue  # another request of this worker just fetched a batch
                count, probe, stop = await self.actor.grant.remote(self.batch, estimated_tokens, self.take_spent())
                if stop is not None:
                    self.stop = stop
                    continue
                self._permits = count - 1
                self._permits_until = self.clock() + PERMIT_TTL_S
                return bool(probe)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self.clock() + seconds)
        self._permits = 0
        self.actor.pause.remote(seconds)

    def probe_answered(self, remaining: int | None = None, reset_s: float | None = None, *,
                       ok: bool = True) -> None:
        self.actor.probe_answered.remote(remaining, reset_s, ok)

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None:
        if self.tokens_per_minute and estimated_tokens and actual_tokens != estimated_tokens:
            self.actor.settle.remote(estimated_tokens, actual_tokens)
