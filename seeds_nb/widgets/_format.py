"""Small text formatters shared by the panel and the grid: escaped, compact, unit-suffixed.

Why a module of its own: the panel's HTML, its ``text/plain`` repr and the grid must agree on how
a cost or a carbon figure reads, and every piece of user text must go through ``html.escape``.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from seeds_nb.core.types import normalize_prompt

if TYPE_CHECKING:
    from seeds_nb.core.types import Response

__all__ = ["DETAIL_LIMIT", "STATE_COLOR", "STATUS_COLOR", "cap", "esc", "excerpt", "fmt_duration", "fmt_gco2",
           "fmt_kwh", "fmt_num", "fmt_usd", "full_prompt", "response_facts"]

STATUS_COLOR = {"ok": "#2e7d32", "cached": "#1565c0", "failed": "#c62828", "retrying": "#b26a00",
                "cancelled": "#757575", "budget": "#757575"}
"""The colour of each row status, the same in the results grid, the compare grid and the snapshots."""

STATE_COLOR = {"success": "#2e7d32", "partial": "#b26a00", "stopped": "#b26a00", "failed": "#c62828",
               "cancelled": "#c62828", "error": "#c62828", "cancelling": "#b26a00"}
"""The colour of a run's state word, in the panel and in the compare grid's lines."""

DETAIL_LIMIT = 20_000
"""Most characters of one text a detail pane shows (a prompt, an answer, an error)."""
_FALLBACK_CHARS = 2_000


def esc(text: object) -> str:
    """HTML-escape anything (quotes too, so it is safe in attributes)."""
    return html.escape(str(text), quote=True)


def excerpt(text: str | None, limit: int) -> str:
    """One line of at most ``limit`` characters (whitespace collapsed), for table cells."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def fmt_num(value: float) -> str:
    """Three significant digits without scientific notation for everyday magnitudes."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else "–"
    if abs(value) >= 1e-3:
        text = f"{value:.3g}"
        return text if "e" not in text else f"{value:,.0f}"
    return f"{value:.2e}"


def fmt_usd(value: float | None, *, small: bool = False) -> str:
    """``$0.0034`` for totals; ``small`` gives one request's cost its digits (``$0.000035``)."""
    if value is None or not math.isfinite(value):
        return "$?"
    if small and 0 < abs(value) < 0.01:
        return f"${value:.6f}"
    return f"${value:.4f}" if abs(value) < 100 else f"${value:,.2f}"


def fmt_gco2(kg: float | None) -> str:
    """Grams of CO2eq from kilograms (the tracking unit)."""
    if kg is None:
        return "? gCO2eq"
    return f"{fmt_num(kg * 1000)} gCO2eq"


def fmt_kwh(kwh: float | None) -> str:
    if kwh is None:
        return "? kWh"
    return f"{fmt_num(kwh)} kWh"


def fmt_duration(seconds: float | None) -> str:
    """``0:07``, ``12:03``, ``1:02:03``; ``–`` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def cap(text: str) -> str:
    """``text`` cut at ``DETAIL_LIMIT`` characters, saying how many were left out."""
    if len(text) <= DETAIL_LIMIT:
        return text
    return text[:DETAIL_LIMIT] + f"\n… ({len(text) - DETAIL_LIMIT:,} more characters)"


def full_prompt(prompt: Any) -> str:
    """A prompt as a detail pane shows it: its text, or each message as ``[role] text``."""
    try:
        messages = normalize_prompt(prompt)
    except Exception:  # a prompt that could not be sent: its repr, bounded (it may hold an image's bytes)
        text = str(prompt)
        return text if len(text) <= _FALLBACK_CHARS else text[:_FALLBACK_CHARS - 3] + "..."
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].text()
    return "\n\n".join(f"[{m.role}] {m.text()}" for m in messages)


def response_facts(item: Response) -> list[list[str]]:
    """One answer's numbers, as ``[name, value]`` pairs: model, attempts, tokens, latency, cost, carbon
    (and energy when known), the same in the results grid's and the compare grid's detail."""
    tracking = item.tracking
    facts = [["model", item.model], ["attempts", str(item.attempts)],
             ["tokens", f"{item.usage.total_tokens:,}" if item.usage.total_tokens is not None else "?"],
             ["latency", f"{item.latency_s:.3f}s" if not item.cached else "– (cached)"],
             ["cost", fmt_usd(tracking.cost_usd, small=True)],
             ["carbon", fmt_gco2(tracking.gwp_kgco2eq) + (" measured" if tracking.method == "measured" else "")]]
    if tracking.energy_kwh is not None:
        facts.append(["energy", fmt_kwh(tracking.energy_kwh)])
    return facts
