"""aiohttp app and :class:`MockServer`: the mock model served over real HTTP on its own thread and loop.

Running on a private thread + event loop means it works from plain scripts, pytest, and inside an
already running loop (Jupyter, ``async def`` tests) alike, while clients talk to it over real sockets.
It speaks OpenAI Chat Completions, Anthropic Messages, Gemini ``generateContent`` and a self-hosted
server's Chat Completions with measured carbon (one pipeline, four dialects), and the three providers'
Batch APIs (``_batch_routes``) on a clock compressed by ``batch_duration_s``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ._anthropic import PromptCache
from ._batch_routes import BatchRoutes
from ._dialects import ANTHROPIC, GEMINI, OPENAI, Dialect
from ._faults import BAD_KEY, Fault, RateWindow, header_seconds
from ._model import RequestError, request_identity, unit_hash
from ._selfhosted import SelfHostedDialect

MODEL_IDS = (
    "gpt-4.1-mini",
    "gpt-4.1",
    "gpt-4o-mini",
    "gpt-4o",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.5-pro",
    "mock-model",
)
LOG_MAXLEN = 100_000
MAX_BODY_BYTES = 300 * 1024**2  # an Anthropic batch may be 256 MB
_JSON = "application/json"
#: not kept in the request log (a log is for showing; the key is checked, never stored)
_CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key"})
_MODELS = {
    "object": "list",
    "data": [
        {"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "seeds-mock"} for m in MODEL_IDS
    ],
}


class MockServer:
    """A mock LLM server on 127.0.0.1 speaking OpenAI's, Anthropic's and Gemini's APIs (chat and Batch),
    served from a daemon thread with its own loop.

    ``batch_duration_s`` is how long a batch job takes on the server's ``clock`` (a provider's
    "up to 24 h"); pass ``clock`` (epoch seconds) to drive batch states by hand in tests.
    ``rpm_limit`` / ``tpm_limit`` are enforced over a sliding ``rate_window_s`` (default 60 s),
    scaled to it: ``rate_window_s=1`` turns 1,200 rpm into 20 requests in any second, so a rate
    limit shows its steady state in seconds.
    """

    def __init__(
        self,
        latency_s: float = 0.0,
        api_key: str | None = None,
        rpm_limit: int | None = None,
        faults: tuple[Fault, ...] | list[Fault] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_jitter_s: float = 0.0,
        tpm_limit: int | None = None,
        batch_duration_s: float = 2.0,
        rate_window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        carbon_field: str = "x_carbon_trace",
        selfhosted_response_formats: tuple[str, ...] = ("json_schema", "json_object"),
    ) -> None:
        if rate_window_s <= 0:
            raise ValueError(f"rate_window_s must be > 0 seconds; got {rate_window_s!r}")
        self.latency_s = latency_s
        self.batch_duration_s = batch_duration_s
        """Seconds of ``clock`` a batch job takes from creation to its end (read when a batch is created)."""
        self.clock = clock
        self.latency_jitter_s = latency_jitter_s
        self.host = host
        self.port = port
        self._bind_port = port  # a restart binds this again (0 = a fresh free port)
        #: the key requests must carry (None: any); the batch routes check it too
        self.api_key = api_key
        self._rpm_limit, self._tpm_limit = rpm_limit, tpm_limit
        self._rate_window_s = rate_window_s
        self._lock = threading.Lock()
        self._faults: tuple[Fault, ...] = tuple(faults)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        #: Anthropic prompt-cache state shared by chat and batch answers
        self.prompt_cache = PromptCache()
        self._batch_routes = BatchRoutes(self)
        #: the self-hosted route (``selfhosted_url``): where its answers carry the measured figures, and the
        #: ``response_format`` types it takes (others are a 400, as on a server without structured output)
        self.selfhosted = SelfHostedDialect(carbon_field, tuple(selfhosted_response_formats))
        self._reset_state()

    # ------------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        """Base URL to hand to an OpenAI client (``base_url``)."""
        return f"http://{self.host}:{self.port}/v1"

    base_url = url

    @property
    def anthropic_url(self) -> str:
        """Base URL to hand to an Anthropic client (no ``/v1``: the SDKs add it)."""
        return f"http://{self.host}:{self.port}"

    @property
    def gemini_url(self) -> str:
        """Base URL to hand to a Gemini client (``GoogleClient(base_url=...)``): the API version included,
        as Google's own ``https://generativelanguage.googleapis.com/v1beta``."""
        return f"http://{self.host}:{self.port}/v1beta"

    @property
    def selfhosted_url(self) -> str:
        """Base URL to hand to a ``SelfHostedClient``: a self-hosted server (OpenAI's protocol) whose answers
        carry the energy and carbon it measured (``x_carbon_trace``; ``seeds_nb.mock.mock_carbon_trace``)."""
        return f"http://{self.host}:{self.port}/selfhosted/v1"

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Every batch job the server holds: ``{"id", "provider", "requests", "created_at", "cancelled"}``."""
        return [{"id": b.id, "provider": b.flavor, "requests": len(b.lines), "created_at": b.created_at,
                 "cancelled": b.cancel_at is not None} for b in list(self._batch_routes.batches.values())]

    @property
    def request_count(self) -> int:
        """Chat completion requests received, including faulted and rejected ones."""
        return self._count

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Snapshot of the bounded request log: ``{"path", "body", "status", "time", "headers"}`` per chat
        request (headers lower-cased, credentials left out)."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget counters, the request log, fault fire counts, the rate-limit windows and the prompt
        cache (batch jobs and files stay)."""
        with self._lock:
            self._reset_state()
        self.prompt_cache.clear()

    def add_fault(self, fault: Fault) -> None:
        """Append a fault (checked after existing ones); safe while the server is running."""
        with self._lock:
            self._faults = (*self._faults, fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = ()
            self._fires.clear()

    @property
    def faults(self) -> tuple[Fault, ...]:
        return self._faults

    def start(self) -> MockServer:
        """Bind the port and serve in a background thread; returns once ``url`` is valid."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, args=(ready,), name="seeds-mock", daemon=True)
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Shut the server down and join its thread; safe to call repeatedly."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join()
        self._thread = self._loop = self._stop_event = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MockServer(url={self.url!r}, latency_s={self.latency_s}, requests={self._count})"

    # ------------------------------------------------------------------ lifecycle

    def _reset_state(self) -> None:
        self._count = 0
        self._log: deque[dict[str, Any]] = deque(maxlen=LOG_MAXLEN)
        self._attempts: dict[str, int] = {}
        self._fires: dict[tuple[str, int], int] = {}
        self._rpm = RateWindow(self._rpm_limit, self._rate_window_s)
        self._tpm = RateWindow(self._tpm_limit, self._rate_window_s)
        self._req_ids = itertools.count(1)

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:  # surfaced to start() if it happened before binding
            self._startup_error = exc
        finally:
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1beta/models/{model}:generateContent", self._generate_content)
        app.router.add_post("/selfhosted/v1/chat/completions", self._selfhosted)
        self._batch_routes.add_to(app)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.25)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._bind_port, backlog=1024).start()
            self.port = runner.addresses[0][1]
            self._loop, self._stop_event = asyncio.get_running_loop(), asyncio.Event()
            ready.set()
            await self._stop_event.wait()
        finally:
            await runner.cleanup()

    # ------------------------------------------------------------------ handlers

    def _authorized(self, request: web.Request) -> bool:
        return OPENAI.authorized(request.headers, self.api_key)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": BAD_KEY}, status=401)
        return web.json_response(_MODELS)

    def _respond(self, entry: dict[str, Any], status: int, payload: Any, headers: dict[str, str], started: float,
                 dialect: Dialect = OPENAI, *, limits_added: bool = False) -> web.Response:
        entry["status"] = status
        if not limits_added:
            with self._lock:
                headers.update(dialect.limit_headers(self._rpm, self._tpm, time.monotonic(), time.time()))
        if dialect is OPENAI:
            headers["openai-processing-ms"] = str(round((time.perf_counter() - started) * 1000))
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return web.Response(text=text, status=status, content_type=_JSON, headers=headers)

    def _pick_fault(self, identity: str, text: str) -> Fault | None:
        """First fault that fires for this attempt; depends only on (identity, fault index, attempt)."""
        faults = self._faults
        if not faults:  # attempts are only tracked while faults exist, keeping the plain path lean
            return None
        attempt = self._attempts.get(identity, 0)
        self._attempts[identity] = attempt + 1
        for index, fault in enumerate(faults):
            if fault.kind == "expire":  # batch lines only
                continue
            if fault.match is not None and fault.match not in text:
                continue
            key = (identity, index)
            if fault.times is not None and self._fires.get(key, 0) >= fault.times:
                continue
            if fault.rate < 1.0 and unit_hash(identity, index, attempt) >= fault.rate:
                continue
            self._fires[key] = self._fires.get(key, 0) + 1
            return fault
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, OPENAI)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, ANTHROPIC)

    async def _generate_content(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, GEMINI)

    async def _selfhosted(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, self.selfhosted)

    async def _complete(self, request: web.Request, dialect: Dialect) -> web.StreamResponse:
        """One chat request, in either protocol: log, auth, validate, rate windows, faults, latency."""
        started = time.perf_counter()
        raw = await request.read()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = None
        entry: dict[str, Any] = {"path": request.path, "body": body, "status": None, "time": time.time(),
                                 "headers": {k.lower(): v for k, v in request.headers.items()
                                             if k.lower() not in _CREDENTIAL_HEADERS}}
        request_id = dialect.request_id(next(self._req_ids))
        headers = {dialect.request_id_header: request_id}
        with self._lock:
            self._count += 1
            self._log.append(entry)
        if not dialect.authorized(request.headers, self.api_key):
            return self._respond(entry, dialect.unauthorized_status, dialect.unauthorized(request_id), headers,
                                 started, dialect)
        if body is None:
            msg = "We could not parse the JSON body of your request. (HINT: the body must be valid JSON.)"
            return self._respond(entry, 400, dialect.invalid(msg, None, request_id), headers, started, dialect)
        body = dialect.with_path(body, request.match_info)  # the log keeps the body as it was sent
        try:
            dialect.validate(body, request.headers)
        except RequestError as exc:
            return self._respond(entry, 400, dialect.invalid(exc.message, exc.param, request_id), headers, started,
                                 dialect)

        identity = request_identity(body)
        answer = dialect.answer(body, identity, int(time.time()), self.prompt_cache)
        tokens = dialect.tokens(answer)
        fault: Fault | None = None
        now = time.monotonic()
        with self._lock:
            self._rpm.expire(now)
            self._tpm.expire(now)
            wait_r, wait_t = self._rpm.wait_for(now, 1), self._tpm.wait_for(now, tokens)
            if not (wait_r or wait_t):
                self._rpm.add(now, 1)
                self._tpm.add(now, tokens)
                fault = self._pick_fault(identity, dialect.text(body)) if self._faults else None
            headers.update(dialect.limit_headers(self._rpm, self._tpm, now, time.time()))
        if wait_r or wait_t:
            wait = max(wait_r, wait_t)
            headers["retry-after"] = str(max(1, math.ceil(wait)))
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            if wait_r:
                headers.update(dialect.exhausted("requests"))
                kind, limit, used, asked = "requests", self._rpm_limit, self._rpm.used, 1
            else:
                kind, limit, used, asked = "tokens", self._tpm_limit, self._tpm.used, tokens
            payload = dialect.rate_limited(body["model"], kind, limit, used, asked, wait, request_id)
            return self._respond(entry, 429, payload, headers, started, dialect, limits_added=True)

        if fault is not None:
            if fault.retry_after is not None and dialect.retry_after_header:
                headers["retry-after"] = header_seconds(fault.retry_after)
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            if fault.reset_s is not None:
                headers.update(dialect.exhausted_until("requests", fault.reset_s, time.time()))
            if fault.kind == "status":
                error = fault.body if fault.body is not None else dialect.fault_body(fault, request_id)
                return self._respond(entry, fault.status, error, headers, started, dialect, limits_added=True)
            if fault.kind == "drop":
                entry["status"] = 0  # 0 = connection dropped, nothing sent
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)  # never written: aiohttp sees the closed transport
            if fault.kind == "malformed":
                bad = fault.body if fault.body is not None else dialect.malformed(answer)
                return self._respond(entry, 200, bad, headers, started, dialect, limits_added=True)
            if fault.kind == "no_usage":
                answer = {key: value for key, value in answer.items() if key != "usage"}
            elif fault.delay_s > 0:  # kind == "slow"
                await asyncio.sleep(fault.delay_s)

        delay = self.latency_s
        if self.latency_jitter_s:
            delay += self.latency_jitter_s * unit_hash(identity, "jitter")
        if delay > 0:
            await asyncio.sleep(delay)
        return self._respond(entry, 200, answer, headers, started, dialect, limits_added=True)
