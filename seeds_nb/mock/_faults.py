"""Fault injection and rate-limit bookkeeping for the mock server: OpenAI-shaped errors and headers.

Kept apart from the HTTP layer so the shapes clients see (error bodies, ``x-ratelimit-*`` headers,
Go-style durations) are easy to read and test on their own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

WINDOW_S = 60.0
DEFAULT_RPM = 10_000  # what the headers report when no limit is configured
DEFAULT_TPM = 10_000_000
BAD_KEY: dict[str, Any] = {
    "message": "Incorrect API key provided.",
    "type": "invalid_request_error",
    "param": None,
    "code": "invalid_api_key",
}


@dataclass
class Fault:
    """A failure injected into matching chat requests, decided deterministically per request identity.

    ``kind``: "status" (error ``status`` + the protocol's error body), "slow" (``delay_s`` then a normal
    answer), "drop" (close the connection, send nothing), "malformed" (200 with a truncated JSON body),
    "no_usage" (a normal answer without its ``usage`` member, as some self-hosted servers send), or
    "expire" (batch lines only: the line is not processed before the batch's window ends).
    In batch jobs, "status" faults become per-line errors and "expire" faults expired lines; a line is
    judged once (as a first attempt), and "slow"/"drop"/"malformed" do not apply.
    ``rate`` hits that fraction of matching requests, chosen by hashing (identity, fault index, attempt);
    ``times`` caps fires per distinct request, so ``times=1`` means "first attempt fails, retry succeeds".
    ``match`` restricts it to requests whose message text contains the substring.
    ``reset_s`` (a "status" fault, e.g. a 429): the rate-limit headers say the request limit is used
    up and resets in that many seconds, as providers do (with or without ``retry-after``).
    """

    kind: Literal["status", "slow", "drop", "malformed", "no_usage", "expire"] = "status"
    status: int = 500
    rate: float = 1.0
    match: str | None = None
    times: int | None = None
    retry_after: float | None = None
    retry_after_ms: int | None = None
    delay_s: float = 0.0
    reset_s: float | None = None
    code: str | None = None
    body: str | None = None


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration, as OpenAI's ``x-ratelimit-reset-*`` (``120ms``, ``6m0s``)."""
    if seconds < 1:
        ms = round(seconds * 1000)
        return f"{ms}ms" if ms > 0 else "0s"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    s = f"{secs:.3f}".rstrip("0").rstrip(".")
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{s}s"


def header_seconds(value: float) -> str:
    """``retry-after`` value: whole seconds as an int (``2``), otherwise the float (``0.5``)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error envelope, which the SDK turns into the right exception class and message."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def status_error_body(fault: Fault) -> dict[str, Any]:
    """An OpenAI-shaped error body for a ``status`` fault."""
    status, code = fault.status, fault.code
    if status == 429 and code == "insufficient_quota":
        msg = "You exceeded your current quota, please check your plan and billing details."
        return error_body(msg, "insufficient_quota", None, code)
    if status == 429:
        msg = "Rate limit reached for requests on the mock model. Please try again in 1s."
        return error_body(msg, "requests", None, code or "rate_limit_exceeded")
    if status == 401:
        return {"error": dict(BAD_KEY, code=code or BAD_KEY["code"])}
    if status >= 500:
        msg = "The server had an error while processing your request. Sorry about that!"
        return error_body(msg, "server_error", None, code)
    return error_body(f"Mock fault: HTTP {status}.", "invalid_request_error", None, code)


class RateWindow:
    """A sliding window of (time, amount) for a per-minute limit (rpm or tpm).

    ``window_s`` (default 60) is the window the limit is enforced over, with the limit scaled to it:
    1,200 rpm over a 1 s window allows 20 per second. Providers also enforce per-minute limits over
    shorter periods; a short window lets a demo reach the steady state in seconds, not minutes.
    """

    def __init__(self, limit: int | None, window_s: float = WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self.capacity = limit * window_s / WINDOW_S if limit is not None else None
        self.events: deque[tuple[float, int]] = deque()
        self.used = 0

    def expire(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.window_s:
            self.used -= self.events.popleft()[1]

    def wait_for(self, now: float, amount: int) -> float:
        """Seconds until ``amount`` more fits (0.0 if it fits now)."""
        if self.capacity is None or self.used + amount <= self.capacity:
            return 0.0
        freed = self.used
        for t, n in self.events:
            freed -= n
            if freed + amount <= self.capacity:
                return t + self.window_s - now
        return self.window_s

    def add(self, now: float, amount: int) -> None:
        if self.limit is not None:
            self.events.append((now, amount))
            self.used += amount

    def remaining(self, default: int) -> int:
        """What is left in the current window (the per-minute ``default`` when there is no limit)."""
        if self.capacity is None:
            return max(default - self.used, 0)
        return max(int(self.capacity - self.used), 0)

    def headers(self, kind: str, default: int, now: float) -> dict[str, str]:
        limit = self.limit if self.limit is not None else default
        reset = self.events[0][0] + self.window_s - now if self.events else 0.0
        return {
            f"x-ratelimit-limit-{kind}": str(limit),
            f"x-ratelimit-remaining-{kind}": str(self.remaining(default)),
            f"x-ratelimit-reset-{kind}": go_duration(max(reset, 0.0)),
        }
