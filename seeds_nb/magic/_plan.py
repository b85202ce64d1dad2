"""``--dry-run``: what a cell would send and what it would roughly cost, without sending anything.

Input tokens are estimated as characters / 4 (the usual rule of thumb for English); output is a
range, from a tenth of the cap to the cap (``--max-tokens``, or ``DEFAULT_OUTPUT_TOKENS``), since
the real length is unknown before the call. Cost and carbon come from the same ``Tracker`` the
client uses, so a dry run and a real run price the same way. Cache hits are not predicted: the
estimate is an upper bound for a warm cache.
"""

from __future__ import annotations

import html
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seeds_nb.core.tracking import Tracker
from seeds_nb.core.types import Usage

from ._render import Prompt

__all__ = ["DEFAULT_OUTPUT_TOKENS", "BatchPlan", "estimate_plan"]

DEFAULT_OUTPUT_TOKENS = 256
"""Output-length cap assumed by ``--dry-run`` when ``--max-tokens`` is not given."""
_SHOWN = 20  # prompts listed in full; the rest are counted


def estimate_tokens(text: str) -> int:
    """~4 characters per token: no tokenizer download, and right within ~20% for English."""
    return max(1, math.ceil(len(text) / 4))


@dataclass
class BatchPlan:
    """The rendered prompts of a ``--dry-run`` and the estimate; displays as text or HTML."""

    prompts: list[Prompt]
    model: str
    provider: str
    max_concurrent: int
    params: dict[str, Any] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: tuple[int, int] = (0, 0)
    """Per-prompt output range assumed."""
    cost_usd: tuple[float, float] | None = None
    gwp_kgco2eq: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)

    def _summary_lines(self) -> list[str]:
        n = len(self.prompts)
        lo, hi = self.output_tokens
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        cost = (f"${_num(self.cost_usd[0])} – ${_num(self.cost_usd[1])}" if self.cost_usd is not None
                else "unknown for this model")
        gwp = (f"{_gwp(self.gwp_kgco2eq[0])} – {_gwp(self.gwp_kgco2eq[1])}" if self.gwp_kgco2eq is not None
               else "unknown for this model")
        return [
            f"dry run - nothing sent: {n} prompt{'s' if n != 1 else ''} to {self.model} ({self.provider}), "
            f"max_concurrent={self.max_concurrent}{params}",
            f"input ≈ {self.input_tokens:,} tokens (chars/4); output {lo:,}–{hi:,} tokens per prompt, "
            f"{lo * n:,}–{hi * n:,} in all",
            f"cost ≈ {cost}; carbon ≈ {gwp} (estimate; cache hits would cost nothing)",
            *self.notes,
        ]

    def __repr__(self) -> str:
        lines = self._summary_lines()
        for i, prompt in enumerate(self.prompts[:_SHOWN]):
            system = f"[system: {_one_line(prompt.system)}] " if prompt.system else ""
            lines.append(f"  {i:>3}  {system}{_one_line(prompt.text)}")
        if len(self.prompts) > _SHOWN:
            lines.append(f"  ... and {len(self.prompts) - _SHOWN} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(line) for line in self._summary_lines())
        rows = []
        for i, prompt in enumerate(self.prompts[:_SHOWN]):
            system = (f"<div style='opacity:.6'>system: {html.escape(prompt.system)}</div>"
                      if prompt.system else "")
            rows.append(f"<tr><td style='vertical-align:top'>{i}</td><td style='text-align:left;"
                        f"white-space:pre-wrap'>{system}{html.escape(prompt.text)}</td></tr>")
        more = (f"<tr><td></td><td style='text-align:left'>… and {len(self.prompts) - _SHOWN} more</td></tr>"
                if len(self.prompts) > _SHOWN else "")
        return (f"<div class='seeds-dry-run'><div>{head}</div>"
                f"<table><tr><th>#</th><th style='text-align:left'>prompt</th></tr>{''.join(rows)}{more}"
                "</table></div>")


def _one_line(text: str | None, limit: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _num(value: float) -> str:
    """Three significant digits without scientific notation: $0.0000352 reads better than 3.52e-05."""
    if value >= 1:
        return f"{value:,.2f}"
    if value <= 0:
        return "0"
    return f"{value:.{max(2, 2 - math.floor(math.log10(value)))}f}"


def _gwp(kg: float) -> str:
    return f"{kg * 1000:.3g} gCO2eq" if kg < 1 else f"{kg:.3g} kgCO2eq"


def estimate_plan(prompts: Sequence[Prompt], *, model: str, provider: str, max_concurrent: int,
                  params: dict[str, Any], tracker: Tracker | None = None, batch: bool = False) -> BatchPlan:
    """Estimate tokens, cost and carbon for ``prompts`` without sending them.

    Prompts are grouped by estimated input length, so 100,000 prompts cost a few hundred tracker
    calls, not 200,000. ``batch``: priced as a server-side Batch API job (``--submit``), as its
    results will be.
    """
    tracker = tracker or Tracker("openai")
    cap = int(params.get("max_tokens") or DEFAULT_OUTPUT_TOKENS)
    lo_out, hi_out = max(1, cap // 10), cap
    by_length = Counter(estimate_tokens(p.text) + (estimate_tokens(p.system) if p.system else 0)
                        for p in prompts)
    plan = BatchPlan(list(prompts), model, provider, max_concurrent, dict(params),
                     input_tokens=sum(n * count for n, count in by_length.items()), output_tokens=(lo_out, hi_out))
    cost = [0.0, 0.0]
    gwp = [0.0, 0.0]
    cost_known = gwp_known = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unknown model is reported in the plan instead
        for tokens_in, count in by_length.items():
            # latency inf: EcoLogits' own estimate of the generation time for that many tokens.
            low = tracker.track(model, Usage(prompt_tokens=tokens_in, completion_tokens=lo_out), math.inf, batch=batch)
            high = tracker.track(model, Usage(prompt_tokens=tokens_in, completion_tokens=hi_out), math.inf,
                                 batch=batch)
            if low.cost_usd is None or high.cost_usd is None:
                cost_known = False
            else:
                cost[0] += low.cost_usd * count
                cost[1] += high.cost_usd * count
            if low.gwp_kgco2eq_min is None or high.gwp_kgco2eq_max is None:
                gwp_known = False
            else:
                gwp[0] += low.gwp_kgco2eq_min * count
                gwp[1] += high.gwp_kgco2eq_max * count
    plan.cost_usd = (cost[0], cost[1]) if cost_known else None
    if batch:
        plan.notes.append("--submit: one Batch API job, priced at the batch rate (results within 24 h)")
    plan.gwp_kgco2eq = (gwp[0], gwp[1]) if gwp_known else None
    if not cost_known:
        plan.notes.append(f"no price known for {model!r} (genai-prices)")
    if not gwp_known:
        plan.notes.append(f"no energy/carbon model known for {model!r} (EcoLogits)")
    return plan
