"""``run_batch``: show a ``BatchProgress`` (+ ``ResultsGrid``) and drive them from a ``BatchRun`` stream.

Two modes, chosen from what was measured in ipykernel 7.4 (see docs/widgets.md):

* await (default): ``result = await run_batch(...)`` runs on the kernel's own loop. The Cancel
  button is handled while the cell awaits and ends the batch normally with the partial result. A
  kernel interrupt cancels the cell's task: the batch stops, the panel is drawn as cancelled, and the
  ``CancelledError`` propagates (carrying ``.partial_result``; ``pending.run.result`` has it too).
  Why not swallow it: a library that eats a cancellation breaks its caller's ``asyncio.timeout``
  and task groups; only the outermost entry point (the magic) decides how to report it.
* background: the batch runs on a thread with its own loop (the core's thread runner), the call
  returns a ``BatchHandle`` at once, and the panel keeps moving even while another cell blocks the
  main thread. A kernel interrupt cannot reach it (the kernel is idle): use Cancel or ``.cancel()``.
  In Colab, which shows a thread's widget updates only while their cell runs, the call waits for
  the batch (a foreground run, with a notice) and returns the finished handle.

Widgets are fed from the stream loop when their throttles allow, from a slow ticker in between
(elapsed time and retries change without events), and get one forced final redraw.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.structured import parsed_fields

from ._confirm import ConfirmRun
from ._frontend import COLAB_BACKGROUND_NOTICE, in_colab
from ._grid import ResultsGrid
from ._handle import ThreadHandle
from ._progress import BatchProgress
from ._throttle import Throttle
from ._tree import display_live, refresh_fallback, send_tree

if TYPE_CHECKING:
    from seeds_nb.core.batch import BatchRun
    from seeds_nb.core.client import BaseClient
    from seeds_nb.core.ledger import LifetimeTracking
    from seeds_nb.core.mapping import MapJob
    from seeds_nb.core.result import BatchResult

__all__ = ["BatchHandle", "PendingBatch", "run_batch"]

TICK_S = 0.5
"""How often the ticker offers a redraw between events (it still goes through the throttles)."""


class _LiveView:
    """The widgets of one run and the loop that feeds them."""

    def __init__(self, run: BatchRun, prompts: Iterable[Any], *, grid: bool, title: str, page_size: int,
                 refresh_s: float, grid_refresh_s: float, job: MapJob | None = None,
                 confirm: ConfirmRun | None = None, lifetime: LifetimeTracking | None = None,
                 client: BaseClient | None = None, batch_params: dict[str, Any] | None = None) -> None:
        self.run = run
        self.job = job
        self.confirm = confirm
        self.progress = BatchProgress(run.ledger.total, title=title, throttle=Throttle(refresh_s), lifetime=lifetime)
        self.progress.on_cancel(run.cancel)
        # "re-run failed" sends the same prompts through the same client with the same parameters, and
        # updates run.result in place; a map's prompts are rendered from its table, so it has no re-run.
        self.grid = ResultsGrid(prompts if isinstance(prompts, Sequence) else None, page_size=page_size,
                                throttle=Throttle(grid_refresh_s), fields=parsed_fields(run.result.response_format),
                                client=client if job is None else None, result=run.result,
                                batch_params=batch_params) if grid else None
        self._displayed: list[tuple[Any, Any]] = []  # (display handle, widget) once shown
        if self.grid is not None:
            grid_view = self.grid
            run.on_retry = lambda index, error, wait: grid_view.mark_retrying(index, run.result.prompts[index], error)
            grid_view.on_rerun(self._after_rerun)

    def show(self) -> None:
        self._displayed = [(display_live(w), w) for w in (self.confirm, self.progress, self.grid) if w is not None]

    async def drive(self) -> Any:
        """Consume the run, feeding the widgets; the final state is drawn however it ends. Returns the
        ``BatchResult``, or for a map the table with its new columns (or the sink's path)."""
        run, progress, grid, job = self.run, self.progress, self.grid, self.job
        ledger, prompts = run.ledger, run.result.prompts
        if self.confirm is not None and not await self.confirm.wait():
            progress.request_cancel()
            run.cancel()  # declined: every prompt ends as cancelled, nothing is sent
        if job is not None:
            await job.start()
        stream = run.stream()
        ticker = asyncio.get_running_loop().create_task(self._tick(), name="seeds_nb-widgets-ticker")
        error: BaseException | None = None
        try:
            async for index, item in stream:
                if job is not None:
                    job.accept(index, item)
                if grid is not None:
                    grid.add(index, item, prompts[index])
                    grid.refresh()
                progress.update(ledger)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if not run.done:  # left the loop early (an error here, or cancelled outside the stream)
                    with contextlib.suppress(Exception):
                        await stream.aclose()
            finally:
                ticker.cancel()
                self.finish(error)
                await asyncio.wait([ticker])  # its own end (cancelled, or a failed redraw) is not ours to raise
        return run.result if job is None else await job.finish()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.progress.tick(self.run.ledger)
            if self.grid is not None:
                self.grid.tick()

    def finish(self, error: BaseException | None = None) -> None:
        """Force the final redraw: grid first, so a panel that says 'done' has its rows drawn."""
        result = self.run.result
        if self.grid is not None:
            self.grid.load(result)
            self.grid.refresh(force=True)
        self.progress.finish(result, error=error)
        for handle, widget in self._displayed:
            refresh_fallback(handle, widget)

    def _after_rerun(self) -> None:
        """A re-run changed ``run.result``: the panel shows its new counts and totals, and when it ends the
        saved ``text/plain``/``text/html`` of the widgets follow."""
        self.progress.redraw(self.run.result)
        if self.grid is not None and not self.grid.busy:  # once, at the end: an update re-renders the outputs
            for handle, widget in self._displayed:
                refresh_fallback(handle, widget)

    def resend(self) -> None:
        """Send every model's full state again, from the cell that waits on a background run."""
        for root in (self.progress, self.grid):
            if root is not None:
                send_tree(root)
        for handle, widget in self._displayed:
            refresh_fallback(handle, widget)


async def _run_in_cell(view: _LiveView, show: bool) -> Any:
    if show:
        view.show()
    try:
        return await view.drive()
    except asyncio.CancelledError as exc:  # every index is accounted for by now (the stream unwound)
        exc.partial_result = view.run.result  # type: ignore[attr-defined]
        raise


class PendingBatch:
    """What ``run_batch`` returns in await mode: ``await`` it (once) to run the batch and get its result.

    Before and while it runs, ``run``, ``progress`` and ``grid`` give access to the ``BatchRun`` and
    its widgets (e.g. to click Cancel from code).
    """

    def __init__(self, view: _LiveView, show: bool) -> None:
        self._view = view
        self._show = show
        self._awaited = False
        self.confirm: ConfirmRun | None = view.confirm
        self.run: BatchRun = view.run
        self.progress: BatchProgress = view.progress
        self.grid: ResultsGrid | None = view.grid

    def cancel(self) -> None:
        """What the Cancel button does."""
        self.progress.request_cancel()
        self.run.cancel()

    def __await__(self) -> Generator[Any, None, Any]:
        if self._awaited:
            raise RuntimeError("run_batch(...) can be awaited once; call run_batch again for a new batch")
        self._awaited = True
        return _run_in_cell(self._view, self._show).__await__()

    def __repr__(self) -> str:
        return f"PendingBatch({'awaited' if self._awaited else 'not awaited yet: use await run_batch(...)'})"


class BatchHandle(ThreadHandle[Any]):
    """A batch running on its own thread: ``cancel()``, ``done()``, ``result(timeout)``, ``await handle``.

    ``run`` is the ``BatchRun`` (live ``run.ledger``, partial ``run.result``); ``progress`` and
    ``grid`` are its widgets. Ctrl-C while blocked in ``result()``, or an interrupt while awaiting
    the handle, cancels the batch (finished responses are kept in ``run.result``) and propagates.
    """

    _thread_name = "seeds_nb-batch"

    def __init__(self, view: _LiveView) -> None:
        super().__init__()
        self._view = view
        self.confirm: ConfirmRun | None = view.confirm
        self.run: BatchRun = view.run
        self.progress: BatchProgress = view.progress
        self.grid: ResultsGrid | None = view.grid

    async def _body(self) -> Any:
        return await self._view.drive()

    def cancel(self) -> None:
        """Stop the batch (thread-safe); finished responses are kept."""
        self.progress.request_cancel()
        self.run.cancel()

    def outcome(self) -> BatchResult:
        """The run's result as it stands (partial until the batch ends, even after a crash)."""
        return self.run.result

    def _resend(self) -> None:
        self._view.resend()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        ledger = self.run.ledger
        total = "?" if ledger.total is None else ledger.total
        return f"BatchHandle({state}, {ledger.completed}/{total} done)"


@overload
def run_batch(client: BaseClient, prompts: Any, prompt: str | Callable[[dict[str, Any]], Any] | None = ..., *,
              max_concurrent: int = ..., background: Literal[False] = ..., grid: bool | None = ...,
              title: str | None = ..., page_size: int = ..., refresh_s: float = ..., grid_refresh_s: float = ...,
              show: bool = ..., response_format: Any = ..., system: str | None = ..., prefix: str = ...,
              sink: str | os.PathLike[str] | None = ..., confirm: bool = ..., lifetime: bool = ...,
              **params: Any) -> PendingBatch: ...


@overload
def run_batch(client: BaseClient, prompts: Any, prompt: str | Callable[[dict[str, Any]], Any] | None = ..., *,
              max_concurrent: int = ..., background: Literal[True], grid: bool | None = ...,
              title: str | None = ..., page_size: int = ..., refresh_s: float = ..., grid_refresh_s: float = ...,
              show: bool = ..., response_format: Any = ..., system: str | None = ..., prefix: str = ...,
              sink: str | os.PathLike[str] | None = ..., confirm: bool = ..., lifetime: bool = ...,
              **params: Any) -> BatchHandle: ...


def run_batch(client: BaseClient, prompts: Any, prompt: str | Callable[[dict[str, Any]], Any] | None = None, *,
              max_concurrent: int = 5, background: bool = False, grid: bool | None = None, title: str | None = None,
              page_size: int = 20, refresh_s: float = 0.2, grid_refresh_s: float = 0.5, show: bool = True,
              response_format: Any = None, system: str | None = None, prefix: str = "",
              sink: str | os.PathLike[str] | None = None, confirm: bool = False, lifetime: bool = False,
              **params: Any) -> PendingBatch | BatchHandle:
    """Run a batch with a live panel (and results grid) in the notebook.

    ``result = await run_batch(client, prompts)`` returns the ``BatchResult``; Cancel stops it and it
    returns the partial result (``stop_reason == "cancelled"``); a kernel interrupt stops it too and
    raises (the partial result is ``client.last_run.result``).
    ``handle = run_batch(..., background=True)`` returns a ``BatchHandle`` at once (in Colab, once the
    batch ended: see ``docs/widgets.md``).

    Over a table: ``out = await run_batch(client, df, "Classify: {review}", response_format=Label)`` is
    ``client.map`` with the panel and grid: it returns what ``map`` returns (the same kind of table with
    the answers as columns, or the ``sink``'s path), and the grid shows the parsed fields as columns.

    Args:
        prompt: a template (``"... {column} ..."``) or a function of the row: ``prompts`` is then a table
            (a DataFrame, Arrow table, Dataset or iterable of dicts), as ``client.map`` takes it.
        max_concurrent: requests in flight at once.
        grid: also show a ``ResultsGrid`` of the rows (default: yes, unless the rows go to a ``sink``,
            which keeps none of them in memory).
        title: the panel's label (default: the model name).
        page_size: rows the grid shows at once (its height; it scrolls through all of them).
        refresh_s / grid_refresh_s: least time between two redraws of the panel (1 message) and two
            window pushes of the grid (1 message): the defaults keep a run under 12 widget messages/s.
        show: display the widgets (False: drive them without displaying, e.g. to embed them).
        response_format / system / prefix / sink: as in ``client.map`` (``response_format`` works
            without a template too).
        confirm: first show ``client.estimate(...)`` of the run (tokens, cost, carbon, time; cache hits and
            rows a sink holds apart) with Run / Don't run buttons; nothing is sent until Run is clicked
            (``pending.confirm.decide(True)`` from code). Don't run ends every prompt as cancelled.
        lifetime: add a line with the client's totals so far (``client.tracking``, this run included).
        params: passed to ``client.batch`` (generation parameters, ``on_progress``, budgets).
    """
    gate = None
    if confirm:
        if isinstance(prompts, Iterator):
            raise ConfigurationError("confirm=True reads the prompts twice (to estimate them, then to send them): "
                                     "pass a list or a table, not a generator or iterator")
        planned = {k: v for k, v in params.items() if k != "on_progress"}
        gate = ConfirmRun(client.estimate(prompts, prompt, response_format=response_format, system=system,
                                          max_concurrent=max_concurrent, prefix=prefix, sink=sink, **planned))
    if response_format is not None:
        params["response_format"] = response_format
    job = None
    if prompt is None:
        if system is not None or sink is not None or prefix:
            raise ConfigurationError("system=, prefix= and sink= apply to rows of a table: pass a template too, "
                                     "run_batch(client, data, 'Summarise {abstract}', ...)")
        run = client.batch(prompts, max_concurrent, **params)  # bad arguments fail here, in the caller
    else:
        if sink is not None and grid:
            raise ConfigurationError("a run into a sink keeps no rows in memory, so it has no grid: drop grid=True "
                                     "(read the rows from the sink file once it ends, e.g. pd.read_parquet(path))")
        job = client.prepare_map(prompts, prompt, system=system, max_concurrent=max_concurrent, prefix=prefix,
                                 sink=sink, **params)
        run, prompts = job.run, None
    if grid is None:
        grid = sink is None
    rerun_params = {k: v for k, v in params.items() if k != "on_progress"}
    view = _LiveView(run, prompts, grid=grid, title=client.model if title is None else title,
                     page_size=page_size, refresh_s=refresh_s, grid_refresh_s=grid_refresh_s, job=job, confirm=gate,
                     lifetime=client.tracking if lifetime else None, client=client,
                     batch_params={"max_concurrent": max_concurrent, **rerun_params})
    if not background:
        return PendingBatch(view, show)
    if show:
        view.show()
    handle = BatchHandle(view).start()
    if in_colab():  # updates from a thread show only while their cell runs: keep this cell running
        print(COLAB_BACKGROUND_NOTICE)
        handle.result()  # short waits: an interrupt cancels the batch (finished answers kept) and propagates
    return handle
