"""``Throttle``: decides when a live view may redraw, so a fast batch cannot flood the frontend.

Why: every widget update is an iopub message, and the Jupyter server drops iopub traffic past
1000 messages/s (averaged over 3 s); a dropped update is lost for good, so a 10,000-request burst
would leave the bar frozen at 30%. Views therefore redraw at most once per ``min_interval_s`` and
always force a last redraw at the end.

Two gates, cheapest first (the tqdm recipe): a counter gate skips reading the clock until enough
events arrived (adapted to the observed event rate, capped so a slow tail is never starved), then
a time gate lets one redraw through per interval. The clock is injectable, so tests need no sleeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """Rate-limit redraws: ``ready()`` on each event, redraw when it returns True.

    Args:
        min_interval_s: the least time between two redraws it allows.
        clock: a monotonic clock in seconds (inject a fake one in tests).
        max_check_every: the largest number of events the counter gate lets pass without reading the
            clock; it bounds how late a redraw can come after its interval elapsed.
    """

    __slots__ = ("_check_every", "_last_draw", "_since_check", "clock", "draws",
                 "max_check_every", "min_interval_s", "pending")

    def __init__(self, min_interval_s: float = 0.1, clock: Callable[[], float] = time.monotonic, *,
                 max_check_every: int = 16) -> None:
        if not min_interval_s >= 0:
            raise ValueError(f"min_interval_s must be a number >= 0; got {min_interval_s!r}")
        if max_check_every < 1:
            raise ValueError(f"max_check_every must be >= 1; got {max_check_every!r}")
        self.min_interval_s = float(min_interval_s)
        self.clock = clock
        self.max_check_every = max_check_every
        self.pending = 0
        """Events since the last redraw."""
        self.draws = 0
        """Redraws allowed or recorded so far (``ready``/``due`` returning True, plus ``mark``)."""
        self._check_every = 1
        self._since_check = 0
        self._last_draw = -math.inf

    def ready(self, events: int = 1) -> bool:
        """Count ``events``; True when a redraw is due now (the caller must then redraw)."""
        self.pending += events
        self._since_check += events
        if self._since_check < self._check_every:  # counter gate: no clock read
            return False
        self._since_check = 0
        now = self.clock()
        if now - self._last_draw < self.min_interval_s:
            return False
        elapsed = now - self._last_draw
        if 0 < elapsed < math.inf:  # adapt to the event rate: read the clock ~4 times per interval
            wanted = self.pending * self.min_interval_s / elapsed / 4
            self._check_every = max(1, min(self.max_check_every, int(wanted)))
        self._record(now)
        return True

    def due(self) -> bool:
        """The time gate alone, for periodic ticks (elapsed time changes even without events)."""
        now = self.clock()
        if now - self._last_draw < self.min_interval_s:
            return False
        self._record(now)
        return True

    def mark(self) -> None:
        """Record a redraw made without asking (a forced final redraw): the interval restarts."""
        self._record(self.clock())

    def _record(self, now: float) -> None:
        self._last_draw = now
        self.pending = 0
        self.draws += 1

    def __repr__(self) -> str:
        return f"Throttle(min_interval_s={self.min_interval_s}, draws={self.draws}, pending={self.pending})"
