"""``map`` and ``run``: the driver's side of a Ray map (the actors, the dataset, the sink, the panel)."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.data

from seeds_nb.core.exceptions import ConfigurationError, SeedsError
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.mapping import check_clash, parsed_fields
from seeds_nb.core.result import BatchResult
from seeds_nb.core.tables import Table
from seeds_nb.core.template import Template
from seeds_nb.core.tracking import DEFAULT_ZONE

from ._actors import GateActor, ProgressActor
from ._sink import compact, parquet_files, read_done, sink_dir
from ._spec import ClientSpec
from ._worker import MapPlan, MapWorker

__all__ = ["POLL_S", "RayMap", "RayResult", "map", "run"]

POLL_S = 0.25
"""How often the driver reads the progress actor while a run goes (the panel's own throttle still applies)."""


def _number(name: str, value: Any, *, integer: bool = False, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    bad = isinstance(value, bool) or not isinstance(value, int if integer else int | float)
    if bad or not math.isfinite(value) or value < (1 if integer else 0):
        kind = "an integer >= 1" if integer else "a finite number >= 0"
        raise ConfigurationError(f"{name} must be {kind}{' (or None)' if allow_none else ''}; got {value!r}")


@dataclass
class RayResult:
    """What ``run`` returns: the output ``dataset`` (materialized, or the sink's files read back) and the
    run's totals in ``summary`` (a ``BatchResult`` without rows: counts, tokens, cost, carbon, avoided,
    ``stop_reason``, duration)."""

    dataset: ray.data.Dataset
    summary: BatchResult
    sink: Path | None = None

    @property
    def ledger(self) -> Ledger:
        return self.summary.ledger

    @property
    def stop_reason(self) -> str | None:
        return self.summary.stop_reason

    def __repr__(self) -> str:
        ledger = self.ledger
        stop = f", stopped: {self.stop_reason}" if self.stop_reason else ""
        return (f"RayResult({ledger.completed:,} rows: {ledger.succeeded:,} ok ({ledger.cached:,} cached), "
                f"{ledger.failed:,} failed, ${ledger.cost_usd:.4f}, {ledger.gwp_kgco2eq * 1000:.4g} gCO2eq{stop})")


class RayMap:
    """One Ray map, set up but not run: its actors, its lazy output ``dataset``; ``execute()`` runs it."""

    def __init__(self, ds: ray.data.Dataset, prompt: str | Callable[[dict[str, Any]], Any], *, client: Any,
                 response_format: Any = None, system: str | None = None, concurrency: int = 2,
                 max_concurrent: int = 16, sink: str | os.PathLike[str] | None = None, key: str | None = None,
                 prefix: str = "", batch_size: int | None = None, max_cost_usd: float | None = None,
                 max_gwp_kgco2eq: float | None = None, total: int | None = None, num_cpus: float = 0.25,
                 ray_remote_args: dict[str, Any] | None = None, **params: Any) -> None:
        if not isinstance(ds, ray.data.Dataset):
            raise ConfigurationError(f"seeds_nb.ray.map takes a ray.data.Dataset (ray.data.read_parquet(...), "
                                     f"ray.data.from_pandas(df), ...); got {type(ds).__name__}: for a local table "
                                     "use client.map")
        self.spec = ClientSpec.of(client)
        _number("concurrency", concurrency, integer=True)
        _number("max_concurrent", max_concurrent, integer=True)
        _number("batch_size", batch_size, integer=True, allow_none=True)
        _number("max_cost_usd", max_cost_usd, allow_none=True)
        _number("max_gwp_kgco2eq", max_gwp_kgco2eq, allow_none=True)
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a string such as 'llm_'; got {prefix!r}")
        if not isinstance(prompt, str) and not callable(prompt):
            raise ConfigurationError(f"the prompt is a template string ('Summarise {{abstract}}') or a function of "
                                     f"the row; got {type(prompt).__name__}")
        self.spec.check()
        schema = ds.schema(fetch_if_missing=False)
        columns = list(schema.names) if schema is not None else None
        if columns is not None:  # known without running anything: check what client.map checks, up front
            for text, where in ((prompt, "prompt template"), (system, "system template")):
                missing = Template(text, where).missing(columns) if isinstance(text, str) else []
                if missing:
                    raise ConfigurationError(f"the {where} uses {', '.join('{' + m + '}' for m in missing)}, which "
                                             f"the dataset does not have; its columns are: {', '.join(columns)}")
            if key is not None and key not in columns:
                raise ConfigurationError(f"key={key!r} is not a column of the dataset; its columns are: "
                                         f"{', '.join(columns)}")
            shell = Table([], "records")
            shell.columns = columns
            check_clash(shell, parsed_fields(response_format), prefix)
        self.status_column = prefix + "status"
        self.sink = sink_dir(sink) if sink is not None else None
        self.earlier: list[Path] = parquet_files(self.sink) if self.sink is not None else []
        self.done = read_done(self.earlier, self.status_column) if self.sink is not None else {}
        self.gate: Any = ray.remote(num_cpus=0)(GateActor).remote(
            self.spec.requests_per_minute, self.spec.tokens_per_minute, max_cost_usd, max_gwp_kgco2eq)
        self.progress: Any = ray.remote(num_cpus=0)(ProgressActor).remote(total)
        self.total = total
        plan = MapPlan(prompt=prompt, system=system, response_format=response_format, prefix=prefix,
                       max_concurrent=max_concurrent, sink=self.sink is not None, key=key,
                       done=ray.put(self.done) if self.done else None,
                       params={**params, "max_cost_usd": max_cost_usd, "max_gwp_kgco2eq": max_gwp_kgco2eq})
        self.response_format = response_format
        remote_args = dict(ray_remote_args or {})
        # Ray keeps the order of blocks only when asked; the rows of a block keep theirs in any case.
        ds.context.execution_options.preserve_order = True
        self.dataset: ray.data.Dataset = ds.map_batches(
            MapWorker, fn_constructor_kwargs={"spec": self.spec, "plan": plan, "gate": self.gate,
                                              "progress": self.progress},
            batch_size=batch_size or 8 * max_concurrent, batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=num_cpus, zero_copy_batch=True, **remote_args)
        self.dataset.context.execution_options.preserve_order = True
        self.started = 0.0
        self.elapsed_s = 0.0
        #: the driver's panel, while ``run`` shows one
        self.panel: Any = None

    def cancel(self) -> None:
        """Stop the run (thread-safe): no new request starts anywhere; rows not sent end as cancelled."""
        self.gate.cancel.remote()

    def execute(self) -> ray.data.Dataset:
        """Run it (blocking): the materialized output, or with a sink the files written, read back."""
        self.started = time.monotonic()
        try:
            if self.sink is None:
                return self.dataset.materialize()
            self.dataset.write_parquet(str(self.sink))
            compact(self.earlier, self.done, self.status_column)
            return ray.data.read_parquet(str(self.sink))
        except Exception as exc:
            cause = _seeds_error(exc)
            if cause is not None:  # our own error, raised in a worker: the message that says the fix
                raise cause from None
            raise
        finally:
            self.elapsed_s = time.monotonic() - self.started

    def snapshot(self) -> Ledger:
        """The run's live figures (from the progress actor)."""
        ledger: Ledger = ray.get(self.progress.snapshot.remote())
        ledger.started = self.started
        return ledger

    def summary(self) -> BatchResult:
        """The run's totals once it has ended."""
        ledger: Ledger = ray.get(self.progress.final.remote())
        ledger.total = self.total if self.total is not None else ledger.completed
        state = ray.get(self.gate.state.remote())
        stop = state["stop"]
        result = BatchResult(model=self.spec.model, provider=self.spec.cls.provider,
                             electricity_mix_zone=self.spec.kwargs.get("electricity_mix_zone", DEFAULT_ZONE),
                             ledger=ledger, response_format=self.response_format)
        result.stop_reason = stop[0] if stop is not None else None
        result.total_duration_seconds = self.elapsed_s
        return result


def _seeds_error(exc: BaseException) -> SeedsError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SeedsError):
            return current
        current = current.__cause__ or current.__context__
    return None


def map(ds: ray.data.Dataset, prompt: str | Callable[[dict[str, Any]], Any], *, client: Any,
        response_format: Any = None, system: str | None = None, concurrency: int = 2, max_concurrent: int = 16,
        sink: str | os.PathLike[str] | None = None, max_cost_usd: float | None = None,
        max_gwp_kgco2eq: float | None = None, **params: Any) -> ray.data.Dataset:
    """The distributed twin of ``client.map``: ``ds`` with the result columns added, rows in input order.

    ``client`` is a ``ClientSpec(OpenAIClient, model=..., requests_per_minute=..., cache_dir=...)`` (or a pair
    ``(OpenAIClient, {...})``): each of the ``concurrency`` actors builds one client from it and keeps
    ``max_concurrent`` requests in flight. Its rate limits and the budgets hold for the whole run. Without a
    sink the returned dataset is lazy (it runs when consumed); with ``sink=`` (a directory) the run happens now,
    rows already in the sink are skipped, and the sink's files are returned as a dataset. More keywords:
    ``key`` (the column that identifies a row in a sink), ``prefix``, ``batch_size``, ``num_cpus`` (per actor,
    0.25: requests wait on the network), ``total`` (rows, for the panel), ``ray_remote_args``, and generation
    parameters. ``await run(...)`` does the same with the live panel and the totals.
    """
    job = RayMap(ds, prompt, client=client, response_format=response_format, system=system, concurrency=concurrency,
                 max_concurrent=max_concurrent, sink=sink, max_cost_usd=max_cost_usd,
                 max_gwp_kgco2eq=max_gwp_kgco2eq, **params)
    return job.execute() if job.sink is not None else job.dataset


async def run(ds: ray.data.Dataset, prompt: str | Callable[[dict[str, Any]], Any], *, client: Any,
              progress: bool = True, title: str | None = None, on_start: Callable[[RayMap], Any] | None = None,
              **kwargs: Any) -> RayResult:
    """Run a Ray map from a notebook (``await``): the live panel on the driver, fed by the progress actor
    (counts, rate, ETA, tokens, cost, carbon, avoided; Cancel stops the whole run), and a ``RayResult`` with
    the output dataset and the run's totals. Takes what ``map`` takes; ``progress=False`` shows no panel.
    ``on_start(job)`` is called with the ``RayMap`` once its actors exist (a hook for tests and tools)."""
    job = RayMap(ds, prompt, client=client, **kwargs)
    panel = None
    if progress:
        try:
            from seeds_nb.widgets import BatchProgress
        except ImportError as exc:
            raise ConfigurationError(f"{exc}; or pass progress=False") from None
        panel = BatchProgress(job.total, title=title or job.spec.model)
        panel.on_cancel(job.cancel)
        job.panel = panel
        _display(panel)
    if on_start is not None:
        on_start(job)
    work = asyncio.ensure_future(asyncio.to_thread(job.execute))
    error: BaseException | None = None
    try:
        while not work.done():
            await asyncio.wait([work], timeout=POLL_S)
            if panel is not None:
                panel.update(await asyncio.to_thread(job.snapshot))
        dataset = work.result()
    except asyncio.CancelledError:
        job.cancel()  # an interrupt stops the whole run; the rows end as cancelled
        await asyncio.wait([work])
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        if panel is not None:
            panel.finish(await asyncio.to_thread(job.summary), error=error)
    return RayResult(dataset, await asyncio.to_thread(job.summary), job.sink)


def _display(panel: Any) -> None:
    """Show the panel in a notebook; in a plain script there is nothing to show it in."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(panel)
