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
    """Estimate tokens, cost and carbon for a cell's ``prompts`` (``provider``: one of the magic's
    ``--provider`` choices; ``label``: how it is shown). ``batch``: priced as a Batch API job (``--submit``),
    as its results will be. The tracker looks the model up as the provider's client would."""
    if provider == "google":
        from seeds_nb.providers.google import ECOLOGITS_PROVIDER

        tracker = Tracker("google", impacts_provider=ECOLOGITS_PROVIDER)
    elif provider == "openrouter":
        from seeds_nb.providers.openrouter import OPENROUTER_BASE_URL, OpenRouterCodec

        codec = OpenRouterCodec(model=model, base_url=OPENROUTER_BASE_URL)
        tracker = Tracker("openrouter", route=codec.tracking_targets)
    elif provider == "selfhosted":  # its carbon is measured per answer; no price table knows its model
        tracker = Tracker("selfhosted", measured=True)
    else:
        tracker = Tracker("anthropic" if provider == "anthropic" else "openai")
    return estimate_prompts([p.to_request() for p in prompts], model=model, provider=provider, tracker=tracker,
                            params=params, max_concurrent=max_concurrent, batch=batch, label=label or provider)
