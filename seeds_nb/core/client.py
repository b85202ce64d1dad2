"""The client base class: one request (cache, rate gate, retries, tracking) and the batch entry points.

Providers subclass it and only translate: ``_build_request`` (messages -> JSON),
``_parse_response`` (JSON -> Response) and ``_error_for_status`` (HTTP error -> SeedsError).
Everything else lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from .batch import BatchRun, ProgressCallback
from .batch_api import BatchAPIMixin
from .cache import ResponseCache, cache_key
from .exceptions import APIStatusError, ConfigurationError, RateLimitError, ResponseParseError
from .http import LoopPools, make_http_client, map_transport_errors, post
from .ratelimit import RateGate
from .result import BatchResult
from .retry import RetryPolicy
from .sync import run_sync
from .tracking import DEFAULT_ZONE, Tracker
from .types import Message, Response, Tracking, Usage, normalize_prompt

__all__ = ["BaseClient", "mask_secret"]

# The sync entry points run on a private loop; its HTTP client lives only as long as that call.
_transient_http: contextvars.ContextVar[httpx.AsyncClient | None] = contextvars.ContextVar(
    "seeds_nb_transient_http", default=None
)


RetryHook = Callable[[int, Exception, float], None]
"""Called with (+1, error, wait_s) when a request starts waiting to retry, (-1, error, 0) after."""


def mask_secret(secret: str | None) -> str | None:
    """``sk-...abcd``: enough to tell keys apart, never enough to use one."""
    if not secret:
        return None
    return f"{secret[:3]}...{secret[-4:]}" if len(secret) > 12 else "***"


class Secret:
    """Holds an API key so that reprs, ``vars()``, logs and tracebacks only ever show it masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def get(self) -> str | None:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({mask_secret(self._value)!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not pickled; pass it again where the client is rebuilt")


class BaseClient(BatchAPIMixin):
    """Shared machinery of every provider client. Use a provider class such as ``OpenAIClient``."""

    provider: ClassVar[str] = "base"
    #: generation parameters passed through to the request body
    known_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None,
        base_url: str,
        cache_dir: str | None = None,
        cache_ttl_s: float | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_wait_s: float = 60.0,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        electricity_mix_zone: str = DEFAULT_ZONE,
        price_model: str | None = None,
        impacts_model: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_scope: str | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError("model must be a non-empty string, e.g. model='gpt-4.1-mini'")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds; got {timeout!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0; got {max_retries!r}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        #: what names the server in cache keys: the base URL, unless two URLs serve the same
        #: model (the mock on a new port after a kernel restart, a load-balanced deployment)
        self.cache_scope = cache_scope or self.base_url
        self._api_key = Secret(api_key)
        self.timeout = float(timeout)
        self.retry = RetryPolicy(max_retries=max_retries, max_wait_s=max_retry_wait_s)
        self.gate = RateGate(requests_per_minute, tokens_per_minute)
        self.tracker = Tracker(self.provider, electricity_mix_zone=electricity_mix_zone,
                               price_model=price_model, impacts_model=impacts_model)
        self.cache: ResponseCache | None = ResponseCache(cache_dir, ttl_s=cache_ttl_s) if cache_dir else None
        self._transport = transport
        self._pools = LoopPools(self.timeout, transport)
        self._urls: dict[str, httpx.URL] = {}
        self._closed = False
        self._warm = False
        self.last_run: BatchRun | None = None

    # -- secrets -------------------------------------------------------------------------------
    @property
    def api_key_hint(self) -> str | None:
        """The masked API key, safe to show."""
        return mask_secret(self._api_key.get())

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:  # pragma: no cover - overridden
        return {}

    def __repr__(self) -> str:
        cache = f", cache_dir={str(self.cache.directory)!r}" if self.cache else ""
        return (f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}, "
                f"api_key={self.api_key_hint!r}{cache})")

    # -- provider hooks ------------------------------------------------------------------------
    def _build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """Return (path, JSON body)."""
        raise NotImplementedError

    def _parse_response(self, body: bytes, headers: httpx.Headers, params: Mapping[str, Any]) -> Response:
        raise NotImplementedError

    def _error_for_status(self, status: int, body: bytes, headers: httpx.Headers, url: str) -> APIStatusError:
        raise NotImplementedError

    def _cache_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Params as they enter the cache key (JSON-able)."""
        return dict(params)

    # -- lifecycle -----------------------------------------------------------------------------
    def _http_client(self) -> httpx.AsyncClient:
        transient = _transient_http.get()
        if transient is not None:
            return transient
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed; create a new client")
        return self._pools.get()

    async def aclose(self) -> None:
        """Close the connection pools and flush the cache; idempotent."""
        self._closed = True
        await self._pools.aclose()
        if self.cache is not None:
            self.cache.close()

    def close(self) -> None:
        """Sync ``aclose`` (for scripts and the end of a notebook)."""
        self._closed = True
        self._pools.close()
        if self.cache is not None:
            self.cache.close()

    async def __aenter__(self) -> BaseClient:
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed; create a new client")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- parameters ----------------------------------------------------------------------------
    def _check_params(self, params: Mapping[str, Any]) -> None:
        unknown = set(params) - self.known_params
        if unknown:
            raise ConfigurationError(
                f"unknown generation parameter(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(self.known_params))} (pass others with extra_body={{...}})"
            )

    # -- one request ---------------------------------------------------------------------------
    def _key(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        return cache_key({
            "provider": self.provider, "base_url": self.cache_scope, "model": self.model,
            "messages": [m.to_dict() for m in messages], "params": self._cache_params(params),
        })

    async def agenerate(self, messages: Any, **params: Any) -> Response:
        """Send one prompt (a string, or a list of ``Message``) and return its ``Response``."""
        self._check_params(params)
        normalized = normalize_prompt(messages)
        await self.warm_up()
        return await self._generate(normalized, params)

    async def warm_up(self) -> None:
        """Load the cost and impact data in a thread, once, off the event loop (a batch calls it)."""
        if not self._warm:
            await asyncio.to_thread(self.tracker.warm, self.model)
            self._warm = True

    def generate(self, messages: Any, **params: Any) -> Response:
        """Sync ``agenerate``; works in scripts and inside a running loop (a Jupyter cell)."""
        self._check_params(params)
        normalized = normalize_prompt(messages)
        return self.run_sync(lambda: self._generate(normalized, params))

    @contextlib.asynccontextmanager
    async def private_pool(self) -> AsyncIterator[None]:
        """Use a connection pool of its own inside this block, closed at its end.

        For work on a short-lived event loop (the sync API, a background thread): the client's
        main pool belongs to the loop that first used it.
        """
        http = make_http_client(self.timeout, self._transport)
        token = _transient_http.set(http)
        try:
            yield
        finally:
            _transient_http.reset(token)
            await http.aclose()

    def run_sync(self, fn: Callable[[], Any]) -> Any:
        """Run ``await fn()`` to completion from sync code, on a private loop (Ctrl-C cancels it)."""

        async def with_private_pool() -> Any:
            async with self.private_pool():
                return await fn()

        return run_sync(with_private_pool)

    async def _generate(self, messages: Sequence[Message], params: Mapping[str, Any],
                        key: str | None = None, on_retry: RetryHook | None = None) -> Response:
        if self.cache is not None:
            key = key or self._key(messages, params)
            hit = self.cache.get(key)
            if hit is not None:
                return self._from_cache(hit)
        response = await self._send_with_retries(messages, params, on_retry)
        if self.cache is not None and key is not None:
            await self.cache.aset(key, self._to_cache(response))
        return response

    async def _send_with_retries(self, messages: Sequence[Message], params: Mapping[str, Any],
                                 on_retry: RetryHook | None) -> Response:
        path, body = self._build_request(messages, params)
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        estimate = (len(payload) // 4 + int(params.get("max_tokens") or 256)) if self.gate.tokens else 0
        attempt = 1
        while True:
            await self.gate.acquire(estimate)
            try:
                response = await self._send_once(path, payload, params)
            except Exception as exc:
                self.gate.settle(estimate, 0)
                if not self.retry.should_retry(exc, attempt):
                    raise
                wait = self.retry.delay(exc, attempt)
                if getattr(exc, "status_code", None) == 429:
                    self.gate.pause(wait)  # the whole client slows down, not only this request
                if on_retry is not None:
                    on_retry(+1, exc, wait)
                try:
                    await asyncio.sleep(wait)
                finally:
                    if on_retry is not None:
                        on_retry(-1, exc, 0.0)
                attempt += 1
                continue
            self.gate.settle(estimate, response.usage.total_tokens)
            response.attempts = attempt
            return response

    async def _send_once(self, path: str, payload: bytes, params: Mapping[str, Any]) -> Response:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)  # parsed once, not per request
        http = self._http_client()
        headers = self._auth_headers(self._api_key.get())
        started = time.perf_counter()
        with map_transport_errors(self.provider, self.base_url):
            async with asyncio.timeout(self.timeout):
                http_response = await post(http, url, payload, headers, self.timeout)
        latency = time.perf_counter() - started
        body = http_response.content
        if http_response.status_code >= 400:
            error = self._error_for_status(http_response.status_code, body, http_response.headers, str(url))
            if isinstance(error, RateLimitError) and error.retry_after is None and not error.quota_exhausted:
                error.retry_after = self._reset_wait(http_response.headers, exhausted_only=False)
            raise error
        self._observe_headers(http_response.headers)
        try:
            response = self._parse_response(body, http_response.headers, params)
        except ResponseParseError:
            raise
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            excerpt = body[:200].decode("utf-8", "replace")
            raise ResponseParseError(f"{self.provider} server at {self.base_url} sent a body that is not a "
                                     f"valid completion ({type(exc).__name__}: {exc}); body starts {excerpt!r}",
                                     provider=self.provider, url=str(url)) from None
        response.latency_s = latency
        response.tracking = self.tracker.track(response.model, response.usage, latency)
        return response

    def _observe_headers(self, headers: httpx.Headers) -> None:
        """A success that used up a rate limit pauses the whole client until that limit resets."""
        wait = self._reset_wait(headers, exhausted_only=True)
        if wait:
            self.gate.pause(min(wait, self.retry.max_wait_s))

    def _reset_wait(self, headers: httpx.Headers, *, exhausted_only: bool) -> float | None:
        """Seconds until the rate limits the headers report as used up reset (the longest); on a 429
        that names none as used up (``exhausted_only=False``), until the last one resets."""
        resets = self._rate_limit_resets(headers, exhausted_only)
        waits = [wait for exhausted, wait in resets if exhausted]
        if not waits and not exhausted_only:
            waits = [wait for _, wait in resets]
        return max(waits) if waits else None

    def _rate_limit_resets(self, headers: httpx.Headers, exhausted_only: bool) -> list[tuple[bool, float]]:
        """(used up?, seconds until it resets) for each rate limit in the provider's headers (only the
        used-up ones if ``exhausted_only``: a success path reads no dates it does not need)."""
        return []

    # -- cache entries -------------------------------------------------------------------------
    def _to_cache(self, response: Response) -> dict[str, Any]:
        return {
            "content": response.content, "model": response.model, "finish_reason": response.finish_reason,
            "usage": response.usage.to_dict(), "latency_s": response.latency_s,
            "request_id": response.request_id,  # no tracking: a hit is re-priced by the reading client
            "raw": response._raw.decode("utf-8", "replace"),
        }

    def _from_cache(self, entry: dict[str, Any]) -> Response:
        usage = entry["usage"]
        response = Response(
            content=entry["content"], model=entry["model"],
            usage=Usage(usage["prompt_tokens"], usage["completion_tokens"], usage.get("cached_tokens", 0),
                        usage.get("cache_write_tokens", 0), usage.get("reasoning_tokens", 0)),
            finish_reason=entry.get("finish_reason"), cached=True, latency_s=0.0,
            tracking=Tracking(), provider=self.provider,
            request_id=entry.get("request_id"), attempts=0, _raw=entry.get("raw", "").encode(),
        )
        # What it would cost *now*, with this client's prices and electricity zone (~9 µs).
        response.tracking = self.tracker.track(response.model, response.usage, float(entry.get("latency_s", 0.0)))
        return response

    # -- batches -------------------------------------------------------------------------------
    def batch(self, prompts: Iterable[Any], max_concurrent: int = 5, on_progress: ProgressCallback | None = None,
              *, max_cost_usd: float | None = None, max_gwp_kgco2eq: float | None = None,
              keep_results: bool = True, **params: Any) -> BatchRun:
        """A ``BatchRun`` handle: ``await`` it for the ``BatchResult``, ``async for`` it to stream,
        ``.cancel()`` it to stop (finished responses are kept), ``.result`` for the partial result."""
        self._check_params(params)
        run = BatchRun(self, prompts, max_concurrent=max_concurrent, on_progress=on_progress,
                       max_cost_usd=max_cost_usd, max_gwp_kgco2eq=max_gwp_kgco2eq, params=params,
                       keep_results=keep_results)
        self.last_run = run
        return run

    async def batch_generate(self, prompts: Iterable[Any], max_concurrent: int = 5,
                             on_progress: ProgressCallback | None = None, *, max_cost_usd: float | None = None,
                             max_gwp_kgco2eq: float | None = None, **params: Any) -> BatchResult:
        """Send every prompt, at most ``max_concurrent`` at a time; responses align with prompts."""
        return await self.batch(prompts, max_concurrent, on_progress, max_cost_usd=max_cost_usd,
                                max_gwp_kgco2eq=max_gwp_kgco2eq, **params)

    def batch_generate_iter(self, prompts: Iterable[Any], max_concurrent: int = 5,
                            **params: Any) -> AsyncIterator[tuple[int, Response | Exception]]:
        """Yield ``(index, Response or Exception)`` as requests complete; leaving the loop early
        cancels what is still in flight. Nothing is kept after it is yielded (memory stays flat in
        the number of prompts); ``client.last_run.stats`` has the counts."""
        return self.batch(prompts, max_concurrent, keep_results=False, **params).stream()

    def batch_generate_sync(self, prompts: Iterable[Any], max_concurrent: int = 5,
                            on_progress: ProgressCallback | None = None, **params: Any) -> BatchResult:
        """Sync ``batch_generate`` for scripts; Ctrl-C stops it and ``client.last_run.result`` keeps
        what finished."""
        return self.run_sync(lambda: self.batch_generate(prompts, max_concurrent, on_progress, **params))
