"""Cost and impacts: our fast evaluation must equal the libraries' own answers."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest
from ecologits.tracers.utils import llm_impacts
from genai_prices import Usage as GPUsage
from genai_prices import calc_price

from seeds_nb import MockServer, OpenAIClient, TrackingWarning, Usage
from seeds_nb.core.tracking import Tracker

from _support import TEST_KEY


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "gpt-4o", "gpt-4.1"])
@pytest.mark.parametrize("zone", ["WOR", "FRA", "USA"])
def test_impacts_match_ecologits_at_random_points(model: str, zone: str) -> None:
    tracker = Tracker("openai", electricity_mix_zone=zone)
    rng = random.Random(f"{model}{zone}")
    for _ in range(25):
        tokens = rng.randint(0, 4000)
        latency = rng.choice([0.0, 0.05, rng.uniform(0.1, 120.0), math.inf])
        ours = tracker.track(model, Usage(100, tokens), latency)
        theirs = llm_impacts(provider="openai", model_name=model, output_token_count=tokens,
                             request_latency=latency, electricity_mix_zone=zone)
        for lo, hi, field in ((ours.energy_kwh_min, ours.energy_kwh_max, theirs.energy.value),
                              (ours.gwp_kgco2eq_min, ours.gwp_kgco2eq_max, theirs.gwp.value),
                              (ours.adpe_kgsbeq_min, ours.adpe_kgsbeq_max, theirs.adpe.value),
                              (ours.pe_mj_min, ours.pe_mj_max, theirs.pe.value)):
            assert lo == pytest.approx(field.min, rel=1e-9, abs=1e-24)
            assert hi == pytest.approx(field.max, rel=1e-9, abs=1e-24)
        assert ours.adpe_kgsbeq == pytest.approx(theirs.adpe.value.mean, rel=1e-9, abs=1e-24)
        assert ours.pe_mj == pytest.approx(theirs.pe.value.mean, rel=1e-9, abs=1e-18)


def test_cost_matches_genai_prices_including_cached_tokens() -> None:
    tracker = Tracker("openai")
    ours = tracker.track("gpt-4.1-mini", Usage(prompt_tokens=1000, completion_tokens=200, cached_tokens=800), 1.0)
    theirs = calc_price(GPUsage(input_tokens=1000, cache_read_tokens=800, output_tokens=200), "gpt-4.1-mini",
                        provider_id="openai")
    assert ours.cost_usd == pytest.approx(float(theirs.total_price)) == pytest.approx(0.00048)


def test_dated_model_names_are_priced_and_estimated() -> None:
    tracking = Tracker("openai").track("gpt-4.1-mini-2025-04-14", Usage(1000, 200), 1.5)
    assert tracking.cost_usd == pytest.approx(0.00072)
    assert tracking.energy_kwh is not None and tracking.gwp_kgco2eq is not None


def test_zone_changes_carbon_not_energy() -> None:
    world = Tracker("openai", electricity_mix_zone="WOR").track("gpt-4.1-mini", Usage(10, 200), 1.5)
    france = Tracker("openai", electricity_mix_zone="FRA").track("gpt-4.1-mini", Usage(10, 200), 1.5)
    assert world.energy_kwh == pytest.approx(france.energy_kwh)
    assert france.gwp_kgco2eq < world.gwp_kgco2eq / 3
    assert france.electricity_mix_zone == "FRA"


def test_unknown_model_gives_none_and_a_visible_warning() -> None:
    tracker = Tracker("openai")
    with pytest.warns(TrackingWarning) as caught:
        tracking = tracker.track("my-local-llama", Usage(10, 10), 1.0)
    assert tracking.cost_usd is None and tracking.gwp_kgco2eq is None and tracking.energy_kwh is None
    messages = " ".join(str(w.message) for w in caught)
    assert "cost unknown for model 'my-local-llama'" in messages and "price_model=" in messages
    assert "energy/carbon unknown" in messages and "impacts_model=" in messages


def test_a_local_model_can_be_priced_as_a_known_one() -> None:
    tracker = Tracker("openai", price_model="gpt-4o-mini", impacts_model="gpt-4o-mini")
    tracking = tracker.track("llama3:8b", Usage(1000, 200), 1.0)
    assert tracking.cost_usd is not None and tracking.cost_usd > 0 and tracking.gwp_kgco2eq is not None


async def test_unknown_model_batch_reports_unknown_not_zero() -> None:
    with MockServer() as server:
        client = OpenAIClient("mock-model", base_url=server.url, api_key=TEST_KEY)
        with pytest.warns(TrackingWarning):
            result = await client.batch_generate(["a", "b", "c"])
        assert result.unknown_cost_count == 3 and result.total_cost_usd == 0.0
        assert all(r.tracking.cost_usd is None for r in result.responses)
        await client.aclose()


async def test_batch_totals_are_sums_of_responses(make_client) -> None:
    result = await make_client().batch_generate([f"sum {i}" for i in range(20)], max_concurrent=5)
    assert result.total_cost_usd == pytest.approx(sum(r.tracking.cost_usd for r in result.responses))
    assert result.total_gwp_kgco2eq == pytest.approx(sum(r.tracking.gwp_kgco2eq for r in result.responses))
    lo, hi = result.total_gwp_kgco2eq_range
    assert lo < result.total_gwp_kgco2eq < hi
    for total, (low, high), field in ((result.total_adpe_kgsbeq, result.total_adpe_kgsbeq_range, "adpe_kgsbeq"),
                                      (result.total_pe_mj, result.total_pe_mj_range, "pe_mj")):
        assert total == pytest.approx(sum(getattr(r.tracking, field) for r in result.responses))
        assert low == pytest.approx(sum(getattr(r.tracking, f"{field}_min") for r in result.responses))
        assert 0 < low < total < high
    assert result.total_tokens == result.total_prompt_tokens + result.total_completion_tokens
    frame = result.to_pandas()
    assert len(frame) == 20 and frame["cost_usd"].sum() == pytest.approx(result.total_cost_usd)
    assert frame["pe_mj_max"].sum() == pytest.approx(result.total_pe_mj_range[1])
    assert list(result.to_jsonl().splitlines()).__len__() == 20


@pytest.mark.parametrize(("provider", "model"), [("openai", "gpt-4.1-mini"), ("openai", "gpt-4o"),
                                                 ("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-haiku-4-5")])
@pytest.mark.parametrize("batch", [False, True])
def test_unit_price_path_matches_calc_price(provider: str, model: str, batch: bool) -> None:
    """The per-token shortcut equals genai-prices, also past a tier (claude-sonnet-4-5 above 200k)."""
    tracker = Tracker(provider)
    rng = random.Random(model)
    points = [(rng.randint(1, 90_000), rng.randint(0, 4000)) for _ in range(30)] + [(300_000, 100)]
    for prompt, completion in points:
        cached = rng.randint(0, prompt // 2)
        write = rng.randint(0, (prompt - cached) // 3) if provider == "anthropic" else 0
        ours = tracker.track(model, Usage(prompt, completion, cached, write), 1.0, batch=batch).cost_usd
        theirs = calc_price(GPUsage(input_tokens=prompt, cache_read_tokens=cached or None,
                                    cache_write_tokens=write or None, output_tokens=completion), model,
                            provider_id=provider, price_context={"processing": "batch"} if batch else None)
        assert ours == pytest.approx(float(theirs.total_price), rel=1e-12)


def test_a_dated_price_change_is_picked_up_by_a_long_running_tracker() -> None:
    """genai-prices dates o3's price cut (2025-06-10): one Tracker whose clock crosses the date
    prices each request as of its own time, exactly as ``calc_price`` does for that time."""
    before, after = datetime(2025, 6, 9, 23, 50, tzinfo=UTC), datetime(2025, 6, 10, 0, 5, tzinfo=UTC)
    now = [before.timestamp()]
    tracker = Tracker("openai", clock=lambda: now[0], impacts_model="gpt-4.1")
    usage = Usage(prompt_tokens=12_000, completion_tokens=3_000, cached_tokens=2_000)
    old = tracker.track("o3", usage, 1.0).cost_usd
    now[0] = after.timestamp()
    new = tracker.track("o3", usage, 1.0).cost_usd
    for when, ours in ((before, old), (after, new)):
        theirs = calc_price(GPUsage(input_tokens=12_000, cache_read_tokens=2_000, output_tokens=3_000), "o3",
                            provider_id="openai", genai_request_timestamp=when)
        assert ours == pytest.approx(float(theirs.total_price), rel=1e-12)
    assert new < old
