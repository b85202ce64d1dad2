"""Small text formatters shared by the panel and the grid: escaped, compact, unit-suffixed.

Why a module of its own: the panel's HTML, its ``text/plain`` repr and the grid must agree on how
a cost or a carbon figure reads, and every piece of user text must go through ``html.escape``.
"""

from __future__ import annotations

import html
import math

__all__ = ["STATUS_COLOR", "TABLE_CSS", "esc", "excerpt", "fmt_duration", "fmt_gco2", "fmt_kwh", "fmt_num", "fmt_usd"]

STATUS_COLOR = {"ok": "#2e7d32", "cached": "#1565c0", "failed": "#c62828", "retrying": "#b26a00",
                "cancelled": "#757575", "budget": "#757575"}
"""The colour of each row status, the same in the results grid, the compare grid and the snapshots."""

TABLE_CSS = """<style>
.seeds-grid-table {border-collapse:collapse;font-size:12px;width:100%;table-layout:fixed}
.seeds-grid-table th, .seeds-grid-table td {padding:2px 6px;vertical-align:top;text-align:left;
  border-bottom:1px solid var(--jp-border-color2, #e0e0e0)}
.seeds-grid-table td.n {text-align:right;white-space:nowrap}
.seeds-grid-table td.t {overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.seeds-grid-table td.s {font-weight:600}
.seeds-grid-head {font-size:12px;margin:2px 0}
</style>"""
"""The compare grid's table style (an HTML widget's ``<style>``)."""


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
