"""Provider-neutral hooks for server-side Batch APIs, mixed into ``BaseClient``.

Why a registry: ``submit_batch`` belongs on every client, but the jobs themselves (splitting,
saving, polling, results) live in ``seeds_nb.providers``, and the core never imports upward.
``seeds_nb.providers`` registers one adapter factory per provider name at import.
``_api_request`` is the control-plane call those adapters use (files, batches), with the
client's auth, retry policy and error mapping, so retries stay one mechanism.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import httpx

from .exceptions import APIError, ConfigurationError
from .http import map_transport_errors

if TYPE_CHECKING:
    from .client import BaseClient

__all__ = ["BatchAPIMixin", "register_batch_api"]

_BATCH_APIS: dict[str, Callable[[BaseClient], Any]] = {}


def register_batch_api(provider: str, factory: Callable[[BaseClient], Any]) -> None:
    """Make ``factory(client)`` the Batch API adapter of ``provider`` (it has ``submit`` and ``load``)."""
    _BATCH_APIS[provider] = factory


class BatchAPIMixin:
    """``submit_batch`` / ``load_batch`` and the control-plane request, for ``BaseClient``."""

    async def _api_request(self: BaseClient, method: str, path: str, *, timeout_s: float | None = None,
                           **kwargs: Any) -> httpx.Response:
        """One control-plane call (files, Batch API) with the client's auth, retries and error mapping.

        ``path`` is appended to ``base_url``; ``kwargs`` go to ``httpx.AsyncClient.request``.
        """
        url = self.base_url + path
        headers = self._auth_headers(self._api_key.get())
        if "files" in kwargs:
            headers.pop("content-type", None)  # httpx sets the multipart boundary
        headers.update(kwargs.pop("headers", None) or {})
        timeout_s = timeout_s or self.timeout
        attempt = 1
        while True:
            try:
                with map_transport_errors(self.provider, self.base_url):
                    async with asyncio.timeout(timeout_s):
                        response = await self._http_client().request(
                            method, url, headers=headers, timeout=httpx.Timeout(timeout_s), **kwargs)
                if response.status_code >= 400:
                    raise self._error_for_status(response.status_code, response.content, response.headers, url)
                return response
            except APIError as exc:
                if not self.retry.should_retry(exc, attempt):
                    raise
                await asyncio.sleep(self.retry.delay(exc, attempt))
                attempt += 1

    def _batch_api(self: BaseClient) -> Any:
        factory = _BATCH_APIS.get(self.provider)
        if factory is None:
            raise ConfigurationError(f"{type(self).__name__} has no server-side Batch API; "
                                     "use batch_generate(...) to send the prompts directly")
        return factory(self)

    async def submit_batch(self: BaseClient, prompts: Iterable[Any], *,
                           jobs_dir: str | os.PathLike[str] | None = None,
                           max_requests_per_batch: int | None = None, **params: Any) -> Any:
        """Send the prompts to the provider's Batch API (half price, results within 24 h) and return
        a ``BatchJob`` at once; its id is saved so ``load_batch`` finds it after a restart."""
        self._check_params(params)
        return await self._batch_api().submit(prompts, jobs_dir=jobs_dir,
                                              max_requests_per_batch=max_requests_per_batch, params=params)

    def load_batch(self: BaseClient, job_id: str, *, jobs_dir: str | os.PathLike[str] | None = None,
                   **params: Any) -> Any:
        """The saved ``BatchJob`` ``job_id`` (our id, or a provider batch id), bound to this client.
        Pass ``response_format=`` again to get parsed answers."""
        self._check_params(params)
        return self._batch_api().load(job_id, jobs_dir=jobs_dir, params=params)
