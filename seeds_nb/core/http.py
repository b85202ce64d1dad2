"""The HTTP layer: httpx's API over the aiohttp transport, and the one place errors are translated.

Why the transport: on loopback with 64 concurrent requests plain ``httpx.AsyncClient`` reached
~280 req/s (its pool rescans every connection), the ``httpx-aiohttp`` transport ~3,200 req/s
(see docs/benchmarks.md). The pool is sized so every concurrent request keeps its connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
import httpx

from .exceptions import RequestTimeout, TransportError

__all__ = ["make_http_client", "map_transport_errors"]

POOL_SIZE = 1024  # connections kept alive: >= any sensible max_concurrent, so none is re-opened


def make_http_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` bound to the running event loop (aiohttp sessions are per loop)."""
    limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE, keepalive_expiry=30.0)
    if transport is None:
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=limits)
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout), limits=limits)


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


@contextlib.contextmanager
def map_transport_errors(provider: str, url: str) -> Iterator[None]:
    """Translate httpx/aiohttp/timeout failures into ``TransportError``/``RequestTimeout``.

    The aiohttp transport reports a dropped connection as ``httpx.ConnectTimeout``; the cause
    tells a real timeout from a disconnect, so we look at it.
    """
    try:
        yield
    except TimeoutError:
        raise RequestTimeout(f"{provider} server at {url} did not answer in time; "
                             "raise timeout= if the model is slow", provider=provider, url=url) from None
    except httpx.TimeoutException as exc:
        cause = exc.__cause__
        if cause is not None and "Timeout" not in type(cause).__name__:
            raise TransportError(f"connection to {provider} server at {url} dropped: {_describe(exc)}",
                                 provider=provider, url=url) from exc
        raise RequestTimeout(f"{provider} server at {url} did not answer in time ({_describe(exc)}); "
                             "raise timeout= if the model is slow", provider=provider, url=url) from exc
    except (httpx.TransportError, aiohttp.ClientError, OSError) as exc:
        hint = ""
        if isinstance(exc, httpx.ConnectError) or isinstance(exc, ConnectionRefusedError):
            hint = "; is the server running and base_url right?"
        raise TransportError(f"cannot reach {provider} server at {url}: {_describe(exc)}{hint}",
                             provider=provider, url=url) from exc
