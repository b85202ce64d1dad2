"""Gemini's Batch API, translated: inline requests in one ``models/{model}:batchGenerateContent`` call, a
long-running operation (``batches/{id}``) with one ``state`` word, results inlined in the finished
operation in request order (each with its ``metadata.key`` when the service echoes it back).

Only inline requests are sent (up to 20 MB per batch, Google's limit for them); a bigger job is split
into several batches by the provider-neutral ``BatchJob``, so no file upload is needed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import httpx

from seeds_nb.core.exceptions import ResponseParseError

from ._batch_jobs import ProviderBatchAPI
from ._batch_store import ProviderBatch

__all__ = ["GRPC_STATUS", "GoogleBatchAPI"]

_TRANSFER_TIMEOUT_S = 600.0
_ENVELOPE = 200  # '{"batch":{"displayName":...,"inputConfig":{"requests":{"requests":[...]}}}}'
#: ``BATCH_STATE_*`` (REST) / ``JOB_STATE_*`` (the SDK's words) -> our vocabulary
_STATES = {"PENDING": "validating", "RUNNING": "in_progress", "SUCCEEDED": "completed", "FAILED": "failed",
           "CANCELLED": "cancelled", "EXPIRED": "expired", "QUEUED": "validating", "CANCELLING": "cancelling"}
#: a ``google.rpc.Status`` code (what a batch line's error carries) -> its HTTP status
GRPC_STATUS = {1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429, 9: 400, 10: 409, 11: 400,
               12: 501, 13: 500, 14: 503, 15: 500, 16: 401}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _count(stats: Mapping[str, Any], name: str) -> int:
    try:
        return int(stats.get(name) or 0)  # int64 fields come as JSON strings
    except (TypeError, ValueError):
        return 0


def _batch_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``GenerateContentBatch`` of an operation (its ``metadata``), or the object itself."""
    meta = data.get("metadata")
    return meta if isinstance(meta, dict) else data


class GoogleBatchAPI(ProviderBatchAPI):
    """``models/{model}:batchGenerateContent`` + ``batches/{id}``; inline requests, 20 MB per batch."""

    max_requests = 100_000
    max_bytes = 20_000_000 - _ENVELOPE
    batches_path = ""  # batch ids are resource names: "batches/abc123"

    def encode(self, custom_id: str, path: str, body: dict[str, Any]) -> bytes:
        return _dumps({"request": body, "metadata": {"key": custom_id}})

    async def create(self, lines: list[bytes], job_id: str, part: str) -> ProviderBatch:
        head = _dumps({"displayName": f"{job_id}_{part}"})[:-1]  # '{"displayName":"..."' without its '}'
        content = (b'{"batch":' + head + b',"inputConfig":{"requests":{"requests":[' + b",".join(lines)
                   + b"]}}}}")
        path = f"/models/{self.pipeline.codec.model}:batchGenerateContent"
        data = (await self.control("POST", path, content=content, timeout_s=_TRANSFER_TIMEOUT_S)).json()
        batch = ProviderBatch(id=str(data.get("name") or _batch_of(data).get("name")))
        self._update(batch, data)
        return batch

    async def retrieve(self, batch: ProviderBatch) -> None:
        self._update(batch, (await self.control("GET", f"/{batch.id}")).json())

    async def cancel(self, batch: ProviderBatch) -> None:
        await self.control("POST", f"/{batch.id}:cancel")  # answers {}: read the state after it
        await self.retrieve(batch)

    @staticmethod
    def _update(batch: ProviderBatch, data: dict[str, Any]) -> None:
        meta = _batch_of(data)
        raw = str(meta.get("state") or "BATCH_STATE_PENDING")
        word = raw.removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
        status = _STATES.get(word, "in_progress")
        if data.get("done") and status not in ("completed", "failed", "cancelled", "expired"):
            status = "failed" if data.get("error") else "completed"
        stats = meta.get("batchStats") or {}
        done, failed = _count(stats, "successfulRequestCount"), _count(stats, "failedRequestCount")
        rest = max(0, batch.count - done - failed)
        batch.raw_status, batch.status = raw, status
        batch.counts = {"succeeded": done, "failed": failed, "cancelled": rest if status == "cancelled" else 0,
                        "expired": rest if status == "expired" else 0}
        batch.created_at = _timestamp(meta.get("createTime")) or batch.created_at
        batch.ended_at = _timestamp(meta.get("endTime")) if status in ("completed", "failed", "cancelled",
                                                                       "expired") else None
        error = data.get("error")
        batch.errors = [str(error.get("message") or error)] if isinstance(error, dict) else []
        output = meta.get("output") or data.get("response")
        batch.has_results = not (status == "failed" and not output)

    async def results(self, batch: ProviderBatch, params: Mapping[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        data = (await self.control("GET", f"/{batch.id}", timeout_s=_TRANSFER_TIMEOUT_S)).json()
        output = _batch_of(data).get("output") or data.get("response") or {}
        inlined = output.get("inlinedResponses") if isinstance(output, dict) else None
        items = inlined.get("inlinedResponses") if isinstance(inlined, dict) else inlined
        if not items and isinstance(output, dict) and output.get("responsesFile"):
            error = ResponseParseError(f"batch {batch.id} put its results in a file ({output['responsesFile']}); "
                                       "GoogleClient reads inline results only", provider=self.pipeline.provider)
            for start, stop in batch.ranges:
                for index in range(start, stop):
                    yield f"req-{index}", error
            return
        # Results come in request order; ``metadata.key`` is used when the service echoes it back.
        order = [i for start, stop in batch.ranges for i in range(start, stop)]
        for position, item in enumerate(items or []):
            if not isinstance(item, dict):
                continue
            key = (item.get("metadata") or {}).get("key")
            custom_id = str(key) if key else (f"req-{order[position]}" if position < len(order) else "")
            yield custom_id, self._parse_item(custom_id, item, params)

    def _parse_item(self, custom_id: str, item: dict[str, Any], params: Mapping[str, Any]) -> Any:
        pipeline = self.pipeline
        if isinstance(item.get("response"), dict):
            return self.answer(custom_id, _dumps(item["response"]), params)
        found = item.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {"message": "no response and no error"}
        code = error.get("code")
        status = code if isinstance(code, int) and code >= 100 else GRPC_STATUS.get(code, 500)  # type: ignore[arg-type]
        envelope = {"error": {"code": status, "message": error.get("message") or "", "details": error.get("details")
                              or [], "status": error.get("status")}}
        return pipeline.status_error(status, _dumps(envelope), httpx.Headers(),
                                     f"{pipeline.base_url}/models/{pipeline.codec.model}:generateContent")
