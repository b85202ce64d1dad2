"""The HTTP layer: httpx's API over the aiohttp transport, and the one place errors are translated.

Why the transport: on loopback with 64 concurrent requests plain ``httpx.AsyncClient`` reached
~300 req/s (its pool rescans every connection), the ``httpx-aiohttp`` transport ~3,900 req/s
(see docs/benchmarks.md). The pool is sized so every concurrent request keeps its connection.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Mapping

import aiohttp
import httpx

from .exceptions import RequestTimeout, TransportError

__all__ = ["make_http_client", "map_transport_errors", "post"]

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
    underlying aiohttp exception (the cause) tells refused, dropped and timed out apart.
    """
    try:
        yield
    except (TimeoutError, httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        raise _translate(exc, provider, url) from exc


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
