"""The batch engine: a ``BatchRun`` pulls prompts lazily, keeps ``max_concurrent`` requests in flight,
and accounts for every prompt index exactly once (a response, or an error).

Why a hand-rolled loop over plain tasks instead of ``asyncio.wait``/a task group: ``asyncio.wait``
re-registers callbacks on every pending task per completion (O(concurrency) each time), and a
task group would surface an ``ExceptionGroup``; here each task's done-callback appends to a deque,
so the per-request cost is constant and errors stay per item.

A run stops early when ``cancel()`` is called (the rest become ``Cancelled``), when a budget is
spent (the rest become ``BudgetExceeded``), or when its task is cancelled (then the
``CancelledError`` carries ``.partial_result``, and ``run.result`` has it too).
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
import warnings
from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .exceptions import BudgetExceeded, Cancelled, ConfigurationError, SeedsError
from .result import BatchResult
from .types import Response, normalize_prompt, prompt_text

if TYPE_CHECKING:
    from .client import BaseClient

__all__ = ["BatchRun", "BatchStats", "CallbackWarning", "ProgressCallback", "ResultCallback", "RetryCallback"]

ProgressCallback = Callable[[int, int | None, Response | None], Any]
RetryCallback = Callable[[int, Exception, float], Any]
"""``on_retry(index, error, wait_s)``: prompt ``index`` failed with a retryable ``error`` and is
retried after ``wait_s`` seconds (progress widgets show it as 'retrying')."""
ResultCallback = Callable[[int, Response | Exception], Any]
"""``on_result(index, response_or_error)``: prompt ``index`` ended, just before ``on_progress`` (a
consumer that fills a table by prompt needs the index, which ``on_progress`` does not give)."""
_NAN = math.nan


class CallbackWarning(UserWarning):
    """An ``on_progress`` / ``on_result`` / ``on_retry`` callback raised; the batch went on without it."""


@dataclass(slots=True)
class BatchStats:
    """Live counters of a run, read by progress widgets (no locking: one loop writes them)."""

    total: int | None = None
    completed: int = 0
    succeeded: int = 0
    failed: int = 0
    cached: int = 0
    retrying: int = 0
    in_flight: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    gwp_kgco2eq: float = 0.0
    energy_kwh: float = 0.0
    avoided_cost_usd: float = 0.0
    avoided_gwp_kgco2eq: float = 0.0
    started: float = 0.0
    """``time.monotonic()`` at the start of the run."""


class BatchRun:
    """One batch in progress. Create it with ``client.batch(...)``."""

    def __init__(self, client: BaseClient, prompts: Iterable[Any], *, max_concurrent: int,
                 on_progress: ProgressCallback | None, max_cost_usd: float | None,
                 max_gwp_kgco2eq: float | None, params: Mapping[str, Any], keep_results: bool = True) -> None:
        if isinstance(prompts, str | bytes) or not isinstance(prompts, Iterable):
            raise TypeError(
                f"prompts must be an iterable of prompts (a list of strings, or of Message lists); "
                f"got {type(prompts).__name__}" + (" - wrap a single prompt in a list" if isinstance(
                    prompts, str) else "")
            )
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ConfigurationError(f"max_concurrent must be an integer >= 1; got {max_concurrent!r}")
        for name, value in (("max_cost_usd", max_cost_usd), ("max_gwp_kgco2eq", max_gwp_kgco2eq)):
            if value is not None and (not isinstance(value, int | float) or value < 0):
                raise ConfigurationError(f"{name} must be a number >= 0; got {value!r}")
        self.client = client
        self._prompts = prompts
        self.max_concurrent = max_concurrent
        self.on_progress = on_progress
        self.on_retry: RetryCallback | None = None
        self.on_result: ResultCallback | None = None
        #: False for ``batch_generate_iter``: the consumer keeps what it wants, the run only counts,
        #: so memory stays bounded by ``max_concurrent`` however long the stream
        self.keep_results = keep_results
        self.max_cost_usd = max_cost_usd
        self.max_gwp_kgco2eq = max_gwp_kgco2eq
        self.params = dict(params)
        total = len(prompts) if hasattr(prompts, "__len__") else None  # type: ignore[arg-type]
        self.stats = BatchStats(total=total)
        self.result = BatchResult(model=client.model, provider=client.provider,
                                  electricity_mix_zone=client.tracker.electricity_mix_zone)
        self._stop_reason: str | None = None
        self._cancelled = False
        self._wake: asyncio.Event | None = None
        self._started = False
        self._done = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback_warned = False

    # -- control -------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def cancel(self) -> None:
        """Stop the run: no new request starts, in-flight ones are cancelled, finished ones kept.
        Safe to call from any thread (a widget's button handler)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._request_stop("cancelled")
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._request_stop("cancelled")
        else:
            loop.call_soon_threadsafe(self._request_stop, "cancelled")

    def _request_stop(self, reason: str) -> None:
        if reason == "cancelled":
            self._cancelled = True
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._wake is not None:
            self._wake.set()

    # -- consuming -----------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, BatchResult]:
        return self._collect().__await__()

    def __aiter__(self) -> AsyncGenerator[tuple[int, Response | Exception], None]:
        return self.stream()

    async def _collect(self) -> BatchResult:
        stream = self.stream()
        try:
            async for _ in stream:
                pass
        except asyncio.CancelledError as exc:
            await stream.aclose()  # make sure every index is accounted for before re-raising
            exc.partial_result = self.result  # type: ignore[attr-defined]
            raise
        return self.result

    async def stream(self) -> AsyncGenerator[tuple[int, Response | Exception], None]:
        """Yield ``(index, Response | Exception)`` in completion order; the result fills as it goes."""
        if self._started:
            raise RuntimeError("a BatchRun can be consumed once; call client.batch(...) again")
        self._started = True
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        await self.client.warm_up()
        result, stats = self.result, self.stats
        stats.started = time.monotonic()
        result.started_at = time.time()
        prompts = iter(self._prompts)
        finished: deque[tuple[int, Response | Exception]] = deque()
        tasks: dict[int, asyncio.Task[None]] = {}
        inflight_keys: dict[str, asyncio.Future[Response]] = {}
        exhausted = False
        next_index = 0
        try:
            while True:
                while not exhausted and self._stop_reason is None and len(tasks) < self.max_concurrent:
                    try:
                        prompt = next(prompts)
                    except StopIteration:
                        exhausted = True
                        break
                    index = next_index
                    next_index += 1
                    if self.keep_results:
                        self._grow(index)
                    try:
                        messages = normalize_prompt(prompt)
                    except SeedsError as exc:
                        finished.append((index, exc))
                        continue
                    if self.keep_results:
                        result.prompts[index] = prompt_text(messages)
                    tasks[index] = self._spawn(index, messages, finished, tasks, inflight_keys)
                if not finished:
                    if not tasks or self._cancelled:
                        break
                    wake.clear()
                    await wake.wait()
                    if self._cancelled and not finished:
                        break
                while finished:
                    index, item = finished.popleft()
                    self._record(index, item)
                    yield index, item
                    await self._notify(index, item)
        finally:
            await self._finish(tasks, finished, prompts if not exhausted else None, next_index)

    # -- internals -----------------------------------------------------------------------------
    def _grow(self, index: int) -> None:
        result = self.result
        if index >= len(result.responses):
            add = index + 1 - len(result.responses)
            result.responses.extend([None] * add)
            result.prompts.extend([""] * add)
            result.started_s.extend([_NAN] * add)
            result.finished_s.extend([_NAN] * add)

    def _spawn(self, index: int, messages: Any, finished: deque[tuple[int, Response | Exception]],
               tasks: dict[int, asyncio.Task[None]],
               inflight_keys: dict[str, asyncio.Future[Response]]) -> asyncio.Task[None]:
        client, stats, result, wake = self.client, self.stats, self.result, self._wake
        assert wake is not None

        def on_retry(delta: int, error: Exception, wait: float) -> None:
            stats.retrying += delta
            if delta > 0 and self.on_retry is not None:
                try:
                    self.on_retry(index, error, wait)
                except Exception as exc:  # a broken hook must not break the request
                    self._warn_callback("on_retry", exc)

        async def one() -> None:
            started = time.monotonic() - stats.started
            stats.in_flight += 1
            key = client._key(messages, self.params) if client.cache is not None else None
            shared = inflight_keys.get(key) if key is not None else None
            try:
                if shared is not None:  # an identical prompt is in flight: send it once
                    original = await asyncio.shield(shared)
                    item: Response | Exception = client._from_cache(client._to_cache(original))
                else:
                    future: asyncio.Future[Response] | None = None
                    if key is not None:
                        future = asyncio.get_running_loop().create_future()
                        inflight_keys[key] = future
                    try:
                        item = await client._generate(messages, self.params, key=key, on_retry=on_retry)
                        if future is not None:
                            future.set_result(item)
                    except BaseException as exc:
                        if future is not None:
                            future.set_exception(exc if isinstance(exc, Exception) else Cancelled())
                            future.exception()  # mark retrieved: duplicates may not exist
                        raise
                    finally:
                        if key is not None:
                            inflight_keys.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                item = exc
            finally:
                stats.in_flight -= 1
                if self.keep_results:
                    result.started_s[index] = started
                    result.finished_s[index] = time.monotonic() - stats.started
                tasks.pop(index, None)  # here, not in a done-callback: the slot must be free on wake-up
            finished.append((index, item))
            wake.set()

        return asyncio.get_running_loop().create_task(one())

    def _record(self, index: int, item: Response | Exception) -> None:
        stats, result = self.stats, self.result
        stats.completed += 1
        if isinstance(item, Response):
            if self.keep_results:
                result.responses[index] = item
            stats.succeeded += 1
            stats.tokens += item.usage.total_tokens
            tracking = item.tracking
            if item.cached:
                stats.cached += 1
                stats.avoided_cost_usd += tracking.cost_usd or 0.0
                stats.avoided_gwp_kgco2eq += tracking.gwp_kgco2eq or 0.0
            else:
                stats.cost_usd += tracking.cost_usd or 0.0
                stats.gwp_kgco2eq += tracking.gwp_kgco2eq or 0.0
                stats.energy_kwh += tracking.energy_kwh or 0.0
                self._check_budget()
        else:
            if self.keep_results:
                result.errors[index] = item
            stats.failed += 1

    def _check_budget(self) -> None:
        if self.max_cost_usd is not None and self.stats.cost_usd >= self.max_cost_usd:
            self._request_stop("max_cost_usd")
        elif self.max_gwp_kgco2eq is not None and self.stats.gwp_kgco2eq >= self.max_gwp_kgco2eq:
            self._request_stop("max_gwp_kgco2eq")

    async def _notify(self, index: int, item: Response | Exception) -> None:
        if self.on_result is not None:
            try:
                out = self.on_result(index, item)
                if inspect.isawaitable(out):
                    await out
            except Exception as exc:  # a broken callback must not break the batch
                self._warn_callback("on_result", exc)
        if self.on_progress is None:
            return
        try:
            out = self.on_progress(self.stats.completed, self.stats.total,
                                   item if isinstance(item, Response) else None)
            if inspect.isawaitable(out):
                await out
        except Exception as exc:
            self._warn_callback("on_progress", exc)

    def _warn_callback(self, name: str, exc: Exception) -> None:
        if not self._callback_warned:
            self._callback_warned = True
            warnings.warn(f"{name} raised {type(exc).__name__}: {exc}; the batch goes on without "
                          "reporting further callback errors", CallbackWarning, stacklevel=3)

    def _stop_error(self) -> Exception:
        reason = self._stop_reason
        if reason == "max_cost_usd":
            return BudgetExceeded(reason, float(self.max_cost_usd or 0), self.stats.cost_usd)
        if reason == "max_gwp_kgco2eq":
            return BudgetExceeded(reason, float(self.max_gwp_kgco2eq or 0), self.stats.gwp_kgco2eq)
        return Cancelled()

    async def _finish(self, tasks: dict[int, asyncio.Task[None]],
                      finished: deque[tuple[int, Response | Exception]], prompts: Iterator[Any] | None,
                      next_index: int) -> None:
        """Account for every index not yet answered: keep what finished, cancel what runs, mark
        what never started; leave no task behind."""
        if tasks or (self._stop_reason is None and prompts is not None):
            self._stop_reason = self._stop_reason or "cancelled"
        pending = list(tasks.values())
        for task in pending:
            task.cancel()
        if pending:
            try:
                await asyncio.gather(*pending, return_exceptions=True)
            except BaseException:  # cancelled again while unwinding: the tasks are cancelled anyway
                pass
        while finished:  # completed but not yet handed out (the consumer left early)
            self._record(*finished.popleft())
        result, stats = self.result, self.stats
        error = self._stop_error() if self._stop_reason else None
        total = stats.total if stats.total is not None else next_index
        if not self.keep_results:  # only counts: every index not yielded ends as a failure
            unfinished = max(0, total - stats.completed)
            stats.failed += unfinished
            stats.completed += unfinished
        elif total:
            self._grow(total - 1)
        if error is not None and self.keep_results:
            for index in range(total):
                if result.responses[index] is None and index not in result.errors:
                    result.errors[index] = error
                    stats.failed += 1
                    stats.completed += 1
        result.stop_reason = self._stop_reason
        result.total_duration_seconds = time.monotonic() - stats.started
        self._done = True
