"""What a provider's server-side Batch API offers the client: ``submit`` and ``load``.

Why a class attribute (``BaseClient.batch_api_class``) rather than a registry filled at import: the
client that has a Batch API names it, so ``submit_batch`` works whatever was imported, and the core
never imports a provider. The jobs themselves (splitting, saving, polling, results) live in
``seeds_nb.providers``; their control-plane calls go through ``client.pipeline.control``, the same
gate, retries and client-wide pauses as chat requests.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from .result import BatchResult

__all__ = ["BatchAPI", "Job", "JobCounts"]


class JobCounts(Protocol):
    """Requests of a job by outcome so far (``seeds_nb.BatchCounts``)."""

    @property
    def total(self) -> int: ...
    @property
    def succeeded(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def cancelled(self) -> int: ...
    @property
    def expired(self) -> int: ...
    @property
    def processing(self) -> int: ...


class Job(Protocol):
    """A server-side Batch API job as displays see it (``seeds_nb.BatchJob`` is one): what the job
    monitor and the magic read, so they depend on the core and not on a provider's classes."""

    @property
    def id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def raw_status(self) -> str: ...
    @property
    def done(self) -> bool: ...
    @property
    def created_at(self) -> float: ...
    @property
    def counts(self) -> JobCounts: ...
    @property
    def batches(self) -> Sequence[Any]: ...

    async def refresh(self) -> Any: ...
    async def wait(self, poll_interval: float = ..., timeout: float | None = ...,  # noqa: ASYNC109
                   on_update: Callable[[Any], Any] | None = ...) -> Any: ...
    async def cancel(self) -> Any: ...
    async def results(self) -> BatchResult: ...


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
