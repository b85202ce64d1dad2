"""Cost (genai-prices) and environmental impacts (EcoLogits) of a request, offline.

Why not call ``ecologits.tracers.utils.llm_impacts`` per request: it costs ~316 µs and builds
~16 KB of pydantic objects, which would dominate the client's CPU per request. Its model is
linear in (output tokens, generation latency) for a given model and electricity mix, with
``generation_latency = min(request_latency, tokens * s_per_token + ttft)``. So we *calibrate* once
per (provider, model, zone) by calling ``llm_impacts`` itself at a few points, then evaluate the
same formula with a few multiplications. ``tests/test_tracking.py`` checks the result against
``llm_impacts`` at random points. Prices go through ``genai_prices.calc_price`` with a small LRU
in front (same usage, same price) and per-token unit prices (see ``_price``); both are keyed by a
15-minute period of the UTC clock, so a kernel left running picks up a dated price change.

Unknown models give ``None`` (never a silent $0) and one ``TrackingWarning`` per model.

A self-hosted server that measures its own energy (``Usage.measured_energy_kwh``) is not estimated:
its figures are the answer's, ``Tracking.method`` says ``"measured"``, and the electricity mix of
``electricity_mix_zone`` only fills what it did not report (carbon from energy, ADPe and PE).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from .types import Tracking, Usage

__all__ = ["ANY_PROVIDER", "Targets", "TrackingWarning", "Tracker", "impacts_calibration"]

DEFAULT_ZONE = "WOR"
_FIELDS = ("energy", "gwp", "adpe", "pe")
_PROBE_TOKENS = 1000


class TrackingWarning(UserWarning):
    """Cost or impacts could not be computed for a model; values are None, not 0."""


class Targets(NamedTuple):
    """Where a model's price (genai-prices) and impacts (EcoLogits) are looked up: ``(provider, model)``
    pairs, each list tried in order until one is known.

    Why a list: a router such as OpenRouter serves ``openai/gpt-4.1``; its own price table may know
    the id, else the vendor's table knows ``gpt-4.1``, and EcoLogits only knows the vendor's model.
    A provider's codec says this (``Codec.tracking_targets``); the tracker only looks up.
    """

    prices: tuple[tuple[str, str], ...]
    impacts: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class _Bound:
    """One bound (min or max model size) of EcoLogits' linear model."""

    per_token: tuple[float, ...]  # impact per output token, per field
    per_second: tuple[float, ...]  # impact per second of generation latency, per field
    s_per_token: float
    ttft_s: float

    def evaluate(self, tokens: int, latency_s: float) -> tuple[float, float, float, float, float, float, float]:
        """(energy, gwp, adpe, pe, and the usage phase's gwp, adpe, pe) for one request, written out: it
        runs for every answer. The embodied phase is the total less the usage phase."""
        gen = min(latency_s, tokens * self.s_per_token + self.ttft_s)
        a, b = self.per_token, self.per_second
        return (a[0] * tokens + b[0] * gen, a[1] * tokens + b[1] * gen, a[2] * tokens + b[2] * gen,
                a[3] * tokens + b[3] * gen, a[4] * tokens + b[4] * gen, a[5] * tokens + b[5] * gen,
                a[6] * tokens + b[6] * gen)


@dataclass(frozen=True, slots=True)
class _Calibration:
    low: _Bound
    high: _Bound
    warnings: tuple[str, ...]


def _values(result: Any, which: str) -> tuple[float, ...]:
    """The four totals, then the usage phase's gwp, adpe and pe (EcoLogits' phase split)."""
    out = []
    for phase, names in ((result, _FIELDS), (result.usage, _FIELDS[1:])):
        for name in names:
            value = getattr(phase, name).value
            out.append(float(getattr(value, which) if hasattr(value, "min") else value))
    return tuple(out)


def _llm_impacts(provider: str, model: str, tokens: int, latency: float, zone: str) -> Any:
    from ecologits.tracers.utils import llm_impacts

    return llm_impacts(
        provider=provider, model_name=model, output_token_count=tokens, request_latency=latency,
        electricity_mix_zone=zone,
    )


@lru_cache(maxsize=256)
def impacts_calibration(provider: str, model: str, zone: str) -> _Calibration | str:
    """Calibrate the linear impact model for one (provider, model, zone); a str is an error."""
    import ecologits.tracers.utils  # noqa: F401  (first: it installs its own logger class)

    logging.getLogger("ecologits").setLevel(logging.ERROR)  # we surface its messages ourselves
    probe = _llm_impacts(provider, model, 1, 0.0, zone)  # latency 0: only the per-token part
    if probe.has_errors:
        return "; ".join(str(getattr(e, "message", e)) for e in probe.errors)
    bounds = []
    for which in ("min", "max"):
        per_token = _values(probe, which)
        # A long generation cut at 1 s: per_token * N + per_second * 1.
        long_run = _values(_llm_impacts(provider, model, _PROBE_TOKENS, 1.0, zone), which)
        per_second = tuple(v - a * _PROBE_TOKENS for v, a in zip(long_run, per_token, strict=True))
        # Latency unbounded: the model's own estimate of generation time.
        ttft_v = _values(_llm_impacts(provider, model, 0, math.inf, zone), which)
        one_v = _values(_llm_impacts(provider, model, 1, math.inf, zone), which)
        ttft = ttft_v[0] / per_second[0] if per_second[0] else 0.0
        s_per_token = (one_v[0] - per_token[0]) / per_second[0] - ttft if per_second[0] else 0.0
        bounds.append(_Bound(per_token, per_second, s_per_token, ttft))
    warns = tuple(str(getattr(w, "message", w)) for w in (probe.warnings or ()))
    return _Calibration(bounds[0], bounds[1], warns)


ANY_PROVIDER = "*"
"""A price target's provider meaning "whichever provider lists the model" (genai-prices matches it by name)."""
_PROVIDER_FOR_PRICES: dict[str, str | None] = {"openai": "openai", "anthropic": "anthropic", ANY_PROVIDER: None}
_NO_USAGE = "the server sent no token usage: cost, energy and carbon are unknown for this answer"


PRICE_PERIOD_S = 900
"""Prices are looked up as of the start of each 15-minute UTC period: genai-prices dates its price
changes (a new price from a given day, time-of-day rates at quarter hours), and a cached price must
not outlive the period it was looked up for."""


def price_period(now: float) -> int:
    """The pricing period of a UNIX time (the key the price caches are kept under)."""
    return int(now // PRICE_PERIOD_S)


@lru_cache(maxsize=8192)
def _price_exact(provider: str, model: str, prompt: int, cached: int, cache_write: int, completion: int,
                 batch: bool, period: int) -> float | str:
    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    usage = GPUsage(input_tokens=prompt, cache_read_tokens=cached or None,
                    cache_write_tokens=cache_write or None, output_tokens=completion)
    try:
        calc = calc_price(usage, model, provider_id=_PROVIDER_FOR_PRICES.get(provider, provider),
                          genai_request_timestamp=datetime.fromtimestamp(period * PRICE_PERIOD_S, UTC),
                          price_context={"processing": "batch"} if batch else None)
    except LookupError as exc:
        return str(exc)
    return float(calc.total_price)


LINEAR_MAX_INPUT = 100_000
"""Up to this many input tokens a price is evaluated from per-token unit prices (checked linear there);
above it, or for a model whose price is not linear up to it (tiers), ``calc_price`` is called."""


@lru_cache(maxsize=256)
def _unit_prices(provider: str, model: str, batch: bool, period: int) -> tuple[float, float, float, float] | None:
    """USD per fresh input, cached input, cache-write and output token; None if not linear."""
    def exact(prompt: int, cached: int, write: int, completion: int) -> float | str:
        return _price_exact(provider, model, prompt, cached, write, completion, batch, period)

    probes = (exact(1000, 0, 0, 0), exact(1000, 1000, 0, 0), exact(1000, 0, 1000, 0), exact(0, 0, 0, 1000))
    if any(isinstance(p, str) for p in probes):
        return None
    fresh, cached, write, out = (float(p) / 1000 for p in probes)
    half = LINEAR_MAX_INPUT // 2
    check = exact(LINEAR_MAX_INPUT, half, 0, 5000)
    expected = fresh * half + cached * half + out * 5000
    if isinstance(check, str) or abs(check - expected) > 1e-9 * max(abs(check), 1e-12):
        return None  # tiered or otherwise non-linear: price every request exactly
    return fresh, cached, write, out


def _price(provider: str, model: str, prompt: int, cached: int, cache_write: int, completion: int,
           batch: bool, period: int) -> float | str:
    """A request's price: unit prices times tokens (~0.3 µs; calc_price costs ~70-100 µs and real
    token counts rarely repeat, so an LRU alone misses), exact ``calc_price`` otherwise.
    ``tests/test_tracking.py`` checks both paths against ``calc_price``."""
    unit = _unit_prices(provider, model, batch, period) if prompt <= LINEAR_MAX_INPUT else None
    if unit is None:
        return _price_exact(provider, model, prompt, cached, cache_write, completion, batch, period)
    fresh, per_cached, per_write, per_out = unit
    return (prompt - cached - cache_write) * fresh + cached * per_cached + cache_write * per_write \
        + completion * per_out


class Tracker:
    """Computes ``Tracking`` for a provider's responses; cheap per call after the first.

    ``clock`` (UNIX seconds, default ``time.time``) says when a request is priced: prices are those
    in force then (genai-prices dates its changes). Replace it to price as of another time.
    ``route`` maps a model (as answered, or ``price_model``/``impacts_model``) to its ``Targets``;
    None (the default, and when it returns None) looks the model up under this provider as given.
    A usage with ``reported_cost_usd`` (the server billed it) costs that, whatever the tables say.
    """

    def __init__(self, provider: str, *, electricity_mix_zone: str = DEFAULT_ZONE,
                 impacts_provider: str | None = None, impacts_model: str | None = None,
                 price_model: str | None = None, clock: Callable[[], float] = time.time,
                 route: Callable[[str], Targets | None] | None = None, enabled: bool = True,
                 measured: bool = False, usd_per_token: tuple[float, float] | None = None) -> None:
        self.provider = provider
        self.clock = clock
        self.electricity_mix_zone = electricity_mix_zone
        self.impacts_provider = impacts_provider or provider
        self.impacts_model = impacts_model
        self.price_model = price_model
        self.route = route
        #: False (``enable_tracking=False``): every answer's cost and impacts are unknown, none looked up
        self.enabled = enabled
        #: True (``tracking_method='measured'``): energy and carbon are the server's measurements; an
        #: answer without them is unknown (or estimated as ``impacts_model``, when given), never guessed
        self.measured = measured
        #: USD per (input, output) token, given by the user: a local model's price (``usd_per_million_tokens``)
        self.usd_per_token = usd_per_token
        self._targets: dict[str, Targets] = {}
        self._warned: set[str] = set()

    def targets(self, model: str) -> Targets:
        """Where ``model``'s price and impacts are looked up (computed once per model)."""
        found = self._targets.get(model)
        if found is None:
            found = self.route(model) if self.route is not None else None
            if found is None:
                found = Targets(((self.provider, model),), ((self.impacts_provider, model),))
            self._targets[model] = found
        return found

    def _price_of(self, model: str, prompt: int, cached: int, cache_write: int, completion: int, batch: bool,
                  period: int) -> float | str:
        """The first known price among ``model``'s targets, or the first one's error."""
        first: float | str = f"no price table names {model!r}"
        for i, (provider, name) in enumerate(self.targets(model).prices):
            price = _price(provider, name, prompt, cached, cache_write, completion, batch, period)
            if not isinstance(price, str):
                return price
            if i == 0:
                first = price
        return first

    def _calibration_of(self, model: str) -> _Calibration | str:
        """The first known impact calibration among ``model``'s targets, or the first one's error."""
        first: _Calibration | str = f"EcoLogits has no provider for {model!r}"
        for i, (provider, name) in enumerate(self.targets(model).impacts):
            calib = _calibration_for(provider, name, self.electricity_mix_zone)
            if not isinstance(calib, str):
                return calib
            if i == 0:
                first = calib
        return first

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(message, TrackingWarning, stacklevel=4)

    def warm(self, model: str) -> None:
        """Load EcoLogits and calibrate ``model`` now (~0.4 s the first time in a process), so the
        first request of a batch does not pay it on the event loop."""
        if not self.enabled:
            return
        if not self.measured or self.impacts_model:
            self._calibration_of(self.impacts_model or model)
        if self.usd_per_token is None:
            self._price_of(self.price_model or model, 1, 0, 0, 1, False, price_period(self.clock()))

    def price_known(self, model: str) -> bool:
        """Whether genai-prices can price ``model`` (as ``price_model`` if set), or the user gave its price."""
        if self.enabled and self.usd_per_token is not None:
            return True
        return self.enabled and not isinstance(self._price_of(self.price_model or model, 1, 0, 0, 1, False,
                                                              price_period(self.clock())), str)

    def impacts_known(self, model: str) -> bool:
        """Whether EcoLogits can estimate ``model``'s energy and carbon (as ``impacts_model`` if set); for
        a measuring server, whether its answers will carry them (assumed: each answer says)."""
        if self.enabled and self.measured and self.impacts_model is None:
            return True
        return self.enabled and not isinstance(self._calibration_of(self.impacts_model or model), str)

    def track(self, model: str, usage: Usage, latency_s: float, *, batch: bool = False) -> Tracking:
        """``latency_s`` NaN or inf means unknown (a Batch API line): EcoLogits' own estimate is used."""
        if latency_s != latency_s:  # NaN
            latency_s = math.inf
        if not self.enabled:
            return Tracking(electricity_mix_zone=self.electricity_mix_zone)
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            if self.measured and usage.measured_energy_kwh is not None:  # measured, only the cost unknown
                return self._measured(None, usage, ["the server sent no token usage: cost unknown for this answer"])
            return Tracking(electricity_mix_zone=self.electricity_mix_zone, warnings=(_NO_USAGE,))
        notes: list[str] = []
        price_model = self.price_model or model
        if usage.reported_cost_usd is not None:  # the server billed it: that is the cost
            price: float | str = usage.reported_cost_usd
        elif self.usd_per_token is not None:  # the user's own price (a local model)
            price = usage.prompt_tokens * self.usd_per_token[0] + usage.completion_tokens * self.usd_per_token[1]
        else:
            price = self._price_of(price_model, usage.prompt_tokens, usage.cached_tokens, usage.cache_write_tokens,
                                   usage.completion_tokens, batch, price_period(self.clock()))
        cost: float | None
        if isinstance(price, str):
            cost = None
            msg = (f"cost unknown for model {price_model!r} ({price}); pass price_model= to price it as a known "
                   "model, or usd_per_million_tokens=(input, output)")
            notes.append(msg)
            self._warn(msg)
        else:
            cost = price
        if self.measured and usage.measured_energy_kwh is not None:
            return self._measured(cost, usage, notes)
        if self.measured and self.impacts_model is None:
            msg = (f"energy/carbon unknown for an answer of {model!r}: the server sent no measured energy "
                   "(SelfHostedClient's carbon_field); pass impacts_model= to estimate such answers")
            notes.append(msg)
            self._warn(msg)
            return Tracking(cost_usd=cost, electricity_mix_zone=self.electricity_mix_zone, warnings=tuple(notes))
        impacts_model = self.impacts_model or model
        calib = self._calibration_of(impacts_model)
        if isinstance(calib, str):
            msg = (f"energy/carbon unknown for model {impacts_model!r} ({calib}); "
                   "pass impacts_model= to estimate it as a known model")
            notes.append(msg)
            self._warn(msg)
            return Tracking(cost_usd=cost, electricity_mix_zone=self.electricity_mix_zone, warnings=tuple(notes))
        lo = calib.low.evaluate(usage.completion_tokens, latency_s)
        hi = calib.high.evaluate(usage.completion_tokens, latency_s)
        return Tracking(cost, (lo[0] + hi[0]) / 2, lo[0], hi[0], (lo[1] + hi[1]) / 2, lo[1], hi[1],
                        (lo[2] + hi[2]) / 2, lo[2], hi[2], (lo[3] + hi[3]) / 2, lo[3],
                        hi[3], self.electricity_mix_zone, (*notes, *calib.warnings) if notes else calib.warnings,
                        (lo[4] + hi[4]) / 2, (lo[5] + hi[5]) / 2, (lo[6] + hi[6]) / 2, "ecologits")

    def _measured(self, cost: float | None, usage: Usage, notes: list[str]) -> Tracking:
        """The server's own figures: all usage phase (electricity used; no embodied phase, no range). What
        it did not report comes from the electricity mix of ``electricity_mix_zone``: carbon from energy
        (with a note), and ADPe and PE always (a server reports energy and carbon only)."""
        energy = usage.measured_energy_kwh
        assert energy is not None
        mix = _electricity_mix(self.electricity_mix_zone)
        gwp = usage.measured_gwp_kgco2eq
        if gwp is None:
            if mix is None:
                notes.append(f"carbon unknown: the server reported energy only, and EcoLogits has no electricity "
                             f"mix for zone {self.electricity_mix_zone!r}")
            else:
                gwp = energy * mix[0]
                notes.append(f"carbon from the measured energy and the {self.electricity_mix_zone} electricity "
                             "mix (the server reported energy only)")
        adpe = energy * mix[1] if mix is not None else None
        pe = energy * mix[2] if mix is not None else None
        return Tracking(cost, energy, energy, energy, gwp, gwp, gwp, adpe, adpe, adpe, pe, pe, pe,
                        self.electricity_mix_zone, tuple(notes), gwp, adpe, pe, "measured")


@lru_cache(maxsize=64)
def _electricity_mix(zone: str) -> tuple[float, float, float] | None:
    """(kgCO2eq, kgSbeq, MJ) per kWh of ``zone``'s electricity, from EcoLogits' data; None if unknown."""
    from ecologits.electricity_mix_repository import electricity_mixes

    mix = electricity_mixes.find_electricity_mix(zone)
    return None if mix is None else (float(mix.gwp), float(mix.adpe), float(mix.pe))


def _calibration_for(provider: str, model: str, zone: str) -> _Calibration | str:
    calib = impacts_calibration(provider, model, zone)
    if isinstance(calib, str) and "-20" in model:
        # Providers answer with dated names (gpt-4.1-mini-2025-04-14); EcoLogits knows the alias.
        base = model.rsplit("-20", 1)[0]
        alt = impacts_calibration(provider, base, zone)
        if not isinstance(alt, str):
            return alt
    return calib
