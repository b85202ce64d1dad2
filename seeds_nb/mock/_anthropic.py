"""Anthropic's Messages protocol for the mock: validation, error bodies, rate-limit headers, and the
translation of a Messages request to the deterministic mock model and of its answer back.

The answer text is the mock model's answer to the same conversation (system prompt first), so an
OpenAI and an Anthropic client asking the same thing get the same words. Prompt caching is
simulated: the prefix up to the last ``cache_control`` block is written on first sight and read
afterwards, which gives real ``cache_creation_input_tokens`` / ``cache_read_input_tokens``.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from ._faults import Fault, RateWindow
from ._images import anthropic_part
from ._model import (
    RequestError,
    _render,
    answer,
    canonical_json,
    content_text,
    count_tokens,
    last_user_text,
    prompt_tokens,
    tool_arguments,
    tool_target,
)

__all__ = ["ERROR_TYPES", "PromptCache", "build_message", "error_body", "limit_headers", "status_error_body",
           "to_chat_body", "validate_messages_request"]

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 409: "conflict_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
_ROLES = ("user", "assistant")


def rfc3339(epoch: float) -> str:
    """``2026-11-29T21:40:00.123456Z``, the timestamp format of Anthropic's API."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def error_body(message: str, type_: str, request_id: str | None = None,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if details:
        error["details"] = details
    return {"type": "error", "error": error, "request_id": request_id}


def status_error_body(fault: Fault, request_id: str | None = None) -> dict[str, Any]:
    """An Anthropic-shaped error for a ``status`` fault (``code`` goes to ``details.error_code``)."""
    status, code = fault.status, fault.code
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    if status == 429 and code == "enforced_spend_limit_reached":
        msg = "You have reached your specified workspace API usage limits."
    elif status == 429:
        msg = "Number of requests has exceeded your rate limit. Please try again later."
    elif status == 529:
        msg = "Overloaded"
    elif status >= 500:
        msg = "Internal server error"
    elif status == 401:
        msg = "invalid x-api-key"
    else:
        msg = f"Mock fault: HTTP {status}."
    return error_body(msg, kind, request_id, {"error_code": code} if code else None)


def limit_headers(rpm: RateWindow, tpm: RateWindow, default_rpm: int, default_tpm: int,
                  now_mono: float, now_epoch: float) -> dict[str, str]:
    """``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-*`` (resets in RFC 3339)."""
    headers: dict[str, str] = {}
    for kind, window, default in (("requests", rpm, default_rpm), ("tokens", tpm, default_tpm)):
        limit = window.limit if window.limit is not None else default
        reset = window.events[0][0] + window.window_s - now_mono if window.events else 0.0
        values = {"limit": str(limit), "remaining": str(window.remaining(default)),
                  "reset": rfc3339(now_epoch + max(reset, 0.0))}
        for name in ((kind,) if kind == "requests" else ("tokens", "input-tokens", "output-tokens")):
            for key, value in values.items():
                headers[f"anthropic-ratelimit-{name}-{key}"] = value
    return headers


def validate_messages_request(body: Any) -> None:
    """Raise ``RequestError`` if ``body`` is not a Messages request the mock can answer."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise RequestError("model: Field required", "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise RequestError("max_tokens: Field required", "max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise RequestError("max_tokens: Input should be a positive integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages: at least one message is required", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in _ROLES:
            role = msg.get("role") if isinstance(msg, dict) else None
            raise RequestError(f"messages.{i}.role: Input should be 'user' or 'assistant' (got {role!r}); "
                               "put system prompts in the top-level system parameter", f"messages.{i}.role")
        content = msg.get("content")
        if not isinstance(content, str) and not (
                isinstance(content, list) and all(isinstance(b, dict) and "type" in b for b in content)):
            raise RequestError(f"messages.{i}.content: a string or a list of content blocks", f"messages.{i}")
        if isinstance(content, list):
            for j, block in enumerate(content):
                if block.get("type") == "image":
                    anthropic_part(block, msg.get("role"), f"messages.{i}.content.{j}.image")
    for name in ("n", "logprobs", "top_logprobs", "seed"):  # the Messages API has none of these
        if name in body:
            raise RequestError(f"{name}: Extra inputs are not permitted", name)
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise RequestError("system: Input should be a string or a list of text blocks", "system")
    if body.get("stream"):
        raise RequestError("The mock server does not support stream=true.", "stream")


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    return content_text(content) if content is not None else ""


def to_chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI-shaped request the mock model answers (system first, text of every block; a user turn of
    ``tool_result`` blocks is the tools' answer: a ``tool`` message, as OpenAI says it)."""
    messages = []
    if body.get("system"):
        messages.append({"role": "system", "content": content_text(body["system"])})
    for m in body["messages"]:
        results = [b for b in _blocks(m["content"]) if b.get("type") == "tool_result"]
        if m["role"] == "user" and results:
            messages.append({"role": "tool", "content": "\n".join(map(_result_text, results))})
            text = content_text([b for b in m["content"] if b.get("type") == "text"])
            if text:
                messages.append({"role": "user", "content": text})
        else:
            messages.append({"role": m["role"], "content": _chat_content(m["content"], m["role"])})
    return {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"],
            "stop": body.get("stop_sequences")}


def _chat_content(content: Any, role: str) -> Any:
    """A turn's text, or (when it holds images) its text and image blocks in order as OpenAI parts: the
    same conversation as the OpenAI dialect sees it, so the same answer."""
    if not isinstance(content, list) or not any(b.get("type") == "image" for b in content):
        return content_text(content)
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        if block.get("type") == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif block.get("type") == "image":
            parts.append(anthropic_part(block, role, f"content.{j}.image"))
    return parts


def _called_tool(body: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the mock model calls (a forced one, ``any``, or with ``auto`` the first unless the
    conversation ends with tool results), as the OpenAI mock decides it."""
    choice, tools = body.get("tool_choice") or {}, [t for t in body.get("tools") or [] if "input_schema" in t]
    mode = {"tool": "function", "any": "required", "none": "none"}.get(str(choice.get("type")), "auto")
    target = tool_target([(t.get("name"), t) for t in tools], mode, choice.get("name"),
                         chat["messages"][-1]["role"] == "tool")
    return target[1] if target is not None else None


class PromptCache:
    """The prefixes a mock "account" has cached (bounded, thread-safe)."""

    def __init__(self, size: int = 10_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        """True if ``key`` was cached; caches it otherwise."""
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            self._seen[key] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return False

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def _cached_prefix(body: dict[str, Any], cache: PromptCache | None, total: int) -> tuple[int, int]:
    """(cache read, cache write) tokens for the prefix ending at the last ``cache_control`` block."""
    if cache is None:
        return 0, 0
    blocks = [*(body.get("tools") or []), *_blocks(body.get("system"))]
    for message in body["messages"]:
        blocks += _blocks(message["content"])
    last = max((i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")), default=-1)
    if last < 0:
        return 0, 0
    prefix = blocks[: last + 1]
    tokens = sum(math.ceil(len(str(b.get("text", "")) if b.get("type") == "text" else canonical_json(b)) / 4)
                 for b in prefix)
    key = hashlib.blake2b(canonical_json([body["model"], prefix]).encode(), digest_size=16).hexdigest()
    tokens = min(tokens, total)
    return (tokens, 0) if cache.hit(key) else (0, tokens)


def build_message(body: dict[str, Any], identity: str, cache: PromptCache | None = None,
                  service_tier: str = "standard") -> dict[str, Any]:
    """The ``message`` the mock answers to a validated Messages request."""
    chat = to_chat_body(body)
    seed = canonical_json(chat["messages"])
    tool = _called_tool(body, chat)
    stop_sequence = None
    if tool is not None:
        forced = (body.get("tool_choice") or {}).get("type") == "tool"  # response_format: a value, not a call
        value = tool_arguments(tool.get("input_schema"), seed, "" if forced else last_user_text(chat["messages"]))
        content: list[dict[str, Any]] = [{"type": "tool_use", "id": "toolu_" + identity[:24], "name": tool["name"],
                                          "input": value}]
        output, stop_reason = count_tokens(json.dumps(value)), "tool_use"
    else:
        text, finish, output = answer(chat["messages"], None, chat["stop"], chat["max_tokens"])
        stops = [s for s in (chat["stop"] or []) if isinstance(s, str) and s]
        if finish == "stop" and stops:
            full = _render(chat["messages"], None)
            if len(text) < len(full):
                stop_sequence = next((s for s in stops if full.startswith(s, len(text))), None)
        stop_reason = "max_tokens" if finish == "length" else "stop_sequence" if stop_sequence else "end_turn"
        content = [{"type": "text", "text": text}]
    tools = body.get("tools") or []
    total = prompt_tokens(chat["messages"]) + sum(math.ceil(len(canonical_json(t)) / 4) for t in tools)
    read, write = _cached_prefix(body, cache, total)
    return {
        "id": "msg_" + identity[:24], "type": "message", "role": "assistant", "model": body["model"],
        "content": content, "stop_reason": stop_reason, "stop_sequence": stop_sequence,
        "usage": {"input_tokens": max(total - read - write, 0), "cache_creation_input_tokens": write,
                  "cache_read_input_tokens": read, "output_tokens": max(output, 1), "service_tier": service_tier},
    }
