"""The default flows: the cell's prompts sent from this kernel by ``run_batch``, awaited or blocking.

* await: ``run_batch`` runs on the kernel's loop; the Cancel button ends the cell normally with the
  partial result, a kernel interrupt binds it and ends the cell with a one-line ``BatchInterrupted``;
* blocking (``run_cell_magic``, ``%autoawait off``): on a private loop in a worker thread (the core's
  thread runner); Ctrl-C cancels the batch, binds the partial result, re-raises.

The magic is the outermost entry point, so it is the one place that decides how an interrupt is
reported: the layers below re-raise the cancellation with the partial result attached.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from seeds_nb.core.client import BaseClient
from seeds_nb.core.result import BatchResult
from seeds_nb.core.runner import run_sync

from ._spec import BatchInterrupted, CellJob, FlowBase

__all__ = ["SendMixin", "run_batch_fn"]


def run_batch_fn() -> Any:
    """``seeds_nb.widgets.run_batch``, imported when first needed (ipywidgets is heavy)."""
    from seeds_nb.widgets import run_batch

    return run_batch


def _partial_result(exc: BaseException | None, client: BaseClient) -> BatchResult | None:
    """What finished before a cancel: from the CancelledError, else from the client's last run."""
    partial = getattr(exc, "partial_result", None)
    if isinstance(partial, BatchResult):
        return partial
    run = client.last_run
    return run.result if run is not None else None


def _progress_line(result: BatchResult | None) -> str:
    if result is None:
        return "nothing finished"
    return f"{result.successful_count} of {len(result)} prompts answered"


class SendMixin(FlowBase):
    """The batch flows of ``SeedsBatch``."""

    def _pending(self, job: CellJob, *, background: bool = False) -> Any:
        if job.sink is not None:  # client.map into the sink, under the panel: rows keyed by --over's items
            return run_batch_fn()(job.client, job.table, job.row_prompt, sink=job.sink, grid=False,
                                  max_concurrent=job.max_concurrent, background=background, **job.params)
        return run_batch_fn()(job.client, job.requests, max_concurrent=job.max_concurrent, grid=job.grid,
                              background=background, **job.params)

    async def send_async(self, job: CellJob) -> None:
        """The await path."""
        try:
            result = await self._pending(job)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                raise
            task.uncancel()  # handled here, the outermost layer: reported as one line, so "Run all" stops
            partial = _partial_result(exc, job.client)
            if partial is not None:
                self._bind(job.out, partial)
            raise BatchInterrupted(f"kernel interrupt - {_progress_line(partial)}; the partial result is in "
                                   f"{job.out} (with the cache on, re-running the cell sends only the rest)") from None
        self._finish(job, result)

    def send_blocking(self, job: CellJob) -> None:
        """The sync path: the batch on a private loop (a worker thread inside a running loop);
        Ctrl-C cancels it, binds the partial result and re-raises ``KeyboardInterrupt``."""
        pending = self._pending(job)  # bad arguments fail here, in the caller
        try:
            result = run_sync(lambda: pending)
        except KeyboardInterrupt:  # the runner waited for the cancelled batch to unwind
            partial = _partial_result(None, job.client)
            if partial is not None:
                self._bind(job.out, partial)
            print(f"seeds_nb: interrupted - {_progress_line(partial)}; the partial result is in {job.out}",
                  file=sys.stderr)
            raise
        self._finish(job, result)
