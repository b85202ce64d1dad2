"""A client-wide gate every request passes before it is sent.

Why one gate per client: a 429 means the *account* is over its limit, so every in-flight
request of the client must slow down, not only the one that got it. The gate combines optional
requests/tokens-per-minute buckets with a shared pause set from 429s and from
``x-ratelimit-remaining-*: 0`` headers. With no limits and no pause it costs two comparisons.

Why a recovery phase after a pause: when a pause ends, every queued request would fire at once and
most would meet another 429 (measured: 60 prompts took 105 requests against a 1-second-window
limiter). So after a pause one request goes first (a *probe*); its answer's rate-limit headers say
how many more the server accepts before its window resets (``remaining``), and that many go, then
the next window is probed. A server that sends no such headers gets a doubling allowance per probe
(slow start). Recovery ends when a probe finds plenty of room (``PLENTY``): a run that keeps meeting
the limit stays paced by the server's own count, one probe per window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Gate", "RateGate"]


BURST_S = 5.0
"""A bucket holds this many seconds' worth of its rate: a minute's worth would let a 3,500 RPM
client fire 3,500 requests at once and meet a provider's shorter enforcement windows."""
PLENTY = 64
"""A probe reporting at least this many requests remaining ends the recovery phase."""
_PROBE_POLL_S = 0.02
"""How often a request queued behind an unanswered probe looks again (recovery only)."""


class Gate(Protocol):
    """What the pipeline asks of a gate. ``RateGate`` is the one every client builds; a gate shared beyond
    one client (``seeds_nb.ray``'s cluster-wide gate, fed permits by one ``RateGate`` in a Ray actor) is
    passed to the client as ``gate=`` and must behave the same way."""

    requests_per_minute: float | None
    tokens_per_minute: float | None

    async def acquire(self, estimated_tokens: int = 0) -> bool: ...

    def pause(self, seconds: float) -> None: ...

    def probe_answered(self, remaining: int | None = None, reset_s: float | None = None, *,
                       ok: bool = True) -> None: ...

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None: ...


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

    def available(self) -> float:
        """What could be taken now without waiting."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        return self.level

    def refund(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class RateGate:
    """Shared by all requests of one client (and all event loops it is used from)."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        #: the limits as given (what an estimate of a run's duration reads)
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.requests = _Bucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = _Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self.paused_until = 0.0
        self.pauses = 0
        #: after a pause, requests go against an allowance learned from a probe's answer
        self.recovering = False
        self._allowance = 0
        self._allowance_until = 0.0
        self._grant = 0  # the last allowance granted without headers (slow start doubles it)
        self._probe_out = False

    def pause(self, seconds: float) -> None:
        """Hold every request of the client for ``seconds`` (from a 429 or an exhausted limit); when
        it ends, requests are let through in the recovery phase (see the module docstring)."""
        until = self.clock() + seconds
        if until > self.paused_until:
            self.paused_until = until
            self.pauses += 1
        self.recovering = True
        self._allowance = 0
        self._allowance_until = 0.0
        self._grant = 0
        self._probe_out = False

    async def acquire(self, estimated_tokens: int = 0) -> bool:
        """Wait until a request may be sent; True when it is a recovery probe (report its answer's
        rate-limit headers with ``probe_answered``)."""
        probe = False
        while True:
            now = self.clock()
            wait = self.paused_until - now
            if wait > 0:
                await self.sleep(wait)
                continue
            if not self.recovering:
                break
            if self._allowance_until and now >= self._allowance_until:  # the allowance's window ended:
                self._allowance, self._allowance_until = 0, 0.0       # probe the next one
            if self._allowance > 0:
                self._allowance -= 1
                break
            if self._allowance_until:  # this window's allowance is used up: wait for the next
                await self.sleep(self._allowance_until - now)
                continue
            if not self._probe_out:
                self._probe_out = True
                probe = True
                break
            await self.sleep(_PROBE_POLL_S)  # a probe is out: its answer sets the allowance
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.wait_for(1)
        if self.tokens is not None and estimated_tokens:
            wait = max(wait, self.tokens.wait_for(estimated_tokens))
        if wait > 0:
            await self.sleep(wait)
        return probe

    def take_ready(self, count: int, estimated_tokens: int = 0) -> int:
        """Up to ``count`` more permits that need no wait now (none during a pause or a recovery phase):
        how a gate that serves several processes hands out permits in batches after one ``acquire``."""
        if count <= 0 or self.recovering or self.paused_until > self.clock():
            return 0
        granted = count
        if self.requests is not None:
            granted = min(granted, int(self.requests.available()))
        if self.tokens is not None and estimated_tokens:
            granted = min(granted, int(self.tokens.available() // estimated_tokens))
        if granted <= 0:
            return 0
        if self.requests is not None:
            self.requests.wait_for(granted)
        if self.tokens is not None and estimated_tokens:
            self.tokens.wait_for(granted * estimated_tokens)
        return granted

    def probe_answered(self, remaining: int | None = None, reset_s: float | None = None, *,
                       ok: bool = True) -> None:
        """The probe's answer arrived: ``remaining`` requests are accepted until ``reset_s`` from now
        (from its rate-limit headers; None when it had none). ``ok=False``: it failed without telling
        (another request will probe)."""
        if not self.recovering:
            return
        self._probe_out = False
        if not ok:
            return
        now = self.clock()
        if remaining is not None and reset_s is not None and math.isfinite(reset_s):
            if remaining >= PLENTY:
                self.recovering = False
                return
            self._allowance = max(0, remaining)
            self._allowance_until = now + max(0.0, reset_s)
            return
        self._grant = max(1, self._grant * 2)
        if self._grant >= PLENTY:
            self.recovering = False
            return
        self._allowance = self._grant
        self._allowance_until = 0.0  # no window known: the next probe waits for an answer

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None:
        """Correct the token bucket once the real usage is known (unknown usage: keep the estimate)."""
        if self.tokens is not None and estimated_tokens and actual_tokens is not None:
            self.tokens.refund(estimated_tokens - actual_tokens)
