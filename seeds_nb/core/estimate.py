"""What a batch would send, cost and take, before anything is sent: ``client.estimate``, ``map(dry_run=True)``,
``run_batch(confirm=True)`` and the magic's ``--dry-run`` all print this one estimate.

How it counts, and why:

* **Input tokens** are counted per message the way OpenAI's chat format bills them (the text's tokens + 4
  per message + 3 to prime the answer), plus the ``response_format``'s JSON schema, which is sent too.
  The text's tokens come from a real tokenizer when one is there (``tiktoken``, for OpenAI models, if
  installed: it is not a dependency, and it downloads its vocabulary once), else from
  ``ceil(chars / 4)``, the usual rule of thumb for English (Claude's tokenizer is not public). The
  estimate says which it used.
* **Output tokens** are a range, a tenth of the cap to the cap (``max_tokens``, else
  ``DEFAULT_OUTPUT_TOKENS``): their real length is unknown before the call.
* **Cost and carbon** come from the client's own ``Tracker``, so an estimate and a run price the same way
  (at the Batch API rate with ``batch=True``). Unknown stays unknown, never $0.
* **What is already paid for is not counted again**: prompts the cache answers (and, for a ``map`` into a
  sink, rows the sink already holds) are looked up, not guessed.
* **Time** is what the client's limits allow (``requests_per_minute``, ``tokens_per_minute``) and, given
  an assumed answer time ``latency_s``, what ``max_concurrent`` allows; without either it is unknown.

Prompts are grouped by input length, so 100,000 prompts cost a few hundred tracker calls.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .exceptions import ConfigurationError, PromptError
from .images import IMAGE_TOKENS
from .tracking import Tracker
from .types import Message, Unsendable, Usage, normalize_prompt

__all__ = ["DEFAULT_OUTPUT_TOKENS", "Estimate", "chars_tokens", "estimate_prompts", "resolve_tokenizer"]

DEFAULT_OUTPUT_TOKENS = 256
"""Output-length cap assumed when ``max_tokens`` is not given."""
MESSAGE_TOKENS = 4
"""Tokens OpenAI's chat format adds per message (role and separators); 3 more prime the answer."""
PRIMING_TOKENS = 3
_SHOWN = 20  # prompts listed in full by the display; the rest are counted

Tokenizer = Callable[[str], int]


def chars_tokens(text: str) -> int:
    """``ceil(chars / 4)``: no vocabulary to download, within ~20% for English prose."""
    return math.ceil(len(text) / 4)


def _tiktoken(model: str) -> tuple[Tokenizer, str]:
    import tiktoken

    try:
        encoding = tiktoken.encoding_for_model(model)
    except KeyError:
        encoding = tiktoken.get_encoding("o200k_base")  # the current OpenAI models' encoding

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count, f"tiktoken {encoding.name}"


def resolve_tokenizer(tokenizer: str | Tokenizer, *, model: str, provider: str) -> tuple[Tokenizer, str, str | None]:
    """``(count, label, note)`` for ``tokenizer``: ``"auto"`` (tiktoken for OpenAI models when installed,
    else chars/4), ``"tiktoken"``, ``"chars"``, or a function ``text -> token count``."""
    if callable(tokenizer):
        return tokenizer, getattr(tokenizer, "__name__", "custom tokenizer"), None
    if tokenizer not in ("auto", "tiktoken", "chars"):
        raise ConfigurationError(f"tokenizer must be 'auto', 'tiktoken', 'chars' or a function text -> token count; "
                                 f"got {tokenizer!r}")
    if tokenizer == "chars" or (tokenizer == "auto" and provider != "openai"):
        return chars_tokens, "chars/4", None
    try:
        count, label = _tiktoken(model)
        count("warm up")  # loads the vocabulary now, so a failure is reported here and not per prompt
    except ImportError:
        if tokenizer == "tiktoken":
            raise ConfigurationError("tokenizer='tiktoken' needs the tiktoken package: pip install tiktoken") from None
        return chars_tokens, "chars/4", None
    except Exception as exc:  # tiktoken could not load its vocabulary (offline, no cached copy)
        if tokenizer == "tiktoken":
            raise ConfigurationError(
                f"tiktoken could not load its vocabulary ({type(exc).__name__}: {exc}); it downloads it once: run "
                "online once, or set TIKTOKEN_CACHE_DIR to a directory holding it, or pass tokenizer='chars'") from None
        return chars_tokens, "chars/4", (f"tiktoken is installed but could not load its vocabulary "
                                         f"({type(exc).__name__})")
    return count, label, None


def schema_text(response_format: Any) -> str:
    """The JSON schema a ``response_format`` sends with every prompt (counted as input)."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return json.dumps(response_format.model_json_schema())
    if isinstance(response_format, Mapping):
        return json.dumps(response_format, default=str)
    return ""


def _num(value: float) -> str:
    """Three significant digits without scientific notation: $0.0000352 reads better than 3.52e-05."""
    if value >= 1:
        return f"{value:,.2f}"
    if value <= 0:
        return "0"
    return f"{value:.{max(2, 2 - math.floor(math.log10(value)))}f}"


def _gwp(kg: float) -> str:
    return f"{kg * 1000:.3g} gCO2eq" if kg < 1 else f"{kg:.3g} kgCO2eq"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _one_line(text: str | None, limit: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass
class Estimate:
    """What a batch would send, cost and take; nothing was sent. Displays as text or HTML.

    Counts: ``prompts`` in all = ``to_send`` + ``cached`` (answered by the cache) + ``done`` (rows a sink
    already holds) + ``unsendable`` (rows a template cannot fill). Token, cost and carbon figures are
    for ``to_send`` only; ranges are ``(low, high)``; ``None`` means unknown (never $0).
    """

    model: str
    provider: str
    prompts: int = 0
    to_send: int = 0
    cached: int | None = None
    """Prompts the cache answers (``None``: the client has no cache)."""
    done: int = 0
    unsendable: int = 0
    input_tokens: int = 0
    output_tokens: tuple[int, int] = (0, 0)
    """In all, for the prompts to send (a tenth of the cap to the cap, each)."""
    output_cap: int = DEFAULT_OUTPUT_TOKENS
    cost_usd: tuple[float, float] | None = (0.0, 0.0)
    gwp_kgco2eq: tuple[float, float] | None = (0.0, 0.0)
    energy_kwh: tuple[float, float] | None = (0.0, 0.0)
    duration_s: tuple[float, float] | None = None
    """How long sending takes at the client's limits (and ``latency_s``, if given); None: unknown."""
    tokenizer: str = "chars/4"
    batch: bool = False
    max_concurrent: int = 5
    params: dict[str, Any] = field(default_factory=dict)
    sample: list[tuple[int, str | None, str]] = field(default_factory=list)
    """The first prompts as ``(index, system text, prompt text)``, for the display."""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """The estimate in a few lines (what the display shows above the prompts)."""
        n, send = self.prompts, self.to_send
        params = "".join(f", {k}={v!r}" for k, v in self.params.items())
        lines = [f"dry run - nothing sent: {n:,} prompt{'s' if n != 1 else ''} to {self.model} ({self.provider}), "
                 f"max_concurrent={self.max_concurrent}{params}"]
        skipped = []
        if self.cached:
            skipped.append(f"{self.cached:,} answered by the cache")
        if self.done:
            skipped.append(f"{self.done:,} already in the sink")
        if self.unsendable:
            skipped.append(f"{self.unsendable:,} that cannot be sent")
        if skipped:
            lines.append(f"to send: {send:,} ({', '.join(skipped)})")
        lo, hi = self.output_tokens
        cap = self.output_cap
        lines.append(f"input ≈ {self.input_tokens:,} tokens ({self.tokenizer}); output {max(1, cap // 10):,}–{cap:,} "
                     f"tokens per prompt, {lo:,}–{hi:,} in all")
        cost = (f"${_num(self.cost_usd[0])} – ${_num(self.cost_usd[1])}" if self.cost_usd is not None
                else "unknown for this model")
        gwp = (f"{_gwp(self.gwp_kgco2eq[0])} – {_gwp(self.gwp_kgco2eq[1])}" if self.gwp_kgco2eq is not None
               else "unknown for this model")
        hits = "" if self.cached is not None else "; cache hits would cost nothing"
        lines.append(f"cost ≈ {cost}; carbon ≈ {gwp} (estimate{hits})")
        if self.duration_s is not None:
            low, high = self.duration_s
            span = _duration(low) if _duration(low) == _duration(high) else f"{_duration(low)} – {_duration(high)}"
            lines.append(f"time ≈ {span} at the client's limits")
        return [*lines, *self.notes]

    def __repr__(self) -> str:
        lines = self.summary()
        for index, system, text in self.sample:
            prefix = f"[system: {_one_line(system)}] " if system else ""
            lines.append(f"  {index:>3}  {prefix}{_one_line(text)}")
        if self.prompts > len(self.sample) and self.sample:
            lines.append(f"  ... and {self.prompts - len(self.sample):,} more")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "<br>".join(html.escape(line) for line in self.summary())
        rows = []
        for index, system, text in self.sample:
            sys_html = (f"<div style='opacity:.6'>system: {html.escape(system)}</div>" if system else "")
            rows.append(f"<tr><td style='vertical-align:top'>{index}</td><td style='text-align:left;"
                        f"white-space:pre-wrap'>{sys_html}{html.escape(text)}</td></tr>")
        more = (f"<tr><td></td><td style='text-align:left'>… and {self.prompts - len(self.sample):,} more</td></tr>"
                if self.prompts > len(self.sample) and self.sample else "")
        table = (f"<table><tr><th>#</th><th style='text-align:left'>prompt</th></tr>{''.join(rows)}{more}</table>"
                 if rows else "")
        return f"<div class='seeds-dry-run'><div>{head}</div>{table}</div>"


def _texts(messages: Sequence[Message]) -> tuple[str | None, str]:
    system = " ".join(m.text() for m in messages if m.role in ("system", "developer")) or None
    text = "\n".join(m.text() for m in messages if m.role not in ("system", "developer"))
    return system, text


def estimate_prompts(prompts: Iterable[Any], *, model: str, provider: str, tracker: Tracker,
                     params: Mapping[str, Any], max_concurrent: int = 5, batch: bool = False,
                     tokenizer: str | Tokenizer = "auto", requests_per_minute: float | None = None,
                     tokens_per_minute: float | None = None, latency_s: float | None = None,
                     cached: Callable[[list[Any]], list[bool]] | None = None,
                     label: str | None = None, numbered: bool = False) -> Estimate:
    """Estimate ``prompts`` (see the module docstring); nothing is sent.

    ``cached``: looks a window of prompts up in the cache (True = answered there). ``label``: how the
    provider is shown. Rows a sink already holds are left out by the caller, who sets ``done``, and then
    passes ``(row index, prompt)`` pairs (``numbered``) so the display shows the rows' own numbers.
    """
    if latency_s is not None and (isinstance(latency_s, bool) or not isinstance(latency_s, int | float)
                                  or not math.isfinite(latency_s) or latency_s <= 0):
        raise ConfigurationError(f"latency_s must be a number of seconds > 0 (the answer time to assume); "
                                 f"got {latency_s!r}")
    count, tokenizer_label, note = resolve_tokenizer(tokenizer, model=model, provider=provider)
    cap = params.get("max_tokens") or params.get("max_completion_tokens") or DEFAULT_OUTPUT_TOKENS
    cap = int(cap)
    lo_out, hi_out = max(1, cap // 10), cap
    schema = schema_text(params.get("response_format"))
    schema_tokens = count(schema) if schema else 0
    shown = {k: v for k, v in params.items() if k not in ("response_format",)}
    est = Estimate(model=model, provider=label or provider, output_cap=cap, tokenizer=tokenizer_label, batch=batch,
                   max_concurrent=max_concurrent, params=shown, cached=0 if cached is not None else None)
    by_length: Counter[int] = Counter()
    first_error: PromptError | None = None
    window: list[tuple[int, Any]] = []
    image_note: list[str] = []

    def flush() -> None:
        hits = cached([p for _, p in window]) if cached is not None else [False] * len(window)
        for (_, messages), hit in zip(window, hits, strict=True):
            if hit:
                est.cached = (est.cached or 0) + 1
                continue
            images = sum(len(m.images()) for m in messages)
            tokens = sum(count(m.text()) + MESSAGE_TOKENS for m in messages) + PRIMING_TOKENS + schema_tokens \
                + IMAGE_TOKENS * images
            if images and not image_note:
                image_note.append(f"each image counted as ~{IMAGE_TOKENS:,} input tokens (providers bill images "
                                  "by their pixels)")
            by_length[tokens] += 1
            est.to_send += 1
        window.clear()

    for index, prompt in (prompts if numbered else enumerate(prompts)):
        est.prompts += 1
        if isinstance(prompt, Unsendable):
            est.unsendable += 1
            first_error = first_error or prompt.error
            continue
        try:
            messages = normalize_prompt(prompt)
        except PromptError as exc:
            est.unsendable += 1
            first_error = first_error or exc
            continue
        if len(est.sample) < _SHOWN:
            system, text = _texts(messages)
            est.sample.append((index, system, text))
        window.append((index, messages))
        if len(window) >= 256:
            flush()
    flush()
    est.input_tokens = sum(n * k for n, k in by_length.items())
    est.output_tokens = (lo_out * est.to_send, hi_out * est.to_send)
    _price(est, by_length, tracker, model, lo_out, hi_out, batch)
    est.duration_s = _time(est, requests_per_minute, tokens_per_minute, latency_s, max_concurrent)
    if note:
        est.notes.append(note)
    if schema_tokens:
        est.notes.append(f"input includes the response_format's schema ({schema_tokens:,} tokens per prompt)")
    est.notes.extend(image_note)
    if first_error is not None:
        est.notes.append(f"{est.unsendable:,} prompt(s) cannot be sent, e.g.: {first_error}")
    if batch:
        est.notes.append("Batch API: one job, priced at the batch rate (results within 24 h)")
    elif est.duration_s is None and est.to_send:
        est.notes.append("time: depends on the server (no client-side rate limit set; latency_s= assumes an "
                         "answer time)")
    return est


def _price(est: Estimate, by_length: Counter[int], tracker: Tracker, model: str, lo_out: int, hi_out: int,
           batch: bool) -> None:
    cost, gwp, energy = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    cost_known = impacts_known = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an unknown model is said in the estimate instead
        for tokens_in, n in by_length.items():
            # latency inf: EcoLogits' own estimate of the generation time for that many tokens
            low = tracker.track(model, Usage(prompt_tokens=tokens_in, completion_tokens=lo_out), math.inf, batch=batch)
            high = tracker.track(model, Usage(prompt_tokens=tokens_in, completion_tokens=hi_out), math.inf, batch=batch)
            if low.cost_usd is None or high.cost_usd is None:
                cost_known = False
            else:
                cost[0] += low.cost_usd * n
                cost[1] += high.cost_usd * n
            if (low.gwp_kgco2eq_min is None or high.gwp_kgco2eq_max is None or low.energy_kwh_min is None
                    or high.energy_kwh_max is None):
                impacts_known = False
            else:
                gwp[0] += low.gwp_kgco2eq_min * n
                gwp[1] += high.gwp_kgco2eq_max * n
                energy[0] += low.energy_kwh_min * n
                energy[1] += high.energy_kwh_max * n
    est.cost_usd = (cost[0], cost[1]) if cost_known else None
    est.gwp_kgco2eq = (gwp[0], gwp[1]) if impacts_known else None
    est.energy_kwh = (energy[0], energy[1]) if impacts_known else None
    if not cost_known:
        est.notes.append(f"no price known for {model!r} (genai-prices): pass price_model= to price it as a known "
                         "model, or usd_per_million_tokens=(input, output)")
    if not impacts_known and tracker.measured and tracker.impacts_model is None:
        est.notes.append("energy/carbon: the server measures them per answer, known once answered (pass "
                         "impacts_model= for an estimate beforehand)")
    elif not impacts_known:
        est.notes.append(f"no energy/carbon model known for {model!r} (EcoLogits): pass impacts_model=")


def _time(est: Estimate, rpm: float | None, tpm: float | None, latency_s: float | None,
          max_concurrent: int) -> tuple[float, float] | None:
    """Seconds to send ``est.to_send`` prompts: the slowest of what each limit allows (a range through
    the output length when tokens per minute bind)."""
    if est.batch:  # a provider's Batch API: within 24 h, whatever the client's limits
        return None
    if est.to_send == 0:
        return 0.0, 0.0
    bounds: list[tuple[float, float]] = []
    if rpm:
        bounds.append((est.to_send / rpm * 60,) * 2)
    if tpm:
        lo, hi = est.output_tokens
        bounds.append(((est.input_tokens + lo) / tpm * 60, (est.input_tokens + hi) / tpm * 60))
    if latency_s is not None:
        bounds.append((math.ceil(est.to_send / max_concurrent) * latency_s,) * 2)
    if not bounds:
        return None
    return max(b[0] for b in bounds), max(b[1] for b in bounds)
