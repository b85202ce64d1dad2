"""Notebook widgets for batches: a live progress panel, a streaming results grid, and ``run_batch``.

    result = await run_batch(client, prompts, max_concurrent=8)      # in a cell
    handle = run_batch(client, prompts, background=True)             # returns at once

Needs the notebook extra (ipywidgets); ``seeds_nb.core`` never imports this package.
"""

from __future__ import annotations

try:
    import ipywidgets  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'seeds_nb.widgets needs ipywidgets; install the notebook extra: pip install "seeds_nb[notebook]"'
    ) from exc

from ._grid import FILTERS, ResultsGrid
from ._progress import FINAL_STATES, BatchProgress
from ._runner import BatchHandle, PendingBatch, run_batch
from ._throttle import Throttle

__all__ = ["FILTERS", "FINAL_STATES", "BatchHandle", "BatchProgress", "PendingBatch", "ResultsGrid", "Throttle",
           "run_batch"]
