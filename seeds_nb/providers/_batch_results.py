"""The small public types of batch jobs, and the result-line helper the provider adapters share."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seeds_nb.core.exceptions import BatchExpired, SeedsError

__all__ = ["BatchCounts", "BatchExpired", "BatchNotReady", "split_member"]

_DECODER = json.JSONDecoder()


class BatchNotReady(SeedsError, RuntimeError):
    """The batch job has not finished yet: ``await job.wait()`` first."""


@dataclass(slots=True)
class BatchCounts:
    """Requests of a job by outcome so far (providers report some only at the end)."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0

    @property
    def processing(self) -> int:
        return max(0, self.total - self.succeeded - self.failed - self.cancelled - self.expired)

    def __add__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(self.total + other.total, self.succeeded + other.succeeded, self.failed + other.failed,
                           self.cancelled + other.cancelled, self.expired + other.expired)


def split_member(line: bytes, key: str, owner: Callable[[dict[str, Any]], Any]) -> tuple[dict[str, Any], bytes | None]:
    """Parse a result line, keeping the first ``key`` member's value as raw JSON.

    Why: that member is a whole response body which the provider's ``_parse_response`` parses from
    bytes anyway; re-encoding it first costs more than the rest of the line. The envelope is parsed
    with ``null`` in the member's place; if ``owner(envelope)`` does not hold that ``null`` (an
    unexpected layout), the line is parsed whole and ``None`` is returned for the raw part.
    """
    text = line.decode("utf-8")
    match = re.search(f'"{key}"\\s*:\\s*', text)
    if match is not None:
        try:
            _, end = _DECODER.raw_decode(text, match.end())
            data = json.loads(text[: match.end()] + "null" + text[end:])
            holder = owner(data)
            if isinstance(holder, dict) and key in holder and holder[key] is None:
                return data, text[match.end():end].encode()
        except (ValueError, AttributeError, KeyError, TypeError):
            pass
    return json.loads(text), None
