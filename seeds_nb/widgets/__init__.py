"""Notebook widgets for batches: a live progress panel, a streaming results grid, and ``run_batch``;
a Batch API job monitor (``watch_job``); answers of several models side by side (``compare_batch``).

    result = await run_batch(client, prompts, max_concurrent=8)      # in a cell
    handle = run_batch(client, prompts, background=True)             # returns at once
    result = await watch_job(await client.submit_batch(prompts))     # a server-side Batch API job
    results = await compare_batch(prompts, clients={"a": a, "b": b}) # one BatchResult per client

Needs the notebook extra (ipywidgets, and anywidget for the grid); ``seeds_nb.core`` never imports this package.
"""

from __future__ import annotations

try:
    import anywidget  # noqa: F401
    import ipywidgets  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        f'seeds_nb.widgets needs ipywidgets and anywidget ({exc.name or "one"} is missing); install the notebook '
        'extra: pip install "seeds_nb[notebook]"'
    ) from exc

from ._compare import CompareGrid, compare_batch
from ._grid import FILTERS, ResultsGrid
from ._job import JOB_FINAL_STATES, BatchJobMonitor
from ._progress import FINAL_STATES, BatchProgress
from ._runner import BatchHandle, PendingBatch, run_batch
from ._throttle import Throttle
from ._watch import JobHandle, PendingJob, watch_job

__all__ = ["FILTERS", "FINAL_STATES", "JOB_FINAL_STATES", "BatchHandle", "BatchJobMonitor", "BatchProgress",
           "CompareGrid", "JobHandle", "PendingBatch", "PendingJob", "ResultsGrid", "Throttle", "compare_batch",
           "run_batch", "watch_job"]
