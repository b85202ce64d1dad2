"""The default flows: the cell's prompts sent from this kernel by ``run_batch``, awaited or blocking.

* await: ``run_batch`` runs on the kernel's loop; the Cancel button ends the cell normally with the
  partial result, a kernel interrupt binds it and ends the cell with a one-line ``BatchInterrupted``;
* blocking (``run_cell_magic``, ``%autoawait off``): on a private loop in a worker thread
  (``client.run_sync``); Ctrl-C cancels the batch, binds the partial result, re-raises.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

from seeds_nb.core.client import BaseClient
from seeds_nb.core.result import BatchResult

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


async def _drive(job: CellJob) -> tuple[BatchResult | None, bool]:
    """Await ``run_batch``; return its result and whether *this* task was cancelled meanwhile.

    ``run_batch`` turns a cancel (kernel interrupt, Ctrl-C) into a normal return of the partial
    result and uncancels its task. Run as a task of its own, it cannot hide the cancel from us: the
    caller's task keeps counting it, so an interrupt still stops the cell while the Cancel button
    (which stops only the batch) does not.
    """
    caller = asyncio.current_task()
    batch = asyncio.ensure_future(run_batch_fn()(job.client, job.requests, max_concurrent=job.max_concurrent,
                                                 grid=job.grid, **job.params))
    result: BatchResult | None
    try:
        result = await batch
    except asyncio.CancelledError as exc:  # cancelled before run_batch could catch it
        result = _partial_result(exc, job.client)
    return result, caller is not None and caller.cancelling() > 0


def _progress_line(result: BatchResult | None) -> str:
    if result is None:
        return "nothing finished"
    return f"{result.successful_count} of {len(result)} prompts answered"


class SendMixin(FlowBase):
    """The batch flows of ``SeedsBatch``."""

    async def send_async(self, job: CellJob) -> None:
        """The await path."""
        result, interrupted = await _drive(job)
        if interrupted:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # handled: reported just below
            if result is not None:
                self._bind(job.out, result)
            raise BatchInterrupted(f"kernel interrupt - {_progress_line(result)}; the partial result is in "
                                   f"{job.out} (with the cache on, re-running the cell sends only the rest)")
        assert result is not None
        self._finish(job, result)

    def send_blocking(self, job: CellJob) -> None:
        """The sync path: the batch on a private loop (a worker thread inside a running loop);
        Ctrl-C cancels it, binds the partial result and re-raises ``KeyboardInterrupt``."""
        box: dict[str, BatchResult | None] = {}
        finished = threading.Event()

        async def go() -> None:
            try:
                box["result"], interrupted = await _drive(job)
                if interrupted:  # let run_sync / asyncio.run turn it back into KeyboardInterrupt
                    raise asyncio.CancelledError
            finally:
                finished.set()

        try:
            job.client.run_sync(go)
        except KeyboardInterrupt:
            # On Python 3.11 a Thread.join() interrupted by Ctrl-C marks the thread stopped, so
            # run_sync may return before the cancelled batch has unwound: wait for it here.
            finished.wait(10)
            result = box.get("result") or _partial_result(None, job.client)
            if result is not None:
                self._bind(job.out, result)
            print(f"seeds_nb: interrupted - {_progress_line(result)}; the partial result is in {job.out}",
                  file=sys.stderr)
            raise
        result = box.get("result")
        assert result is not None
        self._finish(job, result)
