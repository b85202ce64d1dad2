"""``SelfHostedClient``: an OpenAI-compatible server of your own that measures its energy and carbon.

Only translation lives here (``SelfHostedCodec``, an ``OpenAICodec``): reading the measured figures the
server puts in its answer, and asking for structured output the way the server can take it. Tracking
(cost, the measured figures into ``Tracking`` with ``method="measured"``), retries, limits and the cache
are the core's pipeline.

The measured field (the original library's Model Garden servers send it, measured with CodeCarbon)::

    {"choices": [...], "usage": {...},
     "x_carbon_trace": {"energy_consumed_wh": 0.0123, "emissions_g_co2": 0.0021, "measured": true, ...}}

- energy: ``energy_consumed_wh`` or ``energy_wh`` (Wh), or ``energy_kwh`` (kWh): required;
- carbon: ``emissions_g_co2`` or ``gco2eq`` (g CO2eq), or ``gwp_kgco2eq`` (kg): optional, else the
  measured energy times the intensity of the client's ``electricity_mix_zone`` (noted in ``warnings``);
- ``measured: false`` (the server estimated rather than measured): the figures are not used as measured;
- any other key stays in ``response.raw``. ``carbon_field=`` names another field, a dotted path reaches
  into an object (``"usage.carbon"``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from seeds_nb.core.client import BaseClient, check_base_url
from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.tracking import ANY_PROVIDER, Targets
from seeds_nb.core.types import Message, Usage

from .openai import OpenAICodec

__all__ = ["CARBON_FIELD", "STRUCTURED_OUTPUT_MODES", "ModelGardenClient", "SelfHostedClient", "SelfHostedCodec",
           "measured_figures"]

CARBON_FIELD = "x_carbon_trace"
STRUCTURED_OUTPUT_MODES = ("json_schema", "json_object", "prompt")
StructuredOutput = Literal["json_schema", "json_object", "prompt"]
#: (key, factor to kWh / kg): the first one present is read
_ENERGY_KEYS = (("energy_consumed_wh", 1e-3), ("energy_wh", 1e-3), ("energy_kwh", 1.0))
_GWP_KEYS = (("emissions_g_co2", 1e-3), ("gco2eq", 1e-3), ("gwp_kgco2eq", 1.0))
#: EcoLogits' providers a model named in ``impacts_model=`` is looked for in, in order (open models first)
_IMPACTS_PROVIDERS = ("huggingface_hub", "openai", "anthropic", "google_genai", "mistralai", "cohere")
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)\n?[ \t]*```", re.S)
SCHEMA_INSTRUCTION = "Answer with one JSON object and nothing else. It must match this JSON schema:"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def measured_figures(data: Any, path: Sequence[str] = (CARBON_FIELD,)) -> tuple[float | None, float | None]:
    """(kWh, kgCO2eq) a server measured for one answer, read at ``path`` in its JSON body; (None, None)
    when it sent none, sent unreadable ones, or says they were not measured (``"measured": false``)."""
    trace: Any = data
    for name in path:
        trace = trace.get(name) if isinstance(trace, Mapping) else None
    if not isinstance(trace, Mapping) or trace.get("measured") is False:
        return None, None
    energy = _first(trace, _ENERGY_KEYS)
    return (None, None) if energy is None else (energy, _first(trace, _GWP_KEYS))


def _first(trace: Mapping[str, Any], keys: tuple[tuple[str, float], ...]) -> float | None:
    for key, factor in keys:
        value = _number(trace.get(key))
        if value is not None:
            return value * factor
    return None


def _schema_of(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema a ``response_format`` asks for (None for a bare ``json_object``: any object)."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_json_schema()
    if isinstance(response_format, Mapping):
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        return dict(schema) if isinstance(schema, Mapping) else None
    return None


def _with_instruction(messages: Sequence[Message], text: str) -> list[Message]:
    """The conversation with ``text`` added to its system message (one is made at the start when there
    is none: many chat templates of local models accept only one system message, first)."""
    out = list(messages)
    first = out[0] if out else None
    if first is not None and first.role in ("system", "developer"):
        content: Any = (f"{first.content}\n\n{text}" if isinstance(first.content, str)
                        else [*first.content, {"type": "text", "text": text}])
        out[0] = Message.model_construct(role=first.role, content=content)
    else:
        out.insert(0, Message.model_construct(role="system", content=text))
    return out


class SelfHostedCodec(OpenAICodec):
    """Chat Completions with measured energy and carbon in the answer, and structured output by the
    server's own means (``json_schema``), by JSON mode plus the schema in the prompt (``json_object``), or by
    the prompt alone (``prompt``)."""

    provider = "selfhosted"
    key_env = "SELFHOSTED_API_KEY"
    measures_impacts = True

    def __init__(self, *, model: str, base_url: str, carbon_field: str = CARBON_FIELD,
                 structured_output: StructuredOutput = "json_schema", known_as: Sequence[str] = ()) -> None:
        super().__init__(model=model, base_url=base_url)
        #: the names the user gave as ``price_model`` / ``impacts_model``: looked up with every provider
        self.known_as = frozenset(known_as)
        self.carbon_field = carbon_field
        self.carbon_path = tuple(carbon_field.split("."))
        self.structured_output = structured_output

    def tracking_targets(self, model: str) -> Targets | None:
        """A model the user named to price or estimate as (``price_model="gpt-4o-mini"``) is looked up with
        whichever provider lists it; the served model itself is never priced by a price table (a cloud
        API's price is not what your GPU costs: give ``usd_per_million_tokens=``), and is estimated, when
        asked (``tracking_method="ecologits"``), as the open model of that name (EcoLogits' Hugging Face
        models: ``"Qwen/Qwen2.5-7B-Instruct"``)."""
        if model in self.known_as:
            return Targets(((ANY_PROVIDER, model),), tuple((p, model) for p in _IMPACTS_PROVIDERS))
        return Targets(((self.provider, model),), (("huggingface_hub", model),))

    def usage_of(self, data: Mapping[str, Any]) -> Usage:
        usage = super().usage_of(data)
        usage.measured_energy_kwh, usage.measured_gwp_kgco2eq = measured_figures(data, self.carbon_path)
        return usage

    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        fmt = params.get("response_format")
        if fmt is None or self.structured_output == "json_schema":
            return super().build_request(messages, params)
        schema = _schema_of(fmt) or {"type": "object"}  # a bare json_object: any object
        text = f"{SCHEMA_INSTRUCTION}\n```json\n{json.dumps(schema, ensure_ascii=False)}\n```"
        rest = {name: value for name, value in params.items() if name != "response_format"}
        path, body = super().build_request(_with_instruction(messages, text), rest)
        if self.structured_output == "json_object":
            body["response_format"] = {"type": "json_object"}
        return path, body

    def cache_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = super().cache_params(params)
        if out.get("response_format") is not None and self.structured_output != "json_schema":
            out["structured_output"] = self.structured_output  # another request, another answer
        return out

    def structured_text(self, content: str) -> str:
        """The JSON of an answer asked for through the prompt: inside a Markdown fence if there is one, else
        from the first ``{`` to the last ``}`` (a model may say a word around it)."""
        if self.structured_output == "json_schema":
            return content
        fenced = _FENCE.search(content)
        if fenced:
            return fenced.group(1).strip()
        start, end = content.find("{"), content.rfind("}")
        return content[start:end + 1] if 0 <= start < end else content


class SelfHostedClient(BaseClient):
    """A self-hosted OpenAI-compatible server (vLLM, llama.cpp, a Model Garden server...) whose answers
    carry the energy and carbon it measured: those are the answers' ``tracking`` (``method="measured"``),
    not EcoLogits estimates.

    Args:
        model: the model as the server names it.
        base_url: the server's OpenAI base URL (``http://gpu-box:8000/v1``); defaults to
            ``SELFHOSTED_BASE_URL``, then ``MODEL_GARDEN_BASE_URL`` (the original library's name).
        api_key: optional (``SELFHOSTED_API_KEY``, ``MODEL_GARDEN_API_KEY``): sent only when set.
        carbon_field: where the answer carries the measured figures (``"x_carbon_trace"``; a dotted path
            reaches into an object). See this module's docstring for the format.
        structured_output: how a ``response_format`` is asked for: ``"json_schema"`` (the server's
            structured output, as OpenAI's), ``"json_object"`` (JSON mode, the schema in the prompt) or
            ``"prompt"`` (the schema in the prompt only, for a server without either). In every mode the
            answer is validated with pydantic into ``response.parsed``; one that is not valid JSON raises
            ``ResponseParseError`` (retried first: a model may answer better the next time).
        tracking_method: ``"measured"`` (the default; ``"codecarbon"`` is its old name), ``"ecologits"``
            to estimate instead (with ``impacts_model=``), or ``"none"``. An answer without the figures has
            unknown energy and carbon and a ``TrackingWarning``, or the estimate of ``impacts_model=`` if given.
        electricity_mix_zone: where the server runs: used for what it does not report (carbon from
            energy, ADPe, PE).
        price_model / usd_per_million_tokens: price its tokens as a known model, or at your own price
            (``(input, output)`` USD per million tokens); else the cost is unknown.
        The other keyword arguments are ``OpenAIClient``'s. There is no Batch API: ``submit_batch`` is refused.
    """

    provider = "selfhosted"
    codec_class = SelfHostedCodec
    default_model = "default"  # a self-hosted server's "default": the model it has loaded
    api_key_env = (SelfHostedCodec.key_env, "MODEL_GARDEN_API_KEY")  # the original library's name second
    base_url_env = ("SELFHOSTED_BASE_URL", "MODEL_GARDEN_BASE_URL")

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, timeout: float = 120.0, *,
                 carbon_field: str = CARBON_FIELD, structured_output: StructuredOutput = "json_schema",
                 tracking_method: str = "measured", **kwargs: Any) -> None:
        key, url = self.resolve_credentials(api_key, base_url)
        del api_key  # only the Secret holds it from here (a traceback shows locals)
        if not url:
            raise ConfigurationError(
                "SelfHostedClient needs the server's URL: pass base_url='http://host:8000/v1' or set "
                "SELFHOSTED_BASE_URL; to try it offline, `server = seeds_nb.MockServer().start()` then "
                "SelfHostedClient(model, base_url=server.selfhosted_url)")
        if not isinstance(carbon_field, str) or not all(carbon_field.split(".")):
            raise ConfigurationError(f"carbon_field must name the answer's field, e.g. 'x_carbon_trace' or "
                                     f"'usage.carbon'; got {carbon_field!r}")
        if structured_output not in STRUCTURED_OUTPUT_MODES:
            raise ConfigurationError(f"structured_output must be one of {', '.join(STRUCTURED_OUTPUT_MODES)} "
                                     f"('prompt' for a server without structured output); got {structured_output!r}")
        self.carbon_field = carbon_field
        self.structured_output = structured_output
        known_as = [name for name in (kwargs.get("price_model"), kwargs.get("impacts_model")) if isinstance(name, str)]
        codec = SelfHostedCodec(model=model, base_url=check_base_url(url), carbon_field=carbon_field,
                                structured_output=structured_output, known_as=known_as) if isinstance(model, str) \
            else None
        super().__init__(model, api_key=key, base_url=url, cache_dir=cache_dir, timeout=timeout,
                         codec=codec, tracking_method=tracking_method, **kwargs)


class ModelGardenClient(SelfHostedClient):
    """The original library's name for ``SelfHostedClient``, with its default model (``"default"``: the
    model the server has loaded)."""

    def __init__(self, model: str = "default", base_url: str | None = None, api_key: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, timeout: float = 120.0, **kwargs: Any) -> None:
        super().__init__(model, base_url=base_url, api_key=api_key, cache_dir=cache_dir, timeout=timeout, **kwargs)
