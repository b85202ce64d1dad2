"""``--submit``: the cell's prompts as one server-side Batch API job, watched by a ``BatchJobMonitor``.

The three ways a cell runs (await, blocking ``run_cell_magic``, ``--background``) are the batch
path's, with one difference that comes from where the work happens: the job runs at the provider,
so a kernel interrupt (or Ctrl-C) only stops the *watching*. The job goes on, is billed, and stays
bound to ``<out>_job`` to watch again (``await watch_job(<out>_job)``) or to cancel. Stopping it is
the monitor's Cancel button, which ends the cell normally with the partial result in ``<out>``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

from seeds_nb.core.runner import run_sync

from ._spec import BatchInterrupted, CellJob, FlowBase

if TYPE_CHECKING:
    from seeds_nb.core.batch_api import Job

__all__ = ["SubmitMixin"]


def _watch_job() -> Any:
    from seeds_nb.widgets import watch_job

    return watch_job


def _detached(job: CellJob, batch_job: Job) -> str:
    return (f"stopped watching; job {batch_job.id} goes on at the provider ({batch_job.status}) and is in "
            f"{job.out}_job: `await watch_job({job.out}_job)` watches it again, `await {job.out}_job.cancel()` "
            "stops it (from seeds_nb.widgets import watch_job)")


class SubmitMixin(FlowBase):
    """The ``--submit`` flows of ``SeedsBatch``."""

    def _submitted(self, job: CellJob, batch_job: Job) -> bool:
        """Bind ``<out>_job``; in background mode start watching; True when the cell is done."""
        self._bind(f"{job.out}_job", batch_job)
        if not job.background:
            return False
        self.start_background(job, _watch_job()(batch_job, poll_interval=job.poll_interval, background=True))
        return True

    async def submit_async(self, job: CellJob) -> None:
        """The await path: submit, then watch on the kernel's loop (Cancel handled while it waits)."""
        batch_job = await job.client.submit_batch(job.requests, **job.params)
        if self._submitted(job, batch_job):
            return
        try:
            result = await _watch_job()(batch_job, poll_interval=job.poll_interval)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or not task.cancelling():
                raise
            task.uncancel()  # handled here, the outermost layer: reported as one line, so "Run all" stops
            raise BatchInterrupted(f"kernel interrupt - {_detached(job, batch_job)}") from None
        self._finish(job, result)

    def submit_blocking(self, job: CellJob) -> None:
        """The sync path: submit and watch on private loops (``client.run_sync``); Ctrl-C stops the watching."""
        client = job.client
        batch_job = run_sync(lambda: client.submit_batch(job.requests, **job.params))
        if self._submitted(job, batch_job):
            return
        try:
            result = run_sync(lambda: _watch_job()(batch_job, poll_interval=job.poll_interval))
        except KeyboardInterrupt:
            print(f"seeds_nb: interrupted - {_detached(job, batch_job)}", file=sys.stderr)
            raise
        self._finish(job, result)
