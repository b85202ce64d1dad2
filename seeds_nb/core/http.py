"""The HTTP layer: one aiohttp connection pool per event loop, reached two ways, and the one place
transport errors are translated.

Why aiohttp underneath: on loopback with 64 concurrent requests plain ``httpx.AsyncClient`` reached
~300 req/s (its pool rescans every connection), httpx over the ``httpx-aiohttp`` transport ~3,900
req/s (see docs/benchmarks.md). The pool is sized so every concurrent request keeps its connection.

Why two ways onto one pool: the chat request, sent thousands of times a second, goes straight to the
pool's ``aiohttp.ClientSession`` (``send``): building an ``httpx.Request`` and ``httpx.Response``
and reading the body through three async-iterator layers cost ~100 µs of CPU per request
(measured, docs/benchmarks.md), as much as all of seeds_nb's own bookkeeping. httpx's API stays
where it pays: the control plane (file uploads, Batch API jobs: ``pool.http``, an
``httpx.AsyncClient`` over the *same* session) and the ``transport=`` extension point (an injected
httpx transport is used for every request, chat included, through ``post``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Mapping

import aiohttp
import httpx

from .exceptions import RequestTimeout, TransportError

__all__ = ["TRANSPORT_ERRORS", "LoopPools", "Pool", "make_http_client", "post", "translate_transport_error"]

POOL_SIZE = 1024  # connections kept alive: >= any sensible max_concurrent, so none is re-opened
KEEPALIVE_S = 30.0


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=KEEPALIVE_S)


def make_session() -> aiohttp.ClientSession:
    """The running loop's aiohttp session: the connection pool itself."""
    connector = aiohttp.TCPConnector(limit=POOL_SIZE, keepalive_timeout=KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True)


def make_http_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None, *,
                     session: aiohttp.ClientSession | None = None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` bound to the running event loop (aiohttp sessions are per loop), over
    ``session`` when given (one pool for both paths), else over a session of its own."""
    if transport is None:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=_limits(), client=session)
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout), limits=_limits())
    _TRANSPORTS[client] = transport
    return client


_TRANSPORTS: weakref.WeakKeyDictionary[httpx.AsyncClient, httpx.AsyncBaseTransport] = weakref.WeakKeyDictionary()


class Pool:
    """One event loop's connection pool: ``session`` (aiohttp, the hot path; None when an httpx
    transport was injected) and ``http`` (an ``httpx.AsyncClient`` over the same pool, made on first
    use). Closed with its loop."""

    __slots__ = ("_http", "_timeout", "_transport", "closer", "session")

    def __init__(self, timeout: float, transport: httpx.AsyncBaseTransport | None) -> None:
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self.session = make_session() if transport is None else None
        self.closer = self._closes_with_loop()
        # Run it to its ``yield`` now: its first step registers it with the running loop, whose
        # shutdown_asyncgens() will aclose() it. The loop holds it weakly; this object holds it.
        try:
            self.closer.asend(None).send(None)
        except StopIteration:
            pass

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = make_http_client(self._timeout, self._transport, session=self.session)
        return self._http

    async def _closes_with_loop(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if self._http is not None:
                await self._http.aclose()  # closes the shared session too (its transport owns it)
            if self.session is not None and not self.session.closed:
                await self.session.close()


class LoopPools:
    """One ``Pool`` per event loop, each closed when ``asyncio.run`` ends its loop.

    Why: aiohttp sessions belong to the loop that made them. A script that calls
    ``asyncio.run(client.agenerate(...))`` per prompt, or a notebook plus a worker thread, uses
    one client from several loops; each gets its own pool, and a pool must be closed on its own
    loop before that loop closes or aiohttp reports an unclosed session. The hook for "before
    the loop closes" is ``loop.shutdown_asyncgens()`` (``asyncio.run`` calls it): each pool is
    held by a suspended async generator whose ``finally`` closes the pool.
    """

    def __init__(self, timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._timeout = timeout
        self._transport = transport
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = weakref.WeakKeyDictionary()

    def pool(self) -> Pool:
        """The running loop's pool (created on first use)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = Pool(self._timeout, self._transport)
        return pool

    def get(self) -> httpx.AsyncClient:
        """The running loop's ``httpx.AsyncClient`` (the control plane's)."""
        return self.pool().http

    async def aclose(self) -> None:
        """Close every pool: the running loop's here, the others on their own loops."""
        here = asyncio.get_running_loop()
        for loop, pool in list(self._pools.items()):
            if loop is here:
                del self._pools[loop]
                await pool.closer.aclose()
            elif _close_elsewhere(loop, pool):
                del self._pools[loop]

    def close(self) -> None:
        """Sync ``aclose``, from outside any loop or from inside one (a notebook cell)."""
        for loop, pool in list(self._pools.items()):
            if _close_elsewhere(loop, pool):
                del self._pools[loop]


def _close_elsewhere(loop: asyncio.AbstractEventLoop, pool: Pool) -> bool:
    """Close ``pool`` on its loop: scheduled if that loop runs, run now if it is idle. False when
    that cannot be done from here (another loop runs in this thread): the pool must then stay
    referenced, to be closed when its own loop shuts down."""
    if loop.is_closed():  # ended without shutdown_asyncgens (closed by hand): nothing can run there
        return True
    if loop.is_running():
        asyncio.run_coroutine_threadsafe(pool.closer.aclose(), loop)
        return True
    closing = pool.closer.aclose()
    try:
        loop.run_until_complete(closing)
    except RuntimeError:
        closing.close()
        return False
    return True


async def post(client: httpx.AsyncClient, url: httpx.URL, content: bytes, headers: Mapping[str, str],
               timeout_s: float) -> httpx.Response:
    """POST a JSON body and read the whole answer, straight through the client's transport.

    Why not ``client.post``: per request, the client layer re-parses the URL, runs the auth and
    redirect flows and feeds every response to a cookie jar (``http.cookiejar`` builds an
    ``email.Message`` per response). Together that was ~150 µs of CPU per request, more than
    seeds_nb's own bookkeeping; none of it is needed for an API call with a bearer token.
    The request and response are still ``httpx`` objects, over the same transport and pool.
    """
    transport = _TRANSPORTS.get(client)
    if transport is None:  # a client we did not build: take the ordinary path
        return await client.post(url, content=content, headers=headers)
    request = httpx.Request("POST", url, content=content, headers=headers,
                            extensions={"timeout": {"connect": timeout_s, "read": timeout_s,
                                                    "write": timeout_s, "pool": timeout_s}})
    response = await transport.handle_async_request(request)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


TRANSPORT_ERRORS = (TimeoutError, httpx.TransportError, aiohttp.ClientError, OSError)
"""What a failed send raises below us: caught where a request is sent, translated by the function below."""


def translate_transport_error(exc: BaseException, provider: str, url: str) -> TransportError:
    """The ``SeedsError`` for an httpx/aiohttp/timeout failure. Raise it ``from None``: the library's own
    frames below hold the request's headers (the API key) in their locals, and a traceback printed with
    locals would show them; the message names the cause. Through the httpx-aiohttp transport most
    connection failures arrive as ``httpx.ConnectTimeout``: the underlying aiohttp exception (its cause)
    tells refused, dropped and timed out apart."""
    return _translate(exc, provider, url)


def _translate(exc: BaseException, provider: str, url: str) -> TransportError:
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None else exc
    where = f"{provider} server at {url}"
    if isinstance(cause, TimeoutError | aiohttp.ServerTimeoutError) or (
        cause is exc and isinstance(exc, httpx.TimeoutException)
    ):
        return RequestTimeout(f"{where} did not answer in time; raise timeout= if the model is slow",
                              provider=provider, url=url)
    if isinstance(cause, aiohttp.ClientConnectorError | ConnectionRefusedError | httpx.ConnectError):
        return TransportError(f"cannot reach {where}: {_describe(cause)}; is the server running and base_url "
                              "right?", provider=provider, url=url)
    return TransportError(f"connection to {where} dropped: {_describe(cause)}", provider=provider, url=url)
