"""``--dry-run``: the cell's rendered prompts and the core's estimate (``seeds_nb.core.estimate``), without
sending anything and without a client (a dry run needs no API key)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seeds_nb.core.estimate import Estimate, estimate_prompts
from seeds_nb.core.tracking import Tracker

from ._render import Prompt

__all__ = ["estimate_plan"]


def estimate_plan(prompts: Sequence[Prompt], *, model: str, provider: str, max_concurrent: int,
                  params: dict[str, Any], label: str | None = None, batch: bool = False) -> Estimate:
    """Estimate tokens, cost and carbon for a cell's ``prompts`` (``provider``: mock, openai or anthropic;
    ``label``: how it is shown). ``batch``: priced as a Batch API job (``--submit``), as its results will be."""
    tracker = Tracker("anthropic" if provider == "anthropic" else "openai")
    return estimate_prompts([p.to_request() for p in prompts], model=model, provider=provider, tracker=tracker,
                            params=params, max_concurrent=max_concurrent, batch=batch, label=label or provider)
