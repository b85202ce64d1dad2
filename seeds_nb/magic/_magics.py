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

The await and blocking flows of a batch live in ``_send``; ``--submit`` sends the prompts as one
server-side Batch API job instead, in the same three ways (``_submit``). ``--provider`` picks
``OpenAIClient`` (openai, and the offline mock) or ``AnthropicClient``.

Why not ``nest_asyncio``: measured in a kernel, it loses Cancel clicks and leaves requests running
after Ctrl-C. A user who applied it for another library is still served (the await path does not
care; the blocking path uses its own fresh loop).
"""

from __future__ import annotations

import hashlib
import math
import os
import shlex
import threading
from argparse import Namespace, RawDescriptionHelpFormatter
from typing import Any
from urllib.parse import urlsplit

from IPython.core import magic_arguments as ma
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.display import display
from pydantic import BaseModel
from traitlets import Enum, Float, Integer, Unicode

from seeds_nb.core.client import BaseClient
from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.result import BatchResult
from seeds_nb.providers import AnthropicClient, GoogleClient, OpenAIClient, OpenRouterClient, SelfHostedClient

from ._background import BackgroundBatch
from ._plan import estimate_plan
from ._render import build_prompts, check_name, sink_rows
from ._send import SendMixin
from ._spec import BatchInterrupted, CellJob
from ._submit import SubmitMixin

__all__ = ["BatchInterrupted", "SeedsBatch"]

#: --provider's choices and their clients (the mock speaks OpenAI's protocol). What each reads from the
#: environment (key and base URL variables) and its default model live on the class (``from_env``).
CLIENTS: dict[str, type[BaseClient]] = {"openai": OpenAIClient, "anthropic": AnthropicClient, "google": GoogleClient,
                                        "openrouter": OpenRouterClient, "selfhosted": SelfHostedClient,
                                        "mock": OpenAIClient}
PROVIDERS = tuple(CLIENTS)


def _default_model(provider: str) -> str:
    """The model when neither --model nor %config SeedsBatch.model gives one: the client's own default."""
    return CLIENTS[provider].default_model or ""


def _default_host(provider: str) -> str:
    """The host a provider's client talks to without a base URL (what --dry-run says it would reach)."""
    url = CLIENTS[provider].default_base_url
    return (urlsplit(url).hostname or url) if url else "(no server: pass --base-url)"
MOCK_POLL_S, PROVIDER_POLL_S = 0.25, 10.0
"""--submit's default --poll-interval: the offline mock ends a job in seconds, a provider in minutes to hours."""

_DESCRIPTION = """\
Send each prompt of the cell to an LLM as one batch and watch it run (live panel, Cancel
button, results grid). A kernel interrupt stops it and keeps what finished.
"""

_EPILOG_DEFAULTS = """\
prompts:
  One prompt per non-empty line. When the cell has a line holding only ---, prompts are the
  blocks between such lines instead (for multi-line prompts).
  {name} is filled from the notebook's variables ({{ and }} are literal braces). With --over VAR
  the cell is rendered once per item: {item} for plain values, {column} for dict keys and
  DataFrame columns.

defaults:
  %config SeedsBatch.model = "gpt-4o"           (also provider, max_concurrent, cache_dir, out,
  %config SeedsBatch.max_concurrent = 5          mock_latency_s, mock_batch_duration_s)
  Without OPENAI_API_KEY / OPENAI_BASE_URL the embedded offline mock server answers.
  Each provider's default model, and where its client reads the key and the server from
  (--base-url wins over the variable):
{providers}
"""

_EPILOG_RESULT = """\
result:
  The BatchResult is bound to seeds_result (--out NAME); nothing is echoed, the live panel
  shows the run. With --background the handle is bound at once to NAME_run.
  With --submit the BatchJob is bound at once to NAME_job, and the result when the job ends.
  With --schema CLASS each answer is parsed into that pydantic model (response.parsed; the
  grid and result.to_pandas() show its fields as columns). With --over VAR --sink PATH the
  rows go to a Parquet/JSONL file as they finish (resumed when the cell runs again) and NAME
  is the file's path.

examples:
  %%seeds_batch --model gpt-4.1-mini --max-concurrent 8 --over cities
  Describe {item} in one sentence.

  %%seeds_batch --provider anthropic --submit --over abstracts
  Summarise in one line: {item}
"""


def _provider_table() -> str:
    """The defaults section's table, read from the client classes (what they do is what the help says)."""
    rows = []
    for name, cls in CLIENTS.items():
        if name == "mock":
            continue
        keys = " or ".join(cls.api_key_env)
        servers = " or ".join(cls.base_url_env)
        where = f"{servers}, else {_default_host(name)}" if cls.default_base_url else f"{servers} (required)"
        rows.append(f"    {name:<11} model {cls.default_model}; key {keys}\n{'':16}server {where}")
    return "\n".join(rows)


_EPILOG = _EPILOG_DEFAULTS.replace("{providers}", _provider_table()) + "\n" + _EPILOG_RESULT


# Kernel-wide state: one mock server and one client per configuration, so connection pools and
# cache handles are reused from cell to cell (module globals survive %reload_ext).
_state_lock = threading.Lock()
_mock_server: Any = None
_clients: dict[tuple[str, str, str | None, str | None, str], BaseClient] = {}
_notice_shown = False


def _mock_url(latency_s: float, batch_duration_s: float) -> str:
    """The embedded mock server's URL; it is started on first use and then shared by the kernel."""
    global _mock_server
    from seeds_nb.mock import MockServer

    with _state_lock:
        if _mock_server is None:
            _mock_server = MockServer(latency_s=latency_s, latency_jitter_s=latency_s,
                                      batch_duration_s=batch_duration_s).start()
        else:  # %config SeedsBatch.mock_* applies from the next run (the next job) on
            _mock_server.latency_s = _mock_server.latency_jitter_s = latency_s
            _mock_server.batch_duration_s = batch_duration_s
        return str(_mock_server.url)


@magics_class
class SeedsBatch(Magics, SendMixin, SubmitMixin):
    """``%%seeds_batch``; its traits are the defaults, set with ``%config SeedsBatch.<name> = ...``."""

    model = Unicode(None, allow_none=True,
                    help="Model used when --model is not given; None: gpt-4.1-mini, or claude-haiku-4-5 "
                         "with --provider anthropic.").tag(config=True)
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
    mock_batch_duration_s = Float(2.0, help="How long a --submit job takes on the embedded mock server "
                                            "(a provider's 'within 24 h').").tag(config=True)

    # -- the magic -----------------------------------------------------------------------------
    @ma.magic_arguments()
    @ma.kwds(formatter_class=RawDescriptionHelpFormatter, description=_DESCRIPTION, epilog=_EPILOG)
    @ma.argument("-h", "--help", action="store_true", help="Show this help and send nothing.")
    @ma.argument("--model", help="Model name (default: %%config SeedsBatch.model, else the provider's: "
                                 + ", ".join(f"'{_default_model(name)}' with {name}" for name in PROVIDERS
                                             if name != "mock") + ").")
    @ma.argument("--provider", choices=PROVIDERS,
                 help="openai (any OpenAI-compatible server), anthropic (key: ANTHROPIC_API_KEY), google "
                      "(Gemini; GEMINI_API_KEY or GOOGLE_API_KEY), openrouter (OPENROUTER_API_KEY), selfhosted "
                      "(your server reporting measured carbon: --base-url or SELFHOSTED_BASE_URL), or mock "
                      "(the embedded offline server, OpenAI protocol). Default: openai if OPENAI_API_KEY or "
                      "OPENAI_BASE_URL is set, else mock.")
    @ma.argument("--base-url", metavar="URL",
                 help="Server URL: an OpenAI-compatible server (vLLM, Ollama, ...; implies --provider openai), "
                      "or with --provider anthropic / google / openrouter / selfhosted one of theirs (default: "
                      "ANTHROPIC_BASE_URL / GOOGLE_GEMINI_BASE_URL / OPENROUTER_BASE_URL / SELFHOSTED_BASE_URL).")
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
    @ma.argument("--schema", metavar="CLASS",
                 help="Structured output: a pydantic model class (or a JSON-schema response_format dict) in the "
                      "notebook; answers are validated into it and its fields become columns.")
    @ma.argument("--sink", metavar="PATH",
                 help="With --over: write each row with its answer to PATH (.parquet or .jsonl) as it finishes, "
                      "keep nothing in memory, and resume from PATH when the cell runs again; NAME is the path.")
    @ma.argument("--background", action="store_true",
                 help="Return at once; NAME_run is the handle, NAME is bound when the batch ends.")
    @ma.argument("--no-grid", action="store_true", help="Show only the progress panel, no results grid.")
    @ma.argument("--plot", action="store_true", help="Display seeds_nb.plots.summary(result) at the end.")
    @ma.argument("--budget-usd", type=float, metavar="USD",
                 help="Stop sending once this much was spent (prompts not sent fail with BudgetExceeded).")
    @ma.argument("--dry-run", action="store_true",
                 help="Show the rendered prompts, their count and a cost/carbon estimate; send nothing.")
    @ma.argument("--submit", action="store_true",
                 help="Send the prompts as one server-side Batch API job (half price, results within 24 h): "
                      "NAME_job is the BatchJob, a monitor shows it, NAME the result when it ends; an "
                      "interrupt stops only the watching.")
    @ma.argument("--poll-interval", type=float, metavar="S",
                 help="With --submit: seconds between two polls of the job (default 0.25 on the mock, "
                      "else 10).")
    @cell_magic
    def seeds_batch(self, line: str, cell: str) -> None:
        """Replaced by the argparse help (``_DESCRIPTION`` + options + ``_EPILOG``), shown by ``?``."""
        self.run_blocking(line, cell)

    # -- parsing -------------------------------------------------------------------------------
    @staticmethod
    def help_text() -> str:
        return SeedsBatch.seeds_batch.__doc__ or ""

    @property
    def user_ns(self) -> dict[str, Any]:
        """The notebook's namespace (the magic only runs inside a shell)."""
        if self.shell is None:
            raise UsageError("%%seeds_batch needs an IPython shell")
        return self.shell.user_ns

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
        if args.submit:
            if args.budget_usd is not None:
                raise UsageError("--budget-usd does not apply to --submit: a Batch API job cannot stop part-way "
                                 "on spending (--dry-run --submit estimates its cost)")
            if args.max_concurrent is not None:
                raise UsageError("--max-concurrent does not apply to --submit: the provider schedules a Batch "
                                 "API job's requests")
        elif args.poll_interval is not None:
            raise UsageError("--poll-interval applies to --submit only")
        # math.isfinite too: argparse's float() takes nan, inf and 1e999, and nan passes every comparison.
        if args.poll_interval is not None and not (args.poll_interval > 0 and math.isfinite(args.poll_interval)):
            raise UsageError("--poll-interval must be a positive number of seconds (finite, such as 30); "
                             f"got {args.poll_interval:g}")
        if args.model is None:
            args.model = self.model or _default_model(self.choose_provider(args))
        args.max_concurrent = args.max_concurrent if args.max_concurrent is not None else self.max_concurrent
        args.out = args.out if args.out is not None else self.out
        if not args.model.strip():
            raise UsageError("--model: expected a model name such as gpt-4.1-mini")
        if args.max_concurrent < 1:
            raise UsageError(f"--max-concurrent must be at least 1; got {args.max_concurrent}")
        if args.temperature is not None and not (args.temperature >= 0 and math.isfinite(args.temperature)):
            raise UsageError(f"--temperature must be >= 0 and finite (a number such as 0.7); got {args.temperature:g}")
        if args.max_tokens is not None and args.max_tokens < 1:
            raise UsageError(f"--max-tokens must be at least 1; got {args.max_tokens}")
        if args.budget_usd is not None and not (args.budget_usd > 0 and math.isfinite(args.budget_usd)):
            raise UsageError("--budget-usd must be a positive amount (a finite number such as 0.50); "
                             f"got {args.budget_usd:g}")
        if args.no_cache and args.cache_dir is not None:
            raise UsageError("--no-cache and --cache-dir contradict each other; pass one of them")
        check_name(args.out, "--out")
        for bound in (f"{args.out}_run", f"{args.out}_job"):  # --background's handle, --submit's job
            check_name(bound, f"--out {args.out} would bind")
        if args.provider == "mock" and args.base_url:
            raise UsageError("--base-url does not apply to --provider mock (the embedded server has its own URL)")
        if args.background and args.dry_run:
            raise UsageError("--dry-run sends nothing, so --background has nothing to run; pass one of them")
        if args.sink is not None:
            if args.over is None:
                raise UsageError("--sink writes one row per item of --over VAR: pass --over too")
            for flag, given in (("--submit", args.submit), ("--plot", args.plot)):
                if given:
                    raise UsageError(f"--sink does not combine with {flag}: the rows are in the sink file, not in "
                                     "memory (read it with pd.read_parquet(path))")
            if not args.sink.lower().endswith((".parquet", ".jsonl")):
                raise UsageError(f"--sink {args.sink}: expected a path ending in .parquet or .jsonl")
        if args.schema is not None:
            check_name(args.schema, "--schema", bound=False)
        return args

    def schema(self, args: Namespace) -> Any:
        """The ``--schema`` class (or JSON-schema dict) from the notebook, checked."""
        if args.schema is None:
            return None
        if args.schema not in self.user_ns:
            raise UsageError(f"--schema {args.schema}: no variable named {args.schema!r} in the notebook; define "
                             "a pydantic model first (class Label(BaseModel): ...)")
        value = self.user_ns[args.schema]
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value
        if isinstance(value, dict) and value.get("type") in ("json_schema", "json_object"):
            return value
        raise UsageError(f"--schema {args.schema}: expected a pydantic model class (class {args.schema}(BaseModel): "
                         f"...) or a response_format dict; got {type(value).__name__}")

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
        if OpenAIClient.env_api_key() or OpenAIClient.env_base_url():
            return "openai"
        return "mock"

    def cache_dir_for(self, args: Namespace) -> str | None:
        if args.no_cache:
            return None
        directory = args.cache_dir if args.cache_dir is not None else self.cache_dir
        return os.path.abspath(os.path.expanduser(directory)) if directory else None

    @staticmethod
    def base_url_for(args: Namespace, provider: str) -> str | None:
        """--base-url, else the provider's environment variable; None: the client's default."""
        return args.base_url or CLIENTS.get(provider, OpenAIClient).env_base_url() or None

    def client_for(self, args: Namespace) -> BaseClient:
        """A client per (provider, model, base_url, cache_dir, key), reused from cell to cell."""
        global _notice_shown
        provider = self.choose_provider(args)
        cache_dir = self.cache_dir_for(args)
        api_key: str | None = None
        base_url: str | None
        if provider == "mock":
            base_url = _mock_url(self.mock_latency_s, self.mock_batch_duration_s)
            api_key = ""  # never send a real key to the local mock
            if args.provider is None and not _notice_shown:
                _notice_shown = True
                why = "SeedsBatch.provider = 'mock'" if self.provider == "mock" else "no OPENAI_API_KEY"
                print(f"seeds_nb: {why} - using the offline mock server at {base_url} "
                      "(answers are made up; set OPENAI_API_KEY for a real model, or use --provider anthropic)")
        else:
            base_url = self.base_url_for(args, provider)
        # The key is part of the reuse key (hashed) so a key set after a 401 takes effect.
        cls = CLIENTS[provider]
        key_hash = hashlib.sha256(((cls.env_api_key().get() or "") if api_key is None else api_key).encode()
                                  ).hexdigest()
        key = (provider, args.model, base_url, cache_dir, key_hash[:16])  # the raw key is never a local
        with _state_lock:
            client = _clients.get(key)
            if client is None or client.closed:
                try:
                    # The mock answers the same on any port: keep its cache valid across kernel restarts.
                    scope = "seeds_nb-mock" if provider == "mock" else None
                    client = cls(args.model, api_key=api_key, base_url=base_url, cache_dir=cache_dir,
                                 cache_scope=scope)
                except ConfigurationError as exc:
                    raise UsageError(f"%%seeds_batch --provider {provider}: {exc}") from None
                _clients[key] = client
        return client

    # -- preparing a run -----------------------------------------------------------------------
    def prepare(self, line: str, cell: str) -> CellJob | None:
        """Parse, render and pick the client; ``None`` when there is nothing to send (help, dry run)."""
        args = self.parse(line)
        if args.help:
            print(self.help_text())
            return None
        prompts = build_prompts(cell, self.user_ns, over=args.over, system=args.system)
        params = self.params(args)
        schema = self.schema(args)
        if schema is not None:
            params["response_format"] = schema
        table = row_prompt = None
        if args.sink is not None:
            table, row_prompt = sink_rows(cell, self.user_ns, args.over, args.system)
        if args.dry_run:
            provider = self.choose_provider(args)
            label = provider if provider != "mock" else "offline mock server"
            if provider != "mock":
                label = f"{provider} at {self.base_url_for(args, provider) or _default_host(provider)}"
            gen = {k: v for k, v in params.items() if k != "max_cost_usd"}
            if args.sink is not None:
                plan_note = (f"--sink {args.sink}: rows it already holds are skipped when the cell runs (this "
                             "estimate counts every row)")
            else:
                plan_note = None
            plan = estimate_plan(prompts, model=args.model, provider=provider, label=label,
                                 max_concurrent=args.max_concurrent, params=gen, batch=args.submit)
            if args.budget_usd is not None:
                plan.notes.append(f"budget: stops sending after ${args.budget_usd:g}")
            if plan_note:
                plan.notes.append(plan_note)
            display(plan)
            return None
        client = self.client_for(args)
        poll = args.poll_interval or (MOCK_POLL_S if self.choose_provider(args) == "mock" else PROVIDER_POLL_S)
        return CellJob(client, prompts, args.out, args.max_concurrent, params, args.background,
                       not args.no_grid and args.sink is None, args.plot, submit=args.submit, poll_interval=poll,
                       table=table, row_prompt=row_prompt, sink=args.sink)

    def _bind(self, name: str, value: Any) -> None:
        self.user_ns[name] = value

    def _finish(self, job: CellJob, result: BatchResult) -> None:
        self._bind(job.out, result)
        if job.sink is not None:  # bound to the sink's path; the rows are in the file
            return
        if job.submit and job.grid:  # a batch shows its grid live; a job's results arrive at once
            from seeds_nb.widgets import ResultsGrid

            display(ResultsGrid.from_result(result, job.requests))
        if job.plot:
            from seeds_nb.plots import summary

            display(summary(result))

    # -- the three ways to run -----------------------------------------------------------------
    async def run_async(self, line: str, cell: str) -> None:
        """The await path (the input transformer's target)."""
        job = self.prepare(line, cell)
        if job is None:
            return
        if job.submit:
            await self.submit_async(job)
        elif job.background:
            self.start_background(job)
        else:
            await self.send_async(job)

    def run_blocking(self, line: str, cell: str) -> None:
        """The sync path (``run_cell_magic``, ``%autoawait off``): the work on a private loop in a worker
        thread; Ctrl-C stops it."""
        job = self.prepare(line, cell)
        if job is None:
            return
        if job.submit:
            self.submit_blocking(job)
        elif job.background:
            self.start_background(job)
        else:
            self.send_blocking(job)

    def start_background(self, job: CellJob, handle: Any = None) -> BackgroundBatch:
        """Start the run (or take ``handle``, a submitted job's watcher), bind it as ``<out>_run`` now
        and the result as ``<out>`` when done.

        A stale ``<out>`` from an earlier run is removed, so reading it too early is a NameError
        rather than a silently old result.
        """
        if handle is None:
            handle = self._pending(job, background=True)
        plot_area = None
        if job.plot:
            import ipywidgets

            plot_area = ipywidgets.Output()
            display(plot_area)
        user_ns = self.user_ns
        user_ns.pop(job.out, None)
        bound = BackgroundBatch(handle, user_ns, job.out, plot_area)
        user_ns[f"{job.out}_run"] = bound
        return bound
