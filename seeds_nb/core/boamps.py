"""A BoAmps report (Boavizta's open format for the energy of AI tasks) of what a client or a batch did.

Why from the ledger: the report's request count, token counts and energy must describe the same
requests. They all come from one ``Ledger`` (a client's lifetime account, or a ``BatchResult``'s),
split once into *API* answers (sent, billed, and what consumed energy) and *cached* answers (read
from the local cache: no inference ran). ``nbRequest``, the token datasets and ``powerConsumption``
cover the API answers only, and the report's ``taskDescription`` says so, with what was cached,
avoided, failed or unknown. Nothing is guessed: a parameter count, a licence, a quality grade or a
hardware list is written only when the caller gives it.

The report validates against the official BoAmps schemas (``tests/data/boamps/``, checked by
``tests/test_boamps.py`` with jsonschema, Draft 2020-12, as BoAmps' own validator does).
"""

from __future__ import annotations

import inspect
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .exceptions import ConfigurationError
from .ledger import Ledger
from .result import BatchResult

if TYPE_CHECKING:
    from .client import BaseClient

__all__ = ["BOAMPS_SPEC_URI", "check_options", "export_boamps_report"]

BOAMPS_SPEC_URI = "https://github.com/Boavizta/BoAmps/tree/3bfefec8446ee196d1723c0e35859eb7762da3c9/model"
"""The BoAmps schemas a report is written for (and tested against)."""

_METHOD_NAME = {"ecologits": "ecologits", "measured": "server-measured", "mixed": "server-measured+ecologits",
                "none": "none"}
"""``measurementMethod`` from ``Ledger.impacts_method``: EcoLogits' estimate, the serving machine's own
measurement (a self-hosted server's ``x_carbon_trace``), both, or no answer with a known energy."""
_METHOD_TEXT = {
    "ecologits": "estimated by EcoLogits from the token counts and latencies (not measured)",
    "measured": "measured by the serving machine and reported in each answer (electricity used only)",
    "mixed": "measured by the serving machine for {measured:,} answers, estimated by EcoLogits for the others",
    "none": "unknown: no API answer had an energy figure",
}
_INFRA_TYPES = ("publicCloud", "privateCloud", "onPremise", "other")
_STATUSES = ("draft", "final", "corrective", "other")
_CONFIDENTIALITY = ("public", "internal", "confidential", "secret")
_QUALITIES = ("high", "medium", "low")


def _stamp(seconds: float | None = None) -> str:
    """BoAmps' date format, ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - always installed with seeds_nb
        return None


def _grid_intensity_g_per_kwh(zone: str) -> float | None:
    """The carbon intensity EcoLogits uses for an electricity mix zone (gCO2eq/kWh), or None."""
    try:
        from ecologits.electricity_mix_repository import electricity_mixes

        mix = electricity_mixes.find_electricity_mix(zone)
    except Exception:  # an optional figure: a zone EcoLogits does not know leaves it out
        return None
    return float(mix.gwp) * 1000 if mix is not None else None


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(map(repr, allowed))} (the BoAmps schema's "
                                 f"values); got {value!r}")


def _source(source: Any) -> tuple[Ledger, str, str, str, BatchResult | None]:
    """(ledger, model, provider, electricity mix zone, the result if a batch) of a client or a result."""
    from .client import BaseClient

    if isinstance(source, BatchResult):
        return (source.ledger, source.model, source.provider, source.electricity_mix_zone or "WOR", source)
    if isinstance(source, BaseClient):
        return (source.tracking.snapshot(), source.model, source.provider,
                source.tracker.electricity_mix_zone, None)
    raise ConfigurationError(f"a BoAmps report is made of a client (its lifetime tracking) or a BatchResult; got "
                             f"{type(source).__name__}: export_boamps_report('report.json', client)")


def _summary(ledger: Ledger, source_kind: str, method: str) -> str:
    """What the figures cover, in words: the report's reader must know the cache and the unknowns."""
    api = ledger.succeeded - ledger.cached
    parts = [f"Figures cover {source_kind}: {api:,} answers from the API (nbRequest, the token counts and "
             f"powerConsumption count these only; energy {method})."]
    if ledger.cached:
        parts.append(f"{ledger.cached:,} further answers came from a local cache: no inference ran for them and "
                     f"they consumed no energy (had they been sent: {ledger.avoided_energy_kwh:.6g} kWh, "
                     f"{ledger.avoided_gwp_kgco2eq * 1000:.6g} gCO2eq).")
    if ledger.failed:
        parts.append(f"{ledger.failed:,} requests ended as errors and are not counted (their energy is unknown).")
    if ledger.unknown_impacts:
        parts.append(f"{ledger.unknown_impacts:,} API answers have no energy figure (a model EcoLogits does not "
                     "know, or a server that sent no measurement): powerConsumption does not include them.")
    if api:
        parts.append(f"Energy range {ledger.energy_kwh_min:.6g}-{ledger.energy_kwh_max:.6g} kWh; "
                     f"GWP {ledger.gwp_kgco2eq * 1000:.6g} gCO2eq "
                     f"({ledger.gwp_kgco2eq_min * 1000:.6g}-{ledger.gwp_kgco2eq_max * 1000:.6g}).")
    return " ".join(parts)


def _joined(description: str | None, summary: str) -> str:
    """The user's description, then what the figures cover."""
    if not description or not description.strip():
        return summary
    text = description.strip()
    return f"{text}{'' if text.endswith(('.', '!', '?')) else '.'} {summary}"


def check_options(options: Mapping[str, Any]) -> None:
    """Refuse an option ``export_boamps_report`` does not take (the client method passes ``**options``)."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigurationError(f"export_boamps_report got unknown option(s) {', '.join(sorted(unknown))}; it takes "
                                 f"{', '.join(sorted(_OPTIONS))}")


def export_boamps_report(
    path: str | os.PathLike[str],
    source: BaseClient | BatchResult,
    *,
    publisher_name: str | None = None,
    task_description: str | None = None,
    task_family: str = "textGeneration",
    publisher_division: str | None = None,
    project_name: str | None = None,
    confidentiality_level: Literal["public", "internal", "confidential", "secret"] = "public",
    report_status: Literal["draft", "final", "corrective", "other"] = "final",
    licensing: str | None = None,
    parameters_billion: float | None = None,
    foundation_model_uri: str | None = None,
    quantization: str | None = None,
    infra_type: Literal["publicCloud", "privateCloud", "onPremise", "other"] = "publicCloud",
    cloud_provider: str | None = None,
    components: Sequence[Mapping[str, Any]] | None = None,
    country: str | None = None,
    quality: Literal["high", "medium", "low"] | None = None,
) -> dict[str, Any]:
    """Write the BoAmps report of ``source`` to ``path`` (JSON) and return it as a dict.

    Args:
        path: the file to write (its directory is created).
        source: a client (its lifetime ``client.tracking``) or a ``BatchResult`` (one run or Batch API job).
        publisher_name / publisher_division / project_name / confidentiality_level: ``header.publisher``
            (written when one of the first three is given).
        task_description: your words about the task; what the figures cover is appended to it.
        task_family: BoAmps' ``taskFamily`` (e.g. ``"textGeneration"``, ``"textClassification"``).
        report_status / licensing / quality: the header's status, the report's licence and BoAmps'
            quality grade; licence and quality are left out unless given.
        parameters_billion / foundation_model_uri / quantization: what you know of the model; left out
            otherwise (a hosted model's size is not public, and is never guessed here).
        infra_type / cloud_provider: ``infrastructure``; ``cloudService`` is the provider's name.
        components: BoAmps hardware components (``{"componentType": "gpu", "nbComponent": 2, ...}``) when you
            know the hardware (a self-hosted server). Without them, one component stands for the provider's
            undisclosed service (the schema requires one).
        country: ``environment.country``; default the electricity mix zone the estimate used.
    """
    if not isinstance(path, str | os.PathLike):
        hint = " (the path comes first: export_boamps_report('report.json', client))" \
            if isinstance(source, str | os.PathLike) else ""
        raise ConfigurationError(f"path must be a file path such as 'report.json'; got {type(path).__name__}{hint}")
    _choice("confidentiality_level", confidentiality_level, _CONFIDENTIALITY)
    _choice("report_status", report_status, _STATUSES)
    _choice("infra_type", infra_type, _INFRA_TYPES)
    _choice("quality", quality, _QUALITIES)
    if parameters_billion is not None and (isinstance(parameters_billion, bool)
                                           or not isinstance(parameters_billion, int | float)
                                           or not parameters_billion > 0):
        raise ConfigurationError(f"parameters_billion is the model's size in billions of parameters (e.g. 8 for an "
                                 f"8B model), a number > 0; got {parameters_billion!r}")
    ledger, model, provider, zone, result = _source(source)
    api = ledger.succeeded - ledger.cached
    impacts = ledger.impacts_method
    method = _METHOD_TEXT[impacts].format(measured=ledger.measured_impacts)

    header: dict[str, Any] = {"formatVersionSpecificationUri": BOAMPS_SPEC_URI, "reportId": str(uuid.uuid4()),
                              "reportDatetime": _stamp(), "reportStatus": report_status}
    if licensing is not None:
        header["licensing"] = licensing
    if publisher_name is not None or publisher_division is not None or project_name is not None:
        publisher: dict[str, Any] = {"confidentialityLevel": confidentiality_level}
        for key, value in (("name", publisher_name), ("division", publisher_division), ("projectName", project_name)):
            if value is not None:
                publisher[key] = value
        header["publisher"] = publisher

    algorithm: dict[str, Any] = {"algorithmType": "llm", "foundationModelName": model}
    known: tuple[tuple[str, object], ...] = (
        ("parametersNumber", parameters_billion), ("foundationModelUri", foundation_model_uri),
        ("quantization", quantization))
    algorithm.update((key, value) for key, value in known if value is not None)
    kind = "this batch" if result is not None else "every request of this client since it was created or reset"
    summary = _summary(ledger, kind, method)
    task: dict[str, Any] = {
        "taskStage": "inference", "taskFamily": task_family, "nbRequest": api, "algorithms": [algorithm],
        "dataset": [  # the tokens of the API answers only, as nbRequest and the energy
            {"dataUsage": "input", "dataType": "token",
             "dataQuantity": ledger.prompt_tokens - ledger.cached_prompt_tokens},
            {"dataUsage": "output", "dataType": "token",
             "dataQuantity": ledger.completion_tokens - ledger.cached_completion_tokens},
        ],
        "taskDescription": _joined(task_description, summary),
    }

    measure: dict[str, Any] = {"measurementMethod": _METHOD_NAME[impacts], "powerConsumption": ledger.energy_kwh}
    ecologits_version = _version("ecologits")
    if ecologits_version is not None and impacts in ("ecologits", "mixed"):
        measure["version"] = ecologits_version
    if result is not None:
        if result.started_at:
            measure["measurementDateTime"] = _stamp(result.started_at)
        if result.total_duration_seconds:
            measure["measurementDuration"] = result.total_duration_seconds

    if components is None:
        components = [{"componentName": f"{provider} API service (hardware not disclosed)", "componentType": "other",
                       "nbComponent": 1}]
    elif not components or not all(isinstance(c, Mapping) for c in components):
        raise ConfigurationError("components must be a non-empty list of BoAmps hardware dicts, e.g. "
                                 "[{'componentType': 'gpu', 'nbComponent': 2, 'componentName': 'NVIDIA A100'}]")
    infrastructure: dict[str, Any] = {"infraType": infra_type, "cloudService": provider,
                                      "components": [dict(c) for c in components]}
    if cloud_provider is not None:
        infrastructure["cloudProvider"] = cloud_provider

    environment: dict[str, Any] = {"country": country or zone, "location": f"electricity mix zone {zone} "
                                   "(the one the carbon estimate used)"}
    intensity = _grid_intensity_g_per_kwh(zone)
    if intensity is not None:
        environment["powerSourceCarbonIntensity"] = intensity

    report: dict[str, Any] = {"header": header, "task": task, "measures": [measure],
                              "infrastructure": infrastructure, "environment": environment}
    if quality is not None:
        report["quality"] = quality
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write the BoAmps report to {str(target)!r}: {exc}") from None
    return report


_OPTIONS = frozenset(inspect.signature(export_boamps_report).parameters) - {"path", "source"}
