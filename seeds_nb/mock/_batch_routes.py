"""HTTP routes of the mock's Batch APIs: OpenAI files + batches, Anthropic message batches, Gemini batches
(inline requests, or a JSONL file uploaded to Gemini's Files API, whose results come back as a file).

Shapes follow the official SDKs' types closely enough that ``openai`` and ``anthropic`` clients
work against them (``tests/test_mock_batches.py``). State lives in ``MockBatch`` objects; each
request reads the server's clock, so time decides the status, never a background task.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from . import _anthropic as anth
from . import _gemini as gem
from ._batches import ANTHROPIC_MAX_REQUESTS, OK, MockBatch, StoredFile, classify, new_id, parse_openai_input
from ._dialects import ANTHROPIC, GEMINI, OPENAI, Dialect
from ._faults import error_body

if TYPE_CHECKING:
    from ._server import MockServer

__all__ = ["BatchRoutes"]

_DAY_S = 86_400
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENDPOINTS = ("/v1/chat/completions",)
Handler = Callable[[web.Request], Any]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


class BatchRoutes:
    """Files and batches of one ``MockServer``."""

    def __init__(self, server: MockServer) -> None:
        self.server = server
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, MockBatch] = {}
        self._generating: dict[str, asyncio.Future[object]] = {}

    def add_to(self, app: web.Application) -> None:
        guard_o, guard_a = self._guard(OPENAI), self._guard(ANTHROPIC)
        app.router.add_post("/v1/files", guard_o(self.create_file))
        app.router.add_get("/v1/files/{id}", guard_o(self.get_file))
        app.router.add_get("/v1/files/{id}/content", guard_o(self.file_content))
        app.router.add_post("/v1/batches", guard_o(self.create_batch))
        app.router.add_get("/v1/batches", guard_o(self.list_batches))
        app.router.add_get("/v1/batches/{id}", guard_o(self.get_batch))
        app.router.add_post("/v1/batches/{id}/cancel", guard_o(self.cancel_batch))
        app.router.add_post("/v1/messages/batches", guard_a(self.create_message_batch))
        app.router.add_get("/v1/messages/batches", guard_a(self.list_message_batches))
        app.router.add_get("/v1/messages/batches/{id}", guard_a(self.get_message_batch))
        app.router.add_delete("/v1/messages/batches/{id}", guard_a(self.delete_message_batch))
        app.router.add_get("/v1/messages/batches/{id}/results", guard_a(self.message_batch_results))
        app.router.add_post("/v1/messages/batches/{id}/cancel", guard_a(self.cancel_message_batch))
        guard_g = self._guard(GEMINI)
        app.router.add_post("/v1beta/models/{model}:batchGenerateContent", guard_g(self.create_gemini_batch))
        app.router.add_post("/v1beta/batches/{id}:cancel", guard_g(self.cancel_gemini_batch))
        app.router.add_get("/v1beta/batches", guard_g(self.list_gemini_batches))
        app.router.add_get("/v1beta/batches/{id}", guard_g(self.get_gemini_batch))
        app.router.add_delete("/v1beta/batches/{id}", guard_g(self.delete_gemini_batch))
        app.router.add_post("/upload/v1beta/files", guard_g(self.upload_gemini_file))
        app.router.add_get("/v1beta/files/{id}", guard_g(self.get_gemini_file))
        app.router.add_delete("/v1beta/files/{id}", guard_g(self.delete_gemini_file))
        app.router.add_get("/download/v1beta/files/{id}:download", guard_g(self.download_gemini_file))

    def _guard(self, dialect: Dialect) -> Callable[[Handler], Handler]:
        """Auth (and Anthropic's version header) in front of every route of one protocol."""

        def wrap(handler: Handler) -> Handler:
            async def guarded(request: web.Request) -> web.StreamResponse:
                if not dialect.authorized(request.headers, self.server.api_key):
                    return _json(dialect.unauthorized(None), dialect.unauthorized_status)  # type: ignore[arg-type]
                if dialect is ANTHROPIC and not request.headers.get("anthropic-version"):
                    return _anthropic_error("anthropic-version: header is required")
                return await handler(request)

            return guarded

        return wrap

    def _new_batch(self, flavor: str, lines: list[bytes], ids: list[str], items: list[Any], **kwargs: Any) -> MockBatch:
        server = self.server
        faults = server.faults
        prefix = {"openai": "batch_", "anthropic": "msgbatch_"}.get(flavor, "")
        batch = MockBatch(id=new_id(prefix), flavor=flavor,
                          created_at=server.clock(), duration_s=server.batch_duration_s, lines=lines, custom_ids=ids,
                          outcomes=classify(items, flavor, faults), faults=faults, **kwargs)
        self.batches[batch.id] = batch
        return batch

    async def _generated(self, batch: MockBatch, build: Callable[[], object]) -> None:
        """Build a batch's results once, off the server loop (concurrent downloads share the work)."""
        pending = self._generating.get(batch.id)
        if pending is None:
            pending = asyncio.get_running_loop().run_in_executor(None, build)
            self._generating[batch.id] = pending
        await pending

    # -- OpenAI files ------------------------------------------------------------------------------
    async def create_file(self, request: web.Request) -> web.Response:
        purpose, filename, content = None, None, None
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: not what the files API sends
            if part.name == "purpose":
                purpose = await part.text()
            elif part.name == "file":
                filename, chunks = part.filename, []
                while chunk := await part.read_chunk(1 << 22):  # big reads: fast
                    chunks.append(chunk)
                content = b"".join(chunks)
        if content is None or not purpose:
            return _openai_error("'file' and 'purpose' are required multipart fields.", "file")
        if purpose == "batch" and not (filename or "").endswith(".jsonl"):
            return _openai_error("Invalid file format for Batch API. Must be .jsonl", "file")
        stored = StoredFile(new_id("file-"), filename or "upload", purpose, self.server.clock(), bytes(content))
        self.files[stored.id] = stored
        return _json(stored.info())

    def _file(self, request: web.Request) -> StoredFile | web.Response:
        stored = self.files.get(request.match_info["id"])
        if stored is None:
            return _openai_error(f"No such File object: {request.match_info['id']}", "id", 404)
        return stored

    async def get_file(self, request: web.Request) -> web.Response:
        stored = self._file(request)
        return stored if isinstance(stored, web.Response) else _json(stored.info())

    async def file_content(self, request: web.Request) -> web.Response:
        stored = self._file(request)
        if isinstance(stored, web.Response):
            return stored
        if stored.content is None and stored.batch is not None:
            batch = stored.batch

            def build() -> None:
                out, err = batch.openai_results()
                if batch.output_file is not None:
                    batch.output_file.content = out
                if batch.error_file is not None:
                    batch.error_file.content = err

            await self._generated(batch, build)
        return web.Response(body=stored.content or b"", content_type="application/octet-stream")

    # -- OpenAI batches ----------------------------------------------------------------------------
    async def create_batch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _openai_error("We could not parse the JSON body of your request.", None)
        stored = self.files.get(str(body.get("input_file_id")))
        if stored is None or stored.purpose != "batch":
            return _openai_error(f"Invalid 'input_file_id': {body.get('input_file_id')!r} is not a batch file.",
                                 "input_file_id")
        if body.get("endpoint") not in _ENDPOINTS:
            return _openai_error("The mock server runs batches for '/v1/chat/completions' only.", "endpoint")
        if body.get("completion_window") != "24h":
            return _openai_error("completion_window must be '24h'.", "completion_window")
        lines, ids, items, errors = parse_openai_input(stored.content or b"", body["endpoint"])
        model = next((i["body"].get("model") for i in items if isinstance(i, dict) and isinstance(i.get("body"), dict)),
                     None)
        batch = self._new_batch("openai", lines, ids, items, endpoint=body["endpoint"], input_file_id=stored.id,
                                metadata=body.get("metadata"), errors=errors, model=model)
        return _json(self._openai_info(batch))

    def _openai_batch(self, request: web.Request) -> MockBatch | web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.flavor != "openai":
            return _openai_error(f"No batch found with id '{request.match_info['id']}'.", "batch_id", 404)
        return batch

    async def get_batch(self, request: web.Request) -> web.Response:
        batch = self._openai_batch(request)
        return batch if isinstance(batch, web.Response) else _json(self._openai_info(batch))

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch = self._openai_batch(request)
        if isinstance(batch, web.Response):
            return batch
        now = self.server.clock()
        if batch.cancel_at is None:
            status = batch.openai_status(now)
            if status in ("completed", "failed", "expired"):
                return _openai_error(f"Cannot cancel a batch with status '{status}'.", None, 409)
            batch.cancel_at = now
        return _json(self._openai_info(batch))

    async def list_batches(self, request: web.Request) -> web.Response:
        found = [b for b in reversed(self.batches.values()) if b.flavor == "openai"]
        data, has_more = _page(found, request.query.get("after"), None, request.query.get("limit"), 100)
        info = [self._openai_info(b) for b in data]
        return _json({"object": "list", "data": info, "first_id": info[0]["id"] if info else None,
                      "last_id": info[-1]["id"] if info else None, "has_more": has_more})

    def _openai_info(self, batch: MockBatch) -> dict[str, Any]:
        now = self.server.clock()
        status = batch.openai_status(now)
        done, bad = batch.counts_at(now)
        if status in ("completed", "expired", "cancelled") and batch.output_file is None and batch.error_file is None:
            finals = [batch.final(n) for n in range(len(batch.lines))]
            if any(f == OK for f in finals):
                batch.output_file = self._result_file(batch, "output")
            if any(f != OK for f in finals):
                batch.error_file = self._result_file(batch, "error")
        at = int
        ended = {"completed": "completed_at", "failed": "failed_at", "expired": "expired_at",
                 "cancelled": "cancelled_at"}
        stamps: dict[str, int | None] = dict.fromkeys(
            ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
             "cancelled_at"))
        started = batch.cancel_at is None or batch.cancel_at >= batch.run_start
        if now >= batch.run_start and not batch.errors and started:
            stamps["in_progress_at"] = at(batch.run_start)
        if status in ("finalizing", "completed"):
            stamps["finalizing_at"] = at(batch.run_end)
        if batch.cancel_at is not None:
            stamps["cancelling_at"] = at(batch.cancel_at)
        if status in ended:
            stamps[ended[status]] = at(batch.end)
        return {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": status,
            "output_file_id": batch.output_file.id if batch.output_file else None,
            "error_file_id": batch.error_file.id if batch.error_file else None,
            "created_at": at(batch.created_at), "expires_at": at(batch.created_at + _DAY_S), **stamps,
            "request_counts": {"total": len(batch.lines), "completed": done, "failed": bad},
            "metadata": batch.metadata, "model": batch.model,
        }

    def _result_file(self, batch: MockBatch, kind: str) -> StoredFile:
        stored = StoredFile(new_id("file-"), f"{batch.id}_{kind}.jsonl", f"batch_{kind}", self.server.clock(),
                            batch=batch, kind=kind)
        self.files[stored.id] = stored
        return stored

    # -- Anthropic message batches -----------------------------------------------------------------
    async def create_message_batch(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _anthropic_error("The request body is not valid JSON.")
        requests = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            return _anthropic_error("requests: at least one request is required")
        if len(requests) > ANTHROPIC_MAX_REQUESTS:
            return _anthropic_error(f"requests: at most {ANTHROPIC_MAX_REQUESTS:,} requests per batch "
                                    f"(got {len(requests):,})", 413, "request_too_large")
        seen: set[str] = set()
        for n, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not _CUSTOM_ID.fullmatch(custom_id):
                return _anthropic_error(f"requests.{n}.custom_id: 1-64 characters of [A-Za-z0-9_-]")
            if custom_id in seen:
                return _anthropic_error(f"requests.{n}.custom_id: {custom_id!r} is not unique in the batch")
            seen.add(custom_id)
            if not isinstance(item.get("params"), dict):
                return _anthropic_error(f"requests.{n}.params: Field required")
        lines = [json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in requests]
        batch = self._new_batch("anthropic", lines, [r["custom_id"] for r in requests], requests)
        return _json(self._anthropic_info(batch, request))

    def _anthropic_batch(self, request: web.Request) -> MockBatch | web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.flavor != "anthropic":
            return _anthropic_error(f"No message batch found with id '{request.match_info['id']}'.", 404,
                                    "not_found_error")
        return batch

    async def get_message_batch(self, request: web.Request) -> web.Response:
        batch = self._anthropic_batch(request)
        return batch if isinstance(batch, web.Response) else _json(self._anthropic_info(batch, request))

    async def cancel_message_batch(self, request: web.Request) -> web.Response:
        batch = self._anthropic_batch(request)
        if isinstance(batch, web.Response):
            return batch
        now = self.server.clock()
        if batch.cancel_at is None:
            if batch.ended(now):
                return _anthropic_error("Cannot cancel a message batch that has ended.", 409, "conflict_error")
            batch.cancel_at = now
        return _json(self._anthropic_info(batch, request))

    async def delete_message_batch(self, request: web.Request) -> web.Response:
        batch = self._anthropic_batch(request)
        if isinstance(batch, web.Response):
            return batch
        if not batch.ended(self.server.clock()):
            return _anthropic_error("Only ended message batches can be deleted; cancel it first.")
        del self.batches[batch.id]
        return _json({"id": batch.id, "type": "message_batch_deleted"})

    async def message_batch_results(self, request: web.Request) -> web.Response:
        batch = self._anthropic_batch(request)
        if isinstance(batch, web.Response):
            return batch
        if not batch.ended(self.server.clock()):
            return _anthropic_error(f"Message batch {batch.id} has not ended; its results are not available yet.")
        await self._generated(batch, lambda: batch.anthropic_results(self.server.prompt_cache))
        return web.Response(body=batch.anthropic_results(self.server.prompt_cache),
                            content_type="application/x-jsonl")

    async def list_message_batches(self, request: web.Request) -> web.Response:
        found = [b for b in reversed(self.batches.values()) if b.flavor == "anthropic"]
        q = request.query
        data, has_more = _page(found, q.get("after_id"), q.get("before_id"), q.get("limit"), 1000)
        info = [self._anthropic_info(b, request) for b in data]
        return _json({"data": info, "has_more": has_more, "first_id": info[0]["id"] if info else None,
                      "last_id": info[-1]["id"] if info else None})

    def _anthropic_info(self, batch: MockBatch, request: web.Request) -> dict[str, Any]:
        now = self.server.clock()
        ended = batch.ended(now)
        status = "ended" if ended else "canceling" if batch.cancel_at is not None else "in_progress"
        origin = f"{request.scheme}://{request.host}"
        return {
            "id": batch.id, "type": "message_batch", "processing_status": status,
            "request_counts": batch.anthropic_counts(now),
            "ended_at": anth.rfc3339(batch.end) if ended else None,
            "created_at": anth.rfc3339(batch.created_at), "expires_at": anth.rfc3339(batch.created_at + _DAY_S),
            "archived_at": None,
            "cancel_initiated_at": anth.rfc3339(batch.cancel_at) if batch.cancel_at is not None else None,
            "results_url": f"{origin}/v1/messages/batches/{batch.id}/results" if ended else None,
        }


    # -- Gemini files (the Files API: what a file-input batch reads, and where its results go) ----------
    async def upload_gemini_file(self, request: web.Request) -> web.Response:
        """``media.upload``: ``X-Goog-Upload-Protocol: multipart`` (a ``multipart/related`` body: the File's
        metadata as JSON, then its bytes) or ``raw`` (the bytes alone). The resumable protocol is not
        played: the SDKs use it, seeds_nb sends one multipart request."""
        protocol = request.headers.get("X-Goog-Upload-Protocol", "raw").lower()
        metadata: dict[str, Any] = {}
        if protocol == "multipart":
            parts: list[tuple[str, bytes]] = []
            try:
                async for part in await request.multipart():
                    if isinstance(part, BodyPartReader):
                        parts.append((part.headers.get("Content-Type", ""), bytes(await part.read())))
            except (ValueError, AssertionError):
                return _gemini_error("Upload has malformed multipart/related body.")
            if len(parts) != 2:
                return _gemini_error("A multipart upload needs two parts: the File's metadata (JSON), then its bytes.")
            try:
                found = json.loads(parts[0][1])
            except ValueError:
                return _gemini_error("The first part of a multipart upload must be the File's metadata as JSON.")
            metadata = found.get("file") or {} if isinstance(found, dict) else {}
            mime, content = parts[1][0] or "application/octet-stream", parts[1][1]
        elif protocol == "raw":
            mime, content = request.headers.get("Content-Type", "application/octet-stream"), await request.read()
        else:
            return _gemini_error(f"The mock server takes X-Goog-Upload-Protocol multipart or raw; got {protocol!r}.")
        stored = StoredFile(new_id(""), str(metadata.get("displayName") or ""), str(metadata.get("mimeType") or mime),
                            self.server.clock(), content, kind="gemini")
        self.files[stored.id] = stored
        return _json({"file": self._gemini_file_info(request, stored)})

    def _gemini_file_info(self, request: web.Request, stored: StoredFile) -> dict[str, Any]:
        size = len(stored.content) if stored.content is not None else 0
        return {"name": f"files/{stored.id}", "displayName": stored.filename, "mimeType": stored.purpose,
                "sizeBytes": str(size), "createTime": anth.rfc3339(stored.created_at),
                "uri": f"{request.url.origin()}/v1beta/files/{stored.id}", "state": "ACTIVE",
                "source": "GENERATED" if stored.batch is not None else "UPLOADED"}

    def _gemini_file(self, request: web.Request) -> StoredFile | web.Response:
        stored = self.files.get(request.match_info["id"])
        if stored is None or stored.kind != "gemini":
            return _gemini_error(f"File files/{request.match_info['id']} not found.", 404)
        return stored

    async def get_gemini_file(self, request: web.Request) -> web.Response:
        stored = self._gemini_file(request)
        return stored if isinstance(stored, web.Response) else _json(self._gemini_file_info(request, stored))

    async def delete_gemini_file(self, request: web.Request) -> web.Response:
        stored = self._gemini_file(request)
        if isinstance(stored, web.Response):
            return stored
        del self.files[stored.id]
        return _json({})

    async def download_gemini_file(self, request: web.Request) -> web.Response:
        stored = self._gemini_file(request)
        if isinstance(stored, web.Response):
            return stored
        if request.query.get("alt") != "media":
            return _gemini_error("Downloading a file's bytes needs alt=media.")
        if stored.content is None and stored.batch is not None:  # a batch's results: made on first download
            batch = stored.batch
            await self._generated(batch, batch.gemini_results)
            stored.content = b"".join(json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
                                      for line in batch.gemini_results())
        return web.Response(body=stored.content or b"", content_type="application/octet-stream")

    # -- Gemini batches ----------------------------------------------------------------------------
    async def create_gemini_batch(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _gemini_error("Invalid JSON payload received.")
        spec = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            return _gemini_error("* BatchGenerateContentRequest.batch: batch is required")
        config = spec.get("inputConfig") or spec.get("input_config") or {}
        file_name = (config.get("fileName") or config.get("file_name")) if isinstance(config, dict) else None
        requests: Any
        if file_name:
            parsed = self._gemini_file_requests(str(file_name))
            if isinstance(parsed, web.Response):
                return parsed
            requests, ids = parsed
        else:
            holder = config.get("requests") if isinstance(config, dict) else None
            requests = holder.get("requests") if isinstance(holder, dict) else None
            if not isinstance(requests, list) or not requests:
                return _gemini_error("* BatchGenerateContentRequest.batch.input_config: requests must not be empty")
            for n, item in enumerate(requests):
                if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                    return _gemini_error(f"* batch.input_config.requests.requests[{n}].request: request is required")
            ids = [str((r.get("metadata") or {}).get("key") or n) for n, r in enumerate(requests)]
        lines = [json.dumps(r, separators=(",", ":"), ensure_ascii=False).encode() for r in requests]
        batch = self._new_batch("gemini", lines, ids, requests, model=request.match_info["model"],
                                metadata={"displayName": str(spec.get("displayName") or ""),
                                          "inputFile": str(file_name or "")})
        if file_name:  # its results go to a file, made when first downloaded
            results = StoredFile(f"batch-{batch.id}", f"{batch.id} results", "application/jsonl", self.server.clock(),
                                 None, batch=batch, kind="gemini")
            self.files[results.id] = results
        return _json(await self._gemini_info(batch))

    def _gemini_file_requests(self, file_name: str) -> tuple[list[Any], list[str]] | web.Response:
        """The requests of an uploaded JSONL file: one ``{"key", "request"}`` object per line."""
        stored = self.files.get(file_name.removeprefix("files/"))
        if stored is None or stored.kind != "gemini" or stored.content is None:
            return _gemini_error(f"File {file_name} not found.", 404)
        requests: list[Any] = []
        ids: list[str] = []
        for n, raw in enumerate(stored.content.splitlines()):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                return _gemini_error(f"{file_name}: line {n + 1} is not JSON.")
            if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                return _gemini_error(f"{file_name}: line {n + 1} needs a 'request' object (and a 'key').")
            requests.append(item)
            ids.append(str(item.get("key") or len(ids)))
        if not requests:
            return _gemini_error(f"{file_name} holds no requests.")
        return requests, ids

    def _gemini_batch(self, request: web.Request) -> MockBatch | web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None or batch.flavor != "gemini":
            return _gemini_error(f"Batch batches/{request.match_info['id']} not found.", 404)
        return batch

    async def get_gemini_batch(self, request: web.Request) -> web.Response:
        batch = self._gemini_batch(request)
        return batch if isinstance(batch, web.Response) else _json(await self._gemini_info(batch))

    async def cancel_gemini_batch(self, request: web.Request) -> web.Response:
        batch = self._gemini_batch(request)
        if isinstance(batch, web.Response):
            return batch
        now = self.server.clock()
        if batch.cancel_at is None:
            if batch.ended(now):
                return _gemini_error(f"Batch batches/{batch.id} has already ended.")
            batch.cancel_at = now
        return _json({})

    async def delete_gemini_batch(self, request: web.Request) -> web.Response:
        batch = self._gemini_batch(request)
        if isinstance(batch, web.Response):
            return batch
        del self.batches[batch.id]
        return _json({})

    async def list_gemini_batches(self, request: web.Request) -> web.Response:
        found = [b for b in reversed(self.batches.values()) if b.flavor == "gemini"]
        data, has_more = _page(found, request.query.get("pageToken"), None, request.query.get("pageSize"), 1000)
        page: dict[str, Any] = {"operations": [await self._gemini_info(b) for b in data]}
        if has_more:
            page["nextPageToken"] = data[-1].id
        return _json(page)

    async def _gemini_info(self, batch: MockBatch) -> dict[str, Any]:
        """The batch as a long-running operation; once ended, with its results inlined."""
        now = self.server.clock()
        state = batch.gemini_state(now)
        ok, bad = batch.counts_at(now)
        total, done = len(batch.lines), state in ("SUCCEEDED", "CANCELLED", "EXPIRED", "FAILED")
        name = f"batches/{batch.id}"
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "model": f"models/{batch.model}", "displayName": (batch.metadata or {}).get("displayName", ""),
            "name": name, "createTime": anth.rfc3339(batch.created_at), "updateTime": anth.rfc3339(min(now, batch.end)),
            "batchStats": {"requestCount": str(total), "successfulRequestCount": str(ok),
                           "failedRequestCount": str(bad),
                           "pendingRequestCount": str(0 if done else max(0, total - ok - bad))},
            "state": f"BATCH_STATE_{state}",
        }
        input_file = (batch.metadata or {}).get("inputFile")
        if input_file:
            meta["inputConfig"] = {"fileName": input_file}
        operation: dict[str, Any] = {"name": name, "metadata": meta, "done": done}
        if done:
            meta["endTime"] = anth.rfc3339(batch.end)
        if done and state != "EXPIRED":  # an expired Gemini batch returns no results
            output: dict[str, Any]
            if input_file:
                output = {"responsesFile": f"files/batch-{batch.id}"}
            else:
                await self._generated(batch, batch.gemini_results)
                output = {"inlinedResponses": {"inlinedResponses": batch.gemini_results()}}
            meta["output"] = output
            operation["response"] = {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput",
                **output}
        return operation


def _page(items: list[MockBatch], after: str | None, before: str | None, limit: str | None,
          most: int) -> tuple[list[MockBatch], bool]:
    """Newest-first cursor pagination over batch ids."""
    ids = [b.id for b in items]
    if after in ids:
        items = items[ids.index(after) + 1:]
    elif before in ids:
        items = items[: ids.index(before)]
    try:
        size = max(1, min(int(limit or 20), most))
    except ValueError:
        size = 20
    return items[:size], len(items) > size


def _openai_error(message: str, param: str | None, status: int = 400) -> web.Response:
    return _json(error_body(message, "invalid_request_error", param), status)


def _anthropic_error(message: str, status: int = 400, kind: str = "invalid_request_error") -> web.Response:
    return _json(anth.error_body(message, kind, new_id("req_")), status)


def _gemini_error(message: str, status: int = 400) -> web.Response:
    return _json(gem.error_body(status, message), status)
