"""The HTTP layer: httpx's API over the aiohttp transport, and the one place errors are translated.

Why the transport: on loopback with 64 concurrent requests plain ``httpx.AsyncClient`` reached
~300 req/s (its pool rescans every connection), the ``httpx-aiohttp`` transport ~3,900 req/s
(see docs/benchmarks.md). The pool is sized so every concurrent request keeps its connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, Iterator, Mapping

import aiohttp
import httpx

from .exceptions import RequestTimeout, TransportError

__all__ = ["LoopPools", "make_http_client", "map_transport_errors", "post"]

POOL_SIZE = 1024  # connections kept alive: >= any sensible max_concurrent, so none is re-opened


def make_http_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` bound to the running event loop (aiohttp sessions are per loop)."""
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=30.0)
    if transport is None:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=limits)
    client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout), limits=limits)
    _TRANSPORTS[client] = transport
    return client


_TRANSPORTS: weakref.WeakKeyDictionary[httpx.AsyncClient, httpx.AsyncBaseTransport] = weakref.WeakKeyDictionary()


class LoopPools:
    """One ``httpx.AsyncClient`` per event loop, each closed when ``asyncio.run`` ends its loop.

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
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()

    def get(self) -> httpx.AsyncClient:
        """The running loop's pool (created on first use)."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = _Pool(make_http_client(self._timeout, self._transport))
        return pool.http

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


class _Pool:
    __slots__ = ("closer", "http")

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.closer = _closes_with_loop(http)
        # Run it to its ``yield`` now: its first step registers it with the running loop, whose
        # shutdown_asyncgens() will aclose() it. The loop holds it weakly; this object holds it.
        try:
            self.closer.asend(None).send(None)
        except StopIteration:
            pass


async def _closes_with_loop(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await http.aclose()


def _close_elsewhere(loop: asyncio.AbstractEventLoop, pool: _Pool) -> bool:
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


@contextlib.contextmanager
def map_transport_errors(provider: str, url: str) -> Iterator[None]:
    """Translate httpx/aiohttp/timeout failures into ``TransportError``/``RequestTimeout``.

    The aiohttp transport maps most connection failures to ``httpx.ConnectTimeout``; the
    underlying aiohttp exception (its cause) tells refused, dropped and timed out apart.
    """
    try:
        yield
    except (TimeoutError, httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        # ``from None``: the library's own frames below hold the request's headers (the API key) in
        # their locals, and a traceback printed with locals would show them; the message names the cause.
        raise _translate(exc, provider, url) from None


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
