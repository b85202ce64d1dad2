"""Server-side Batch API jobs: submit, poll, cancel, fetch results, and pick a job up after a restart.

One ``BatchJob`` wraps one or more provider batches (inputs past a provider's per-batch limits
are split) and reports them as one. Everything here is provider-neutral: splitting, the saved job
file, status aggregation, aligning result lines to prompt indices by ``custom_id``, pricing at the
batch rate, impacts with unknown latency, and writing answers to the response cache. A
``ProviderBatchAPI`` subclass per provider only translates (request lines, endpoints, result lines).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx

from seeds_nb.core.batch import CallbackWarning
from seeds_nb.core.batch_api import BatchAPI
from seeds_nb.core.exceptions import (
    APIError,
    CacheError,
    Cancelled,
    ConfigurationError,
    PromptError,
    ResponseParseError,
    SeedsError,
)
from seeds_nb.core.result import BatchResult
from seeds_nb.core.types import Response, Tracking, check_prompts, normalize_prompt, prompt_text

from ._batch_results import BatchCounts, BatchExpired, BatchNotReady
from ._batch_store import TERMINAL, JobStore, ProviderBatch, new_job_id, ranges_of, resolve_jobs_dir

if TYPE_CHECKING:
    from seeds_nb.core.client import BaseClient

__all__ = ["BatchJob", "ProviderBatchAPI"]

UpdateCallback = Callable[["BatchJob"], Any]


_NO_HEADERS = httpx.Headers()  # result lines have no HTTP headers


class ProviderBatchAPI(BatchAPI):
    """What a provider implements: the translation to and from its Batch API. Its calls go through
    ``control`` (the client's pipeline: gate, retries, client-wide pauses) and its answers through
    ``answer`` (the codec's parsing and the pipeline's structured-output validation)."""

    max_requests: ClassVar[int]
    #: bytes of request lines per provider batch (an adapter may set its own from the client's options)
    max_bytes: int
    #: the provider's batches endpoint, relative to the client's base URL
    batches_path: ClassVar[str]
    #: bytes added per line when lines are joined (a newline, a comma)
    separator_bytes: ClassVar[int] = 1

    def __init__(self, client: BaseClient) -> None:
        super().__init__(client)
        self.client: BaseClient = client
        self.pipeline = client.pipeline
        self.control = client.pipeline.control

    def answer(self, custom_id: str, body: bytes, params: Mapping[str, Any]) -> Response | Exception:
        """A result line's answer body -> a validated ``Response``, or the error that says why not."""
        pipeline = self.pipeline
        try:
            return pipeline.validate(pipeline.codec.parse_response(body, _NO_HEADERS, params), params)
        except ResponseParseError as exc:
            return exc
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            return ResponseParseError(f"batch answer for {custom_id} is not a completion ({exc})",
                                      provider=pipeline.provider)

    def encode(self, custom_id: str, path: str, body: dict[str, Any]) -> bytes:
        """One request as the provider's batch line."""
        raise NotImplementedError

    async def create(self, lines: list[bytes], job_id: str, part: str) -> ProviderBatch:
        raise NotImplementedError

    async def retrieve(self, batch: ProviderBatch) -> None:
        """Update ``batch`` in place from the provider."""
        self._update(batch, (await self.control("GET", f"{self.batches_path}/{batch.id}")).json())

    async def cancel(self, batch: ProviderBatch) -> None:
        self._update(batch, (await self.control("POST", f"{self.batches_path}/{batch.id}/cancel")).json())

    @staticmethod
    def _update(batch: ProviderBatch, data: dict[str, Any]) -> None:
        """Set ``batch``'s status and counts from the provider's batch object."""
        raise NotImplementedError

    def results(self, batch: ProviderBatch, params: Mapping[str, Any]) -> AsyncIterator[tuple[str, Any]]:
        """``(custom_id, Response | Exception)`` for each result line (tracking is added by the job)."""
        raise NotImplementedError

    # -- entry points the core's ``submit_batch`` / ``load_batch`` call -------------------------
    async def submit(self, prompts: Iterable[Any], *, jobs_dir: str | os.PathLike[str] | None,
                     max_requests_per_batch: int | None, params: Mapping[str, Any]) -> BatchJob:
        return await BatchJob.submit(self.client, prompts, jobs_dir=jobs_dir,
                                     max_requests_per_batch=max_requests_per_batch, **params)

    def load(self, job_id: str, *, jobs_dir: str | os.PathLike[str] | None,
             params: Mapping[str, Any]) -> BatchJob:
        return BatchJob.load(job_id, client=self.client, jobs_dir=jobs_dir, **params)


class BatchJob:
    """A job on the provider's Batch API. Get one from ``client.submit_batch(...)`` or
    ``BatchJob.load(job_id, client=...)``; ``await job.wait()`` then ``await job.results()``."""

    def __init__(self, client: BaseClient, store: JobStore, params: Mapping[str, Any]) -> None:
        self.client = client
        self._api = _adapter(client)
        self._store = store
        self.params = dict(params)
        self._result: BatchResult | None = None

    # -- creating and loading ------------------------------------------------------------------
    @classmethod
    async def submit(cls, client: BaseClient, prompts: Iterable[Any], *,
                     jobs_dir: str | os.PathLike[str] | None = None, max_requests_per_batch: int | None = None,
                     **params: Any) -> BatchJob:
        """Split the prompts into provider batches, create them, save the job; see ``client.submit_batch``."""
        params = client.pipeline.codec.canonical_params(params)
        client.pipeline.check_params(params)
        check_prompts(prompts)
        api = _adapter(client)
        limit = api.max_requests if max_requests_per_batch is None else min(max_requests_per_batch, api.max_requests)
        if limit < 1:
            raise ConfigurationError(f"max_requests_per_batch must be >= 1; got {max_requests_per_batch!r}")
        job_id = new_job_id()
        store = JobStore.new(resolve_jobs_dir(client, jobs_dir), job_id, client, params)
        job = cls(client, store, params)
        await job._send(prompts, api, limit)
        return job

    @classmethod
    def load(cls, job_id: str, *, client: BaseClient, jobs_dir: str | os.PathLike[str] | None = None,
             **params: Any) -> BatchJob:
        """The saved job ``job_id`` (our id or one of its provider batch ids), for ``client``.
        Pass ``response_format=`` again to get ``parsed`` answers. Call ``await job.refresh()`` next."""
        params = client.pipeline.codec.canonical_params(params)
        client.pipeline.check_params(params)
        store = JobStore.open(resolve_jobs_dir(client, jobs_dir), job_id, client)
        return cls(client, store, params)

    async def _send(self, prompts: Iterable[Any], api: ProviderBatchAPI, limit: int) -> None:
        client, store, params = self.client, self._store, self.params
        pipeline = client.pipeline
        cache = client.cache
        lines: list[bytes] = []
        indices: list[int] = []
        size = 0
        part = 0

        async def flush() -> None:
            nonlocal lines, indices, size, part
            part += 1
            try:
                batch = await api.create(lines, store.id, f"part{part}")
            except BaseException as exc:
                if not store.batches:  # nothing created yet: nothing to keep
                    store.delete()
                    raise
                reason = f"not submitted: creating provider batch {part} failed ({type(exc).__name__}: {exc})"
                for i in indices:
                    store.errors[i] = ["submit", reason]
                warnings.warn(f"batch job {store.id}: {reason}; the batches already created keep running",
                              RuntimeWarning, stacklevel=3)
                if not isinstance(exc, Exception):  # cancelled or interrupted: keep what runs, then stop
                    store.save(prompts=True)
                    raise
            else:
                batch.ranges = ranges_of(indices)
                batch.count = len(indices)
                store.batches.append(batch)
            store.save()  # after every creation: a crash never loses a batch that is running
            lines, indices, size = [], [], 0

        for index, prompt in enumerate(prompts):
            try:
                messages = normalize_prompt(prompt)
                store.prompts.append(prompt_text(messages))
                if cache is not None:  # keys only matter with a cache (and cost ~10 µs per prompt)
                    key = pipeline.key(messages, params)
                    store.keys.append(key)
                    if cache.get(key) is not None:
                        store.cached.append(index)
                        continue
                path, body = pipeline.codec.build_request(messages, params)
                line = api.encode(f"req-{index}", path, body)
            except SeedsError as exc:
                del store.prompts[index:], store.keys[index:]
                store.prompts.append("" if isinstance(prompt, list) else str(prompt)[:200])
                if cache is not None:
                    store.keys.append("")
                store.errors[index] = ["prompt", str(exc)]
                continue
            grown = len(line) + api.separator_bytes
            if grown > api.max_bytes:
                store.errors[index] = ["prompt", f"too large for one batch request ({grown:,} bytes)"]
                continue
            if lines and (len(lines) >= limit or size + grown > api.max_bytes):
                await flush()
            lines.append(line)
            indices.append(index)
            size += grown
        if lines:
            await flush()
        store.save(prompts=True)

    # -- state ---------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._store.id

    @property
    def model(self) -> str:
        """The model the job was submitted for."""
        return self._store.model

    @property
    def batches(self) -> list[ProviderBatch]:
        """The provider batches this job wraps (one per input file / request)."""
        return self._store.batches

    @property
    def status(self) -> str:
        """validating / in_progress / finalizing / completed / failed / expired / cancelling / cancelled."""
        return self._store.status

    @property
    def raw_status(self) -> str:
        """The provider's own status word(s), e.g. ``"ended"`` for Anthropic (joined when they differ)."""
        return ",".join(dict.fromkeys(b.raw_status for b in self.batches)) or self.status

    @property
    def counts(self) -> BatchCounts:
        total = BatchCounts()
        for batch in self.batches:
            total = total + BatchCounts(batch.count, **batch.counts)
        return total

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def created_at(self) -> float:
        """Wall-clock (Unix) time the job was submitted; kept in the job file, so it survives a restart."""
        return self._store.created_at

    @property
    def path(self) -> Path:
        """The saved job file."""
        return self._store.path

    def __len__(self) -> int:
        return self._store.size

    def __repr__(self) -> str:
        c = self.counts
        return (f"BatchJob({self.id!r}, {self.client.provider} {self._store.model}, {len(self):,} prompts in "
                f"{len(self.batches)} batch(es), status={self.status!r}, {c.succeeded:,} ok, {c.failed:,} failed, "
                f"{c.processing:,} processing)")

    async def refresh(self) -> BatchJob:
        """Ask the provider for the state of every unfinished batch; saves the job file."""
        for batch in self.batches:
            if batch.status not in TERMINAL:
                await self._api.retrieve(batch)
        self._store.refresh_summary()
        self._store.save()
        return self

    async def wait(self, poll_interval: float = 30.0, timeout: float | None = None,  # noqa: ASYNC109
                   on_update: UpdateCallback | None = None) -> BatchJob:
        """Poll every ``poll_interval`` s until the job ends; ``on_update(job)`` after each poll.
        Raises ``TimeoutError`` after ``timeout`` s (the job keeps running: wait again or reload it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            await self.refresh()
            if on_update is not None:
                try:
                    out = on_update(self)
                    if inspect.isawaitable(out):
                        await out
                except Exception as exc:  # a broken callback must not stop the watching (as on_progress)
                    warnings.warn(f"on_update raised {type(exc).__name__}: {exc}; waiting without it",
                                  CallbackWarning, stacklevel=2)
                    on_update = None
            if self.done:
                return self
            pause = poll_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"batch job {self.id} is still {self.status} after {timeout} s; "
                                       "await job.wait() again, or BatchJob.load(...) it later")
                pause = min(pause, left)
            await asyncio.sleep(pause)

    async def cancel(self) -> BatchJob:
        """Ask the provider to cancel every unfinished batch; finished answers stay available."""
        await self.refresh()
        for batch in self.batches:
            if batch.status not in TERMINAL and batch.status != "cancelling":
                try:
                    await self._api.cancel(batch)
                except APIError:
                    await self._api.retrieve(batch)  # it ended meanwhile: nothing to cancel
                    if batch.status not in TERMINAL:
                        raise
        return await self.refresh()

    # -- results -------------------------------------------------------------------------------
    async def results(self) -> BatchResult:
        """Every prompt's answer or error, aligned with the prompts (priced at the batch rate)."""
        if self._result is not None:
            return self._result
        if not self.done:
            await self.refresh()
            if not self.done:
                raise BatchNotReady(f"batch job {self.id} is {self.status} ({self.counts.processing:,} requests "
                                    "processing); await job.wait() first")
        store, client = self._store, self.client
        n = store.size
        result = BatchResult(responses=[None] * n, prompts=list(store.prompts) + [""] * (n - len(store.prompts)),
                             started_s=[math.nan] * n, finished_s=[math.nan] * n, started_at=store.created_at,
                             model=store.model, provider=client.provider,
                             electricity_mix_zone=client.tracker.electricity_mix_zone,
                             response_format=self.params.get("response_format"))
        cache_writes: list[Any] = []
        ended = store.created_at
        for batch in self.batches:
            finished = max(0.0, (batch.ended_at or time.time()) - store.created_at)
            ended = max(ended, batch.ended_at or ended)
            await self._collect(batch, result, finished, cache_writes)
        self._from_cache(result)
        for index, (kind, message) in store.errors.items():
            result.record(index, PromptError(message) if kind == "prompt" else APIError(
                message, provider=client.provider))
        for index in range(n):
            if result.responses[index] is None and index not in result.errors:
                result.record(index, APIError(f"prompt {index} was never submitted (submit_batch stopped early)",
                                              provider=client.provider))
        result.total_duration_seconds = max(0.0, ended - store.created_at)
        result.stop_reason = {"cancelled": "cancelled", "expired": "expired"}.get(self.status)
        if cache_writes:
            await self._await_cache(cache_writes, result)
        self._result = result
        client.tracking.add_ledger(result.ledger)  # the client's lifetime account, once per job read
        return result

    async def _collect(self, batch: ProviderBatch, result: BatchResult, finished_s: float,
                       cache_writes: list[Any]) -> None:
        client, keys = self.client, self._store.keys
        expected = {i for start, stop in batch.ranges for i in range(start, stop)}
        if not batch.has_results:
            error = APIError(f"provider batch {batch.id} failed: {'; '.join(batch.errors) or 'no reason given'}",
                             provider=client.provider)
            for index in expected:
                result.record(index, error)
            return
        seen: set[int] = set()
        track = client.tracker.track
        # Identical (model, usage) share one Tracking (read-only by convention): most answers of a big
        # batch repeat a few usage shapes, and impacts cost ~10 µs each.
        tracked: dict[tuple[Any, ...], Tracking] = {}
        async for custom_id, item in self._api.results(batch, self.params):
            index = _index(custom_id)
            if index not in expected or index in seen:
                continue
            seen.add(index)
            result.started_s[index], result.finished_s[index] = 0.0, finished_s
            if isinstance(item, Response):
                item.latency_s = math.nan  # no per-request latency in a batch: EcoLogits estimates it
                usage = item.usage
                shape = (item.model, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens,
                         usage.cache_write_tokens)
                tracking = tracked.get(shape)
                if tracking is None:
                    tracking = tracked[shape] = track(item.model, usage, math.inf, batch=True)
                item.tracking = tracking
                result.record(index, item)
                if index < len(keys) and keys[index]:
                    write = client.pipeline.store(keys[index], item)
                    if write is not None:
                        cache_writes.append(write)
            else:
                result.record(index, item)
        for index in expected - seen:
            if batch.status == "expired":
                result.record(index, BatchExpired(f"batch {batch.id} expired before this prompt was processed"))
            elif batch.status == "cancelled":
                result.record(index, Cancelled(f"batch {batch.id} was cancelled before this prompt was processed"))
            else:
                result.record(index, APIError(f"no result line for prompt {index} in batch {batch.id}",
                                              provider=client.provider))

    def _from_cache(self, result: BatchResult) -> None:
        """Prompts answered from the cache at submission (not sent, so free now)."""
        cache, keys = self.client.cache, self._store.keys
        for index in self._store.cached:
            entry = cache.get(keys[index]) if cache is not None else None
            response: Response | Exception | None = None
            if entry is not None:
                try:  # avoided: what this line would have cost in this batch (batch rate, latency unknown)
                    response = self.client.pipeline.from_cache_entry(entry, self.params, batch=True)
                except (KeyError, TypeError, ValueError, ResponseParseError):
                    response = None
            if response is None:
                result.record(index, CacheError("answered from the cache at submission, but the entry is gone "
                                                "(cleared, expired, or another cache_dir); submit it again"))
            else:
                result.record(index, response)
                result.started_s[index] = result.finished_s[index] = 0.0

    async def _await_cache(self, futures: list[Any], result: BatchResult) -> None:
        """Wait (off the loop) until the answers are committed; failed writes are counted and told once."""
        cache = self.client.cache
        if cache is None:
            return
        await asyncio.to_thread(cache.flush)
        failed = [f.exception() for f in futures if f.done() and f.exception() is not None]
        if failed:
            result.ledger.cache_write_failures += len(failed)
            self.client.pipeline.write_failed(failed[0], len(failed))


def _adapter(client: BaseClient) -> ProviderBatchAPI:
    api = client.batch_api()
    if not isinstance(api, ProviderBatchAPI):
        raise ConfigurationError(f"{type(client).__name__}.batch_api_class must be a ProviderBatchAPI to run a "
                                 f"BatchJob; got {type(api).__name__}")
    return api


def _index(custom_id: str) -> int:
    try:
        return int(custom_id.removeprefix("req-"))
    except (AttributeError, ValueError):
        return -1

