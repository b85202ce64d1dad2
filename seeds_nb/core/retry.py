"""When and how long to wait before retrying a failed request.

Kept small rather than wrapping tenacity/stamina: the decision needs the provider's headers
(``retry-after-ms``, ``retry-after`` in seconds or as an HTTP date, rate-limit reset headers)
and feeds the client-wide rate limiter, which neither library models.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .exceptions import APIError, APIStatusError, RateLimitError

__all__ = ["RetryPolicy", "parse_duration", "retry_after_from_headers"]

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1.5s``, ``120ms``) or a plain number."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def retry_after_from_headers(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's requested wait in seconds, from ``retry-after-ms`` or ``retry-after``."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value).timestamp()
            except (TypeError, ValueError):
                return None
            return max(0.0, when - (time.time() if now is None else now))
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a server-told wait wins, capped at ``max_wait_s``.

    Defaults: 4 retries (5 attempts), backoff 0.5 s x 2^n capped at 8 s, server waits capped at 60 s.
    """

    max_retries: int = 4
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_wait_s: float = 60.0

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """``attempt`` counts from 1 (the first try). A server's ``x-should-retry: true|false``
        header overrides the status-based decision (OpenAI sends it)."""
        if attempt > self.max_retries or not isinstance(error, APIError):
            return False
        told = error.headers.get("x-should-retry") if isinstance(error, APIStatusError) else None
        if told in ("true", "false"):
            return told == "true"
        return bool(error.retryable)

    def delay(self, error: BaseException, attempt: int, rng: random.Random | None = None) -> float:
        told = error.retry_after if isinstance(error, RateLimitError) else None
        if told is None and isinstance(error, APIStatusError):
            told = retry_after_from_headers(error.headers)
        if told is not None:
            return min(told, self.max_wait_s)
        cap = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return (rng or random).uniform(0, cap)
