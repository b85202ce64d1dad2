"""``OpenAIClient``: Chat Completions for OpenAI and any OpenAI-compatible server.

Only translation lives here (``OpenAICodec``: messages -> JSON, JSON -> Response, HTTP errors ->
SeedsError, rate-limit headers); retries, limits, cache, tracking and structured-output validation
are the core's pipeline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from sys import intern
from typing import Any

from pydantic import BaseModel

from seeds_nb.core.client import BaseClient
from seeds_nb.core.codec import Codec, RateLimit
from seeds_nb.core.exceptions import APIStatusError, ConfigurationError, error_for_status
from seeds_nb.core.images import ImagePart
from seeds_nb.core.retry import parse_duration, retry_after_from_headers
from seeds_nb.core.secrets import Secret, SecretHeaders
from seeds_nb.core.tooling import function_specs, tool_choice
from seeds_nb.core.types import Choice, Message, Response, TokenLogprob, ToolCall, Usage

from ._openai_batch import OpenAIBatchAPI

__all__ = ["OpenAICodec", "OpenAIClient", "openai_message", "parse_choice", "response_format_json"]

OPENAI_BASE_URL = "https://api.openai.com/v1"


class OpenAICodec(Codec):
    """Chat Completions on the wire: messages -> JSON, JSON -> ``Response``, HTTP errors -> ``SeedsError``."""

    provider = "openai"
    key_env = "OPENAI_API_KEY"
    known_params = frozenset({
        "temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "response_format",
        "frequency_penalty", "presence_penalty", "logit_bias", "user", "reasoning_effort", "service_tier",
        "n", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls", "extra_body",
    })

    def auth_headers(self, secret: Secret) -> SecretHeaders:
        if not secret:
            return SecretHeaders({"content-type": "application/json"})
        return SecretHeaders({"content-type": "application/json", "authorization": f"Bearer {secret.get()}"})

    # -- request -------------------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model, "messages": [openai_message(m) for m in messages]}
        for name, value in params.items():
            if name == "extra_body":
                body.update(value or {})
            elif name == "response_format":
                body[name] = response_format_json(value)
            elif name == "tools":
                function_specs(value)  # checked: a malformed tool fails here, not as a server's 400
                body[name] = value
            elif name == "tool_choice":
                tool_choice(value)
                body[name] = value
            elif value is not None:
                body[name] = value
        return "/chat/completions", body

    def cache_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        if "response_format" in out:
            out["response_format"] = response_format_json(out["response_format"])
        return out

    # -- response ------------------------------------------------------------------------------
    def parse_response(self, body: bytes, headers: Mapping[str, str], params: Mapping[str, Any]) -> Response:
        data = json.loads(body)
        choices = data["choices"]
        if not choices:
            raise ValueError("no choices")
        usage = self.usage_of(data)  # the request's, once, however many choices
        return Response.from_choices(  # model interned: a batch of 100k shares a few strings
            [parse_choice(c, i) for i, c in enumerate(choices)], model=intern(data.get("model") or self.model),
            usage=usage, provider=self.provider, request_id=headers.get("x-request-id") or data.get("id"), _raw=body,
        )

    def usage_of(self, data: Mapping[str, Any]) -> Usage:
        """The answer's ``Usage`` (a server that reports more than tokens, e.g. measured energy, adds it)."""
        return self.parse_usage(data.get("usage"))

    def parse_usage(self, usage_json: Any) -> Usage:
        """The ``usage`` object -> ``Usage``; a server that reports none gives unknown, never 0."""
        if usage_json is None:
            return Usage.unknown()
        prompt_details = usage_json.get("prompt_tokens_details") or {}
        completion_details = usage_json.get("completion_tokens_details") or {}
        return Usage(
            prompt_tokens=int(usage_json.get("prompt_tokens") or 0),
            completion_tokens=int(usage_json.get("completion_tokens") or 0),
            cached_tokens=int(prompt_details.get("cached_tokens") or 0),
            cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
        )

    def rate_limits(self, headers: Mapping[str, str], *, exhausted_only: bool) -> list[RateLimit]:
        limits = []
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is None or (exhausted_only and remaining != "0"):
                continue
            reset = parse_duration(headers.get(f"x-ratelimit-reset-{kind}") or "")  # Go duration: "6m0s"
            limits.append(RateLimit(kind, _int(remaining), reset))
        return limits

    def error_for_status(self, status: int, body: bytes, headers: Mapping[str, str], url: str) -> APIStatusError:
        text = body.decode("utf-8", "replace")
        message, code, kind = text[:300], None, None
        try:
            err = json.loads(body).get("error") or {}
            message = err.get("message") or message
            code, kind = err.get("code"), err.get("type")
        except (ValueError, AttributeError):
            pass
        return error_for_status(status, message, provider=self.provider, base_url=self.base_url, url=url,
                                model=self.model, key_env=self.key_env, body=text, headers=dict(headers),
                                code=code, retry_after=retry_after_from_headers(headers),
                                quota_exhausted="insufficient_quota" in (code, kind),
                                quota_hint="quota exhausted: check your plan and billing")


def openai_message(message: Message) -> dict[str, Any]:
    """A message as Chat Completions takes it: an image as an ``image_url`` part holding a data URL (or
    its URL), with its ``detail`` if one was given; every other part as it is."""
    if isinstance(message.content, str):
        return message.to_dict()
    return {**message.to_dict(), "content": [_wire_part(part) for part in message.content]}


def _wire_part(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("source")
    if part.get("type") != "image" or not isinstance(image, ImagePart):
        return part
    url: dict[str, Any] = {"url": image.data_url()}
    if image.detail is not None:
        url["detail"] = image.detail
    wire = {"type": "image_url", "image_url": url}
    if "cache_control" in part:  # as on text parts: OpenRouter passes it on to the providers that cache
        wire["cache_control"] = part["cache_control"]
    return wire
def parse_choice(choice: Mapping[str, Any], position: int) -> Choice:
    """One of Chat Completions' ``choices``: the text, the tool calls (arguments kept as sent and parsed),
    the tokens' log probabilities when asked for."""
    message = choice.get("message") or {}
    finish = choice.get("finish_reason")
    calls = tuple(ToolCall.from_raw(str(c.get("id") or f"call_{k}"), (c.get("function") or {}).get("name") or "",
                                    (c.get("function") or {}).get("arguments") or "")
                  for k, c in enumerate(message.get("tool_calls") or ()) if isinstance(c, dict))
    logprobs = None
    lp = choice.get("logprobs")
    if isinstance(lp, dict) and lp.get("content") is not None:
        logprobs = tuple(TokenLogprob(t["token"], float(t["logprob"]),
                                      tuple((a["token"], float(a["logprob"])) for a in t.get("top_logprobs") or ()))
                         for t in lp["content"])
    index = choice.get("index")
    return Choice(index if isinstance(index, int) else position, message.get("content") or "",
                  intern(finish) if finish else finish, calls, logprobs)


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class OpenAIClient(BaseClient):
    """Chat Completions client.

    Args:
        model: e.g. ``"gpt-4.1-mini"``.
        api_key: defaults to ``OPENAI_API_KEY``; optional for a non-OpenAI ``base_url``
            (a local vLLM/Ollama/llama.cpp server or the seeds_nb mock).
        base_url: defaults to ``OPENAI_BASE_URL``, then ``https://api.openai.com/v1``.
        cache_dir: a directory for the response cache (off when None).
        timeout: seconds for one attempt of one request.
        max_retries: retries of retryable failures (429, 5xx, timeouts, dropped connections).
        requests_per_minute / tokens_per_minute: client-side limits shared by all requests.
        electricity_mix_zone: ISO 3166-1 alpha-3 zone for carbon (default ``"WOR"``, world).
        price_model / impacts_model: price or estimate impacts as this known model (for local
            models genai-prices and EcoLogits do not know).
    """

    provider = "openai"
    codec_class = OpenAICodec
    batch_api_class = OpenAIBatchAPI
    default_model = "gpt-4.1-mini"
    api_key_env = (OpenAICodec.key_env,)
    base_url_env = ("OPENAI_BASE_URL",)
    default_base_url = OPENAI_BASE_URL

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, timeout: float = 60.0, **kwargs: Any) -> None:
        secret, url = self.resolve_credentials(api_key, base_url)
        del api_key  # only the Secret holds it from here (a traceback shows locals)
        if not secret and isinstance(url, str) and url.rstrip("/") == OPENAI_BASE_URL:
            raise ConfigurationError(
                f"no OpenAI API key: set the {self.api_key_env[0]} environment variable or pass api_key=...; "
                "to try seeds_nb without a key, use the mock server: "
                "`server = seeds_nb.MockServer().start()` then OpenAIClient(model, base_url=server.url)"
            )
        super().__init__(model, api_key=secret, base_url=url, cache_dir=cache_dir, timeout=timeout,
                         **kwargs)


def response_format_json(value: Any) -> Any:
    """A pydantic model class becomes OpenAI's strict ``json_schema`` response format."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"type": "json_schema",
                "json_schema": {"name": value.__name__, "schema": _strict(value.model_json_schema()),
                                "strict": True}}
    return value


def _strict(schema: Any) -> Any:
    """OpenAI's strict mode wants every object closed and every property required."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema
