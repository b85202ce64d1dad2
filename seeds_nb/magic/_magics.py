"""The ``SeedsBatch`` magics class: options, provider choice, clients, and the three ways a cell runs.

* **await** (the normal path): ``load_ipython_extension`` installs an input transformer that turns a
  ``%%seeds_batch`` cell into ``await seeds_nb.magic.run_cell_async(line, cell)``. The cell then runs
  on the kernel's loop, so with ipykernel >= 7.4 the Cancel button is handled while it runs (the
  cell then ends normally with the partial result). A kernel interrupt cancels the batch, binds the
  partial result and ends the cell with a one-line ``BatchInterrupted``, so "Run all" stops there.
* **blocking** (``get_ipython().run_cell_magic(...)``, ``%autoawait off``): the batch runs on a
  private loop in a worker thread (``client.run_sync``); the widgets still update, Ctrl-C cancels.
* **background** (``--background``): the widgets' runner returns a handle at once; the result is
  bound when it finishes.

Why not ``nest_asyncio``: measured in a kernel, it loses Cancel clicks and leaves requests running
after Ctrl-C. A user who applied it for another library is still served (the await path does not
care; the blocking path uses its own fresh loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import sys
import threading
from argparse import Namespace, RawDescriptionHelpFormatter
from dataclasses import dataclass
from typing import Any

from IPython.core import magic_arguments as ma
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import display
from traitlets import Enum, Float, Integer, Unicode

from seeds_nb.core.client import BaseClient
from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.result import BatchResult

from ._background import BackgroundBatch
from ._plan import estimate_plan
from ._render import Prompt, build_prompts, check_name

__all__ = ["BatchInterrupted", "SeedsBatch"]

PROVIDERS = ("openai", "anthropic", "mock")

_DESCRIPTION = """\
Send each prompt of the cell to an LLM as one batch and watch it run (live panel, Cancel
button, results grid). A kernel interrupt stops it and keeps what finished.
"""

_EPILOG = """\
prompts:
  One prompt per non-empty line. When the cell has a line holding only ---, prompts are the
  blocks between such lines instead (for multi-line prompts).
  {name} is filled from the notebook's variables ({{ and }} are literal braces). With --over VAR
  the cell is rendered once per item: {item} for plain values, {column} for dict keys and
  DataFrame columns.

defaults:
  %config SeedsBatch.model = "gpt-4.1-mini"     (also provider, max_concurrent, cache_dir,
  %config SeedsBatch.max_concurrent = 5          out, mock_latency_s)
  Without OPENAI_API_KEY / OPENAI_BASE_URL the embedded offline mock server answers.

result:
  The BatchResult is bound to seeds_result (--out NAME); nothing is echoed, the live panel
  shows the run. With --background the handle is bound at once to NAME_run.

example:
  %%seeds_batch --model gpt-4.1-mini --max-concurrent 8 --over cities
  Describe {item} in one sentence.
"""


class BatchInterrupted(Exception):
    """The kernel was interrupted during a ``%%seeds_batch`` cell; the partial result is bound.

    An error (not a quiet return) so that "Run all" stops at this cell, as the user asked; rendered
    as one line because the traceback would only show our plumbing.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"BatchInterrupted: {self}"]


@dataclass
class _Job:
    """Everything a run needs, checked before anything is sent."""

    client: BaseClient
    prompts: list[Prompt]
    out: str
    max_concurrent: int
    params: dict[str, Any]
    background: bool
    grid: bool
    plot: bool

    @property
    def requests(self) -> list[Any]:
        return [p.to_request() for p in self.prompts]


# Kernel-wide state: one mock server and one client per configuration, so connection pools and
# cache handles are reused from cell to cell (module globals survive %reload_ext).
_state_lock = threading.Lock()
_mock_server: Any = None
_clients: dict[tuple[str, str, str | None, str | None, str], BaseClient] = {}
_notice_shown = False


def _mock_url(latency_s: float) -> str:
    """The embedded mock server's URL; it is started on first use and then shared by the kernel."""
    global _mock_server
    from seeds_nb.mock import MockServer

    with _state_lock:
        if _mock_server is None:
            _mock_server = MockServer(latency_s=latency_s, latency_jitter_s=latency_s).start()
        else:  # %config SeedsBatch.mock_latency_s applies from the next run on
            _mock_server.latency_s = _mock_server.latency_jitter_s = latency_s
        return str(_mock_server.url)


def _partial_result(exc: BaseException | None, client: BaseClient) -> BatchResult | None:
    """What finished before a cancel: from the CancelledError, else from the client's last run."""
    partial = getattr(exc, "partial_result", None)
    if isinstance(partial, BatchResult):
        return partial
    run = client.last_run
    return run.result if run is not None else None


def _run_batch() -> Any:
    from seeds_nb.widgets import run_batch

    return run_batch


async def _drive(job: _Job) -> tuple[BatchResult | None, bool]:
    """Await ``run_batch``; return its result and whether *this* task was cancelled meanwhile.

    ``run_batch`` turns a cancel (kernel interrupt, Ctrl-C) into a normal return of the partial
    result and uncancels its task. Run as a task of its own, it cannot hide the cancel from us: the
    caller's task keeps counting it, so an interrupt still stops the cell while the Cancel button
    (which stops only the batch) does not.
    """
    caller = asyncio.current_task()
    batch = asyncio.ensure_future(_run_batch()(job.client, job.requests, max_concurrent=job.max_concurrent,
                                               grid=job.grid, **job.params))
    result: BatchResult | None
    try:
        result = await batch
    except asyncio.CancelledError as exc:  # cancelled before run_batch could catch it
        result = _partial_result(exc, job.client)
    return result, caller is not None and caller.cancelling() > 0


def _progress_line(result: BatchResult | None) -> str:
    if result is None:
        return "nothing finished"
    return f"{result.successful_count} of {len(result)} prompts answered"


@magics_class
class SeedsBatch(Magics):
    """``%%seeds_batch``; its traits are the defaults, set with ``%config SeedsBatch.<name> = ...``."""

    model = Unicode("gpt-4.1-mini", help="Model used when --model is not given.").tag(config=True)
    provider = Enum(list(PROVIDERS), default_value=None, allow_none=True,
                    help="Provider used when --provider is not given; None picks openai when "
                         "OPENAI_API_KEY or OPENAI_BASE_URL is set, else the offline mock server.").tag(config=True)
    max_concurrent = Integer(5, help="Requests in flight at once when --max-concurrent is not given.").tag(
        config=True)
    cache_dir = Unicode(".seeds_cache", allow_none=True,
                        help="Response cache directory when --cache-dir is not given; None or '' turns the "
                             "cache off by default.").tag(config=True)
    out = Unicode("seeds_result", help="Variable the BatchResult is bound to when --out is not given.").tag(
        config=True)
    mock_latency_s = Float(0.2, help="Simulated latency of the embedded mock server (plus up to as much "
                                     "jitter), so a demo batch visibly runs.").tag(config=True)

    # -- the magic -----------------------------------------------------------------------------
    @ma.magic_arguments()
    @ma.kwds(formatter_class=RawDescriptionHelpFormatter, description=_DESCRIPTION, epilog=_EPILOG)
    @ma.argument("-h", "--help", action="store_true", help="Show this help and send nothing.")
    @ma.argument("--model", help="Model name (default: %%config SeedsBatch.model, 'gpt-4.1-mini').")
    @ma.argument("--provider", choices=PROVIDERS,
                 help="openai (any OpenAI-compatible server), anthropic, or mock (the embedded offline "
                      "server). Default: openai if OPENAI_API_KEY or OPENAI_BASE_URL is set, else mock.")
    @ma.argument("--base-url", metavar="URL",
                 help="OpenAI-compatible server (vLLM, Ollama, ...); implies --provider openai.")
    @ma.argument("--max-concurrent", type=int, metavar="N",
                 help="Requests in flight at once (default: %%config SeedsBatch.max_concurrent, 5).")
    @ma.argument("--system", metavar="TEXT", help="System message for every prompt ({names} filled too).")
    @ma.argument("--temperature", type=float, metavar="T", help="Sampling temperature (>= 0).")
    @ma.argument("--max-tokens", type=int, metavar="N", help="Cap on output tokens per prompt.")
    @ma.argument("--cache-dir", metavar="DIR", help="Response cache directory (default .seeds_cache).")
    @ma.argument("--no-cache", action="store_true", help="Send every prompt, read and write no cache.")
    @ma.argument("--out", metavar="NAME", help="Variable for the BatchResult (default seeds_result).")
    @ma.argument("--over", metavar="VAR",
                 help="Render the cell once per item of VAR: a list ({item}), a list of dicts or a "
                      "DataFrame ({column}), or a dict ({key}, {value}).")
    @ma.argument("--background", action="store_true",
                 help="Return at once; NAME_run is the handle, NAME is bound when the batch ends.")
    @ma.argument("--no-grid", action="store_true", help="Show only the progress panel, no results grid.")
    @ma.argument("--plot", action="store_true", help="Display seeds_nb.plots.summary(result) at the end.")
    @ma.argument("--budget-usd", type=float, metavar="USD",
                 help="Stop sending once this much was spent (prompts not sent fail with BudgetExceeded).")
    @ma.argument("--dry-run", action="store_true",
                 help="Show the rendered prompts, their count and a cost/carbon estimate; send nothing.")
    @cell_magic
    def seeds_batch(self, line: str, cell: str) -> None:
        """Replaced by the argparse help (``_DESCRIPTION`` + options + ``_EPILOG``), shown by ``?``."""
        self.run_blocking(line, cell)

    # -- parsing -------------------------------------------------------------------------------
    @staticmethod
    def help_text() -> str:
        return SeedsBatch.seeds_batch.__doc__ or ""

    def parse(self, line: str) -> Namespace:
        """Parse and validate the options; every problem is a one-line ``UsageError``."""
        try:
            # shlex in POSIX mode, not IPython's arg_split: that one keeps the quotes of
            # --system 'Be terse.' in the value.
            args = SeedsBatch.seeds_batch.parser.parse_args(shlex.split(line))
        except UsageError as exc:
            raise UsageError(f"%%seeds_batch: {exc} (see %%seeds_batch --help)") from None
        except ValueError as exc:  # shlex: "No closing quotation"
            raise UsageError(f"%%seeds_batch: cannot split the options ({exc})") from None
        if args.help:
            return args
        args.model = args.model if args.model is not None else self.model
        args.max_concurrent = args.max_concurrent if args.max_concurrent is not None else self.max_concurrent
        args.out = args.out if args.out is not None else self.out
        if not args.model.strip():
            raise UsageError("--model: expected a model name such as gpt-4.1-mini")
        if args.max_concurrent < 1:
            raise UsageError(f"--max-concurrent must be at least 1; got {args.max_concurrent}")
        if args.temperature is not None and args.temperature < 0:
            raise UsageError(f"--temperature must be >= 0; got {args.temperature:g}")
        if args.max_tokens is not None and args.max_tokens < 1:
            raise UsageError(f"--max-tokens must be at least 1; got {args.max_tokens}")
        if args.budget_usd is not None and not args.budget_usd > 0:
            raise UsageError(f"--budget-usd must be a positive amount; got {args.budget_usd:g}")
        if args.no_cache and args.cache_dir is not None:
            raise UsageError("--no-cache and --cache-dir contradict each other; pass one of them")
        check_name(args.out, "--out")
        if args.provider == "anthropic" or (args.provider is None and self.provider == "anthropic"):
            raise UsageError("--provider anthropic is not available yet in seeds_nb; use openai (or any "
                             "OpenAI-compatible server with --base-url) or mock")
        if args.provider == "mock" and args.base_url:
            raise UsageError("--base-url does not apply to --provider mock (the embedded server has its own URL)")
        if args.background and args.dry_run:
            raise UsageError("--dry-run sends nothing, so --background has nothing to run; pass one of them")
        return args

    def params(self, args: Namespace) -> dict[str, Any]:
        """Generation parameters and the budget, as ``run_batch`` keywords (unset ones left out)."""
        params: dict[str, Any] = {}
        if args.temperature is not None:
            params["temperature"] = args.temperature
        if args.max_tokens is not None:
            params["max_tokens"] = args.max_tokens
        if args.budget_usd is not None:
            params["max_cost_usd"] = args.budget_usd
        return params

    # -- provider and client -------------------------------------------------------------------
    def choose_provider(self, args: Namespace) -> str:
        """--provider, else the configured one, else openai for a base URL or key, else mock."""
        if args.provider is not None:
            return str(args.provider)
        if args.base_url:
            return "openai"
        if self.provider is not None:
            return str(self.provider)
        if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
            return "openai"
        return "mock"

    def cache_dir_for(self, args: Namespace) -> str | None:
        if args.no_cache:
            return None
        directory = args.cache_dir if args.cache_dir is not None else self.cache_dir
        return os.path.abspath(os.path.expanduser(directory)) if directory else None

    def client_for(self, args: Namespace) -> BaseClient:
        """A client per (provider, model, base_url, cache_dir, key), reused from cell to cell."""
        global _notice_shown
        from seeds_nb.providers import OpenAIClient

        provider = self.choose_provider(args)
        cache_dir = self.cache_dir_for(args)
        api_key: str | None = None
        if provider == "mock":
            base_url = _mock_url(self.mock_latency_s)
            api_key = ""  # never send a real key to the local mock
            if args.provider is None and not _notice_shown:
                _notice_shown = True
                print(f"seeds_nb: no OPENAI_API_KEY - using the offline mock server at {base_url} "
                      "(answers are made up; set OPENAI_API_KEY for a real model)")
        else:
            base_url = args.base_url or os.environ.get("OPENAI_BASE_URL") or None
        # The key is part of the reuse key (hashed) so a key set after a 401 takes effect.
        secret = os.environ.get("OPENAI_API_KEY", "") if api_key is None else api_key
        key = (provider, args.model, base_url, cache_dir, hashlib.sha256(secret.encode()).hexdigest()[:16])
        with _state_lock:
            client = _clients.get(key)
            if client is None or client._closed:
                try:
                    # The mock answers the same on any port: keep its cache valid across kernel restarts.
                    scope = "seeds_nb-mock" if provider == "mock" else None
                    client = OpenAIClient(args.model, api_key=api_key, base_url=base_url, cache_dir=cache_dir,
                                          cache_scope=scope)
                except ConfigurationError as exc:
                    raise UsageError(f"%%seeds_batch --provider {provider}: {exc}") from None
                _clients[key] = client
        return client

    # -- preparing a run -----------------------------------------------------------------------
    def prepare(self, line: str, cell: str) -> _Job | None:
        """Parse, render and pick the client; ``None`` when there is nothing to send (help, dry run)."""
        args = self.parse(line)
        if args.help:
            print(self.help_text())
            return None
        prompts = build_prompts(cell, self.shell.user_ns, over=args.over, system=args.system)
        params = self.params(args)
        if args.dry_run:
            provider = self.choose_provider(args)
            label = provider if provider != "mock" else "offline mock server"
            if provider == "openai":
                label = f"openai at {args.base_url or os.environ.get('OPENAI_BASE_URL') or 'api.openai.com'}"
            gen = {k: v for k, v in params.items() if k != "max_cost_usd"}
            plan = estimate_plan(prompts, model=args.model, provider=label, max_concurrent=args.max_concurrent,
                                 params=gen)
            if args.budget_usd is not None:
                plan.notes.append(f"budget: stops sending after ${args.budget_usd:g}")
            display(plan)
            return None
        client = self.client_for(args)
        return _Job(client, prompts, args.out, args.max_concurrent, params, args.background,
                    not args.no_grid, args.plot)

    def _bind(self, name: str, value: Any) -> None:
        self.shell.user_ns[name] = value

    def _finish(self, job: _Job, result: BatchResult) -> None:
        self._bind(job.out, result)
        if job.plot:
            from seeds_nb.plots import summary

            display(summary(result))

    # -- the three ways to run -----------------------------------------------------------------
    async def run_async(self, line: str, cell: str) -> None:
        """The await path (the input transformer's target)."""
        job = self.prepare(line, cell)
        if job is None:
            return
        if job.background:
            self.start_background(job)
            return
        result, interrupted = await _drive(job)
        if interrupted:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # handled: reported just below
            if result is not None:
                self._bind(job.out, result)
            raise BatchInterrupted(f"kernel interrupt - {_progress_line(result)}; the partial result is in "
                                   f"{job.out} (with the cache on, re-running the cell sends only the rest)")
        assert result is not None
        self._finish(job, result)

    def run_blocking(self, line: str, cell: str) -> None:
        """The sync path: the batch on a private loop (a worker thread inside a running loop);
        Ctrl-C cancels it, binds the partial result and re-raises ``KeyboardInterrupt``."""
        job = self.prepare(line, cell)
        if job is None:
            return
        if job.background:
            self.start_background(job)
            return
        box: dict[str, BatchResult | None] = {}
        finished = threading.Event()

        async def go() -> None:
            try:
                box["result"], interrupted = await _drive(job)
                if interrupted:  # let run_sync / asyncio.run turn it back into KeyboardInterrupt
                    raise asyncio.CancelledError
            finally:
                finished.set()

        try:
            job.client.run_sync(go)
        except KeyboardInterrupt:
            # On Python 3.11 a Thread.join() interrupted by Ctrl-C marks the thread stopped, so
            # run_sync may return before the cancelled batch has unwound: wait for it here.
            finished.wait(10)
            result = box.get("result") or _partial_result(None, job.client)
            if result is not None:
                self._bind(job.out, result)
            print(f"seeds_nb: interrupted - {_progress_line(result)}; the partial result is in {job.out}",
                  file=sys.stderr)
            raise
        result = box.get("result")
        assert result is not None
        self._finish(job, result)

    def start_background(self, job: _Job) -> BackgroundBatch:
        """Start the run, bind its handle as ``<out>_run`` now and the result as ``<out>`` when done.

        A stale ``<out>`` from an earlier run is removed, so reading it too early is a NameError
        rather than a silently old result.
        """
        handle = _run_batch()(job.client, job.requests, max_concurrent=job.max_concurrent, grid=job.grid,
                              background=True, **job.params)
        plot_area = None
        if job.plot:
            import ipywidgets

            plot_area = ipywidgets.Output()
            display(plot_area)
        user_ns = self.shell.user_ns
        user_ns.pop(job.out, None)
        bound = BackgroundBatch(handle, user_ns, job.out, plot_area)
        user_ns[f"{job.out}_run"] = bound
        return bound
