"""BoAmps reports validate against the official schemas and say what the ledger says (one API/cached split).

The schemas are BoAmps' own (tests/data/boamps, see SOURCE.md), validated as BoAmps' validator does:
jsonschema's Draft 2020-12 validator, the referenced schemas resolved through a ``referencing`` registry.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import seeds_nb
from seeds_nb import (
    ConfigurationError,
    MockServer,
    OpenAIClient,
    SelfHostedClient,
    TrackingWarning,
    export_boamps_report,
)

from _support import TEST_KEY

SCHEMAS = Path(__file__).parent / "data" / "boamps"
BASE = "https://raw.githubusercontent.com/Boavizta/BoAmps/main/model/"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    registry: Registry = Registry()
    for name in ("algorithm", "dataset", "hardware", "measure", "report"):
        schema = json.loads((SCHEMAS / f"{name}_schema.json").read_text(encoding="utf-8"))
        registry = registry.with_resource(f"{BASE}{name}_schema.json",
                                          Resource.from_contents(schema, default_specification=DRAFT202012))
    report = json.loads((SCHEMAS / "report_schema.json").read_text(encoding="utf-8"))
    return Draft202012Validator(report, registry=registry)


def problems(validator: Draft202012Validator, report: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)]


def test_the_validator_resolves_the_referenced_schemas_and_rejects_bad_reports(validator: Draft202012Validator) -> None:
    """Not vacuous: the referenced schemas' rules apply (a component needs nbComponent, a dataset its
    dataUsage), as do the report's own (measures required)."""
    good = {"task": {"taskStage": "inference", "taskFamily": "chatbot", "algorithms": [{}],
                     "dataset": [{"dataUsage": "input", "dataType": "token"}]},
            "measures": [{"measurementMethod": "codecarbon", "powerConsumption": 0.1}],
            "infrastructure": {"infraType": "publicCloud", "components": [{"componentType": "gpu", "nbComponent": 1}]}}
    assert problems(validator, good) == []
    no_count = json.loads(json.dumps(good))
    del no_count["infrastructure"]["components"][0]["nbComponent"]  # the original library's reports lack it
    assert any("nbComponent" in p for p in problems(validator, no_count))
    no_usage = json.loads(json.dumps(good))
    del no_usage["task"]["dataset"][0]["dataUsage"]
    assert any("dataUsage" in p for p in problems(validator, no_usage))
    no_measures = {k: v for k, v in good.items() if k != "measures"}
    assert any("measures" in p for p in problems(validator, no_measures))


async def test_client_report_validates_and_counts_only_api_calls(validator: Draft202012Validator, server: MockServer,
                                                                 tmp_path: Path) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, cache_dir=str(tmp_path / "c"))
    try:
        await client.batch_generate([f"Review {i}" for i in range(6)])
        await client.batch_generate([f"Review {i}" for i in range(9)])  # 6 cached, 3 fresh
        path = tmp_path / "out" / "report.json"
        report = export_boamps_report(path, client, publisher_name="Lab", task_description="Review summaries.",
                                      project_name="Reviews")
    finally:
        await client.aclose()
    assert problems(validator, report) == []
    assert json.loads(path.read_text(encoding="utf-8")) == report
    t = client.tracking
    assert t.api_request_count == 9 and t.cached_request_count == 6
    task = report["task"]
    assert task["nbRequest"] == 9 and task["taskStage"] == "inference"
    assert report["measures"][0]["powerConsumption"] == pytest.approx(t.api_energy_kwh) and t.api_energy_kwh > 0
    assert report["measures"][0]["measurementMethod"] == "ecologits" and report["measures"][0]["version"]
    assert "estimated by EcoLogits" in task["taskDescription"]
    assert [d["dataQuantity"] for d in task["dataset"]] == [t.api_prompt_tokens, t.api_completion_tokens]
    assert t.api_prompt_tokens < t.total_prompt_tokens  # the cached answers' tokens are left out
    assert task["algorithms"] == [{"algorithmType": "llm", "foundationModelName": "gpt-4.1-mini"}]  # no guessed size
    assert task["taskDescription"].startswith("Review summaries. ")
    assert "9 answers from the API" in task["taskDescription"] and "6 further answers came from a local cache" \
        in task["taskDescription"] and "consumed no energy" in task["taskDescription"]
    assert report["header"]["publisher"] == {"confidentialityLevel": "public", "name": "Lab", "projectName": "Reviews"}
    assert report["environment"]["country"] == "WOR" and report["environment"]["powerSourceCarbonIntensity"] > 0
    assert "licensing" not in report["header"] and "quality" not in report  # never chosen for the user


async def test_batch_result_report_and_an_all_cached_run(validator: Draft202012Validator, make_client,
                                                         tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path / "c"))
    prompts = [f"Item {i}" for i in range(4)]
    first = await client.batch_generate(prompts)
    again = await client.batch_generate(prompts)
    report = export_boamps_report(tmp_path / "first.json", first, task_family="textClassification",
                                  parameters_billion=8, quality="low", licensing="CC-BY-4.0",
                                  components=[{"componentType": "gpu", "nbComponent": 2, "componentName": "2 x L4"}],
                                  infra_type="onPremise", country="FRA")
    assert problems(validator, report) == []
    assert report["task"]["nbRequest"] == 4 and report["task"]["algorithms"][0]["parametersNumber"] == 8
    assert report["measures"][0]["powerConsumption"] == pytest.approx(first.total_energy_kwh)
    assert report["measures"][0]["measurementDuration"] == first.total_duration_seconds
    assert report["infrastructure"]["components"][0]["componentName"] == "2 x L4"
    assert report["quality"] == "low" and report["environment"]["country"] == "FRA"
    cached = export_boamps_report(tmp_path / "again.json", again)
    assert problems(validator, cached) == []
    assert again.cached_count == 4 and cached["task"]["nbRequest"] == 0
    assert cached["measures"][0]["powerConsumption"] == 0.0
    assert [d["dataQuantity"] for d in cached["task"]["dataset"]] == [0, 0]
    assert "4 further answers came from a local cache" in cached["task"]["taskDescription"]


async def test_unknown_energy_is_said_not_hidden(validator: Draft202012Validator, make_client, tmp_path: Path) -> None:
    client = make_client(model="my-local-model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackingWarning)
        await client.batch_generate(["a", "b"])
    report = export_boamps_report(tmp_path / "r.json", client)
    assert problems(validator, report) == []
    assert report["task"]["nbRequest"] == 2 and report["measures"][0]["powerConsumption"] == 0.0
    assert "2 API answers have no energy figure" in report["task"]["taskDescription"]


async def test_a_server_that_measures_its_energy_is_reported_as_measured(
        validator: Draft202012Validator, server: MockServer, tmp_path: Path) -> None:
    """A self-hosted server's own figures (``x_carbon_trace``): the report says measured, not EcoLogits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TrackingWarning)  # no price for a local model
        async with SelfHostedClient("llama-3.1-8b", base_url=server.selfhosted_url, api_key=TEST_KEY) as client:
            result = await client.batch_generate([f"Measure {i}" for i in range(3)])
            report = export_boamps_report(tmp_path / "r.json", client, components=[
                {"componentType": "gpu", "nbComponent": 1, "componentName": "the lab's GPU"}], infra_type="onPremise")
    assert problems(validator, report) == []
    assert all(r is not None and r.tracking.method == "measured" for r in result.responses)
    measure = report["measures"][0]
    assert measure["measurementMethod"] == "server-measured" and "version" not in measure  # not EcoLogits'
    assert measure["powerConsumption"] == pytest.approx(sum(r.tracking.energy_kwh for r in result.responses))
    assert "measured by the serving machine" in report["task"]["taskDescription"]


def test_client_method_as_in_the_original_and_clear_errors(server: MockServer, tmp_path: Path,
                                                          validator: Draft202012Validator) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    try:
        client.generate("hello")
        report = client.export_boamps_report(output_path=tmp_path / "r.json", publisher_name="Org",
                                             task_description="LLM inference")
        assert problems(validator, report) == [] and report["task"]["nbRequest"] == 1
        with pytest.raises(ConfigurationError, match="unknown option.*include_summary"):
            client.export_boamps_report(tmp_path / "r.json", include_summary=True)
        with pytest.raises(ConfigurationError, match="the path comes first"):
            export_boamps_report(client, "r.json")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="a client .* or a BatchResult"):
            export_boamps_report(tmp_path / "r.json", "client")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="infra_type must be one of"):
            export_boamps_report(tmp_path / "r.json", client, infra_type="cloud")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="parameters_billion"):
            export_boamps_report(tmp_path / "r.json", client, parameters_billion=-1)
    finally:
        client.close()
    assert "export_boamps_report" in seeds_nb.__all__
