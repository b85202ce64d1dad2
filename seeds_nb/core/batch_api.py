"""What a provider's server-side Batch API offers the client: ``submit`` and ``load``.

Why a class attribute (``BaseClient.batch_api_class``) rather than a registry filled at import: the
client that has a Batch API names it, so ``submit_batch`` works whatever was imported, and the core
never imports a provider. The jobs themselves (splitting, saving, polling, results) live in
``seeds_nb.providers``; their control-plane calls go through ``client.pipeline.control``, the same
gate, retries and client-wide pauses as chat requests.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["BatchAPI"]


class BatchAPI:
    """The base of a provider's Batch API adapter, built per call with the client it serves."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def submit(self, prompts: Iterable[Any], *, jobs_dir: str | os.PathLike[str] | None,
                     max_requests_per_batch: int | None, params: Mapping[str, Any]) -> Any:
        """Send the prompts as one job (split as the provider's limits require); return the job."""
        raise NotImplementedError

    def load(self, job_id: str, *, jobs_dir: str | os.PathLike[str] | None, params: Mapping[str, Any]) -> Any:
        """The saved job ``job_id`` for this client."""
        raise NotImplementedError
