"""OpenAI's Batch API, translated: a JSONL file uploaded to ``/files``, a batch on ``/batches``,
results in an output file and an error file (lines in any order, joined on ``custom_id``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from seeds_nb.core.exceptions import APIError, Cancelled, ResponseParseError
from seeds_nb.core.types import Response

from ._batch_jobs import ProviderBatchAPI
from ._batch_results import BatchExpired, split_member
from ._batch_store import ProviderBatch

__all__ = ["OpenAIBatchAPI"]

ENDPOINT = "/v1/chat/completions"
_ENDED_AT = ("completed_at", "failed_at", "expired_at", "cancelled_at")
_TRANSFER_TIMEOUT_S = 600.0  # a 200 MB upload or download takes longer than one chat request


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class OpenAIBatchAPI(ProviderBatchAPI):
    """``/v1/files`` + ``/v1/batches``; limits: 50,000 requests and 200 MB per input file."""

    max_requests = 50_000
    max_bytes = 200_000_000
    batches_path = "/batches"

    def encode(self, custom_id: str, path: str, body: dict[str, Any]) -> bytes:
        return _dumps({"custom_id": custom_id, "method": "POST", "url": "/v1" + path, "body": body})

    async def create(self, lines: list[bytes], job_id: str, part: str) -> ProviderBatch:
        api = self.control
        content = b"\n".join(lines) + b"\n"
        upload = await api("POST", "/files", files={"file": (f"{job_id}_{part}.jsonl", content, "application/jsonl")},
                           data={"purpose": "batch"}, timeout_s=_TRANSFER_TIMEOUT_S)
        file_id = upload.json()["id"]
        created = await api("POST", self.batches_path, json={
            "input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": "24h",
            "metadata": {"seeds_nb_job": job_id, "seeds_nb_part": part},
        })
        data = created.json()
        batch = ProviderBatch(id=data["id"], extra={"input_file_id": file_id})
        self._update(batch, data)
        return batch

    @staticmethod
    def _update(batch: ProviderBatch, data: dict[str, Any]) -> None:
        status = data.get("status") or "validating"
        batch.raw_status = batch.status = status  # OpenAI's words are the normalised vocabulary
        counts = data.get("request_counts") or {}
        done, failed = int(counts.get("completed") or 0), int(counts.get("failed") or 0)
        rest = max(0, batch.count - done - failed)
        batch.counts = {"succeeded": done, "failed": failed, "cancelled": rest if status == "cancelled" else 0,
                        "expired": rest if status == "expired" else 0}
        batch.created_at = data.get("created_at") or batch.created_at
        batch.ended_at = next((float(data[k]) for k in _ENDED_AT if data.get(k)), None)
        for key in ("output_file_id", "error_file_id"):
            batch.extra[key] = data.get(key)
        batch.errors = [f"line {e.get('line')}: {e.get('message')}" if e.get("line") else str(e.get("message"))
                        for e in ((data.get("errors") or {}).get("data") or [])]
        batch.has_results = not (status == "failed" and not batch.extra["output_file_id"]
                                 and not batch.extra["error_file_id"])

    async def results(self, batch: ProviderBatch, params: Mapping[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        for key in ("output_file_id", "error_file_id"):
            file_id = batch.extra.get(key)
            if not file_id:
                continue
            content = (await self.control("GET", f"/files/{file_id}/content", timeout_s=_TRANSFER_TIMEOUT_S)).content
            for line in content.splitlines():
                if line.strip():
                    yield self._parse_line(line, params)

    def _parse_line(self, line: bytes, params: Mapping[str, Any]) -> tuple[str, Any]:
        pipeline = self.pipeline
        try:
            data, body = split_member(line, "body", lambda d: d.get("response"))
            custom_id = str(data.get("custom_id"))
            error, response = data.get("error"), data.get("response") or {}
            if body is None:
                body = _dumps(response.get("body"))
        except (ValueError, AttributeError) as exc:
            return "", ResponseParseError(f"unreadable batch result line ({exc})", provider=pipeline.provider)
        if error:
            code, message = error.get("code"), error.get("message") or ""
            if code == "batch_expired":
                return custom_id, BatchExpired(message or "the batch expired before this request ran")
            if code == "batch_cancelled":
                return custom_id, Cancelled(message or "the batch was cancelled before this request ran")
            return custom_id, APIError(f"{code}: {message}", provider=pipeline.provider, url=ENDPOINT)
        status = int(response.get("status_code") or 0)
        request_id = response.get("request_id") or ""
        if not 200 <= status < 300:
            return custom_id, pipeline.status_error(status, body, httpx.Headers({"x-request-id": request_id}),
                                                    pipeline.base_url + "/chat/completions")
        parsed = self.answer(custom_id, body, params)
        if isinstance(parsed, Response):
            parsed.request_id = request_id or parsed.request_id
        return custom_id, parsed
