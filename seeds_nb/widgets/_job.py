"""``BatchJobMonitor``: a live panel for a provider's Batch API job (status, counts, elapsed, ETA, Cancel).

Why a panel of its own rather than ``BatchProgress``: a job is not a batch this kernel sends. Its
numbers come from polling the provider every few seconds (not per request), some providers count
only once a batch has ended (Anthropic), it may run for hours and outlive the kernel (so elapsed
time is counted from the job's submission, not from when the panel appeared), and Cancel is a
request to the provider that takes effect later. It shares ``BatchProgress``'s frame (``Panel``):
one bar, one stats line, a Cancel button, throttled redraws and a final state drawn once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from seeds_nb.core.result import cost_text

from ._format import esc, fmt_duration, fmt_gco2
from ._panel import Panel
from ._throttle import Throttle

if TYPE_CHECKING:
    from seeds_nb.core.batch_api import Job
    from seeds_nb.core.result import BatchResult

__all__ = ["JOB_FINAL_STATES", "BatchJobMonitor"]

JOB_FINAL_STATES = ("completed", "partial", "failed", "expired", "cancelled", "error", "detached")
"""States a finished monitor can show. ``partial``: the job completed but some prompts failed;
``error``: watching crashed (e.g. the provider could not be reached); ``detached``: watching stopped
(interrupt, timeout) while the job goes on at the provider."""

_BAR_STYLE = {"completed": "success", "partial": "warning", "expired": "warning", "failed": "danger",
              "cancelled": "danger", "error": "danger", "cancelling": "warning"}
_STATE_COLOR = {"completed": "#2e7d32", "partial": "#b26a00", "expired": "#b26a00", "failed": "#c62828",
                "cancelled": "#c62828", "error": "#c62828", "cancelling": "#b26a00", "detached": "#757575"}
_MUTED = "color: var(--jp-ui-font-color2, #666)"


@dataclass(frozen=True, slots=True)
class _JobSnapshot:
    """What the monitor shows, as numbers: the repr and the HTML are rendered from it."""

    state: str
    raw_status: str = ""
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0
    batches: int = 0
    elapsed_s: float | None = None
    cost_usd: float | None = None
    """Known once the results are in (priced at the batch rate)."""
    unknown_cost: int = 0
    gwp_kgco2eq: float | None = None
    message: str = ""

    @property
    def done(self) -> int:
        """Answered or failed; as in ``BatchProgress``, prompts never processed (cancelled, expired)
        are counted apart."""
        return self.succeeded + self.failed

    @property
    def processing(self) -> int:
        return max(0, self.total - self.done - self.cancelled - self.expired)


class BatchJobMonitor(Panel):
    """A live panel for one ``BatchJob``: ``update()`` after each poll, ``finish(result)`` at the end.

    ``watch_job`` drives it; use it directly to embed it or to drive it from your own loop.

    Args:
        job: the ``BatchJob`` to show (``client.submit_batch(...)`` or ``BatchJob.load(...)``).
        title: a short label; default ``"<model> · <job id>"``; escaped.
        throttle: the redraw limiter; default at most one redraw per 0.5 s.
        clock: the wall clock (Unix seconds) elapsed time is measured with, from ``job.created_at``
            (inject a fake one in tests).
    """

    def __init__(self, job: Job, *, title: str | None = None, throttle: Throttle | None = None,
                 clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        self.job = job
        self._clock = clock
        self._snapshot = self._from_job()
        super().__init__(title=f"{job.model} · {job.id}" if title is None else title,
                         bar_max=self._snapshot.total, bar_label=self._bar_label(self._snapshot),
                         stats=self._stats_html(self._snapshot), css_class="seeds-job-monitor",
                         cancel_tooltip="Ask the provider to cancel the job; answers finished by then are kept "
                                        "(and billed)", throttle=throttle if throttle is not None else Throttle(0.5),
                         **kwargs)
        self._draw(self._snapshot)  # a job loaded part-way starts with its bar filled (no message otherwise)

    # -- public API --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """The job's status while it runs (validating, in_progress, finalizing, cancelling), then one
        of ``JOB_FINAL_STATES``."""
        return self._snapshot.state

    def update(self, job: Job | None = None, *, force: bool = False) -> bool:
        """Redraw from the job's last polled state if the throttle allows (or ``force``); True when it
        redrew. Takes the job so it can be ``job.wait``'s ``on_update``."""
        with self._lock:
            if self._final or not (force or self.throttle.ready()):
                return False
            if force:
                self.throttle.mark()
            self._draw(self._from_job())
            return True

    def tick(self) -> bool:
        """A periodic redraw between polls (elapsed time and ETA move), within the throttle."""
        with self._lock:
            if self._final or not self.throttle.due():
                return False
            self._draw(self._from_job())
            return True

    def finish(self, result: BatchResult | None = None, *, error: BaseException | None = None) -> None:
        """Draw the final state (from the results when given), ignoring the throttle; then freeze."""
        self._end(self._from_result(result, error), "Cancelled" if self.job.status == "cancelled" else "Done")

    def detach(self, message: str) -> None:
        """Final state when watching stops but the job goes on at the provider (interrupt, timeout)."""
        self._end(replace(self._from_job(), state="detached", message=message), "Detached")

    def cancel_failed(self, error: BaseException) -> None:
        """The provider refused the cancel: show why and offer the button again."""
        with self._lock:
            if self._final:
                return
            self._cancel_requested = False
            with self.hold_sync():
                self.button_disabled = False
                self.button_label = "Cancel"
                self._draw(replace(self._from_job(), message=f"cancel failed: {type(error).__name__}: {error}"))

    # -- snapshots -----------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return max(0.0, self._clock() - self.job.created_at)

    def _from_job(self) -> _JobSnapshot:
        job = self.job
        counts = job.counts
        state = job.status
        if self._cancel_requested and not job.done:
            state = "cancelling"
        # live counts are the provider's: prompts answered from the cache or never sent join at the end
        return _JobSnapshot(state=state, raw_status=job.raw_status, total=counts.total,
                            succeeded=counts.succeeded, failed=counts.failed, cancelled=counts.cancelled,
                            expired=counts.expired, batches=len(job.batches), elapsed_s=self._elapsed())

    def _from_result(self, result: BatchResult | None, error: BaseException | None) -> _JobSnapshot:
        snap = self._from_job()
        status = self.job.status
        if result is not None:  # the result's ledger: the same account every other display reads
            ledger = result.ledger
            snap = replace(snap, total=len(result), succeeded=ledger.succeeded, cancelled=ledger.cancelled,
                           expired=ledger.expired, failed=ledger.failed - ledger.cancelled - ledger.expired,
                           elapsed_s=result.total_duration_seconds, cost_usd=ledger.cost_usd,
                           unknown_cost=ledger.unknown_cost, gwp_kgco2eq=ledger.gwp_kgco2eq)
        if error is not None:
            state = "error"
        elif status in ("cancelled", "expired", "failed"):
            state = status
        elif snap.total and snap.succeeded == 0:
            state = "failed"
        elif snap.failed or snap.expired:
            state = "partial"
        else:
            state = "completed"
        return replace(snap, state=state, message=f"{type(error).__name__}: {error}" if error is not None else "")

    def _end(self, snap: _JobSnapshot, button: str) -> None:
        with self._lock:
            if self._final:
                return
            self._final = True
            self.throttle.mark()
            with self.hold_sync():  # the final state and the button in one message
                self._draw(snap)
                self._end_button(button)

    # -- drawing -------------------------------------------------------------------------------------
    def _draw_cancelling(self) -> None:
        self._draw(replace(self._from_job(), state="cancelling"))

    def _draw(self, snap: _JobSnapshot) -> None:
        self._snapshot = snap
        bar_max = max(snap.total, 1)
        self._set_view(bar_max, min(snap.done, bar_max), self._bar_label(snap), _BAR_STYLE.get(snap.state, ""),
                       self._stats_html(snap))

    @staticmethod
    def _bar_label(snap: _JobSnapshot) -> str:
        return f"{snap.done:,}/{snap.total:,} done"

    def _stats_html(self, snap: _JobSnapshot) -> str:
        color = _STATE_COLOR.get(snap.state, "inherit")
        head = f'<b style="color:{color}">{esc(snap.state)}</b>'
        if snap.raw_status and snap.raw_status != snap.state:
            head += f' <span style="{_MUTED}">(provider: {esc(snap.raw_status)})</span>'
        parts = [head, f'<span style="color:#2e7d32">✔ {snap.succeeded:,} ok</span>',
                 f'<span style="color:{"#c62828" if snap.failed else "inherit"}">✘ {snap.failed:,} failed</span>']
        parts += [f"{n:,} {word}" for n, word in ((snap.cancelled, "cancelled"), (snap.expired, "expired")) if n]
        if not self._final:
            parts.append(f"{snap.processing:,} processing")
        if snap.batches > 1:
            parts.append(f"{snap.batches} provider batches")
        parts.append(f"elapsed {fmt_duration(snap.elapsed_s)}")
        if not self._final:
            parts.append(f"ETA {fmt_duration(self._eta(snap))}")
        lines = [" · ".join(parts)]
        if snap.cost_usd is not None:
            lines.append(f"{cost_text(snap.cost_usd, snap.unknown_cost)} (batch price) · {fmt_gco2(snap.gwp_kgco2eq)}")
        if snap.message:
            lines.append(f'<span style="color:{color}">{esc(snap.message)}</span>')
        return f'<div class="seeds-job-stats" style="font-size:12px;line-height:1.5">{"<br>".join(lines)}</div>'

    @staticmethod
    def _eta(snap: _JobSnapshot) -> float | None:
        """Remaining time at the average pace since submission; unknown before the first count
        (Anthropic reports counts only when a batch ends)."""
        if not snap.elapsed_s or not snap.done or not snap.processing:
            return None
        return snap.elapsed_s * snap.processing / snap.done

    # -- text ------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        """The drawn state as one line (no id, no address, no timings): what consoles and nbval compare."""
        snap = self._snapshot
        text = (f"BatchJobMonitor: {snap.state} · {snap.done:,}/{snap.total:,} done · {snap.succeeded:,} ok · "
                f"{snap.failed:,} failed")
        text += "".join(f" · {n:,} {word}" for n, word in ((snap.cancelled, "cancelled"), (snap.expired, "expired"))
                        if n)
        if snap.cost_usd is not None:
            text += f" · {cost_text(snap.cost_usd, snap.unknown_cost)} · {fmt_gco2(snap.gwp_kgco2eq)}"
        return text
