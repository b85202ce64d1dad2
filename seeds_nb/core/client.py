"""The client base class: configuration, checked once, and the public entry points.

A provider's client subclasses it and picks its ``Codec`` (the translation); the request path itself
is the ``Pipeline`` (``client.pipeline``) and the batch engine is ``BatchRun``. Everything here is
validation and wiring, so a bad argument fails in the caller's line with a message that says the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx

from .batch import BatchRun, BatchStream, ProgressCallback
from .batch_api import BatchAPI
from .boamps import check_options, export_boamps_report
from .cache import ResponseCache
from .codec import Codec
from .estimate import Estimate, estimate_prompts
from .exceptions import ConfigurationError
from .ledger import LifetimeTracking
from .mapping import MapJob, PromptRows, check_clash, parsed_fields
from .pipeline import Pipeline
from .ratelimit import Gate, RateGate
from .result import BatchResult
from .retry import RetryPolicy
from .runner import run_sync
from .secrets import Secret, mask_secret
from .sink import Sink, prompt_hash
from .tables import Table, as_table
from .tooling import requested_columns
from .tracking import DEFAULT_ZONE, Tracker
from .types import Response, Unsendable, check_prompts

__all__ = ["BaseClient", "check_base_url"]


def _positive(name: str, value: Any, *, allow_none: bool = False, allow_zero: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        none = " (or None)" if allow_none else ""
        raise ConfigurationError(f"{name} must be a finite number {bound}{none}; got {value!r}")


def _unit_prices(value: Any) -> tuple[float, float] | None:
    """``usd_per_million_tokens`` (one price, or (input, output)) as USD per (input, output) token."""
    if value is None:
        return None
    pair = (value, value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    if (not isinstance(pair, tuple | list) or len(pair) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                       for v in pair)):
        raise ConfigurationError("usd_per_million_tokens must be a price >= 0 in US dollars per million tokens, "
                                 f"or a pair (input, output), e.g. (0.10, 0.40); got {value!r}")
    return (float(pair[0]) / 1e6, float(pair[1]) / 1e6)


def check_base_url(base_url: Any) -> str:
    """``base_url`` without a trailing slash, or a ``ConfigurationError`` naming what is wrong."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://; got {base_url!r}")
    try:
        host = httpx.URL(base_url).host
    except (httpx.InvalidURL, ValueError) as exc:
        raise ConfigurationError(f"base_url {base_url!r} is not a valid URL ({exc})") from None
    if not host:
        raise ConfigurationError(f"base_url {base_url!r} has no host; e.g. http://127.0.0.1:8000/v1")
    return base_url.rstrip("/")


class BaseClient:
    """Shared machinery of every provider client. Use a provider class such as ``OpenAIClient``."""

    provider: ClassVar[str] = "base"
    #: the translation between our types and the provider's protocol
    codec_class: ClassVar[type[Codec]] = Codec
    #: the provider's server-side Batch API, if it has one (see ``submit_batch``)
    batch_api_class: ClassVar[type[BatchAPI] | None] = None
    # What the provider's environment configures, in one place: the constructor, ``from_env`` and the
    # ``%%seeds_batch`` magic all read these (none keeps its own table of variable names).
    #: the model ``from_env()`` (and ``%%seeds_batch --provider ...``) uses when none is given
    default_model: ClassVar[str | None] = None
    #: environment variables holding the API key, read in this order when ``api_key`` is not given
    api_key_env: ClassVar[tuple[str, ...]] = ()
    #: environment variables holding the server's URL, read in this order when ``base_url`` is not given
    base_url_env: ClassVar[tuple[str, ...]] = ()
    #: the provider's own server, when neither ``base_url`` nor a variable names one (None: there is
    #: none, e.g. a self-hosted server must be named)
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        model: str,
        *,
        api_key: Secret | str | None,
        base_url: str | None,
        cache_dir: str | os.PathLike[str] | None = None,
        cache_ttl_s: float | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        max_retry_wait_s: float = 60.0,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        electricity_mix_zone: str = DEFAULT_ZONE,
        price_model: str | None = None,
        impacts_model: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cache_scope: str | None = None,
        codec: Codec | None = None,
        ttl_hours: float | None = None,
        enable_tracking: bool = True,
        tracking_method: str = "ecologits",
        usd_per_million_tokens: float | tuple[float, float] | None = None,
        gate: Gate | None = None,
        **defaults: Any,
    ) -> None:
        """``defaults``: generation parameters (``temperature=0.2, max_tokens=500``...) every call sends
        unless it passes its own; they are part of the cache key. ``ttl_hours`` is ``cache_ttl_s`` in
        hours; ``enable_tracking=False`` (or ``tracking_method='none'``) leaves cost and carbon unknown;
        ``tracking_method='measured'`` takes a self-hosted server's own figures (``SelfHostedClient``).
        ``usd_per_million_tokens=(input, output)`` (or one price for both) prices a model no price table
        knows, e.g. what a local GPU costs you per token.
        ``gate``: a rate gate shared beyond this client (``seeds_nb.ray`` passes its cluster-wide one); the
        limits are then the gate's, so it excludes ``requests_per_minute``/``tokens_per_minute``."""
        secret = api_key if isinstance(api_key, Secret) else Secret(api_key)
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError("model must be a non-empty string, e.g. model='gpt-4.1-mini'")
        _positive("timeout", timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an integer >= 0; got {max_retries!r}")
        _positive("max_retry_wait_s", max_retry_wait_s, allow_zero=True)
        _positive("requests_per_minute", requests_per_minute, allow_none=True)
        _positive("tokens_per_minute", tokens_per_minute, allow_none=True)
        _positive("cache_ttl_s", cache_ttl_s, allow_none=True)
        _positive("ttl_hours", ttl_hours, allow_none=True)
        if gate is not None and (requests_per_minute is not None or tokens_per_minute is not None):
            raise ConfigurationError("pass the rate limits to the shared gate, not to a client given gate=; "
                                     "drop requests_per_minute/tokens_per_minute here")
        if ttl_hours is not None:
            if cache_ttl_s is not None:
                raise ConfigurationError("pass the cache's lifetime once: cache_ttl_s (seconds) or ttl_hours")
            cache_ttl_s = ttl_hours * 3600.0
        codec_type = type(codec) if codec is not None else self.codec_class
        if tracking_method == "codecarbon" and codec_type.measures_impacts:
            tracking_method = "measured"  # the original's name: the server measured it with CodeCarbon
        methods = ("ecologits", "measured", "none") if codec_type.measures_impacts else ("ecologits", "none")
        if tracking_method not in methods or not isinstance(enable_tracking, bool):
            measured = ("" if codec_type.measures_impacts else
                        "; carbon measured by the server itself is read by SelfHostedClient (tracking_method="
                        "'measured')")
            raise ConfigurationError(
                f"tracking_method must be 'ecologits' (cost from genai-prices, carbon estimated by EcoLogits)"
                f"{', measured' if codec_type.measures_impacts else ''} or 'none', and enable_tracking True or "
                f"False; got tracking_method={tracking_method!r}, enable_tracking={enable_tracking!r}{measured}")
        usd_per_token = _unit_prices(usd_per_million_tokens)
        if usd_per_token is not None and price_model is not None:
            raise ConfigurationError("price the model once: price_model= (a known model's price) or "
                                     "usd_per_million_tokens= (your own), not both")
        if cache_dir is not None and (not isinstance(cache_dir, str | os.PathLike) or not str(cache_dir).strip()):
            raise ConfigurationError(f"cache_dir must be a directory path, or None for no cache; got {cache_dir!r}")
        if not isinstance(electricity_mix_zone, str) or not electricity_mix_zone:
            raise ConfigurationError(f"electricity_mix_zone must be a zone code such as 'WOR' or 'FRA'; "
                                     f"got {electricity_mix_zone!r}")
        base_url = check_base_url(base_url)
        self.model = model
        self.base_url = base_url
        #: what names the server in cache keys: the base URL, unless two URLs serve the same
        #: model (the mock on a new port after a kernel restart, a load-balanced deployment)
        self.cache_scope = cache_scope or base_url
        self.timeout = float(timeout)
        self._api_key = secret
        codec = codec or self.codec_class(model=model, base_url=base_url)
        unknown = set(defaults) - codec.known_params - set(codec.param_aliases) - set(codec.unsupported)
        if unknown:
            raise ConfigurationError(
                f"{type(self).__name__} got unknown argument(s) {', '.join(sorted(unknown))}: neither a client "
                f"option nor a generation parameter it sends (those, given here as defaults for every call: "
                f"{', '.join(sorted(codec.known_params))})")
        cache = ResponseCache(Path(cache_dir), ttl_s=cache_ttl_s) if cache_dir is not None else None
        self.pipeline = Pipeline(
            codec, secret=secret, timeout=self.timeout,
            retry=RetryPolicy(max_retries=max_retries, max_wait_s=float(max_retry_wait_s)),
            gate=gate if gate is not None else RateGate(requests_per_minute, tokens_per_minute),
            tracker=Tracker(self.provider, electricity_mix_zone=electricity_mix_zone, price_model=price_model,
                            impacts_model=impacts_model, route=codec.tracking_targets,
                            enabled=enable_tracking and tracking_method != "none",
                            measured=tracking_method == "measured", usd_per_token=usd_per_token),
            cache=cache, cache_scope=self.cache_scope, transport=transport, defaults=defaults,
        )
        self._closed = False
        self.last_run: BatchRun | None = None

    # -- what the pipeline is made of, for reading and tests ---------------------------------------
    @property
    def cache(self) -> ResponseCache | None:
        return self.pipeline.cache

    @property
    def tracker(self) -> Tracker:
        return self.pipeline.tracker

    @property
    def defaults(self) -> dict[str, Any]:
        """The generation parameters given to the constructor (a call's own values override them)."""
        return self.pipeline.defaults

    @property
    def gate(self) -> Gate:
        return self.pipeline.gate

    # -- what the client did over its life ---------------------------------------------------------
    @property
    def tracking(self) -> LifetimeTracking:
        """Totals over every request this client made (``generate``, batches, ``map``, Batch API results):
        answers from the API and from the cache apart, spent and avoided cost and carbon, hit rate,
        errors; ``client.tracking.reset()`` starts again from zero. The sum of the runs' ledgers."""
        return self.pipeline.lifetime

    @property
    def cumulative_tracking(self) -> LifetimeTracking:
        """``tracking`` under the original library's name."""
        return self.pipeline.lifetime

    def get_cumulative_tracking(self) -> LifetimeTracking:
        """``client.tracking`` (the original library's method)."""
        return self.pipeline.lifetime

    def reset_cumulative_tracking(self) -> None:
        """``client.tracking.reset()`` (the original library's method)."""
        self.pipeline.lifetime.reset()

    def export_boamps_report(self, output_path: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
        """``export_boamps_report(output_path, client, **options)``: a BoAmps report of this client's
        lifetime tracking, written to ``output_path`` and returned as a dict."""
        check_options(options)
        return export_boamps_report(output_path, self, **options)

    @property
    def retry(self) -> RetryPolicy:
        return self.pipeline.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        """Replace the retry policy (e.g. shorter backoffs in a demo)."""
        self.pipeline.retry = policy

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def api_key_hint(self) -> str | None:
        """The masked API key, safe to show."""
        return mask_secret(self._api_key.get())

    # -- what the environment configures -------------------------------------------------------
    @classmethod
    def env_api_key(cls) -> Secret:
        """The key from the first of ``api_key_env`` that is set (empty: none is), held in a ``Secret`` so
        that no repr, log or traceback shows it."""
        return Secret(next((os.environ[name] for name in cls.api_key_env if os.environ.get(name)), None))

    @classmethod
    def env_base_url(cls) -> str | None:
        """The URL from the first of ``base_url_env`` that is set; None when none is (then the client
        talks to ``default_base_url``)."""
        return next((os.environ[name] for name in cls.base_url_env if os.environ.get(name)), None)

    @classmethod
    def resolve_credentials(cls, api_key: str | Secret | None, base_url: str | None) -> tuple[Secret, str | None]:
        """The constructor's rule, once for every provider: the given key, else ``env_api_key()``; the
        given URL, else ``env_base_url()``, else ``default_base_url``."""
        if isinstance(api_key, Secret):
            secret = api_key
        else:
            secret = Secret(api_key) if api_key is not None else cls.env_api_key()
        return secret, base_url or cls.env_base_url() or cls.default_base_url

    @classmethod
    def from_env(cls, model: str | None = None, **kwargs: Any) -> Self:
        """The client as the provider's usual environment variables configure it (the key from
        ``api_key_env``, the server from ``base_url_env``), for ``model`` or the provider's
        ``default_model``; ``kwargs`` go to the constructor (an explicit ``api_key=``/``base_url=`` wins).

        Why a classmethod: what a provider reads from the environment lives on its class, so scripts,
        notebooks and ``%%seeds_batch`` build the same client the same way."""
        if model is None:
            model = cls.default_model
            if model is None:
                raise ConfigurationError(f"{cls.__name__} has no default model: pass one, e.g. "
                                         f"{cls.__name__}.from_env('my-model')")
        return cls(model, **kwargs)

    def __repr__(self) -> str:
        state = vars(self)  # safe on a half-built client too (a traceback of a failed __init__ shows it)
        pipeline = state.get("pipeline")
        cache = f", cache_dir={str(pipeline.cache.directory)!r}" if pipeline is not None and pipeline.cache else ""
        key = state.get("_api_key")
        return (f"{type(self).__name__}(model={state.get('model')!r}, base_url={state.get('base_url')!r}, "
                f"api_key={key.masked if isinstance(key, Secret) else None!r}{cache})")

    def __reduce__(self) -> Any:
        raise TypeError(f"a {type(self).__name__} is not pickled (it holds an API key and open connections); "
                        "build a new client where it is needed")

    # -- lifecycle -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(f"this {type(self).__name__} is closed; create a new client")

    async def aclose(self) -> None:
        """Close the connection pools and flush the cache; idempotent."""
        self._closed = True
        await self.pipeline.aclose()
        if self.cache is not None:
            self.cache.close()

    def close(self) -> None:
        """Sync ``aclose`` (for scripts and the end of a notebook)."""
        self._closed = True
        self.pipeline.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> BaseClient:
        """``with client:`` in a script closes it at the end, as ``async with`` does."""
        self._check_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> BaseClient:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def warm_up(self) -> None:
        """Load the cost and impact data in a thread, once, off the event loop (a batch calls it)."""
        await self.pipeline.warm_up()

    # -- the cache -------------------------------------------------------------------------------
    def clear_cache(self) -> int:
        """Delete every cached answer in this client's ``cache_dir`` (shared with any other client using
        that directory) and return how many there were; 0 without a cache."""
        return self.cache.clear() if self.cache is not None else 0

    def get_cache_stats(self) -> dict[str, Any]:
        """The cache's figures as a dict (the original library's keys, ``count``, ``size_bytes``,
        ``size_mb``, ``cache_dir``, ``ttl_hours``, and ours: hits, misses, writes...);
        ``{"enabled": False}`` without a cache."""
        cache = self.cache
        if cache is None:
            return {"enabled": False}
        stats = cache.stats()
        return {"enabled": True, "count": stats.entries, "size_bytes": stats.size_bytes,
                "size_mb": stats.size_bytes / 2**20, "cache_dir": str(cache.directory),
                "ttl_hours": cache.ttl_s / 3600 if cache.ttl_s is not None else None, "hits": stats.hits,
                "misses": stats.misses, "writes": stats.writes, "write_failures": stats.write_failures,
                "read_only": stats.read_only, "path": stats.path}

    # -- one prompt ----------------------------------------------------------------------------
    async def agenerate(self, messages: Any, use_cache: bool | None = None, **params: Any) -> Response:
        """Send one prompt (a string, or a list of ``Message``) and return its ``Response``.

        ``params`` override the client's generation defaults; ``use_cache=False`` neither reads nor
        writes the cache (by default a client with ``cache_dir`` uses it)."""
        self._check_open()
        pipeline = self.pipeline
        cache = pipeline.uses_cache(use_cache)
        params = pipeline.call_params(params)
        prepared = pipeline.prepare(messages, params, cache=cache)
        await pipeline.warm_up()
        return await pipeline.generate(prepared, params)

    def generate(self, messages: Any, use_cache: bool | None = None, **params: Any) -> Response:
        """Sync ``agenerate``; works in scripts and inside a running loop (a Jupyter cell)."""
        self._check_open()
        pipeline = self.pipeline
        pipeline.uses_cache(use_cache)
        pipeline.prepare(messages, pipeline.call_params(params))  # a bad prompt fails here, in the caller's thread
        return run_sync(lambda: self.agenerate(messages, use_cache, **params))

    # -- batches -------------------------------------------------------------------------------
    def batch(self, prompts: Iterable[Any], max_concurrent: int = 5, on_progress: ProgressCallback | None = None,
              *, max_cost_usd: float | None = None, max_gwp_kgco2eq: float | None = None,
              keep_results: bool = True, use_cache: bool | None = None, **params: Any) -> BatchRun:
        """A ``BatchRun`` handle: ``await`` it for the ``BatchResult``, ``async for`` it to stream,
        ``.cancel()`` it to stop (finished responses are kept), ``.result`` for the partial result.
        Every batch method (and ``map``) takes ``use_cache`` and generation parameters as ``agenerate``."""
        self._check_open()
        if isinstance(on_progress, bool):  # the original's batch_generate(prompts, 5, True) meant use_cache
            raise ConfigurationError("the third positional argument of a batch method is on_progress; pass "
                                     f"use_cache={on_progress} by keyword")
        cache = self.pipeline.uses_cache(use_cache)
        params = self.pipeline.call_params(params)
        run = BatchRun(self.pipeline, prompts, max_concurrent=max_concurrent, on_progress=on_progress,
                       max_cost_usd=max_cost_usd, max_gwp_kgco2eq=max_gwp_kgco2eq, params=params,
                       keep_results=keep_results, use_cache=cache)
        self.last_run = run
        return run

    async def batch_generate(self, prompts: Iterable[Any], max_concurrent: int = 5,
                             on_progress: ProgressCallback | None = None, *, max_cost_usd: float | None = None,
                             max_gwp_kgco2eq: float | None = None, use_cache: bool | None = None,
                             **params: Any) -> BatchResult:
        """Send every prompt, at most ``max_concurrent`` at a time; responses align with prompts."""
        return await self.batch(prompts, max_concurrent, on_progress, max_cost_usd=max_cost_usd,
                                max_gwp_kgco2eq=max_gwp_kgco2eq, use_cache=use_cache, **params)

    def batch_generate_iter(self, prompts: Iterable[Any], max_concurrent: int = 5, use_cache: bool | None = None,
                            *, max_cost_usd: float | None = None, max_gwp_kgco2eq: float | None = None,
                            **params: Any) -> BatchStream:
        """Yield ``(index, Response or Exception)`` as requests complete, every index once (prompts a
        stop left unsent come as their ``Cancelled``/``BudgetExceeded`` error).

        Use ``async with client.batch_generate_iter(...) as it: async for ... in it`` (or
        ``contextlib.aclosing``): leaving the block cancels what is still in flight at once; a bare
        ``break`` leaves it running until the iterator is garbage-collected. Nothing is kept after it is
        yielded (memory stays flat in the number of prompts); ``client.last_run.ledger`` has the counts.
        """
        return self.batch(prompts, max_concurrent, keep_results=False, max_cost_usd=max_cost_usd,
                          max_gwp_kgco2eq=max_gwp_kgco2eq, use_cache=use_cache, **params).stream()

    def batch_generate_sync(self, prompts: Iterable[Any], max_concurrent: int = 5,
                            on_progress: ProgressCallback | None = None, *, use_cache: bool | None = None,
                            **params: Any) -> BatchResult:
        """Sync ``batch_generate`` for scripts; Ctrl-C stops it and ``client.last_run.result`` keeps
        what finished."""
        run = self.batch(prompts, max_concurrent, on_progress, use_cache=use_cache, **params)  # bad arguments fail here
        return run_sync(lambda: run)

    # -- tables ----------------------------------------------------------------------------------
    async def map(self, data: Any, prompt: str | Callable[[dict[str, Any]], Any], *, response_format: Any = None,
                  system: str | None = None, max_concurrent: int = 5, on_progress: ProgressCallback | None = None,
                  prefix: str = "", sink: str | os.PathLike[str] | None = None, max_cost_usd: float | None = None,
                  max_gwp_kgco2eq: float | None = None, dry_run: bool = False, **params: Any) -> Any:
        """Apply a prompt to every row of ``data`` and return the same kind of table with columns added.

        Args:
            data: a pandas or polars DataFrame, a pyarrow Table, a Hugging Face ``Dataset``, or an iterable
                of dicts (a generator too: pulled lazily). Returns the same kind: a DataFrame, a Table, a
                Dataset, or a list of dicts, in input order.
            prompt: a template with ``{column}`` fields (``"Classify: {review}"``), or a function
                ``row -> str | list[Message]``. A row the template cannot fill ends as a ``PromptError``.
            response_format: a pydantic model (or a JSON schema): each of its fields becomes a column.
            system: an optional template for a system message.
            prefix: put before the added columns' names (they never silently overwrite input columns:
                a clash is an error that suggests one).
            sink: a ``.parquet`` or ``.jsonl`` path: rows are written as they finish (in parts, merged in
                input order at the end), nothing is kept in memory per row, and ``map`` returns the path.
                Re-running with the same sink resumes: rows already answered are not sent again.
            dry_run: send nothing and return the ``Estimate`` of what the run would send, cost and take
                (the same as ``client.estimate(data, prompt, ...)``).

        Added columns: ``response``, the ``response_format``'s fields, ``status``, ``error``, ``cached``,
        ``prompt_tokens``, ``completion_tokens``, ``cost_usd``, ``gwp_kgco2eq``, ``energy_kwh``,
        ``latency_s``. The run's ``BatchResult`` is ``client.last_run.result`` (plots, totals).
        """
        if dry_run:
            return self.estimate(data, prompt, response_format=response_format, system=system,
                                 max_concurrent=max_concurrent, prefix=prefix, sink=sink, max_cost_usd=max_cost_usd,
                                 max_gwp_kgco2eq=max_gwp_kgco2eq, **params)
        job = self.prepare_map(data, prompt, response_format=response_format, system=system,
                               max_concurrent=max_concurrent, on_progress=on_progress, prefix=prefix, sink=sink,
                               max_cost_usd=max_cost_usd, max_gwp_kgco2eq=max_gwp_kgco2eq, **params)
        return await job.execute()

    def prepare_map(self, data: Any, prompt: str | Callable[[dict[str, Any]], Any], *, response_format: Any = None,
                    system: str | None = None, max_concurrent: int = 5, on_progress: ProgressCallback | None = None,
                    prefix: str = "", sink: str | os.PathLike[str] | None = None, max_cost_usd: float | None = None,
                    max_gwp_kgco2eq: float | None = None, **params: Any) -> MapJob:
        """The ``MapJob`` that ``map`` runs, checked but not started (for drivers such as ``run_batch``, which
        show it in widgets). Everything that can be checked before sending fails here."""
        extras = requested_columns({**self.defaults, **params})
        table, rows, fields = self._map_plan(data, prompt, response_format, system, prefix, extras)
        if response_format is not None:
            params["response_format"] = response_format
        return MapJob(self.batch, table, rows, fields, prefix,
                      Sink(sink, status_column=prefix + "status") if sink is not None else None,
                      max_concurrent=max_concurrent,
                      params={"on_progress": on_progress, "max_cost_usd": max_cost_usd,
                              "max_gwp_kgco2eq": max_gwp_kgco2eq, **params}, extras=extras)

    def map_sync(self, data: Any, prompt: str | Callable[[dict[str, Any]], Any], **kwargs: Any) -> Any:
        """Sync ``map`` for scripts; Ctrl-C stops it and ``client.last_run.result`` keeps what finished."""
        if kwargs.get("dry_run"):
            return run_sync(lambda: self.map(data, prompt, **kwargs))
        job = self.prepare_map(data, prompt, **kwargs)  # bad arguments fail here, in the caller's thread
        return run_sync(job.execute)

    def _map_plan(self, data: Any, prompt: Any, response_format: Any, system: str | None,
                  prefix: str, extras: tuple[str, ...] = ()) -> tuple[Table, PromptRows, list[str]]:
        """Check everything ``map`` can check before sending: the data, the template's fields against
        the columns, the added columns against the input's."""
        self._check_open()
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a string such as 'llm_'; got {prefix!r}")
        table = as_table(data)
        rows = PromptRows(table, prompt, system)
        fields = parsed_fields(response_format)
        check_clash(table, fields, prefix, extras)
        return table, rows, fields

    # -- estimates -------------------------------------------------------------------------------
    def estimate(self, data: Any, prompt: str | Callable[[dict[str, Any]], Any] | None = None, *,
                 response_format: Any = None, system: str | None = None, max_concurrent: int = 5,
                 batch: bool = False, prefix: str = "", sink: str | os.PathLike[str] | None = None,
                 tokenizer: str | Callable[[str], int] = "auto", latency_s: float | None = None,
                 max_cost_usd: float | None = None, max_gwp_kgco2eq: float | None = None,
                 use_cache: bool | None = None, **params: Any) -> Estimate:
        """What sending ``data`` would send, cost and take, without sending anything.

        ``data`` is a list of prompts, or (with a ``prompt`` template or function) a table as ``map`` takes
        it. Prompts the cache already answers, and rows a ``sink`` already holds, are counted apart and
        cost nothing. ``batch=True`` prices a Batch API job (``submit_batch``). ``tokenizer``: ``"auto"``
        (tiktoken for OpenAI models when installed, else chars/4), ``"tiktoken"``, ``"chars"`` or a
        function ``text -> tokens``. ``latency_s``: an answer time to assume for the duration.
        ``use_cache=False``: as a run that neither reads nor writes the cache (nothing counts as cached).
        """
        self._check_open()
        reads_cache = self.pipeline.uses_cache(use_cache)
        if response_format is not None:
            params["response_format"] = response_format
        params = self.pipeline.call_params(params)
        done = 0
        if prompt is None:
            if system is not None or sink is not None:
                raise ConfigurationError("system= and sink= apply to rows of a table: pass a template too, "
                                         "estimate(data, 'Summarise {abstract}', ...)")
            check_prompts(data)
            prompts: Iterable[Any] = data
        else:
            table, rows, _ = self._map_plan(data, prompt, response_format, system, prefix)
            if sink is None:
                prompts = rows
            else:
                answered = Sink(sink, status_column=prefix + "status").done_lookup()

                def unanswered() -> Iterator[tuple[int, Any]]:
                    nonlocal done
                    for row_index, _row, row_prompt in rows.pairs(keep=False):
                        if not isinstance(row_prompt, Unsendable) and answered(row_index) == prompt_hash(row_prompt):
                            done += 1
                            continue
                        yield row_index, row_prompt

                prompts = unanswered()
        pipeline = self.pipeline
        cached = None
        if reads_cache:
            def cached(window: list[Any]) -> list[bool]:
                hits = pipeline.lookup_many([pipeline.prepare(p, params) for p in window], params)
                return [hit is not None for hit in hits]

        gate = pipeline.gate
        est = estimate_prompts(prompts, model=self.model, provider=self.provider, tracker=self.tracker,
                               params=params, max_concurrent=max_concurrent, batch=batch, tokenizer=tokenizer,
                               requests_per_minute=gate.requests_per_minute, tokens_per_minute=gate.tokens_per_minute,
                               latency_s=latency_s, cached=cached, label=f"{self.provider} at {self.base_url}",
                               numbered=sink is not None)
        est.done, est.prompts = done, est.prompts + done
        for name, budget, figure in (("max_cost_usd", max_cost_usd, est.cost_usd),
                                     ("max_gwp_kgco2eq", max_gwp_kgco2eq, est.gwp_kgco2eq)):
            if budget is not None:
                over = figure is not None and figure[1] > budget
                est.notes.append(f"budget {name}={budget:g}: the run stops sending once it is spent"
                                 + (" (the estimate's high end is over it)" if over else ""))
        return est

    # -- server-side Batch APIs ------------------------------------------------------------------
    def batch_api(self) -> BatchAPI:
        """This provider's Batch API adapter (what ``submit_batch`` and ``load_batch`` use)."""
        cls = type(self).batch_api_class
        if cls is None:
            raise ConfigurationError(f"{type(self).__name__} has no server-side Batch API; "
                                     "use batch_generate(...) to send the prompts directly")
        return cls(self)

    async def submit_batch(self, prompts: Iterable[Any], *, jobs_dir: str | os.PathLike[str] | None = None,
                           max_requests_per_batch: int | None = None, **params: Any) -> Any:
        """Send the prompts to the provider's Batch API (half price, results within 24 h) and return
        a ``BatchJob`` at once; its id is saved so ``load_batch`` finds it after a restart."""
        self._check_open()
        params = self.pipeline.call_params(params)
        return await self.batch_api().submit(prompts, jobs_dir=jobs_dir,
                                              max_requests_per_batch=max_requests_per_batch, params=params)

    def load_batch(self, job_id: str, *, jobs_dir: str | os.PathLike[str] | None = None, **params: Any) -> Any:
        """The saved ``BatchJob`` ``job_id`` (our id, or a provider batch id), bound to this client.
        Pass ``response_format=`` again to get parsed answers."""
        params = self.pipeline.call_params(params)
        return self.batch_api().load(job_id, jobs_dir=jobs_dir, params=params)

