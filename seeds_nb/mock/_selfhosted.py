"""A self-hosted server as the mock plays it: OpenAI's protocol, plus the energy and carbon it measured.

What makes it a self-hosted server rather than OpenAI: each answer carries a measured field (the
original library's Model Garden servers call it ``x_carbon_trace``, measured with CodeCarbon); it may
not support every ``response_format`` (llama.cpp or an older vLLM has no ``json_schema``), which is
refused with a 400; and, as an instruction-tuned model does, it follows a JSON schema given in its
system prompt, wrapping the JSON in a Markdown fence the way chatty local models often do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from . import _anthropic as anth
from ._dialects import Dialect
from ._model import RequestError, build_completion, count_tokens, validate_request

__all__ = ["MOCK_GCO2_PER_KWH", "MOCK_WH_PER_TOKEN", "SelfHostedDialect", "mock_carbon_trace"]

MOCK_WH_PER_TOKEN = (5e-5, 1.7e-3)
"""Wh the mock's "GPU" spends per input and per output token (an 8B model at ~300 W, ~50 tokens/s)."""
MOCK_GCO2_PER_KWH = 56.0
"""The carbon intensity of the mock server's electricity (a low-carbon grid): gCO2eq per kWh."""
_FENCED = re.compile(r"```json[ \t]*\n(.*?)\n```", re.S)


def mock_carbon_trace(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The ``x_carbon_trace`` the mock's self-hosted route reports for these token counts (Model Garden's
    keys), so tests and docs can compute the expected measured figures offline."""
    wh = round(prompt_tokens * MOCK_WH_PER_TOKEN[0] + completion_tokens * MOCK_WH_PER_TOKEN[1], 12)
    return {"energy_consumed_wh": wh, "emissions_g_co2": round(wh / 1000 * MOCK_GCO2_PER_KWH, 12),
            "duration_seconds": round(0.02 * completion_tokens, 6), "gpu_power_watts": 300.0,
            "completion_tokens": completion_tokens, "measured": True, "tracking_active": True}


def schema_in_prompt(messages: Any) -> dict[str, Any] | None:
    """A JSON schema given in a system message inside a ```json fence, as a client without structured
    output asks for one; None when there is none."""
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict) or message.get("role") not in ("system", "developer"):
            continue
        content = message.get("content")
        texts = [content] if isinstance(content, str) else [
            str(p.get("text", "")) for p in content or () if isinstance(p, dict) and p.get("type") == "text"]
        for text in texts:
            for block in _FENCED.findall(text):
                try:
                    schema = json.loads(block)
                except ValueError:
                    continue
                if isinstance(schema, dict) and ("properties" in schema or "type" in schema):
                    return schema
    return None


class SelfHostedDialect(Dialect):
    """OpenAI's Chat Completions with a measured-carbon field and a chosen set of ``response_format`` types."""

    name = "selfhosted"

    def __init__(self, carbon_field: str = "x_carbon_trace",
                 response_formats: tuple[str, ...] = ("json_schema", "json_object")) -> None:
        self.carbon_field = carbon_field
        self.response_formats = tuple(response_formats)

    def validate(self, body: Any, headers: Mapping[str, str]) -> None:
        validate_request(body)
        fmt = body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind not in (None, "text") and kind not in self.response_formats:
            raise RequestError(f"response_format type {kind!r} is not supported by this server "
                               f"(supported: {', '.join(('text', *self.response_formats))})", "response_format")

    def answer(self, body: dict[str, Any], identity: str, created: int, cache: anth.PromptCache) -> dict[str, Any]:
        fmt = body.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        schema = schema_in_prompt(body["messages"]) if kind in (None, "text", "json_object") else None
        if schema is None:
            answer = build_completion(body, identity, created)
        else:  # follows the schema of its prompt
            asked = {**body, "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
            answer = build_completion(asked, identity, created)
            if kind != "json_object":  # no JSON mode: the JSON comes in a fence, as local models often write it
                message = answer["choices"][0]["message"]
                message["content"] = f"Here is the JSON:\n```json\n{message['content']}\n```"
            usage = answer["usage"]
            usage["completion_tokens"] = max(count_tokens(answer["choices"][0]["message"]["content"]), 1)
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        usage = answer["usage"]
        *parents, leaf = self.carbon_field.split(".")  # a dotted field is nested: "usage.carbon"
        where = answer
        for name in parents:
            where = where.setdefault(name, {})
        where[leaf] = mock_carbon_trace(usage["prompt_tokens"], usage["completion_tokens"])
        return answer
