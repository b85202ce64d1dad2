"""``AnthropicClient``: the Messages API (``POST /v1/messages``) over the shared core.

Only translation lives here (``AnthropicCodec``): chat messages -> Anthropic's shape (system prompt on top, content
parts as blocks), the answer -> ``Response`` (usage in the genai-prices convention), and HTTP errors
-> the ``SeedsError`` tree. Retries, limits, cache, tracking and batches are the core's.

Structured output: a pydantic ``response_format`` becomes one forced tool whose ``input_schema`` is
the model's JSON schema; the tool call's input is the answer (``content`` holds it as JSON; the
pipeline validates it into ``parsed``). This works on every Claude model without a beta header.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from sys import intern
from typing import Any

from pydantic import BaseModel

from seeds_nb.core.client import BaseClient, check_base_url
from seeds_nb.core.codec import Codec, RateLimit
from seeds_nb.core.exceptions import (
    APIStatusError,
    ConfigurationError,
    PromptError,
    ResponseParseError,
    error_for_status,
)
from seeds_nb.core.images import ImagePart
from seeds_nb.core.retry import retry_after_from_headers
from seeds_nb.core.secrets import Secret, SecretHeaders
from seeds_nb.core.tooling import call_arguments, function_specs, tool_choice
from seeds_nb.core.types import Choice, Message, Response, ToolCall, Usage

from ._anthropic_batch import ERROR_STATUS, AnthropicBatchAPI

__all__ = ["ANTHROPIC_BASE_URL", "ANTHROPIC_VERSION", "ERROR_STATUS", "AnthropicClient", "AnthropicCodec",
           "anthropic_tool_choice", "anthropic_tools"]

ANTHROPIC_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
           "refusal": "content_filter"}
_SYSTEM_ROLES = ("system", "developer")
_LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


class AnthropicCodec(Codec):
    """The Messages API on the wire: system prompt on top, content parts as blocks, a structured answer
    as one forced tool call, usage in the genai-prices convention, errors into the ``SeedsError`` tree."""

    provider = "anthropic"
    key_env = "ANTHROPIC_API_KEY"
    known_params = frozenset({
        "temperature", "max_tokens", "top_p", "top_k", "stop", "stop_sequences", "metadata", "response_format",
        "tools", "tool_choice", "parallel_tool_calls", "thinking", "service_tier", "extra_body",
    })
    unsupported = {
        "n": "the Messages API returns one answer per request; send the prompt n times (a list of n copies "
             "to batch_generate with use_cache=False), or use OpenAIClient/GoogleClient for n > 1",
        "logprobs": "the Messages API returns no token log probabilities; use OpenAIClient or GoogleClient",
        "top_logprobs": "the Messages API returns no token log probabilities; use OpenAIClient or GoogleClient",
        "seed": "the Messages API has no seed (answers cannot be pinned by one); drop seed=, or set "
                "temperature=0 for the most repeatable answers",
    }

    def __init__(self, *, model: str, base_url: str, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        super().__init__(model=model, base_url=base_url)
        self.max_tokens = max_tokens

    def auth_headers(self, secret: Secret) -> SecretHeaders:
        headers = SecretHeaders({"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION})
        return headers.with_extra({"x-api-key": secret.get() or ""}) if secret else headers

    # -- request -------------------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        system: list[Any] = []
        turns: list[dict[str, Any]] = []
        for message in messages:
            if message.role in _SYSTEM_ROLES:
                system.append(message.content)
            elif message.role == "tool":  # OpenAI's tool result -> a tool_result block in a user turn
                block = {"type": "tool_result", "tool_use_id": message.tool_call_id,
                         "content": _content(message.content)}
                if turns and turns[-1]["role"] == "user" and _has_tool_results(turns[-1]):
                    turns[-1]["content"].append(block)  # results of parallel calls go in one turn
                else:
                    turns.append({"role": "user", "content": [block]})
            elif message.role == "user" and turns and _has_tool_results(turns[-1]):
                content = _content(message.content)  # text after tool results joins their turn
                turns[-1]["content"] += [{"type": "text", "text": content}] if isinstance(content, str) else content
            elif message.tool_calls:
                text = _content(message.content)
                blocks = ([{"type": "text", "text": text}] if text else []) if isinstance(text, str) else list(text)
                turns.append({"role": "assistant", "content": blocks + [_tool_use(c) for c in message.tool_calls]})
            else:
                turns.append({"role": message.role, "content": _content(message.content)})
        if not turns:
            raise PromptError("an Anthropic prompt needs at least one user message besides the system prompt")
        body: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens}
        if system:
            body["system"] = _system(system)
        body["messages"] = turns
        if params.get("response_format") is not None and params.get("tools") is not None:
            raise ConfigurationError("AnthropicClient sends response_format as a forced tool call, so it cannot be "
                                     "combined with tools=; ask for one or the other")
        for name, value in params.items():
            if value is None:
                continue
            if name == "extra_body":
                body.update(value or {})
            elif name == "response_format":
                body.update(response_format_tool(value))
            elif name == "tools":
                body["tools"] = anthropic_tools(value)
            elif name == "tool_choice":
                body["tool_choice"] = {**body.get("tool_choice", {}), **anthropic_tool_choice(value)}
            elif name == "parallel_tool_calls":  # Anthropic says it the other way round, inside tool_choice
                body["tool_choice"] = {"type": "auto", **body.get("tool_choice", {}),
                                       "disable_parallel_tool_use": not value}
            elif name == "stop":
                body["stop_sequences"] = [value] if isinstance(value, str) else list(value)
            else:
                body[name] = value
        return "/v1/messages", body

    def cache_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(params)
        if "max_tokens" not in out and self.max_tokens != DEFAULT_MAX_TOKENS:
            out["max_tokens"] = self.max_tokens  # the client's own cap changes answers (1024: keys as before)
        if out.get("response_format") is not None:
            out["response_format"] = response_format_tool(out["response_format"])
        return out

    # -- response ------------------------------------------------------------------------------
    def parse_response(self, body: bytes, headers: Mapping[str, str], params: Mapping[str, Any]) -> Response:
        data = json.loads(body)
        blocks = data["content"]
        usage_json = data.get("usage")
        if usage_json is None:  # a server that reports no usage: unknown, never 0
            usage = Usage.unknown()
        else:
            cache_read = int(usage_json.get("cache_read_input_tokens") or 0)
            cache_write = int(usage_json.get("cache_creation_input_tokens") or 0)
            usage = Usage(  # Anthropic's input_tokens excludes cache reads and writes; ours is the whole input
                prompt_tokens=int(usage_json.get("input_tokens") or 0) + cache_read + cache_write,
                completion_tokens=int(usage_json.get("output_tokens") or 0),
                cached_tokens=cache_read, cache_write_tokens=cache_write,
            )
        stop = data.get("stop_reason")
        content = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        schema = params.get("response_format")
        calls = () if schema is not None else tuple(  # a structured answer's forced call is the answer, not a call
            ToolCall.from_value(str(b.get("id")), str(b.get("name")), b.get("input"))
            for b in blocks if b.get("type") == "tool_use")
        response = Response.from_choices(
            [Choice(0, content, _FINISH.get(stop, stop), calls)], model=intern(data.get("model") or self.model),
            usage=usage, provider=self.provider, request_id=headers.get("request-id") or data.get("id"), _raw=body,
        )
        if schema is not None:  # the forced tool call's input is the answer; the pipeline validates it
            name = response_format_tool(schema)["tool_choice"]["name"]
            call = next((b for b in blocks if b.get("type") == "tool_use" and b.get("name") == name), None)
            if call is None:
                error = ResponseParseError(f"the answer has no {name!r} tool call for response_format "
                                           f"(stop_reason {stop!r}; content starts {content[:120]!r})",
                                           provider=self.provider, url=self.base_url)
                error.content = content
                raise error
            response.content = json.dumps(call.get("input"), ensure_ascii=False)
            response.finish_reason = "stop" if stop == "tool_use" else response.finish_reason
        return response

    def rate_limits(self, headers: Mapping[str, str], *, exhausted_only: bool) -> list[RateLimit]:
        limits = []
        for kind in _LIMITS:
            remaining = headers.get(f"anthropic-ratelimit-{kind}-remaining")
            if remaining is None or (exhausted_only and remaining != "0"):
                continue
            reset = seconds_until(headers.get(f"anthropic-ratelimit-{kind}-reset", ""))  # RFC 3339 time
            try:
                count: int | None = int(remaining)
            except ValueError:
                count = None
            limits.append(RateLimit(kind, count, reset))
        return limits

    def error_for_status(self, status: int, body: bytes, headers: Mapping[str, str], url: str) -> APIStatusError:
        text = body.decode("utf-8", "replace")
        message, kind, code = text[:300], None, None
        try:
            err = json.loads(body).get("error") or {}
            message = err.get("message") or message
            kind = err.get("type")
            code = (err.get("details") or {}).get("error_code") or kind
        except (ValueError, AttributeError):
            pass
        spend = code == "enforced_spend_limit_reached" or "enforced_spend_limit_reached" in text
        return error_for_status(status, message, provider=self.provider, base_url=self.base_url, url=url,
                                model=self.model, key_env=self.key_env, body=text, headers=dict(headers),
                                code=code, retry_after=retry_after_from_headers(headers), quota_exhausted=spend,
                                quota_hint="spend limit reached: raise it in the Anthropic console")


class AnthropicClient(BaseClient):
    """Messages API client (Claude).

    Args:
        model: e.g. ``"claude-sonnet-4-5"``.
        api_key: defaults to ``ANTHROPIC_API_KEY``; optional for a non-Anthropic ``base_url``
            (the seeds_nb mock: ``server.anthropic_url``).
        base_url: defaults to ``ANTHROPIC_BASE_URL``, then ``https://api.anthropic.com`` (without
            ``/v1``; a trailing ``/v1`` is dropped, so ``MockServer.url`` works too).
        max_tokens: used when a call does not pass ``max_tokens`` (Anthropic requires one).
        cache_dir, timeout, and the other keyword arguments: as for ``OpenAIClient``.
    """

    provider = "anthropic"
    codec_class = AnthropicCodec
    batch_api_class = AnthropicBatchAPI
    default_model = "claude-haiku-4-5"
    api_key_env = (AnthropicCodec.key_env,)
    base_url_env = ("ANTHROPIC_BASE_URL",)
    default_base_url = ANTHROPIC_BASE_URL

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, timeout: float = 60.0, *,
                 max_tokens: int = DEFAULT_MAX_TOKENS, **kwargs: Any) -> None:
        secret, base_url = self.resolve_credentials(api_key, base_url)
        del api_key  # only the Secret holds it from here (a traceback shows locals)
        if isinstance(base_url, str):
            base_url = base_url.rstrip("/").removesuffix("/v1")
        if not secret and base_url == ANTHROPIC_BASE_URL:
            raise ConfigurationError(
                f"no Anthropic API key: set the {self.api_key_env[0]} environment variable or pass api_key=...; "
                "to try seeds_nb without a key, use the mock server: `server = seeds_nb.MockServer().start()` "
                "then AnthropicClient(model, base_url=server.anthropic_url)"
            )
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigurationError(f"max_tokens must be a positive integer; got {max_tokens!r}")
        self.max_tokens = max_tokens
        super().__init__(model, api_key=secret, base_url=base_url, cache_dir=cache_dir, timeout=timeout,
                         codec=AnthropicCodec(model=model, base_url=check_base_url(base_url), max_tokens=max_tokens),
                         **kwargs)


def _content(content: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Our parts -> Anthropic blocks (images as image blocks); other blocks pass through untouched."""
    if isinstance(content, str):
        return content
    return [_block(part) for part in content]


def _has_tool_results(turn: dict[str, Any]) -> bool:
    content = turn["content"]
    return isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)


def _tool_use(call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-form tool call (from ``Message.tool_calls``) -> Anthropic's ``tool_use`` block."""
    return {"type": "tool_use", "id": call["id"], "name": call["function"]["name"],
            "input": call_arguments(call, "Anthropic")}


def anthropic_tools(tools: Any) -> list[dict[str, Any]]:
    """OpenAI-form tools -> Anthropic's ``{name, description, input_schema}``; Anthropic's own pass through."""
    specs = function_specs(tools)
    if specs is None:
        return list(tools)
    return [{"name": s.name, **({"description": s.description} if s.description else {}),
             "input_schema": s.parameters} for s in specs]


def anthropic_tool_choice(value: Any) -> dict[str, Any]:
    """OpenAI's ``tool_choice`` -> Anthropic's: ``required`` is ``any``, a named function is ``tool``."""
    choice = tool_choice(value)
    if choice is None:
        if not isinstance(value, dict):
            raise ConfigurationError(f"tool_choice must be 'auto', 'none', 'required', a function choice or "
                                     f"Anthropic's {{'type': ...}}; got {value!r}")
        return dict(value)
    if choice.mode == "function":
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.mode]}


def _block(part: dict[str, Any]) -> dict[str, Any]:
    """An image (an ``ImagePart``: see ``seeds_nb.core.images``) as a base64 or URL source block."""
    image = part.get("source")
    if part.get("type") != "image" or not isinstance(image, ImagePart):
        return part
    source = ({"type": "url", "url": image.url} if image.url is not None
              else {"type": "base64", "media_type": image.mime, "data": image.base64()})
    block = {"type": "image", "source": source}
    if "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _system(parts: list[Any]) -> str | list[dict[str, Any]]:
    """Every system/developer message joined into Anthropic's single top-level ``system``."""
    if all(isinstance(p, str) for p in parts):
        return "\n\n".join(parts)
    blocks: list[dict[str, Any]] = []
    for part in parts:
        blocks.extend([{"type": "text", "text": part}] if isinstance(part, str) else part)
    return blocks


def response_format_tool(value: Any) -> dict[str, Any]:
    """``tools`` + ``tool_choice`` forcing one tool whose input is the structured answer.

    Takes a pydantic model class, or OpenAI's ``{"type": "json_schema", "json_schema": {...}}``.
    """
    if isinstance(value, type) and issubclass(value, BaseModel):
        name, schema, about = value.__name__, value.model_json_schema(), value.__doc__
    elif isinstance(value, dict) and value.get("type") == "json_schema" and isinstance(value.get("json_schema"), dict):
        spec = value["json_schema"]
        name, schema, about = spec.get("name") or "answer", spec.get("schema") or {}, spec.get("description")
    else:
        raise ConfigurationError(
            "AnthropicClient takes response_format as a pydantic model class (or an OpenAI-style "
            "{'type': 'json_schema', 'json_schema': {...}}); it is sent as a forced tool call. "
            f"Got {value!r}"
        )
    name = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64] or "answer"
    tool = {"name": name, "description": (about or f"Record the answer as {name}.").strip()[:1024],
            "input_schema": schema}
    return {"tools": [tool], "tool_choice": {"type": "tool", "name": name}}


def seconds_until(rfc3339: str, now: float | None = None) -> float | None:
    """Seconds from now to an RFC 3339 timestamp (Anthropic's ``*-reset`` headers); None if unparsable."""
    try:
        when = datetime.fromisoformat(rfc3339.strip()).timestamp()
    except ValueError:
        return None
    return max(0.0, when - (time.time() if now is None else now))
