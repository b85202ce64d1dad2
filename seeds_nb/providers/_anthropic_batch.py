"""Anthropic's Message Batches API, translated: requests in one JSON body, one status word
(``in_progress`` / ``canceling`` / ``ended``), results as JSONL (in any order, joined on ``custom_id``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from seeds_nb.core.exceptions import Cancelled, ResponseParseError

from ._batch_jobs import ProviderBatchAPI
from ._batch_results import BatchExpired, split_member
from ._batch_store import ProviderBatch

__all__ = ["ERROR_STATUS", "AnthropicBatchAPI"]

#: Anthropic's error ``type`` -> HTTP status (batch result lines carry the type, not the status).
ERROR_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}

_PATH = "/v1/messages/batches"
_ENVELOPE = len(b'{"requests":[]}')
_TRANSFER_TIMEOUT_S = 600.0


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


class AnthropicBatchAPI(ProviderBatchAPI):
    """``/v1/messages/batches``; limits: 100,000 requests and 256 MB per batch."""

    max_requests = 100_000
    max_bytes = 256_000_000 - _ENVELOPE
    batches_path = _PATH

    def encode(self, custom_id: str, path: str, body: dict[str, Any]) -> bytes:
        return _dumps({"custom_id": custom_id, "params": body})

    async def create(self, lines: list[bytes], job_id: str, part: str) -> ProviderBatch:
        content = b'{"requests":[' + b",".join(lines) + b"]}"
        data = (await self.control("POST", _PATH, content=content, timeout_s=_TRANSFER_TIMEOUT_S)).json()
        batch = ProviderBatch(id=data["id"])
        self._update(batch, data)
        return batch

    @staticmethod
    def _update(batch: ProviderBatch, data: dict[str, Any]) -> None:
        raw = data.get("processing_status") or "in_progress"
        counts = data.get("request_counts") or {}
        batch.counts = {"succeeded": int(counts.get("succeeded") or 0), "failed": int(counts.get("errored") or 0),
                        "cancelled": int(counts.get("canceled") or 0), "expired": int(counts.get("expired") or 0)}
        batch.raw_status = raw
        if raw == "ended":
            batch.status = ("cancelled" if data.get("cancel_initiated_at")
                            else "expired" if batch.counts["expired"] else "completed")
        else:
            batch.status = "cancelling" if raw == "canceling" else "in_progress"
        batch.created_at = _timestamp(data.get("created_at")) or batch.created_at
        batch.ended_at = _timestamp(data.get("ended_at"))

    async def results(self, batch: ProviderBatch, params: Mapping[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        # The documented path on the client's own base_url (rather than ``results_url``): the API key
        # is never sent to a host other than the one the user configured.
        content = (await self.control("GET", f"{_PATH}/{batch.id}/results", timeout_s=_TRANSFER_TIMEOUT_S)).content
        for line in content.splitlines():
            if line.strip():
                yield self._parse_line(line, params)

    def _parse_line(self, line: bytes, params: Mapping[str, Any]) -> tuple[str, Any]:
        pipeline = self.pipeline
        try:
            data, raw = split_member(line, "message", lambda d: d.get("result"))
            custom_id, result = str(data.get("custom_id")), data.get("result") or {}
            kind = result.get("type")
        except (ValueError, AttributeError) as exc:
            return "", ResponseParseError(f"unreadable batch result line ({exc})", provider=pipeline.provider)
        if kind == "succeeded":
            return custom_id, self.answer(custom_id, raw or _dumps(result.get("message")), params)
        if kind == "canceled":
            return custom_id, Cancelled("the batch was cancelled before this request ran")
        if kind == "expired":
            return custom_id, BatchExpired("the batch expired (24 h) before this request ran")
        envelope = result.get("error") or {}
        error_type = (envelope.get("error") or {}).get("type") or "api_error"
        headers = httpx.Headers({"request-id": str(envelope.get("request_id") or "")})
        return custom_id, pipeline.status_error(ERROR_STATUS.get(error_type, 500), _dumps(envelope), headers,
                                                pipeline.base_url + "/v1/messages")
