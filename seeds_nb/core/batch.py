"""The batch engine: a ``BatchRun`` pulls prompts lazily, keeps ``max_concurrent`` requests in flight,
and accounts for every prompt index exactly once (a response, or an error).

Why a hand-rolled loop over plain tasks instead of ``asyncio.wait``/a task group: ``asyncio.wait``
re-registers callbacks on every pending task per completion (O(concurrency) each time), and a
task group would surface an ``ExceptionGroup``; here each task appends its outcome to a deque and
sets one event, so the per-request cost is constant and errors stay per item.

What happens to a prompt (all through the client's ``Pipeline``): it is prepared (a prompt that
cannot be sent ends as its ``PromptError``); a cache hit is answered inline, without a task; an
identical prompt already in flight waits for that one's answer (sent once); otherwise a task sends
it. A fresh answer frees its concurrency slot at once, and is *reported* (yielded, counted,
``on_progress``) once its cache write has committed: so nothing reported can be lost by a crash,
and the commit's latency does not hold back the next request. A write that fails still reports the
answer (it was paid for), counted in ``ledger.cache_write_failures``.

A run stops early when ``cancel()`` is called (in-flight requests are cancelled; they and the rest
end as ``Cancelled``), when a budget is spent or cannot be enforced (no new request starts; those in
flight finish; the rest end as ``BudgetExceeded``), after an ``AuthenticationError`` (the rest end
as that error without being sent), or when its task is cancelled (the ``CancelledError`` carries
``.partial_result``). A stream consumed to its end yields every index; one left early accounts for
the rest in ``run.result`` / ``run.ledger`` without yielding them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import time
import warnings
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any

from .exceptions import AuthenticationError, BudgetExceeded, Cancelled, ConfigurationError, SeedsError
from .ledger import Ledger
from .log import logger
from .pipeline import Pipeline, Prepared
from .result import BatchResult
from .tooling import requested_columns
from .types import Response, check_prompts, prompt_text

__all__ = ["BatchRun", "BatchStream", "CallbackWarning", "ProgressCallback", "ResultCallback", "RetryCallback"]

Item = Response | Exception
ProgressCallback = Callable[[int, int | None, Response | None], Any]
RetryCallback = Callable[[int, Exception, float], Any]
"""``on_retry(index, error, wait_s)``: prompt ``index`` failed with a retryable ``error`` and is
retried after ``wait_s`` seconds (progress widgets show it as 'retrying')."""
ResultCallback = Callable[[int, Item], Any]
"""``on_result(index, response_or_error)``: prompt ``index`` ended, just before ``on_progress`` (a
consumer that fills a table by prompt needs the index, which ``on_progress`` does not give)."""
_NAN = math.nan
COMMIT_WAIT_S = 60.0
"""At the end of a stopped run, how long answers wait for their cache writes (then they are reported
anyway, counted as not stored): a batch never waits forever on the cache."""


class CallbackWarning(UserWarning):
    """An ``on_progress`` / ``on_result`` / ``on_retry`` callback raised; the batch went on without it."""


def _check_budget(name: str, value: float | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                              or not math.isfinite(value) or value < 0):
        raise ConfigurationError(f"{name} must be a finite number >= 0 (or None for no budget); got {value!r}")


class BatchRun:
    """One batch in progress. Create it with ``client.batch(...)``."""

    def __init__(self, pipeline: Pipeline, prompts: Iterable[Any], *, max_concurrent: int,
                 on_progress: ProgressCallback | None, max_cost_usd: float | None,
                 max_gwp_kgco2eq: float | None, params: Mapping[str, Any], keep_results: bool = True,
                 use_cache: bool = True) -> None:
        check_prompts(prompts)
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ConfigurationError(f"max_concurrent must be an integer >= 1; got {max_concurrent!r}")
        _check_budget("max_cost_usd", max_cost_usd)
        _check_budget("max_gwp_kgco2eq", max_gwp_kgco2eq)
        self.pipeline = pipeline
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
        #: False: nothing is looked up or stored (``use_cache=False``); identical prompts are each sent
        self.use_cache = use_cache and pipeline.cache is not None
        total = len(prompts) if hasattr(prompts, "__len__") else None  # type: ignore[arg-type]
        self.ledger = Ledger(total=total)
        self.result = BatchResult(model=pipeline.model, provider=pipeline.provider,
                                  electricity_mix_zone=pipeline.tracker.electricity_mix_zone, ledger=self.ledger,
                                  response_format=params.get("response_format"),
                                  extra_columns=requested_columns(self.params))
        self._budgeted = max_cost_usd is not None or max_gwp_kgco2eq is not None
        self._pending_cost_usd = 0.0  # fresh answers arrived, not yet in the ledger (waiting for their commit)
        self._pending_gwp_kgco2eq = 0.0
        self._stop_reason: str | None = None
        self._stop_cause: BudgetExceeded | AuthenticationError | None = None
        self._cancelled = False
        self._wake: asyncio.Event | None = None
        self._started = False
        self._done = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._callback_warned = False
        self._finished: deque[tuple[int, Item]] = deque()
        self._ready: deque[tuple[int, Prepared, Response | None]] = deque()  # pulled and looked up, not started
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._committing: dict[int, tuple[Response, str]] = {}
        self._commits: deque[tuple[int, BaseException | None]] = deque()  # written, not yet handed back
        self._commit_wakeup = False
        self._dups: dict[int, asyncio.Future[Response]] = {}
        self._keys: dict[str, asyncio.Future[Response]] = {}

    # -- control -------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._done

    @property
    def stop_reason(self) -> str | None:
        """'cancelled', 'max_cost_usd', 'max_gwp_kgco2eq', 'authentication', or None."""
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
            try:
                loop.call_soon_threadsafe(self._request_stop, "cancelled")
            except RuntimeError:  # the loop closed meanwhile: the run is over
                pass

    def _request_stop(self, reason: str, cause: BudgetExceeded | AuthenticationError | None = None) -> None:
        if reason == "cancelled":
            self._cancelled = True
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_cause = cause
            if reason != "cancelled":
                logger.warning("batch stopped (%s): %s", reason, cause)
        if self._wake is not None:
            self._wake.set()

    # -- consuming -----------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, BatchResult]:
        return self._collect().__await__()

    def __aiter__(self) -> BatchStream:
        return self.stream()

    def stream(self) -> BatchStream:
        """Yield ``(index, Response | Exception)`` in completion order; the result fills as it goes.
        Use it as ``async with run.stream() as it: async for ...`` to stop what runs when you leave."""
        return BatchStream(self)

    async def _collect(self) -> BatchResult:
        stream = self.stream()
        try:
            async for _ in stream:
                pass
        except asyncio.CancelledError as exc:
            await stream.aclose()  # every index is accounted for before re-raising
            exc.partial_result = self.result  # type: ignore[attr-defined]
            raise
        return self.result

    async def _generate(self) -> AsyncGenerator[tuple[int, Item], None]:
        if self._started:
            raise RuntimeError("a BatchRun can be consumed once; call client.batch(...) again")
        self._started = True
        loop = self._loop = asyncio.get_running_loop()
        wake = self._wake = asyncio.Event()
        pipeline, params, ledger, result = self.pipeline, self.params, self.ledger, self.result
        await pipeline.warm_up()
        self._check_enforceable()
        ledger.started = time.monotonic()
        result.started_at = time.time()
        prompts = iter(self._prompts)
        finished, tasks, committing, dups, keys = self._finished, self._tasks, self._committing, self._dups, self._keys
        ready = self._ready
        keep, limit = self.keep_results, self.max_concurrent
        commit_limit = 4 * limit + 64  # answers waiting for their write: bounded too
        # With a cache, prompts are pulled and looked up a window at a time (one query for the window);
        # without one, one at a time (nothing to look up, and the input is read no further than needed).
        caching = self.use_cache
        window = limit if caching else 1
        exhausted = False
        next_index = 0
        clean = False
        lifetime = pipeline.lifetime
        lifetime.begin(ledger)  # the client's lifetime account reads this run live, and adds it at the end
        try:
            while True:
                while self._stop_reason is None and len(tasks) < limit and len(committing) < commit_limit \
                        and len(finished) <= limit:  # hits take no slot: hand them out before pulling more
                    if not ready:
                        if exhausted:
                            break
                        pulled: list[tuple[int, Prepared]] = []
                        while len(pulled) < window:
                            try:
                                prompt = next(prompts)
                            except StopIteration:
                                exhausted = True
                                break
                            index = next_index
                            next_index += 1
                            if keep:
                                self._grow(index)
                            try:
                                prepared = pipeline.prepare(prompt, params, cache=caching)
                            except SeedsError as exc:
                                finished.append((index, exc))
                                continue
                            if keep:
                                result.prompts[index] = prompt_text(prepared.messages)
                            pulled.append((index, prepared))
                        if pulled and caching:
                            hits = pipeline.lookup_many([p for _, p in pulled], params)
                        else:
                            hits = [None] * len(pulled)
                        ready.extend((i, p, h) for (i, p), h in zip(pulled, hits, strict=True))
                        continue
                    index, prepared, hit = ready.popleft()
                    key = prepared.key
                    if key is not None:
                        if hit is not None:
                            if keep:
                                result.started_s[index] = result.finished_s[index] = time.monotonic() - ledger.started
                            finished.append((index, hit))
                            continue
                        shared = keys.get(key)
                        if shared is not None:  # an identical prompt is in flight: send it once
                            dups[index] = shared
                            shared.add_done_callback(functools.partial(self._dup_done, index))
                            continue
                        keys[key] = loop.create_future()
                    tasks[index] = loop.create_task(self._one(index, prepared))
                if not finished:
                    if self._cancelled or not (tasks or committing or dups):
                        break
                    if committing and (not tasks or len(committing) >= commit_limit):
                        pipeline.hurry_writes()  # only commits are awaited: no need to gather a larger group
                    wake.clear()
                    await wake.wait()  # then hand out what finished before starting more (backpressure)
                while finished:
                    index, item = finished.popleft()
                    self._record(index, item)
                    yield index, item
                    await self._notify(index, item)
            # The run ended, or stopped: settle what still runs, then hand out every index left.
            await self._settle()
            while finished:
                index, item = finished.popleft()
                self._record(index, item)
                yield index, item
                await self._notify(index, item)
            total = self._total(next_index, exhausted)
            if total > next_index:
                error = self._stop_error()
                for index in range(next_index, total):
                    if keep:
                        self._grow(index)
                    self._record(index, error)
                    yield index, error
                    await self._notify(index, error)
            clean = True
        finally:
            if not clean:  # left early, cancelled, or a callback raised: account quietly for the rest
                await self._abandon(self._total(next_index, exhausted), next_index)
            result.stop_reason = self._stop_reason
            result.total_duration_seconds = time.monotonic() - ledger.started if ledger.started else 0.0
            self._done = True
            lifetime.end(ledger)

    def _total(self, next_index: int, exhausted: bool) -> int:
        """How many indices the run has: the input's length, else what was pulled (a generator is not
        drained after a stop: its unpulled prompts never got an index)."""
        total = self.ledger.total
        if total is None or exhausted:
            return next_index if total is None else max(total, next_index)
        return total

    # -- one prompt ----------------------------------------------------------------------------
    async def _one(self, index: int, prepared: Prepared) -> None:
        ledger, result, pipeline = self.ledger, self.result, self.pipeline
        started = time.monotonic() - ledger.started
        ledger.in_flight += 1
        key = prepared.key
        item: Item
        try:
            item = await pipeline.send(prepared, self.params, self._retry_hook(index))
        except asyncio.CancelledError:
            if key is not None:
                self._release_key(key, Cancelled())
            raise
        except Exception as exc:
            item = exc
        finally:
            ledger.in_flight -= 1
            if self.keep_results:
                result.started_s[index] = started
                result.finished_s[index] = time.monotonic() - ledger.started
            del self._tasks[index]  # here, not in a done-callback: the slot must be free on wake-up
        self._arrived(item)
        assert self._wake is not None
        if key is not None:
            if isinstance(item, Response):
                self._committing[index] = (item, key)
                if pipeline.write(key, item, functools.partial(self._from_writer, index)):
                    self._wake.set()  # the slot is free: the loop may start the next request now
                    return
                del self._committing[index]
            else:
                self._release_key(key, item)
        self._finished.append((index, item))
        self._wake.set()

    def _retry_hook(self, index: int) -> Callable[[int, Exception, float], None]:
        ledger = self.ledger

        def on_retry(delta: int, error: Exception, wait: float) -> None:
            ledger.retrying += delta
            if delta > 0 and self.on_retry is not None:
                try:
                    self.on_retry(index, error, wait)
                except Exception as exc:  # a broken hook must not break the request
                    self._warn_callback("on_retry", exc)

        return on_retry

    def _release_key(self, key: str, outcome: Response | BaseException) -> None:
        """Resolve the in-flight marker of ``key``, so identical prompts waiting on it end too."""
        shared = self._keys.pop(key, None)
        if shared is None or shared.done():
            return
        if isinstance(outcome, Response):
            shared.set_result(outcome)
        else:
            shared.set_exception(outcome)
            shared.exception()  # retrieved: there may be no duplicate waiting

    def _from_writer(self, index: int, error: BaseException | None) -> None:
        """On the cache's writer thread (or inline): hand the commit back to the run's loop, one wake-up
        per group commit rather than per answer (a thread-safe call costs a system call)."""
        self._commits.append((index, error))
        if self._commit_wakeup:
            return
        self._commit_wakeup = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._drain_commits)
        except RuntimeError:  # the loop closed: the run was abandoned
            pass

    def _drain_commits(self) -> None:
        self._commit_wakeup = False
        commits = self._commits
        while commits:
            self._committed(*commits.popleft())

    def _committed(self, index: int, error: BaseException | None, *, timed_out: bool = False) -> None:
        entry = self._committing.pop(index, None)
        if entry is None:  # already reported (the run stopped waiting)
            return
        response, key = entry
        if error is not None or timed_out:
            self.ledger.cache_write_failures += 1
            self.pipeline.write_failed(error or TimeoutError("the write did not finish in time"))
        self._release_key(key, response)
        self._finished.append((index, response))
        if self._wake is not None:
            self._wake.set()

    def _dup_done(self, index: int, shared: asyncio.Future[Response]) -> None:
        if self._dups.pop(index, None) is None:  # the run already accounted for it
            return
        item: Item
        if shared.cancelled():
            item = Cancelled()
        elif shared.exception() is not None:
            error = shared.exception()
            item = error if isinstance(error, Exception) else Cancelled()
        else:
            try:
                item = self.pipeline.duplicate(shared.result(), self.params)
            except SeedsError as exc:
                item = exc
        if self.keep_results:
            now = time.monotonic() - self.ledger.started
            self.result.started_s[index] = self.result.finished_s[index] = now
        self._finished.append((index, item))
        if self._wake is not None:
            self._wake.set()

    # -- accounting ----------------------------------------------------------------------------
    def _grow(self, index: int) -> None:
        result = self.result
        if index >= len(result.responses):
            add = index + 1 - len(result.responses)
            result.responses.extend([None] * add)
            result.prompts.extend([""] * add)
            result.started_s.extend([_NAN] * add)
            result.finished_s.extend([_NAN] * add)

    def _record(self, index: int, item: Item) -> None:
        if self.keep_results:
            self.result.record(index, item)
        else:
            self.ledger.add(item)
        if self._budgeted and isinstance(item, Response) and not item.cached:
            tracking = item.tracking  # now in the ledger: no longer pending
            self._pending_cost_usd -= tracking.cost_usd or 0.0
            self._pending_gwp_kgco2eq -= tracking.gwp_kgco2eq or 0.0

    def _arrived(self, item: Item) -> None:
        """An answer or error just arrived (before its cache write commits and it is reported): stops
        are decided here, so no request starts that the budget or a wrong key should have stopped."""
        if isinstance(item, Response):
            if self._budgeted and not item.cached:
                tracking = item.tracking
                self._pending_cost_usd += tracking.cost_usd or 0.0
                self._pending_gwp_kgco2eq += tracking.gwp_kgco2eq or 0.0
                self._check_budgets(item)
        elif isinstance(item, AuthenticationError) and self._stop_reason is None:
            self._request_stop("authentication", item)  # a wrong key is not sent N times

    def _check_budgets(self, item: Response) -> None:
        """What the run spent (the ledger, plus answers arrived but not yet recorded) against its budgets;
        an answer whose figure is unknown stops the run: the budget cannot be enforced any more."""
        ledger, tracking = self.ledger, item.tracking
        for limit_name, limit, spent, figure, what, words in (
                ("max_cost_usd", self.max_cost_usd, ledger.cost_usd + self._pending_cost_usd, tracking.cost_usd,
                 "cost", ("cost", "usage")),
                ("max_gwp_kgco2eq", self.max_gwp_kgco2eq, ledger.gwp_kgco2eq + self._pending_gwp_kgco2eq,
                 tracking.gwp_kgco2eq, "carbon", ("carbon", "usage"))):
            if limit is None:
                continue
            if figure is None:
                why = "; ".join(w for w in tracking.warnings if any(word in w for word in words)) or "not known"
                self._request_stop(limit_name, BudgetExceeded(limit_name, limit, None,
                                                              f"the {what} of an answer is unknown ({why})"))
                return
            if spent >= limit:
                self._request_stop(limit_name, BudgetExceeded(limit_name, limit, spent))
                return

    def _check_enforceable(self) -> None:
        """Refuse up front a budget on a figure known to be missing (an unpriced model)."""
        tracker, model = self.pipeline.tracker, self.pipeline.model
        if self.max_cost_usd is not None and not tracker.price_known(model):
            raise ConfigurationError(
                f"max_cost_usd is set but model {model!r} has no known price, so the budget cannot be "
                "enforced; pass price_model='<a priced model>' to the client to price it as that model, "
                "or drop max_cost_usd")
        if self.max_gwp_kgco2eq is not None and not tracker.impacts_known(model):
            raise ConfigurationError(
                f"max_gwp_kgco2eq is set but EcoLogits cannot estimate model {model!r}, so the budget cannot "
                "be enforced; pass impacts_model='<a known model>' to the client, or drop max_gwp_kgco2eq")

    def _stop_error(self) -> Exception:
        if self._stop_cause is not None:
            return self._stop_cause
        return Cancelled()

    async def _notify(self, index: int, item: Item) -> None:
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
            out = self.on_progress(self.ledger.completed, self.ledger.total,
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

    # -- ending --------------------------------------------------------------------------------
    async def _stop_running(self) -> None:
        """Cancel what is in flight (a cancel), wait for it, and for answers still being written."""
        tasks, finished = self._tasks, self._finished
        while self._ready:  # pulled but never started: a cache hit is still an answer, the rest are not sent
            index, _, hit = self._ready.popleft()
            finished.append((index, hit if hit is not None else self._stop_error()))
        if tasks:
            pending = dict(tasks)
            for task in pending.values():
                task.cancel()
            await asyncio.gather(*pending.values(), return_exceptions=True)
            error = self._stop_error()
            for index, task in pending.items():
                if task.cancelled():  # cancelled before an answer arrived (maybe before it started)
                    tasks.pop(index, None)
                    finished.append((index, error))
        for key in list(self._keys):  # originals that will never answer
            self._release_key(key, Cancelled())
        for index in list(self._dups):  # waiting on a cancelled original
            del self._dups[index]
            finished.append((index, self._stop_error()))
        deadline = time.monotonic() + COMMIT_WAIT_S
        wake = self._wake
        while self._committing and wake is not None and time.monotonic() < deadline:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        for index in list(self._committing):  # never wait forever on the cache
            self._committed(index, None, timed_out=True)

    async def _settle(self) -> None:
        if self._tasks or self._dups or self._committing or self._ready:
            if self._stop_reason is None:
                self._stop_reason = "cancelled"
            await self._stop_running()

    async def _abandon(self, total: int, next_index: int) -> None:
        """The consumer left (or the task was cancelled): stop, then count every index not handed out."""
        if self._stop_reason is None and (self._tasks or self._dups or self._committing or next_index < total
                                          or self._finished or self._ready):
            self._stop_reason = "cancelled"
        try:
            await self._stop_running()
        except BaseException:  # cancelled again while unwinding: the tasks are cancelled anyway
            for index in list(self._committing):
                self._committed(index, None, timed_out=True)
        while self._finished:
            self._record(*self._finished.popleft())
        if total > next_index:
            error = self._stop_error()
            if self.keep_results:
                self._grow(total - 1)
                for index in range(next_index, total):
                    self.result.record(index, error)
            else:
                self.ledger.add_many(error, total - next_index)


class BatchStream:
    """What ``batch_generate_iter`` returns: an async iterator of ``(index, Response | Exception)``, and an
    async context manager that stops the run when the block is left.

    Why both: Python tells an iterator nothing when a loop ``break``s, so requests still in flight
    would run on until the iterator is garbage-collected. ``async with`` (or
    ``contextlib.aclosing``) closes it at once: in-flight requests are cancelled and every index is
    accounted for in ``run.result``. A consumer that merely stops pulling stops new requests after
    one window (``max_concurrent``): prompts are sent only as results are taken.
    """

    __slots__ = ("_gen", "run")

    def __init__(self, run: BatchRun) -> None:
        self.run = run
        self._gen = run._generate()

    def __aiter__(self) -> BatchStream:
        return self

    def __anext__(self) -> Awaitable[tuple[int, Item]]:
        return self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop the run: cancel what is in flight; finished answers stay in ``run.result``."""
        await self._gen.aclose()

    async def __aenter__(self) -> BatchStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
