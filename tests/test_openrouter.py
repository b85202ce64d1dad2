"""OpenRouterClient over real HTTP on the mock: attribution headers, vendor-prefixed ids priced and
estimated as the vendor's model, OpenRouter's billed cost winning over price tables, the key never shown."""

from __future__ import annotations

import logging
import traceback
import warnings
from pathlib import Path

import pytest
from genai_prices import Usage as GPUsage
from genai_prices import calc_price

from seeds_nb import (
    AuthenticationError,
    ConfigurationError,
    MockServer,
    OpenAIClient,
    OpenRouterClient,
    TrackingWarning,
)
from seeds_nb.mock import mock_cost_usd

from _support import TEST_KEY


def _client(server: MockServer, model: str = "openai/gpt-4.1", **kwargs: object) -> OpenRouterClient:
    return OpenRouterClient(model, api_key=TEST_KEY, base_url=server.url, **kwargs)  # type: ignore[arg-type]


async def test_attribution_headers_and_usage_accounting_reach_the_server(server: MockServer) -> None:
    async with _client(server, site_url="https://lab.example.org", app_name="Seeds study") as client:
        await client.agenerate("hello")
    sent = server.requests[-1]
    assert sent["headers"]["http-referer"] == "https://lab.example.org"
    assert sent["headers"]["x-title"] == "Seeds study"
    assert sent["body"]["model"] == "openai/gpt-4.1" and sent["body"]["usage"] == {"include": True}
    async with _client(server, usage_accounting=False) as plain:
        await plain.agenerate("hello")
    sent = server.requests[-1]
    assert "http-referer" not in sent["headers"] and "x-title" not in sent["headers"] and "usage" not in sent["body"]


async def test_the_billed_cost_is_the_cost_and_a_cache_hit_avoids_it(server: MockServer, tmp_path: Path) -> None:
    async with _client(server, "anthropic/claude-sonnet-4.5", cache_dir=tmp_path) as client:
        fresh = await client.agenerate("Summarise the water cycle")
        billed = fresh.raw["usage"]["cost"]
        assert billed == mock_cost_usd(fresh.usage.prompt_tokens or 0, fresh.usage.completion_tokens or 0)
        table = float(calc_price(GPUsage(input_tokens=fresh.usage.prompt_tokens,
                                         output_tokens=fresh.usage.completion_tokens),
                                 "anthropic/claude-sonnet-4.5", provider_id="openrouter").total_price)
        assert fresh.tracking.cost_usd == pytest.approx(billed) and abs(billed - table) > table / 2
        assert fresh.tracking.gwp_kgco2eq is not None and fresh.tracking.gwp_kgco2eq > 0  # EcoLogits' claude-sonnet-4-5
        hit = await client.agenerate("Summarise the water cycle")
        result = await client.batch_generate(["Summarise the water cycle", "Name three rivers"])
    assert hit.cached and hit.tracking.cost_usd == pytest.approx(billed)  # what the hit avoided: the bill
    assert server.request_count == 2  # the fresh one and "Name three rivers"
    other = result.responses[1]
    assert other is not None and result.total_cost_usd == pytest.approx(other.raw["usage"]["cost"])


@pytest.mark.parametrize(("model", "vendor", "bare"), [
    ("openai/gpt-4.1", "openai", "gpt-4.1"),
    ("anthropic/claude-sonnet-4.5", "anthropic", "claude-sonnet-4-5"),
    ("google/gemini-2.5-flash", "google_genai", "gemini-2.5-flash"),
])
async def test_a_prefixed_id_without_a_bill_is_priced_and_estimated_as_the_vendors_model(
        server: MockServer, model: str, vendor: str, bare: str) -> None:
    from seeds_nb.core.tracking import Tracker

    async with _client(server, model, usage_accounting=False) as client:
        response = await client.agenerate("What is a watershed?")
    usage = response.usage
    assert "cost" not in response.raw["usage"]
    expected = float(calc_price(GPUsage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
                                model, provider_id="openrouter").total_price)
    assert response.tracking.cost_usd == pytest.approx(expected)
    vendor_estimate = Tracker(vendor).track(bare, usage, response.latency_s)
    assert response.tracking.gwp_kgco2eq == pytest.approx(vendor_estimate.gwp_kgco2eq)
    assert response.tracking.energy_kwh == pytest.approx(vendor_estimate.energy_kwh)


async def test_a_model_only_the_vendor_table_knows_is_priced_there_and_an_unknown_vendor_is_unknown(
        server: MockServer) -> None:
    async with _client(server, "x-ai/grok-4", usage_accounting=False) as grok:
        with pytest.warns(TrackingWarning, match="grok-4"):  # EcoLogits knows no x-ai model
            response = await grok.agenerate("hello")
    usage = response.usage
    vendor = float(calc_price(GPUsage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens),
                              "grok-4", provider_id="x-ai").total_price)
    assert response.tracking.cost_usd == pytest.approx(vendor)
    async with _client(server, "meta-llama/llama-3.1-70b-instruct", usage_accounting=False) as llama:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            response = await llama.agenerate("hello")
    assert response.tracking.cost_usd is not None and response.tracking.gwp_kgco2eq is None  # never a silent 0
    assert any(issubclass(w.category, TrackingWarning) and "impacts_model=" in str(w.message) for w in caught)


async def test_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="seeds_nb")
    with MockServer(api_key="sk-or-v1-the-right-key-0000") as strict:
        client = _client(strict, site_url="https://lab.example.org")
        assert TEST_KEY not in repr(client) and TEST_KEY not in repr(vars(client))
        with pytest.raises(AuthenticationError, match="OPENROUTER_API_KEY") as info:
            await client.agenerate("hello")
        shown = "".join(traceback.TracebackException.from_exception(info.value, capture_locals=True).format())
        assert TEST_KEY not in shown and TEST_KEY not in str(info.value.headers)
        assert all("authorization" not in entry["headers"] for entry in strict.requests)
        await client.aclose()
    assert TEST_KEY not in caplog.text


def test_configuration_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch, server: MockServer) -> None:
    with pytest.raises(ConfigurationError, match="OPENROUTER_API_KEY"):
        OpenRouterClient("openai/gpt-4.1")
    monkeypatch.setenv("OPENROUTER_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENROUTER_BASE_URL", server.url)
    client = OpenRouterClient("openai/gpt-4.1")  # key and URL from the environment
    assert client.base_url == server.url and client.api_key_hint == "sk-...abcd"
    assert client.generate("hello").content
    with pytest.raises(ConfigurationError, match="app_name must be a one-line string"):
        OpenRouterClient("openai/gpt-4.1", app_name="two\nlines")
    with pytest.raises(ConfigurationError, match="no server-side Batch API"):
        client.batch_api()
    assert OpenRouterClient("openai/gpt-4.1", fetch_cost_data=False).pipeline.codec.usage_accounting is False  # type: ignore[attr-defined]
    client.close()


async def test_openai_client_is_unchanged_by_the_router(server: MockServer) -> None:
    """The route is OpenRouter's: OpenAIClient sends no usage accounting and prices as OpenAI."""
    async with OpenAIClient("gpt-4.1", api_key=TEST_KEY, base_url=server.url) as client:
        response = await client.agenerate("hello")
    assert "usage" not in server.requests[-1]["body"] and "cost" not in response.raw["usage"]
    assert response.tracking.cost_usd is not None and response.usage.reported_cost_usd is None
