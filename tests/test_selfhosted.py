"""SelfHostedClient over real HTTP against the mock's self-hosted route: measured energy and carbon in
``Tracking`` (``method="measured"``) and in every total, the three ways of asking for structured output,
and pricing a model no price table knows."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from pydantic import BaseModel

from seeds_nb import (
    BadRequestError,
    ConfigurationError,
    MockServer,
    ModelGardenClient,
    OpenAIClient,
    ResponseParseError,
    SelfHostedClient,
    TrackingWarning,
)
from seeds_nb.mock import Fault, mock_carbon_trace
from seeds_nb.widgets import BatchProgress

MODEL = "qwen2.5-7b-instruct"
WORLD = (0.45829, 1.349e-08, 2.5871)  # EcoLogits' WOR mix: kgCO2eq, kgSbeq, MJ per kWh


class City(BaseModel):
    name: str
    population: int


@pytest.fixture(autouse=True)
def _no_selfhosted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SELFHOSTED_BASE_URL", "MODEL_GARDEN_BASE_URL", "SELFHOSTED_API_KEY", "MODEL_GARDEN_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def expected(prompt: int, completion: int) -> tuple[float, float]:
    trace = mock_carbon_trace(prompt, completion)
    return trace["energy_consumed_wh"] / 1000, trace["emissions_g_co2"] / 1000


async def test_measured_figures_are_the_answers_tracking(server: MockServer) -> None:
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url) as client:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = await client.agenerate("Count to 5")
    energy, gwp = expected(r.usage.prompt_tokens, r.usage.completion_tokens)
    t = r.tracking
    assert t.method == "measured" and t.tracking_method == "measured"
    assert t.energy_kwh == pytest.approx(energy) and t.gwp_kgco2eq == pytest.approx(gwp)
    assert t.energy_kwh_min == t.energy_kwh_max == t.energy_kwh and t.gwp_kgco2eq_min == t.gwp_kgco2eq_max
    assert t.gwp_usage_kgco2eq == t.gwp_kgco2eq and t.gwp_embodied_kgco2eq == 0.0  # electricity only
    assert t.adpe_kgsbeq == pytest.approx(energy * WORLD[1]) and t.pe_mj == pytest.approx(energy * WORLD[2])
    assert server.requests[-1]["path"] == "/selfhosted/v1/chat/completions"
    assert "authorization" not in server.requests[-1]["headers"]  # no key set: none sent
    assert r.raw["x_carbon_trace"]["gpu_power_watts"] == 300.0  # the rest of the trace stays readable
    # the model is unpriced: cost unknown, said once; carbon is not estimated, so nothing about it
    assert t.cost_usd is None
    messages = [str(w.message) for w in caught if issubclass(w.category, TrackingWarning)]
    assert len(messages) == 1 and "cost unknown" in messages[0] and "usd_per_million_tokens" in messages[0]


async def test_batch_totals_and_exports_are_measured_and_hits_avoid_them(server: MockServer, tmp_path: Path) -> None:
    prompts = [f"Summarise paper {i}" for i in range(6)]
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, cache_dir=tmp_path,
                                usd_per_million_tokens=(0.2, 0.6)) as client:
        result = await client.batch_generate(prompts, max_concurrent=3)
        again = await client.batch_generate(prompts)
    sums = [expected(r.usage.prompt_tokens, r.usage.completion_tokens) for r in result.responses if r]
    assert result.successful_count == 6 and result.impacts_method == "measured"
    assert result.measured_impacts_count == 6 and result.unknown_impacts_count == 0
    assert result.total_energy_kwh == pytest.approx(sum(e for e, _ in sums))
    assert result.total_gwp_kgco2eq == pytest.approx(sum(g for _, g in sums))
    assert result.total_gwp_kgco2eq_range == (pytest.approx(result.total_gwp_kgco2eq),) * 2
    assert "gCO2eq measured" in repr(result)
    frame = result.to_pandas()
    assert list(frame["tracking_method"]) == ["measured"] * 6
    assert [row["tracking_method"] for row in result.to_records()] == ["measured"] * 6
    # the cache keeps the measured figures: a hit avoids exactly what the answer spent
    assert again.cached_count == 6 and server.request_count == 6
    assert again.total_gwp_kgco2eq == 0 and again.avoided_gwp_kgco2eq == pytest.approx(result.total_gwp_kgco2eq)
    assert again.avoided_energy_kwh == pytest.approx(result.total_energy_kwh)
    assert all(r is not None and r.tracking.method == "measured" for r in again.responses)
    assert again.impacts_method == "none"  # nothing fresh: nothing spent, by any method
    # the live panel says where the figure comes from
    panel = BatchProgress(6)
    panel.finish(result)
    assert "gCO2eq measured" in repr(panel)


async def test_an_answer_without_the_field_is_unknown_or_estimated_as_asked(server: MockServer) -> None:
    other = MockServer(carbon_field="usage.carbon").start()
    try:
        async with SelfHostedClient(MODEL, base_url=other.selfhosted_url) as blind:
            with pytest.warns(TrackingWarning, match="no measured energy.*carbon_field.*impacts_model="):
                r = await blind.agenerate("hello")
        assert r.tracking.method == "none" and r.tracking.gwp_kgco2eq is None
        assert "usage" in r.raw and "carbon" in r.raw["usage"]
        async with SelfHostedClient(MODEL, base_url=other.selfhosted_url, carbon_field="usage.carbon") as nested:
            r = await nested.agenerate("hello")
        assert r.tracking.method == "measured"
        assert r.tracking.energy_kwh == pytest.approx(expected(r.usage.prompt_tokens, r.usage.completion_tokens)[0])
        async with SelfHostedClient(MODEL, base_url=other.selfhosted_url, impacts_model="gpt-4o-mini") as guess:
            result = await guess.batch_generate(["one", "two"])
        assert result.impacts_method == "ecologits" and result.to_pandas()["tracking_method"].eq("ecologits").all()
    finally:
        other.stop()


def _completion(trace: dict[str, object]) -> str:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": MODEL,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
                       "x_carbon_trace": trace})


async def test_energy_only_estimated_figures_and_units(server: MockServer) -> None:
    server.add_fault(Fault(kind="malformed", match="energy only", body=_completion({"energy_consumed_wh": 2.0})))
    server.add_fault(Fault(kind="malformed", match="not measured",
                           body=_completion({"energy_consumed_wh": 2.0, "emissions_g_co2": 1.0, "measured": False})))
    server.add_fault(Fault(kind="malformed", match="in kwh",
                           body=_completion({"energy_kwh": 0.003, "gwp_kgco2eq": 0.0004})))
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, electricity_mix_zone="FRA") as client:
        only = await client.agenerate("energy only")
        with pytest.warns(TrackingWarning, match="no measured energy"):
            estimated = await client.agenerate("not measured")
        kwh = await client.agenerate("in kwh")
    assert only.tracking.method == "measured" and only.tracking.energy_kwh == pytest.approx(0.002)
    assert only.tracking.gwp_kgco2eq == pytest.approx(0.002 * 0.04144)  # France's mix, as the client says
    assert any("FRA electricity mix" in w for w in only.tracking.warnings)
    assert estimated.tracking.method == "none" and estimated.tracking.energy_kwh is None
    assert (kwh.tracking.energy_kwh, kwh.tracking.gwp_kgco2eq) == (pytest.approx(0.003), pytest.approx(0.0004))


async def test_structured_output_in_each_mode(server: MockServer, tmp_path: Path) -> None:
    system = {"role": "system", "content": "You are terse."}
    asked = [system, {"role": "user", "content": "Name a large city"}]
    parsed = {}
    for mode in ("json_schema", "json_object", "prompt"):
        async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, structured_output=mode,
                                    cache_dir=tmp_path) as client:
            r = await client.agenerate(asked, response_format=City)
        body = server.requests[-1]["body"]
        assert isinstance(r.parsed, City) and not r.cached, mode
        parsed[mode] = r
        if mode == "json_schema":
            assert body["response_format"]["type"] == "json_schema" and body["messages"][0] == system
        else:
            # the schema goes into the one system message, after the user's own text
            assert [m["role"] for m in body["messages"]] == ["system", "user"]
            text = body["messages"][0]["content"]
            assert text.startswith("You are terse.") and '"population"' in text and "```json" in text
            assert body.get("response_format") == ({"type": "json_object"} if mode == "json_object" else None)
    assert parsed["prompt"].content.startswith("Here is the JSON:\n```json")  # unwrapped, then validated
    assert server.request_count == 3  # each mode is another request: its own cache entry
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, structured_output="prompt") as client:
        bare = await client.agenerate("Name a city", response_format=City)  # no system message: one is made
    assert server.requests[-1]["body"]["messages"][0]["role"] == "system" and isinstance(bare.parsed, City)


async def test_a_server_without_structured_output_needs_the_prompt_mode() -> None:
    with MockServer(selfhosted_response_formats=()) as plain:
        async with SelfHostedClient(MODEL, base_url=plain.selfhosted_url) as strict:
            with pytest.raises(BadRequestError, match="response_format type 'json_schema' is not supported"):
                await strict.agenerate("Name a city", response_format=City)
        async with SelfHostedClient(MODEL, base_url=plain.selfhosted_url, structured_output="prompt") as client:
            result = await client.batch_generate([f"Name city {i}" for i in range(4)], response_format=City)
        assert result.successful_count == 4 and all(isinstance(r.parsed, City) for r in result.responses if r)
        assert list(result.to_pandas()["population"]) == [r.parsed.population for r in result.responses if r]
        schema = {"type": "json_schema", "json_schema": {"name": "Town", "schema": {
            "type": "object", "properties": {"town": {"type": "string"}}, "required": ["town"]}}}
        async with SelfHostedClient(MODEL, base_url=plain.selfhosted_url, structured_output="prompt") as client:
            town = await client.agenerate("Name a town", response_format=schema)  # a schema dict, not a model
            free = await client.agenerate("Any JSON", response_format={"type": "json_object"})
        assert isinstance(town.parsed, dict) and isinstance(town.parsed["town"], str)
        assert "Answer with one JSON object and nothing else." in plain.requests[-1]["body"]["messages"][0]["content"]
        assert isinstance(free.parsed, dict)


async def test_an_answer_that_is_not_json_is_a_clear_error(server: MockServer) -> None:
    chatty = json.loads(_completion({"energy_consumed_wh": 1.0}))
    chatty["choices"][0]["message"]["content"] = "Sorry, I can only answer in prose."
    server.add_fault(Fault(kind="malformed", body=json.dumps(chatty)))
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, structured_output="prompt",
                                max_retries=1) as client:
        with pytest.raises(ResponseParseError, match="the answer is not JSON .*cannot be a City") as info:
            await client.agenerate("Name a city", response_format=City)
    assert info.value.content == "Sorry, I can only answer in prose." and server.request_count == 2  # retried once


async def test_pricing_a_local_model(server: MockServer) -> None:
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, usd_per_million_tokens=(0.2, 0.6)) as own:
        r = await own.agenerate("Count to 3")
    assert r.tracking.cost_usd == pytest.approx(r.usage.prompt_tokens * 0.2e-6 + r.usage.completion_tokens * 0.6e-6)
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, usd_per_million_tokens=1.0) as flat:
        r = await flat.agenerate("Count to 3")
    assert r.tracking.cost_usd == pytest.approx(r.usage.total_tokens * 1e-6)
    async with SelfHostedClient(MODEL, base_url=server.selfhosted_url, price_model="gpt-4o-mini") as known:
        r = await known.agenerate("Count to 3")
    assert r.tracking.cost_usd == pytest.approx(r.usage.prompt_tokens * 0.15e-6 + r.usage.completion_tokens * 0.6e-6)
    assert r.tracking.method == "measured"  # pricing as a known model does not estimate its carbon
    # any OpenAI-compatible client can be given its price too
    async with OpenAIClient("llama3:8b", base_url=server.url, usd_per_million_tokens=(1, 2)) as local:
        r = await local.agenerate("Count to 3")
    assert r.tracking.cost_usd == pytest.approx(r.usage.prompt_tokens * 1e-6 + r.usage.completion_tokens * 2e-6)
    with pytest.raises(ConfigurationError, match="price_model= .* or usd_per_million_tokens="):
        SelfHostedClient(MODEL, base_url=server.selfhosted_url, price_model="gpt-4o", usd_per_million_tokens=1)
    for bad in (-1, (1,), (1, "2"), float("nan"), True):
        with pytest.raises(ConfigurationError, match="usd_per_million_tokens must be a price"):
            SelfHostedClient(MODEL, base_url=server.selfhosted_url, usd_per_million_tokens=bad)


def test_configuration(server: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="base_url=.*SELFHOSTED_BASE_URL.*selfhosted_url"):
        SelfHostedClient(MODEL)
    with pytest.raises(ConfigurationError, match="structured_output must be one of json_schema, json_object, "
                                                 "prompt"):
        SelfHostedClient(MODEL, base_url=server.selfhosted_url, structured_output="grammar")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="carbon_field must name"):
        SelfHostedClient(MODEL, base_url=server.selfhosted_url, carbon_field="x..y")
    with pytest.raises(ConfigurationError, match="measured by the server itself is read by SelfHostedClient"):
        OpenAIClient("gpt-4.1-mini", base_url=server.url, tracking_method="measured")
    # the original library's names: ModelGardenClient, MODEL_GARDEN_BASE_URL, tracking_method="codecarbon"
    monkeypatch.setenv("MODEL_GARDEN_BASE_URL", server.selfhosted_url)
    monkeypatch.setenv("MODEL_GARDEN_API_KEY", "mg-secret-key-123")
    garden = ModelGardenClient(tracking_method="codecarbon", temperature=0.3)
    try:
        r = garden.generate("hello")
        assert garden.model == "default" and r.tracking.method == "measured"
        assert server.requests[-1]["body"]["temperature"] == 0.3
        assert "mg-secret-key-123" not in repr(garden)
    finally:
        garden.close()
    estimating = SelfHostedClient(MODEL, tracking_method="ecologits", impacts_model="gpt-4o-mini")
    try:
        assert estimating.generate("hello").tracking.method == "ecologits"  # the server's figures ignored
    finally:
        estimating.close()


async def test_measured_carbon_is_labelled_in_the_compare_grid_and_the_carbon_plot(server: MockServer) -> None:
    from seeds_nb import compare_models, plots
    from seeds_nb.widgets import CompareGrid

    gpu = SelfHostedClient(MODEL, base_url=server.selfhosted_url)
    api = OpenAIClient("gpt-4.1-mini", base_url=server.url)
    try:
        results = await compare_models([f"question {i}" for i in range(4)], clients={"gpu": gpu, "api": api})
    finally:
        await gpu.aclose()
        await api.aclose()
    assert results["gpu"].impacts_method == "measured" and results["api"].impacts_method == "ecologits"
    grid = CompareGrid(["gpu", "api"], [f"question {i}" for i in range(4)])
    grid.load(results)
    assert grid.clients[0]["stats"][3].endswith("gCO2eq measured") and "measured" not in grid.clients[1]["stats"][3]
    assert "gCO2eq measured" in grid.snapshot_html()
    assert "measured by the server" in plots.carbon(results["gpu"]).layout.title.text
    assert "measured" not in plots.carbon(results["api"]).layout.title.text


def test_an_estimate_says_the_carbon_is_measured_once_answered(server: MockServer) -> None:
    with SelfHostedClient(MODEL, base_url=server.selfhosted_url, usd_per_million_tokens=(0.1, 0.4)) as client:
        plan = client.estimate(["hello there", "count to 10"])
    assert plan.cost_usd is not None and plan.cost_usd[0] > 0 and plan.gwp_kgco2eq is None
    assert any("the server measures them per answer" in note for note in plan.notes)
    assert server.request_count == 0
    with SelfHostedClient(MODEL, base_url=server.selfhosted_url, impacts_model="gpt-4o-mini") as guessed:
        assert guessed.estimate(["hello there"]).gwp_kgco2eq is not None  # estimated beforehand as asked
