"""``BatchProgress``: one compact live panel for a batch (bar, counts, rate, time, cost, carbon, Cancel).

Why composed of plain ipywidgets (``IntProgress``, ``HTML``, ``Button``) and not a custom JS
widget: it renders in JupyterLab, Notebook 7, VS Code and saved widget state with no extension of
ours. A redraw changes two models (the bar and one stats ``HTML``), each under ``hold_sync`` so it
costs two messages; a ``Throttle`` bounds how often that happens, and the final state is always
drawn and never overwritten.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ipywidgets import HTML, Button, HBox, IntProgress, Layout, VBox

from ._format import esc, fmt_duration, fmt_gco2, fmt_kwh, fmt_usd
from ._throttle import Throttle
from ._tree import close_tree

if TYPE_CHECKING:
    from seeds_nb.core.batch import BatchStats
    from seeds_nb.core.result import BatchResult

__all__ = ["BatchProgress", "FINAL_STATES"]

FINAL_STATES = ("success", "partial", "failed", "cancelled", "stopped", "error")
"""States a finished panel can show; ``stopped`` is a budget stop, ``error`` a crash of the run."""

_BAR_STYLE = {"pending": "", "running": "", "cancelling": "warning", "success": "success",
              "partial": "warning", "stopped": "warning", "failed": "danger", "cancelled": "danger",
              "error": "danger"}
_STATE_COLOR = {"success": "#2e7d32", "partial": "#b26a00", "stopped": "#b26a00", "failed": "#c62828",
                "cancelled": "#c62828", "error": "#c62828", "cancelling": "#b26a00"}
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
    gwp_kgco2eq: float = 0.0
    energy_kwh: float = 0.0
    avoided_cost_usd: float = 0.0
    avoided_gwp_kgco2eq: float = 0.0
    elapsed_s: float = 0.0
    message: str = ""


class BatchProgress(VBox):
    """A live panel for one batch: feed it ``update(run.stats)`` as items arrive, then ``finish(result)``.

    Args:
        total: number of prompts, or None when unknown (a generator): the bar then shows ``done/?``.
        title: a short label (the model name); escaped.
        throttle: the redraw limiter; default at most one redraw per 0.2 s (two messages each).
        clock: the monotonic clock used for elapsed time and rates (inject a fake one in tests).
    """

    def __init__(self, total: int | None = None, *, title: str = "", throttle: Throttle | None = None,
                 clock: Callable[[], float] = time.monotonic, **kwargs: object) -> None:
        self.throttle = throttle if throttle is not None else Throttle(0.2, clock)
        self._clock = clock
        self._lock = threading.RLock()  # a background run draws from its thread, clicks come on the main one
        self._snapshot = _Snapshot(total=total)
        self._cancel_callbacks: list[Callable[[], object]] = []
        self._final = False
        self._cancel_requested = False
        self._title = title
        self.bar = IntProgress(value=0, min=0, max=max(total or 1, 1), description=self._bar_label(self._snapshot),
                               style={"description_width": "initial"},
                               layout=Layout(flex="1 1 auto", width="auto", min_width="12em"))
        self.cancel_button = Button(description="Cancel", icon="stop", tooltip="Stop the batch; finished results "
                                    "are kept", layout=Layout(width="auto", flex="0 0 auto"))
        self.cancel_button.on_click(lambda _button: self.request_cancel())
        self.title_html = HTML(f"<b>{esc(title)}</b>" if title else "", layout=Layout(flex="0 0 auto"))
        self.stats_html = HTML(self._stats_html(self._snapshot))
        header = HBox([self.title_html, self.bar, self.cancel_button],
                      layout=Layout(align_items="center", width="100%"))
        kwargs.setdefault("layout", Layout(width="100%", max_width="1100px"))
        super().__init__([header, self.stats_html], **kwargs)
        self.add_class("seeds-batch-progress")

    # -- public API --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """'pending', 'running', 'cancelling', or one of ``FINAL_STATES``."""
        return self._snapshot.state

    @property
    def finished(self) -> bool:
        return self._final

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    def on_cancel(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` (e.g. ``run.cancel``) when the Cancel button is clicked."""
        self._cancel_callbacks.append(callback)

    def request_cancel(self) -> None:
        """What a click does: show 'cancelling', disable the button, call the ``on_cancel`` callbacks."""
        with self._lock:
            if self._final or self._cancel_requested:
                return
            self._cancel_requested = True
            with self.cancel_button.hold_sync():
                self.cancel_button.disabled = True
                self.cancel_button.description = "Cancelling…"
            self._draw(replace(self._snapshot, state="cancelling"))
        for callback in list(self._cancel_callbacks):
            callback()

    def update(self, stats: BatchStats, *, force: bool = False) -> bool:
        """Redraw from live ``stats`` if the throttle allows (or ``force``); True when it redrew."""
        with self._lock:
            if self._final or not (force or self.throttle.ready()):
                return False
            if force:
                self.throttle.mark()
            self._draw(self._from_stats(stats))
            return True

    def tick(self, stats: BatchStats) -> bool:
        """A periodic redraw (elapsed time and retries change without events), within the throttle."""
        with self._lock:
            if self._final or not self.throttle.due():
                return False
            self._draw(self._from_stats(stats))
            return True

    def finish(self, result: BatchResult, *, error: BaseException | None = None) -> None:
        """Draw the final state from the result, ignoring the throttle; later updates are ignored."""
        with self._lock:
            if self._final:
                return
            self._final = True
            self.throttle.mark()
            self._draw(self._from_result(result, error))
            with self.cancel_button.hold_sync():
                self.cancel_button.disabled = True
                self.cancel_button.description = "Cancelled" if self._snapshot.state == "cancelled" else "Done"
                self.cancel_button.icon = ""

    def close(self) -> None:
        """Close the panel and all its parts (the button's callback refers back to it)."""
        self._cancel_callbacks.clear()
        close_tree(self, super().close)

    # -- snapshots -----------------------------------------------------------------------------------
    def _from_stats(self, stats: BatchStats) -> _Snapshot:
        state = "cancelling" if self._cancel_requested else "running"
        elapsed = self._clock() - stats.started if stats.started else 0.0
        return _Snapshot(
            state=state, done=stats.completed, total=stats.total, succeeded=stats.succeeded, failed=stats.failed,
            cached=stats.cached, retrying=stats.retrying, in_flight=stats.in_flight, tokens=stats.tokens,
            cost_usd=stats.cost_usd, gwp_kgco2eq=stats.gwp_kgco2eq, energy_kwh=stats.energy_kwh,
            avoided_cost_usd=stats.avoided_cost_usd, avoided_gwp_kgco2eq=stats.avoided_gwp_kgco2eq,
            elapsed_s=max(elapsed, 0.0),
        )

    def _from_result(self, result: BatchResult, error: BaseException | None) -> _Snapshot:
        total = len(result)
        not_run = result.cancelled_count + result.budget_stopped_count
        failed = result.failed_count - not_run
        succeeded = result.successful_count
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
        elif result.stop_reason not in (None, "cancelled"):
            message = f"budget {result.stop_reason} reached"
        return _Snapshot(
            state=state, done=total - not_run, total=total, succeeded=succeeded, failed=failed,
            cached=result.cached_count, cancelled=not_run, tokens=result.total_tokens,
            cost_usd=result.total_cost_usd, gwp_kgco2eq=result.total_gwp_kgco2eq,
            energy_kwh=result.total_energy_kwh, avoided_cost_usd=result.avoided_cost_usd,
            avoided_gwp_kgco2eq=result.avoided_gwp_kgco2eq, elapsed_s=result.total_duration_seconds,
            message=message,
        )

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
        with self.bar.hold_sync():  # one message for all the bar's traits
            if bar_max != self.bar.max:
                self.bar.max = bar_max  # clamps a larger value; the value is set right after
            self.bar.value = value
            self.bar.description = self._bar_label(snap)
            self.bar.bar_style = style
        self.stats_html.value = self._stats_html(snap)

    @staticmethod
    def _bar_label(snap: _Snapshot) -> str:
        total = "?" if snap.total is None else str(snap.total)
        return f"{snap.done}/{total} done"

    def _stats_html(self, snap: _Snapshot) -> str:
        color = _STATE_COLOR.get(snap.state, "inherit")
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
        spend = [f"{snap.tokens:,} tokens", fmt_usd(snap.cost_usd), fmt_gco2(snap.gwp_kgco2eq),
                 fmt_kwh(snap.energy_kwh)]
        if snap.cached or snap.avoided_cost_usd:
            spend.append(f'<span style="{_MUTED}">cache saved {fmt_usd(snap.avoided_cost_usd)} · '
                         f"{fmt_gco2(snap.avoided_gwp_kgco2eq)}</span>")
        lines = [" · ".join(parts), " · ".join(spend)]
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
        text += f" · {fmt_usd(snap.cost_usd)} · {fmt_gco2(snap.gwp_kgco2eq)}"
        if snap.state in FINAL_STATES and snap.state != "success":
            text += f" · {snap.state}"
        return text

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(repr(self))  # type: ignore[attr-defined]
