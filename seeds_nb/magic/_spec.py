"""What one ``%%seeds_batch`` cell asks for (``CellJob``), and how an interrupted cell ends (``BatchInterrupted``).

A module of their own because both ways of sending (a batch from this kernel, ``_send``; a Batch
API job, ``_submit``) use them, as mixins of ``SeedsBatch`` on ``FlowBase``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from seeds_nb.core.client import BaseClient

from ._render import Prompt

__all__ = ["BatchInterrupted", "CellJob", "FlowBase"]


class BatchInterrupted(Exception):
    """The kernel was interrupted during a ``%%seeds_batch`` cell; the partial result (or the job) is bound.

    An error (not a quiet return) so that "Run all" stops at this cell, as the user asked; rendered
    as one line because the traceback would only show our plumbing.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"BatchInterrupted: {self}"]


@dataclass
class CellJob:
    """Everything a run needs, checked before anything is sent."""

    client: BaseClient
    prompts: list[Prompt]
    out: str
    max_concurrent: int
    params: dict[str, Any]
    background: bool
    grid: bool
    plot: bool
    submit: bool = False
    """Send the prompts as one server-side Batch API job instead of request by request."""
    poll_interval: float = 10.0
    """Seconds between two polls of a submitted job."""
    table: Any = None
    """With ``--sink``: the rows of ``--over`` as a table (``client.map``'s input)."""
    row_prompt: Callable[[dict[str, Any]], Any] | None = None
    """With ``--sink``: renders one row's prompt, as the cell renders it."""
    sink: str | None = None

    @property
    def requests(self) -> list[Any]:
        return [p.to_request() for p in self.prompts]


class FlowBase:
    """What the flow mixins (``_send``, ``_submit``) use of ``SeedsBatch``, which implements it."""

    def _bind(self, name: str, value: Any) -> None:
        raise NotImplementedError

    def _finish(self, job: CellJob, result: Any) -> None:
        raise NotImplementedError

    def start_background(self, job: CellJob, handle: Any = None) -> Any:
        raise NotImplementedError
