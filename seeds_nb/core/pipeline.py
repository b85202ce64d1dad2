"""The one request pipeline: prepare -> cache lookup -> rate gate -> send with retries -> tracking ->
validation -> cache write. ``agenerate``, the batch engine (and so ``compare_models`` and the
widgets) and the Batch API control plane all go through it, so each mechanism lives here once.

The steps are separate public methods because the batch engine interleaves them: it looks up the
cache inline (no task for a hit), sends identical prompts once, and frees a request's concurrency
slot as soon as its answer arrived, reporting the answer once its cache write committed (see
``core/batch.py``). ``generate`` is the straight path for one prompt.

A provider supplies only a ``Codec`` (translation). Secrets: the credential headers are built once,
held in a ``SecretHeaders`` (masked repr), and every error text is scrubbed of the key before it
leaves here (a server may echo the key in an error body).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import httpx
import yarl
from pydantic import BaseModel, ValidationError

from .cache import ResponseCache, cache_key
from .codec import Codec
from .exceptions import (
    APIError,
    APIStatusError,
    CacheError,
    CacheWarning,
    Cancelled,
    ConfigurationError,
    PromptError,
    RateLimitError,
    ResponseParseError,
    SeedsError,
)
from .http import TRANSPORT_ERRORS, LoopPools, post, translate_transport_error
from .images import IMAGE_TOKENS
from .ledger import LifetimeTracking
from .log import logger
from .ratelimit import Gate
from .retry import RetryPolicy
from .secrets import Secret, SecretHeaders
from .tooling import check_sampling
from .tracking import Tracker
from .types import Choice, Message, Response, Tracking, Usage, normalize_prompt

__all__ = ["Pipeline", "Prepared", "RetryHook"]

T = TypeVar("T")

RetryHook = Callable[[int, Exception, float], None]
"""Called with (+1, error, wait_s) when a request starts waiting to retry, (-1, error, 0) after."""

_PROBE_MESSAGES = (Message(role="user", content="probe"),)


@dataclass(slots=True)
class Prepared:
    """A prompt made ready to send: checked, encoded once, keyed (when a cache is on)."""

    messages: tuple[Message, ...]
    path: str
    payload: bytes
    key: str | None
    estimate: int
    """Tokens the request may use, for a ``tokens_per_minute`` gate (0 without one)."""


def _raw_of(entry: Mapping[str, Any]) -> bytes:
    """A cached body: bytes from the ``raw`` column, or a str inside entries written before it existed."""
    raw = entry.get("raw")
    if isinstance(raw, bytes):
        return raw
    return raw.encode() if isinstance(raw, str) else b""


def _input_tokens(messages: Sequence[Message], payload: bytes) -> int:
    """The request's input tokens as a tokens-per-minute gate counts them: its JSON at ~4 characters a
    token, but an image as ``IMAGE_TOKENS`` rather than its base64 (a 1 MB photo is not 350k tokens)."""
    images = [image for message in messages if not isinstance(message.content, str) for image in message.images()]
    if not images:
        return len(payload) // 4
    inline = sum(4 * ((len(image.data) + 2) // 3) for image in images if image.data is not None)
    return max(len(payload) - inline, 0) // 4 + IMAGE_TOKENS * len(images)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class Pipeline:
    """The request path of one client. Built by ``BaseClient``; reached as ``client.pipeline``."""

    def __init__(self, codec: Codec, *, secret: Secret, timeout: float, retry: RetryPolicy, gate: Gate,
                 tracker: Tracker, cache: ResponseCache | None, cache_scope: str,
                 transport: httpx.AsyncBaseTransport | None = None, defaults: Mapping[str, Any] | None = None) -> None:
        self.codec = codec
        #: generation parameters given to the client's constructor; a call's own values override them
        self.defaults: dict[str, Any] = codec.canonical_params(defaults or {})
        if self.defaults:
            self.check_params(self.defaults)
        self.provider = codec.provider
        self.model = codec.model
        self.base_url = codec.base_url
        self.cache_scope = cache_scope
        self.timeout = timeout
        self.retry = retry
        self.gate = gate
        self.tracker = tracker
        self.cache = cache
        #: every answer and error of this client's life (``client.tracking``): batches add their ledgers
        self.lifetime = LifetimeTracking()
        self._secret = secret
        self._headers = codec.auth_headers(secret)
        self._pools = LoopPools(timeout, transport)
        self._urls: dict[str, httpx.URL] = {}
        self._wire_urls: dict[str, yarl.URL] = {}
        self._wire_timeout = aiohttp.ClientTimeout(total=timeout)
        self._warned: set[str] = set()
        self._warm = False

    async def warm_up(self) -> None:
        """Load the cost and impact data in a thread, once, off the event loop (a batch calls it)."""
        if not self._warm:
            await asyncio.to_thread(self.tracker.warm, self.model)
            self._warm = True

    # -- checking and preparing ------------------------------------------------------------------
    def call_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The generation parameters a call sends: the client's ``defaults`` overridden by the call's
        (``None`` drops one: the server's default applies), checked. Every entry point resolves its
        parameters here once, so a default reaches the request body and the cache key alike."""
        params = self.codec.canonical_params(params)
        merged = {**self.defaults, **params} if self.defaults else params
        if None in merged.values():
            merged = {name: value for name, value in merged.items() if value is not None}
        self.check_params(merged)
        return merged

    def uses_cache(self, use_cache: bool | None) -> bool:
        """Whether a call reads and writes the cache: ``None`` (the default) when the client has one;
        ``False`` neither reads nor writes; ``True`` without a cache is an error that says how to add one."""
        if use_cache is None:
            return self.cache is not None
        if not isinstance(use_cache, bool):
            raise ConfigurationError(f"use_cache must be True, False or None (use the cache when the client has "
                                     f"one); got {use_cache!r}")
        if use_cache and self.cache is None:
            raise ConfigurationError("use_cache=True, but this client has no cache: create it with a cache "
                                     "directory, e.g. OpenAIClient(model, cache_dir='./cache') (answers are then "
                                     "cached by default), or drop use_cache=")
        return use_cache

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Refuse, before anything is sent, parameters the provider does not know or cannot send."""
        lacking = sorted(set(params) & set(self.codec.unsupported))
        if lacking:
            unsupported, provider = self.codec.unsupported, self.codec.provider
            raise ConfigurationError("; ".join(f"{provider} cannot send {name}=: {unsupported[name]}"
                                               for name in lacking))
        unknown = set(params) - self.codec.known_params
        if unknown:
            raise ConfigurationError(
                f"unknown generation parameter(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(self.codec.known_params))} (pass others with extra_body={{...}})"
            )
        check_sampling(params)
        for name, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigurationError(f"{name}={value!r} is not a finite number; pass a real value")
        fmt = params.get("response_format")
        if fmt is not None and not (isinstance(fmt, dict) or (isinstance(fmt, type) and issubclass(fmt, BaseModel))):
            raise ConfigurationError(
                "response_format must be a pydantic model class (class Answer(BaseModel): ...) or a JSON "
                f"schema dict such as {{'type': 'json_schema', 'json_schema': {{...}}}}; got {fmt!r}")
        try:
            _, body = self.codec.build_request(_PROBE_MESSAGES, params)
            _dumps(body)
        except SeedsError:
            raise
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"the generation parameters cannot be sent as JSON ({exc}); pass plain numbers, strings, lists "
                "and dicts (convert numpy values with float(...) or .tolist())") from None

    def key(self, messages: Sequence[Message], params: Mapping[str, Any]) -> str:
        """The cache key: everything that changes the answer (never the API key)."""
        return cache_key({
            "provider": self.provider, "base_url": self.cache_scope, "model": self.model,
            "messages": [m.to_dict() for m in messages], "params": self.codec.cache_params(params),
        })

    def prepare(self, prompt: Any, params: Mapping[str, Any], *, cache: bool = True) -> Prepared:
        """Normalise and encode one prompt; a ``PromptError`` names what cannot be sent. With
        ``cache=False`` it gets no key: it is neither looked up nor stored (``use_cache=False``)."""
        messages = normalize_prompt(prompt)
        path, body = self.codec.build_request(messages, params)
        try:
            payload = _dumps(body)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start:exc.end] if isinstance(exc.object, str) else "?"
            raise PromptError(
                f"the prompt is not valid Unicode text: it holds a lone surrogate {bad!r} (often half of an emoji "
                "cut in two); fix the text, e.g. text.encode('utf-8', 'replace').decode('utf-8')") from None
        except (TypeError, ValueError) as exc:
            raise PromptError(f"the prompt cannot be sent as JSON ({exc}); message contents must be text or "
                              "lists of JSON-able content parts") from None
        key = self.key(messages, params) if cache and self.cache is not None else None
        estimate = 0
        if self.gate.tokens_per_minute:
            estimate = _input_tokens(messages, payload) + int(params.get("max_tokens") or 256)
        return Prepared(messages, path, payload, key, estimate)

    # -- structured output ---------------------------------------------------------------------------
    def validate(self, response: Response, params: Mapping[str, Any]) -> Response:
        """Set ``response.parsed`` from its content for a ``response_format`` (fresh, cached, duplicated
        or Batch API answers alike); an answer that does not match raises ``ResponseParseError``."""
        fmt = params.get("response_format")
        if fmt is None:
            return response
        text = self.codec.structured_text(response.content)
        if isinstance(fmt, type) and issubclass(fmt, BaseModel):
            try:
                response.parsed = fmt.model_validate_json(text)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "the answer"
                what = (f"is not JSON ({first.get('msg')}), so it cannot be a {fmt.__name__}"
                        if first.get("type") == "json_invalid" else
                        f"does not match {fmt.__name__}: {where}: {first.get('msg')}")
                error = self._parse_error(f"the answer {what} (content starts {response.content[:120]!r})",
                                          response.content)
                error.retryable = True  # the model may answer better next time; never cached either way
                raise error from None
        elif isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
            try:
                response.parsed = json.loads(text)
            except ValueError as exc:
                error = self._parse_error(f"the answer is not the JSON its response_format asks for ({exc}; "
                                          f"content starts {response.content[:120]!r})", response.content)
                error.retryable = True
                raise error from None
        return response

    def _parse_error(self, message: str, content: str | None = None) -> ResponseParseError:
        error = ResponseParseError(self._secret.scrub(message), provider=self.provider, url=self.base_url)
        error.content = content
        return error

    # -- the cache -----------------------------------------------------------------------------------
    def lookup(self, prepared: Prepared, params: Mapping[str, Any]) -> Response | None:
        """The cached answer, priced now (as *avoided*), or None. An entry that no longer reads or
        validates is a miss: the prompt is sent again and its fresh answer overwrites it."""
        if self.cache is None or prepared.key is None:
            return None
        return self._hit(self.cache.get(prepared.key), params)

    def lookup_many(self, prepared: list[Prepared], params: Mapping[str, Any]) -> list[Response | None]:
        """``lookup`` for a window of prompts in one cache query (what the batch engine uses)."""
        if self.cache is None:
            return [None] * len(prepared)
        entries = self.cache.get_many([p.key for p in prepared if p.key is not None])
        return [self._hit(entries.get(p.key) if p.key is not None else None, params) for p in prepared]

    def _hit(self, entry: Mapping[str, Any] | None, params: Mapping[str, Any]) -> Response | None:
        if entry is None:
            return None
        try:
            return self.from_cache_entry(entry, params)
        except (KeyError, TypeError, ValueError, ResponseParseError):
            return None

    def cache_entry(self, response: Response) -> dict[str, Any]:
        """What the cache stores of an answer beside its raw body (no tracking: a hit is re-priced by
        the reader)."""
        usage = response.usage
        counts: dict[str, float | None] = {
            "prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens}
        if usage.reported_cost_usd is not None:  # what the server billed is what a hit avoids
            counts["reported_cost_usd"] = usage.reported_cost_usd
        if usage.measured_energy_kwh is not None:  # what the server measured is what a hit avoids
            counts["measured_energy_kwh"] = usage.measured_energy_kwh
            counts["measured_gwp_kgco2eq"] = usage.measured_gwp_kgco2eq
        entry: dict[str, Any] = {
            "content": response.content, "model": response.model, "finish_reason": response.finish_reason,
            "usage": counts, "latency_s": response.latency_s, "request_id": response.request_id,
        }
        # tool calls, logprobs and n > 1 answers only when there are some (a plain entry stays as it was)
        choices = response.choices
        if len(choices) > 1:
            entry["choices"] = [c.to_dict() for c in choices]
        elif response.tool_calls or response.logprobs is not None:
            entry["choice"] = choices[0].to_dict()
        return entry

    def from_cache_entry(self, entry: Mapping[str, Any], params: Mapping[str, Any], *,
                         batch: bool = False) -> Response:
        """A cached (or duplicated) answer: ``cached=True``, tracking = what it would cost now."""
        usage = entry["usage"]
        if "choices" in entry:
            choices = [Choice.from_dict(c) for c in entry["choices"]]
        elif "choice" in entry:
            choices = [Choice.from_dict(entry["choice"])]
        else:
            choices = [Choice(0, entry["content"], entry.get("finish_reason"))]
        response = Response.from_choices(
            choices, model=entry["model"],
            usage=Usage(usage["prompt_tokens"], usage["completion_tokens"], usage.get("cached_tokens") or 0,
                        usage.get("cache_write_tokens") or 0, usage.get("reasoning_tokens") or 0,
                        usage.get("reported_cost_usd"), usage.get("measured_energy_kwh"),
                        usage.get("measured_gwp_kgco2eq")),
            cached=True, latency_s=0.0, tracking=Tracking(),
            provider=self.provider, request_id=entry.get("request_id"), attempts=0, _raw=_raw_of(entry),
        )
        response.content = entry["content"]  # a structured answer's content is the provider's JSON, as stored
        latency = math.inf if batch else float(entry.get("latency_s") or 0.0)
        response.tracking = self.tracker.track(response.model, response.usage, latency, batch=batch)
        return self.validate(response, params)

    def duplicate(self, original: Response, params: Mapping[str, Any]) -> Response:
        """The answer to an identical prompt sent once in this batch: a free copy, like a hit."""
        entry = self.cache_entry(original)
        entry["raw"] = original.raw_bytes
        return self.from_cache_entry(entry, params)

    def store(self, key: str | None, response: Response) -> Future[None] | None:
        """Queue the answer's cache write; the future resolves once committed (None without a cache)."""
        if self.cache is None or key is None:
            return None
        try:
            return self.cache.set_nowait(key, self.cache_entry(response), response.raw_bytes)
        except CacheError as exc:
            failed: Future[None] = Future()
            failed.set_exception(exc)
            return failed

    def write(self, key: str | None, response: Response, done: Callable[[BaseException | None], object]) -> bool:
        """Queue the answer's cache write with a callback rather than a future (the batch engine's way:
        ``done(None)`` on commit, ``done(error)`` on failure, on the writer thread). False without a cache."""
        if self.cache is None or key is None:
            return False
        try:
            self.cache.put(key, self.cache_entry(response), response.raw_bytes, done)
        except CacheError as exc:
            done(exc)
        return True

    def hurry_writes(self) -> None:
        """Nothing is left to do but wait for queued cache writes: have them committed now."""
        if self.cache is not None:
            self.cache.hurry()

    async def committed(self, fut: Future[None] | None) -> bool:
        """Wait for a write to commit (a cancel of the waiter never cancels the write); False and a
        warning when it failed: the answer is still the caller's."""
        if fut is None:
            return True
        try:
            await asyncio.shield(asyncio.wrap_future(fut))
        except CacheError as exc:
            self.write_failed(exc)
            return False
        return True

    def write_failed(self, exc: BaseException, count: int = 1) -> None:
        """Tell the user once per client that answers are not being stored (they are still returned)."""
        self.warn_once("cache_write", f"{count} answer(s) could not be stored in the cache: {exc}. They are "
                                      "returned all the same; re-running would send them again", CacheWarning)

    def warn_once(self, kind: str, message: str, category: type[Warning]) -> None:
        if kind in self._warned:
            return
        self._warned.add(kind)
        logger.warning(message)
        warnings.warn(message, category, stacklevel=3)

    # -- sending ---------------------------------------------------------------------------------
    async def generate(self, prepared: Prepared, params: Mapping[str, Any]) -> Response:
        """One prompt all the way: hit, or send and store (returned once the write committed); its
        answer or error is added to the client's ``lifetime`` account."""
        try:
            hit = self.lookup(prepared, params)
            if hit is not None:
                self.lifetime.add(hit)
                return hit
            response = await self.send(prepared, params)
        except Exception as exc:
            self.lifetime.add(exc)
            raise
        except asyncio.CancelledError:
            self.lifetime.add(Cancelled())
            raise
        self.lifetime.add(response)  # paid for: counted even if the caller is cancelled during the write
        await self.committed(self.store(prepared.key, response))
        return response

    async def send(self, prepared: Prepared, params: Mapping[str, Any], on_retry: RetryHook | None = None) -> Response:
        """Send through the rate gate with retries; the answer is tracked and validated, not stored."""
        response, attempts = await self._retrying(self._send_once, (prepared, params), prepared.estimate, on_retry)
        self.gate.settle(prepared.estimate, response.usage.total_tokens)
        response.attempts = attempts
        return response

    async def _send_once(self, prepared: Prepared, params: Mapping[str, Any], probe: bool) -> Response:
        """One attempt. Straight to the loop's aiohttp session (see ``core/http.py`` for why), or through
        an injected httpx transport. Errors are raised before the body is bound to a local: a server
        may echo the key in an error body, and a traceback shows locals."""
        pool = self._pools.pool()
        session = pool.session
        started = time.perf_counter()
        try:
            if session is not None:
                url = self._wire_urls.get(prepared.path)
                if url is None:
                    url = self._wire_urls[prepared.path] = yarl.URL(self.base_url + prepared.path)  # parsed once
                async with session.post(url, data=prepared.payload, headers=self._headers,
                                        timeout=self._wire_timeout, allow_redirects=False) as reply:
                    if reply.status >= 400:
                        raise self.status_error(reply.status, await reply.read(), reply.headers, str(url))
                    body = await reply.read()
                    headers: Mapping[str, str] = reply.headers
            else:
                httpx_url = self._urls.get(prepared.path)
                if httpx_url is None:
                    httpx_url = self._urls[prepared.path] = httpx.URL(self.base_url + prepared.path)
                async with asyncio.timeout(self.timeout):
                    answer = await post(pool.http, httpx_url, prepared.payload, self._headers, self.timeout)
                if answer.status_code >= 400:
                    raise self.status_error(answer.status_code, answer.content, answer.headers, str(httpx_url))
                body, headers = answer.content, answer.headers
        except TRANSPORT_ERRORS as exc:  # ``from None``: see translate_transport_error
            raise translate_transport_error(exc, self.provider, self.base_url) from None
        latency = time.perf_counter() - started
        self._observe(headers, probe)
        try:
            response = self.codec.parse_response(body, headers, params)
        except ResponseParseError as exc:
            raise self._scrubbed(exc) from None
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            excerpt = body[:200].decode("utf-8", "replace")
            raise self._parse_error(f"{self.provider} server at {self.base_url} sent a body that is not a valid "
                                    f"completion ({type(exc).__name__}: {exc}); body starts {excerpt!r}") from None
        response.latency_s = latency
        response.tracking = self.tracker.track(response.model, response.usage, latency)
        return self.validate(response, params)

    async def control(self, method: str, path: str, *, timeout_s: float | None = None,
                      headers: Mapping[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """One control-plane call (files, Batch API jobs) through the same gate, retries, client-wide
        pauses and error mapping as a chat request; httpx's API (multipart uploads), over the same pool.
        ``path`` is relative to the base URL, or a full URL on the base URL's own host (Gemini uploads and
        downloads files under ``/upload`` and ``/download``, beside its API's path): the key is sent to no
        other host. ``kwargs`` go to ``httpx.AsyncClient.request``."""
        sent = self._headers.with_extra(headers, drop=("content-type",) if "files" in kwargs else ())
        response, _ = await self._retrying(self._control_once, (method, self._control_url(path), sent,
                                                                timeout_s or self.timeout, kwargs), 0, None)
        return response

    def _control_url(self, path: str) -> str:
        if not path.startswith(("http://", "https://")):
            return self.base_url + path
        target, base = httpx.URL(path), httpx.URL(self.base_url)
        if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
            raise ConfigurationError(f"{path} is not on the server of base_url {self.base_url}: the API key is "
                                     "only sent there")
        return path

    async def _control_once(self, method: str, url: str, sent: SecretHeaders, timeout_s: float,
                            kwargs: Mapping[str, Any], probe: bool) -> httpx.Response:
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._pools.get().request(method, url, headers=sent,
                                                           timeout=httpx.Timeout(timeout_s), **kwargs)
        except TRANSPORT_ERRORS as exc:
            raise translate_transport_error(exc, self.provider, self.base_url) from None
        if response.status_code >= 400:
            raise self.status_error(response.status_code, response.content, response.headers, url)
        self._observe(response.headers, probe)
        return response

    async def _retrying(self, attempt: Callable[..., Awaitable[T]], args: tuple[Any, ...], estimate: int,
                        on_retry: RetryHook | None) -> tuple[T, int]:
        """The retry loop (the only one): gate, ``attempt(*args, probe)``, and on a retryable failure
        wait (a 429 pauses the whole client) and go again. Returns the result and the attempts made."""
        gate, retry = self.gate, self.retry
        attempts = 1
        while True:
            probe = await gate.acquire(estimate)
            try:
                return await attempt(*args, probe), attempts
            except Exception as exc:
                gate.settle(estimate, 0)
                limited = isinstance(exc, RateLimitError)
                if probe and not limited:
                    gate.probe_answered(ok=False)
                if not retry.should_retry(exc, attempts):
                    raise
                wait = retry.delay(exc, attempts)
                if limited:
                    gate.pause(wait)  # the whole client slows down, not only this request
                if logger.isEnabledFor(logging.INFO):
                    logger.info("%s; retry %d of %d in %.2f s%s", exc, attempts, retry.max_retries, wait,
                                " (the whole client pauses)" if limited else "")
                if on_retry is not None:
                    on_retry(+1, exc, wait)
                try:
                    await asyncio.sleep(wait)
                finally:
                    if on_retry is not None:
                        on_retry(-1, exc, 0.0)
                attempts += 1

    # -- errors and rate-limit headers -----------------------------------------------------------
    def status_error(self, status: int, body: bytes, headers: Mapping[str, str], url: str) -> APIStatusError:
        """An HTTP error (or a Batch API line's error) as a typed error, scrubbed of the API key."""
        error = self.codec.error_for_status(status, body, headers, url)
        if isinstance(error, RateLimitError) and error.retry_after is None and not error.quota_exhausted:
            error.retry_after = self._reset_wait(headers, exhausted_only=False)
        return self._scrubbed(error)

    def _scrubbed(self, error: APIError) -> Any:
        """The error with the API key masked wherever a server echoed it (message, body, headers)."""
        secret = self._secret
        if error.args and isinstance(error.args[0], str):
            error.args = (secret.scrub(error.args[0]), *error.args[1:])
        if isinstance(error, APIStatusError):
            error.body = secret.scrub(error.body)
            error.headers = {k: secret.scrub(v) for k, v in error.headers.items()}
        return error

    def _observe(self, headers: Mapping[str, str], probe: bool) -> None:
        """A success that used up a rate limit pauses the whole client until that limit resets; a
        recovery probe's answer tells the gate how many more the server accepts."""
        limits = self.codec.rate_limits(headers, exhausted_only=not probe)
        if probe:
            requests = [lim for lim in limits if lim.kind == "requests" and lim.remaining is not None]
            remaining = min((lim.remaining for lim in requests), default=None)  # type: ignore[type-var]
            reset = max((lim.reset_s or 0.0 for lim in requests), default=None)
            self.gate.probe_answered(remaining, reset)
        waits = [lim.reset_s for lim in limits if lim.remaining == 0 and lim.reset_s is not None]
        if waits:
            wait = min(max(waits), self.retry.max_wait_s)
            logger.info("a rate limit is used up; the whole client pauses %.2f s until it resets", wait)
            self.gate.pause(wait)

    def _reset_wait(self, headers: Mapping[str, str], *, exhausted_only: bool) -> float | None:
        """Seconds until the used-up limits reset (the longest); on a 429 that names none as used up
        (``exhausted_only=False``), until the last one resets."""
        limits = self.codec.rate_limits(headers, exhausted_only=exhausted_only)
        waits = [lim.reset_s for lim in limits if lim.remaining == 0 and lim.reset_s is not None]
        if not waits and not exhausted_only:
            waits = [lim.reset_s for lim in limits if lim.reset_s is not None]
        return max(waits) if waits else None

    # -- connection pools --------------------------------------------------------------------------
    def pool(self) -> httpx.AsyncClient:
        """The running loop's HTTP client (one per event loop, closed with it)."""
        return self._pools.get()

    async def aclose(self) -> None:
        await self._pools.aclose()

    def close(self) -> None:
        self._pools.close()
