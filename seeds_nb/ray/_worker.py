"""``MapWorker``: the stateful class Ray Data runs in each actor of a ``seeds_nb.ray.map``.

Each actor builds its client once (from the ``ClientSpec``, with the run's ``ClusterGate``) and maps every
batch Ray hands it with the core's own ``client.prepare_map`` (the same template rules, added columns and
per-row errors as ``client.map``), on the core's thread runner. Rows a sink already holds are dropped
before anything is sent. Progress goes to the progress actor every ``REPORT_S`` while a batch runs, and
the batch's complete ledger when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import ray

from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.ledger import Ledger
from seeds_nb.core.mapping import RESULT_COLUMNS, PromptRows
from seeds_nb.core.runner import run_sync
from seeds_nb.core.sink import PROMPT, prompt_hash
from seeds_nb.core.tables import as_table
from seeds_nb.core.types import Response, Unsendable

from ._gate import ClusterGate
from ._spec import ClientSpec

__all__ = ["KEY", "REPORT_S", "MapPlan", "MapWorker", "RESULT_TYPES", "row_key"]

KEY = "_key"
REPORT_S = 0.25
RESULT_TYPES: dict[str, pa.DataType] = {
    "response": pa.string(), "status": pa.string(), "error": pa.string(), "cached": pa.bool_(),
    "prompt_tokens": pa.int64(), "completion_tokens": pa.int64(), "cost_usd": pa.float64(),
    "gwp_kgco2eq": pa.float64(), "energy_kwh": pa.float64(), "latency_s": pa.float64(),
    "tracking_method": pa.string()}
"""The added columns' types, fixed: a batch where every row failed must not write a column of nulls that
another batch writes as text (Parquet files of one sink must share a schema)."""
assert set(RESULT_TYPES) == set(RESULT_COLUMNS)


def row_key(row: dict[str, Any], key: str | None) -> str:
    """What identifies a row in a sink (and a batch, to the progress actor): its ``key`` column, else a
    fingerprint of all its input values."""
    if key is not None:
        return str(row[key])
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


@dataclass(frozen=True)
class MapPlan:
    """Everything a worker needs besides the client (sent to each actor once)."""

    prompt: str | Callable[[dict[str, Any]], Any]
    system: str | None
    response_format: Any
    prefix: str
    max_concurrent: int
    params: dict[str, Any] = field(default_factory=dict)
    sink: bool = False
    key: str | None = None
    done: Any = None
    """An object ref of ``{row key: prompt hash}`` for rows a sink already holds (None: nothing to skip)."""


class MapWorker:
    """Built once per actor by Ray Data; ``__call__`` maps one batch (a pyarrow Table)."""

    def __init__(self, spec: ClientSpec, plan: MapPlan, gate: Any, progress: Any) -> None:
        self.plan = plan
        self.gate = ClusterGate(gate, requests_per_minute=spec.requests_per_minute,
                                tokens_per_minute=spec.tokens_per_minute, batch=plan.max_concurrent)
        self.client = spec.build(self.gate)
        budgets = self.plan.params
        tracker, model = self.client.tracker, self.client.model
        if budgets.get("max_cost_usd") is not None and not tracker.price_known(model):
            raise ConfigurationError(f"max_cost_usd is set but model {model!r} has no known price, so the budget "
                                     "cannot be enforced; pass price_model= in the ClientSpec, or drop max_cost_usd")
        if budgets.get("max_gwp_kgco2eq") is not None and not tracker.impacts_known(model):
            raise ConfigurationError(f"max_gwp_kgco2eq is set but EcoLogits cannot estimate model {model!r}; pass "
                                     "impacts_model= in the ClientSpec, or drop max_gwp_kgco2eq")
        self.progress = progress
        context = ray.get_runtime_context()
        self.worker = context.get_actor_id() or "driver"
        ray.get(progress.register.remote(self.worker, context.current_actor))
        self.done: dict[str, str] = ray.get(plan.done) if plan.done is not None else {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        return run_sync(lambda: self.map_batch(batch))

    async def map_batch(self, batch: pa.Table) -> pa.Table:
        plan = self.plan
        keys: list[str] = []
        hashes: list[str | None] = []
        rows = PromptRows(as_table(batch), plan.prompt, plan.system)
        every = hashlib.sha256()
        keep: list[bool] = []
        for _, row, prompt in rows.pairs(keep=False):
            key = row_key(row, plan.key)
            every.update(key.encode() + b"\n")
            if not plan.sink:
                continue
            # which rows the sink already holds: those are not sent, nor written again
            fingerprint = None if isinstance(prompt, Unsendable) else prompt_hash(prompt)
            todo = fingerprint is None or self.done.get(key) != fingerprint
            keep.append(todo)
            if todo:
                keys.append(key)
                hashes.append(fingerprint)
        if plan.sink and not all(keep):
            batch = batch.filter(pa.array(keep, pa.bool_()))
        params = {name: value for name, value in plan.params.items()
                  if name not in ("max_cost_usd", "max_gwp_kgco2eq")}  # budgets are the run's (the gate's)
        job = self.client.prepare_map(batch, plan.prompt, response_format=plan.response_format, system=plan.system,
                                      max_concurrent=plan.max_concurrent, prefix=plan.prefix, **params)
        run = job.run
        delta = [Ledger()]
        gate = self.gate

        def ended(index: int, item: Response | Exception) -> None:
            delta[0].add(item)
            gate.spent(item)

        run.on_result = ended

        async def report() -> None:
            while True:
                await asyncio.sleep(REPORT_S)
                if delta[0].completed:
                    sent, delta[0] = delta[0], Ledger()
                    self.progress.report.remote(self.worker, sent, run.ledger.in_flight, run.ledger.retrying)

        reporter = asyncio.get_running_loop().create_task(report())
        try:
            out: pa.Table = await job.execute()
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        await gate.flush()
        await self.progress.batch_done.remote(self.worker, every.hexdigest(), run.ledger.snapshot())
        for name, kind in RESULT_TYPES.items():
            column = plan.prefix + name
            out = out.set_column(out.schema.get_field_index(column), column, out.column(column).cast(kind))
        if plan.sink:
            out = out.append_column(KEY, pa.array(keys, pa.string())).append_column(
                PROMPT, pa.array(hashes, pa.string()))
        return out
