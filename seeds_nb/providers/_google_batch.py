"""Gemini's Batch API, translated: one ``models/{model}:batchGenerateContent`` call whose requests are
inline or in a JSONL file, a long-running operation (``batches/{id}``) with one ``state`` word, and its
results inlined in the finished operation (inline input) or in a JSONL file (file input).

Why both forms: inline requests need no upload and come back in request order, but Google takes at
most 20 MB of them per batch; a file (uploaded with the Files API, ``upload/v1beta/files``, as a
``multipart`` upload: its metadata and its bytes in one request) takes up to 2 GB, and its result
lines carry each request's ``key``. ``GoogleClient(batch_input=...)`` picks: ``"auto"`` (the default)
sends a batch inline when it fits in 20 MB and as a file otherwise, ``"inline"`` never uploads (a big
job is split into several batches by the provider-neutral ``BatchJob``), ``"file"`` always uploads.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from seeds_nb.core.exceptions import ResponseParseError

from ._batch_jobs import ProviderBatchAPI
from ._batch_store import ProviderBatch

if TYPE_CHECKING:
    from seeds_nb.core.client import BaseClient

__all__ = ["BATCH_INPUTS", "FILE_MAX_BYTES", "GRPC_STATUS", "INLINE_MAX_BYTES", "GoogleBatchAPI"]

BATCH_INPUTS = ("auto", "inline", "file")
_TRANSFER_TIMEOUT_S = 600.0
_ENVELOPE = 200  # '{"batch":{"displayName":...,"inputConfig":{"requests":{"requests":[...]}}}}'
INLINE_MAX_BYTES = 20_000_000 - _ENVELOPE
"""Inline requests of one batch: Google's limit (20 MB for the whole call)."""
FILE_MAX_BYTES = 2_000_000_000
"""One input file: the Files API's limit (2 GB)."""
_INLINE_GROWTH = len(b'"metadata":{},')  # an inline request carries its key in metadata
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


def _beside(base_url: str, prefix: str) -> str:
    """Google's upload and download URLs: ``/upload`` or ``/download`` before the API's path, on its host
    (``https://host/v1beta`` -> ``https://host/upload/v1beta``)."""
    url = httpx.URL(base_url)
    return str(url.copy_with(path=prefix + url.path.rstrip("/"), query=None))


class GoogleBatchAPI(ProviderBatchAPI):
    """``models/{model}:batchGenerateContent`` + ``batches/{id}``; inline requests up to 20 MB per batch,
    a JSONL file (Files API) up to 2 GB."""

    max_requests = 100_000
    max_bytes = FILE_MAX_BYTES
    batches_path = ""  # batch ids are resource names: "batches/abc123"

    def __init__(self, client: BaseClient) -> None:
        super().__init__(client)
        self.input: str = getattr(client, "batch_input", "auto")
        if self.input == "inline":
            self.max_bytes = INLINE_MAX_BYTES

    def encode(self, custom_id: str, path: str, body: dict[str, Any]) -> bytes:
        """A line as the file form has it (``{"key", "request"}``); ``create`` turns it into an inline
        request (``{"request", "metadata": {"key"}}``) when the batch is sent inline."""
        return _dumps({"key": custom_id, "request": body})

    async def create(self, lines: list[bytes], job_id: str, part: str) -> ProviderBatch:
        name = f"{job_id}_{part}"
        inline_size = sum(len(line) + _INLINE_GROWTH + 1 for line in lines)
        if self.input == "inline" or (self.input == "auto" and inline_size <= INLINE_MAX_BYTES):
            items = []
            for line in lines:
                item = json.loads(line)
                items.append(_dumps({"request": item["request"], "metadata": {"key": item["key"]}}))
            config = b'{"requests":{"requests":[' + b",".join(items) + b"]}}"
        else:
            config = _dumps({"fileName": await self.upload(b"\n".join(lines) + b"\n", name)})
        head = _dumps({"displayName": name})[:-1]  # '{"displayName":"..."' without its '}'
        content = b'{"batch":' + head + b',"inputConfig":' + config + b"}}"
        path = f"/models/{self.pipeline.codec.model}:batchGenerateContent"
        data = (await self.control("POST", path, content=content, timeout_s=_TRANSFER_TIMEOUT_S)).json()
        batch = ProviderBatch(id=str(data.get("name") or _batch_of(data).get("name")))
        self._update(batch, data)
        return batch

    async def upload(self, content: bytes, display_name: str) -> str:
        """Upload a JSONL file with the Files API in one ``multipart`` request; its name (``files/...``)."""
        boundary = "seeds_nb-" + secrets.token_hex(12)
        metadata = _dumps({"file": {"displayName": display_name, "mimeType": "application/jsonl"}})
        body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode() + metadata
                + f"\r\n--{boundary}\r\nContent-Type: application/jsonl\r\n\r\n".encode() + content
                + f"\r\n--{boundary}--\r\n".encode())
        url = _beside(self.pipeline.base_url, "/upload") + "/files"
        data = (await self.control("POST", url, content=body, timeout_s=_TRANSFER_TIMEOUT_S, headers={
            "x-goog-upload-protocol": "multipart",
            "content-type": f"multipart/related; boundary={boundary}"})).json()
        found = (data.get("file") or {}).get("name") if isinstance(data, dict) else None
        if not isinstance(found, str) or not found:
            raise ResponseParseError(f"the Files API answered an upload without a file name: {str(data)[:200]}",
                                     provider=self.pipeline.provider)
        return found

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
            url = f"{_beside(self.pipeline.base_url, '/download')}/{output['responsesFile']}:download?alt=media"
            text = (await self.control("GET", url, timeout_s=_TRANSFER_TIMEOUT_S)).content
            for raw in text.splitlines():  # a line without a key is no prompt's: its prompt ends as "no result"
                try:
                    line = json.loads(raw)
                    line_key = str(line["key"])
                except (ValueError, KeyError, TypeError):
                    continue
                yield line_key, self._parse_item(line_key, line, params)
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
        found = item.get("error") if item.get("error") is not None else item.get("status")  # a file line: status
        error: dict[str, Any] = found if isinstance(found, dict) else {"message": "no response and no error"}
        code = error.get("code")
        status = code if isinstance(code, int) and code >= 100 else GRPC_STATUS.get(code, 500)  # type: ignore[arg-type]
        envelope = {"error": {"code": status, "message": error.get("message") or "", "details": error.get("details")
                              or [], "status": error.get("status")}}
        return pipeline.status_error(status, _dumps(envelope), httpx.Headers(),
                                     f"{pipeline.base_url}/models/{pipeline.codec.model}:generateContent")
