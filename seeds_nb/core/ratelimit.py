"""A client-wide gate every request passes before it is sent.

Why one gate per client: a 429 means the *account* is over its limit, so every in-flight
request of the client must slow down, not only the one that got it. The gate combines optional
requests/tokens-per-minute buckets with a shared pause set from 429s and from
``x-ratelimit-remaining-*: 0`` headers. With no limits and no pause it costs two comparisons.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["RateGate"]


BURST_S = 5.0
"""A bucket holds this many seconds' worth of its rate: a minute's worth would let a 3,500 RPM
client fire 3,500 requests at once and meet a provider's shorter enforcement windows."""


class _Bucket:
    """A token bucket refilled continuously at ``per_minute / 60`` per second, holding ``BURST_S`` of it."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * BURST_S)
        self.level = self.capacity
        self.clock = clock
        self.stamp = clock()

    def wait_for(self, amount: float) -> float:
        """Take ``amount`` now (may go negative) and return how long the taker must wait."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= min(amount, self.capacity)
        return 0.0 if self.level >= 0 else -self.level / self.rate

    def refund(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class RateGate:
    """Shared by all requests of one client (and all event loops it is used from)."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self.requests = _Bucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = _Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self.paused_until = 0.0
        self.pauses = 0

    def pause(self, seconds: float) -> None:
        """Hold every request of the client for ``seconds`` (from a 429 or an exhausted limit)."""
        until = self.clock() + seconds
        if until > self.paused_until:
            self.paused_until = until
            self.pauses += 1

    async def acquire(self, estimated_tokens: int = 0) -> None:
        while True:
            wait = self.paused_until - self.clock()
            if wait <= 0:
                break
            await self.sleep(wait)
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.wait_for(1)
        if self.tokens is not None and estimated_tokens:
            wait = max(wait, self.tokens.wait_for(estimated_tokens))
        if wait > 0:
            await self.sleep(wait)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the real usage is known."""
        if self.tokens is not None and estimated_tokens:
            self.tokens.refund(estimated_tokens - actual_tokens)
