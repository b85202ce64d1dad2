"""``BatchProgress``: one compact live panel for a batch (bar, counts, rate, time, cost, carbon, Cancel).

Drawn in a ``Panel`` (one anywidget: it renders in JupyterLab, Notebook 7, VS Code, Colab and
marimo, and keeps a static HTML copy for saved notebooks). A redraw is one message (``hold_sync``);
a ``Throttle`` bounds how often that happens, and the final state is always drawn and never
overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from seeds_nb.core.result import cost_text

from ._format import STATE_COLOR, esc, fmt_duration, fmt_gco2, fmt_kwh, fmt_usd
from ._panel import Panel
from ._throttle import Throttle

if TYPE_CHECKING:
    from seeds_nb.core.ledger import Ledger, LifetimeTracking
    from seeds_nb.core.result import BatchResult

__all__ = ["BatchProgress", "FINAL_STATES"]

FINAL_STATES = ("success", "partial", "failed", "cancelled", "stopped", "error")
"""States a finished panel can show; ``stopped`` is a budget stop, ``error`` a crash of the run."""

_BAR_STYLE = {"pending": "", "running": "", "cancelling": "warning", "success": "success",
              "partial": "warning", "stopped": "warning", "failed": "danger", "cancelled": "danger",
              "error": "danger"}
_MUTED = "color: var(--jp-ui-font-color2, #666)"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What the panel shows, as numbers: the repr and both HTML lines are rendered from it."""

    state: str = "pending"
    done: int = 0
    total: int | None = None
    succeeded: int = 0
    failed: int = 0
    cached: int = 0
    cancelled: int = 0
    retrying: int = 0
    in_flight: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unknown_cost: int = 0
    gwp_kgco2eq: float = 0.0
    unknown_impacts: int = 0
    impacts_method: str = "none"
    """``Ledger.impacts_method``: a server's measured carbon is labelled so, never passed off as an estimate."""
    energy_kwh: float = 0.0
    avoided_cost_usd: float = 0.0
    avoided_gwp_kgco2eq: float = 0.0
    elapsed_s: float = 0.0
    message: str = ""
    lifetime: Ledger | None = None
    """The client's lifetime account (this run included), when the panel shows it."""


class BatchProgress(Panel):
    """A live panel for one batch: feed it ``update(run.ledger)`` as items arrive, then ``finish(result)``.

    Args:
        total: number of prompts, or None when unknown (a generator): the bar then shows ``done/?``.
        title: a short label (the model name); escaped.
        throttle: the redraw limiter; default at most one redraw per 0.2 s (one message each).
        clock: the monotonic clock used for elapsed time and rates (inject a fake one in tests).
        lifetime: a client's ``client.tracking``: a last line shows the client's totals so far (this run
            included: answers, cache hit rate, errors, spent and avoided cost and carbon).
    """

    def __init__(self, total: int | None = None, *, title: str = "", throttle: Throttle | None = None,
                 clock: Callable[[], float] = time.monotonic, lifetime: LifetimeTracking | None = None,
                 **kwargs: object) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._snapshot = _Snapshot(total=total, lifetime=lifetime.snapshot() if lifetime is not None else None)
        self._title = title
        super().__init__(title=title, bar_max=total or 1, bar_label=self._bar_label(self._snapshot),
                         stats=self._stats_html(self._snapshot), css_class="seeds-batch-progress",
                         cancel_tooltip="Stop the batch; finished results are kept",
                         throttle=throttle if throttle is not None else Throttle(0.2, clock), **kwargs)

    # -- public API --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """'pending', 'running', 'cancelling', or one of ``FINAL_STATES``."""
        return self._snapshot.state

    def _draw_cancelling(self) -> None:
        self._draw(replace(self._snapshot, state="cancelling"))

    def update(self, ledger: Ledger, *, force: bool = False) -> bool:
        """Redraw from the run's live ``ledger`` if the throttle allows (or ``force``); True when it redrew."""
        with self._lock:
            if self._final or not (force or self.throttle.ready()):
                return False
            if force:
                self.throttle.mark()
            self._draw(self._from_ledger(ledger))
            return True

    def tick(self, ledger: Ledger) -> bool:
        """A periodic redraw (elapsed time and retries change without events), within the throttle."""
        with self._lock:
            if self._final or not self.throttle.due():
                return False
            self._draw(self._from_ledger(ledger))
            return True

    def finish(self, result: BatchResult, *, error: BaseException | None = None) -> None:
        """Draw the final state from the result, ignoring the throttle; later updates are ignored."""
        with self._lock:
            if self._final:
                return
            self._final = True
            self.throttle.mark()
            with self.hold_sync():  # the final state and the button in one message
                self._draw(self._from_result(result, error))
                self._end_button("Cancelled" if self._snapshot.state == "cancelled" else "Done")

    def redraw(self, result: BatchResult) -> None:
        """Draw a finished panel again from its (changed) result: a re-run of the failed rows replaced
        answers in ``result``, so its counts and totals move; the button keeps saying how it ended."""
        with self._lock:
            if not self._final:
                return
            self.throttle.mark()
            self._draw(self._from_result(result, None))

    # -- snapshots (both from the one ledger the run keeps) -----------------------------------------
    def _from_ledger(self, ledger: Ledger, *, state: str | None = None, elapsed_s: float | None = None,
                     total: int | None = None, message: str = "") -> _Snapshot:
        if state is None:
            state = "cancelling" if self._cancel_requested else "running"
        if elapsed_s is None:
            elapsed_s = self._clock() - ledger.started if ledger.started else 0.0
        not_run = ledger.cancelled + ledger.budget_stopped
        final = state in FINAL_STATES
        return _Snapshot(
            state=state, done=ledger.completed - not_run if final else ledger.completed,
            total=ledger.total if total is None else total, succeeded=ledger.succeeded,
            failed=ledger.failed - not_run if final else ledger.failed, cached=ledger.cached,
            cancelled=not_run if final else 0, retrying=ledger.retrying, in_flight=ledger.in_flight,
            tokens=ledger.tokens, cost_usd=ledger.cost_usd, unknown_cost=ledger.unknown_cost,
            gwp_kgco2eq=ledger.gwp_kgco2eq, unknown_impacts=ledger.unknown_impacts,
            impacts_method=ledger.impacts_method, energy_kwh=ledger.energy_kwh,
            avoided_cost_usd=ledger.avoided_cost_usd, avoided_gwp_kgco2eq=ledger.avoided_gwp_kgco2eq,
            elapsed_s=max(elapsed_s, 0.0), message=message,
            lifetime=self._lifetime.snapshot() if self._lifetime is not None else None,
        )

    def _from_result(self, result: BatchResult, error: BaseException | None) -> _Snapshot:
        ledger = result.ledger
        total = len(result) or ledger.completed  # a run that kept no rows (a sink) still counted them
        not_run = ledger.cancelled + ledger.budget_stopped
        failed = ledger.failed - not_run
        if error is not None:
            state = "error"
        elif result.stop_reason == "cancelled":
            state = "cancelled"
        elif result.stop_reason is not None:
            state = "stopped"
        elif total and failed == total:
            state = "failed"
        elif failed:
            state = "partial"
        else:
            state = "success"
        message = ""
        if error is not None:
            message = f"{type(error).__name__}: {error}"
        elif result.stop_reason == "authentication":
            message = "stopped after an authentication error: the other prompts were not sent"
        elif result.stop_reason not in (None, "cancelled"):
            message = f"budget {result.stop_reason} reached"
        if ledger.cache_write_failures:
            message = (message + "; " if message else "") + (
                f"{ledger.cache_write_failures:,} answers could not be stored in the cache")
        return self._from_ledger(ledger, state=state, elapsed_s=result.total_duration_seconds, total=total,
                                 message=message)

    # -- drawing -------------------------------------------------------------------------------------
    def _draw(self, snap: _Snapshot) -> None:
        self._snapshot = snap
        total = snap.total
        if total is None:  # unknown length: a full, neutral bar while it runs
            bar_max, value = 1, 1 if snap.done else 0
            style = "info" if snap.state in ("running", "pending") else _BAR_STYLE[snap.state]
        else:
            bar_max, value = max(total, 1), min(snap.done, max(total, 1))
            style = _BAR_STYLE[snap.state]
        self._set_view(bar_max, value, self._bar_label(snap), style, self._stats_html(snap))

    @staticmethod
    def _bar_label(snap: _Snapshot) -> str:
        total = "?" if snap.total is None else str(snap.total)
        return f"{snap.done}/{total} done"

    def _stats_html(self, snap: _Snapshot) -> str:
        color = STATE_COLOR.get(snap.state, "inherit")
        parts = [f'<b style="color:{color}">{esc(snap.state)}</b>',
                 f'<span style="color:#2e7d32">✔ {snap.succeeded:,} ok</span>',
                 f"{snap.cached:,} cached",
                 f'<span style="color:{"#c62828" if snap.failed else "inherit"}">✘ {snap.failed:,} failed</span>']
        if snap.cancelled:
            parts.append(f"{snap.cancelled:,} cancelled")
        if not self._final:
            parts.append(f'<span style="color:{"#b26a00" if snap.retrying else "inherit"}">⟳ {snap.retrying:,} '
                         f"retrying</span>")
            parts.append(f"{snap.in_flight:,} in flight")
        rate = snap.done / snap.elapsed_s if snap.elapsed_s > 0 else 0.0
        parts.append(f"{rate:,.1f} req/s")
        parts.append(f"elapsed {fmt_duration(snap.elapsed_s)}")
        if not self._final:
            remaining = (snap.total - snap.done) / rate if snap.total is not None and rate > 0 else None
            parts.append(f"ETA {fmt_duration(remaining)}")
        spend = [f"{snap.tokens:,} tokens", cost_text(snap.cost_usd, snap.unknown_cost),
                 _carbon(snap), fmt_kwh(snap.energy_kwh)]
        if snap.cached or snap.avoided_cost_usd:
            spend.append(f'<span style="{_MUTED}">cache saved {fmt_usd(snap.avoided_cost_usd)} · '
                         f"{fmt_gco2(snap.avoided_gwp_kgco2eq)}</span>")
        lines = [" · ".join(parts), " · ".join(spend)]
        if snap.lifetime is not None:
            lines.append(f'<span class="seeds-progress-lifetime" style="{_MUTED}">'
                         f"{_lifetime_text(snap.lifetime)}</span>")
        if snap.message:
            lines.append(f'<span style="color:{color}">{esc(snap.message)}</span>')
        body = "<br>".join(lines)
        return f'<div class="seeds-progress-stats" style="font-size:12px;line-height:1.5">{body}</div>'

    # -- text ------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        """The drawn state as one line (no address, no timings): what consoles and nbval compare."""
        snap = self._snapshot
        total = "?" if snap.total is None else snap.total
        text = (f"BatchProgress: {snap.done}/{total} done · {snap.succeeded} ok ({snap.cached} cached) · "
                f"{snap.failed} failed")
        if snap.cancelled:
            text += f" · {snap.cancelled} cancelled"
        text += f" · {cost_text(snap.cost_usd, snap.unknown_cost)} · {_carbon(snap)}"
        if snap.state in FINAL_STATES and snap.state != "success":
            text += f" · {snap.state}"
        return text


def _lifetime_text(ledger: Ledger) -> str:
    """The client's totals in one line: what it has done since it was created (or reset)."""
    rate = ledger.cached / ledger.succeeded if ledger.succeeded else 0.0
    carbon = fmt_gco2(ledger.gwp_kgco2eq) + (f" + {ledger.unknown_impacts:,} unknown" if ledger.unknown_impacts else "")
    return (f"client so far: {ledger.succeeded:,} answers ({ledger.succeeded - ledger.cached:,} API, {rate:.0%} from "
            f"cache) · {ledger.failed:,} errors · {cost_text(ledger.cost_usd, ledger.unknown_cost)} · {carbon} · "
            f"{fmt_kwh(ledger.energy_kwh)} · cache saved {fmt_usd(ledger.avoided_cost_usd)} · "
            f"{fmt_gco2(ledger.avoided_gwp_kgco2eq)}")


def _carbon(snap: _Snapshot) -> str:
    """``0.123 gCO2eq``, with the answers whose carbon is unknown (never counted as 0), and ``measured`` when
    the server measured it (an estimate is the default and says nothing)."""
    if snap.unknown_impacts and not snap.gwp_kgco2eq:
        return "carbon unknown"
    text = fmt_gco2(snap.gwp_kgco2eq)
    if snap.impacts_method in ("measured", "mixed"):
        text += " measured" if snap.impacts_method == "measured" else " (part measured)"
    return f"{text} + {snap.unknown_impacts:,} unknown" if snap.unknown_impacts else text
