"""Gemini's ``generateContent`` protocol for the mock: validation, Google's error envelope, and the
translation of a request to the deterministic mock model and of its answer back.

The answer is the mock model's answer to the same conversation (system instruction first), so an
OpenAI, an Anthropic and a Gemini client asking the same thing get the same words and the same
prompt token count. A JSON ``responseMimeType`` with ``responseJsonSchema`` (or the OpenAPI-style
``responseSchema``) is answered with JSON that validates, as OpenAI's structured output is.
Implicit caching (Gemini 2.5) is simulated: a prefix of at least 1,024 tokens (everything but the
last part of the last turn) seen before is reported as ``cachedContentTokenCount``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from ._faults import Fault
from ._images import gemini_part
from ._model import (
    RequestError,
    answer,
    canonical_json,
    count_tokens,
    last_user_text,
    prompt_tokens,
    salt,
    token_logprobs,
    tool_arguments,
    tool_target,
)

if TYPE_CHECKING:
    from ._anthropic import PromptCache

__all__ = ["GRPC_CODES", "STATUS_NAMES", "bad_key_body", "build_response", "contents_text", "error_body",
           "response_tokens", "retry_info", "status_error_body", "to_chat_messages", "validate_generate_request"]

#: HTTP status -> Google's canonical status name (``error.status``)
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
#: status name -> ``google.rpc.Code`` (what a batch line's error carries instead of an HTTP status)
GRPC_CODES = {"CANCELLED": 1, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5, "ABORTED": 10,
              "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
              "UNAUTHENTICATED": 16}
_TOP_FIELDS = {"contents", "systemInstruction", "system_instruction", "generationConfig", "generation_config",
               "safetySettings", "safety_settings", "tools", "toolConfig", "tool_config", "cachedContent",
               "cached_content", "model", "labels"}
_CONFIG_FIELDS = {
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed", "presencePenalty",
    "frequencyPenalty", "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
    "responseModalities", "responseLogprobs", "logprobs", "mediaResolution", "speechConfig",
    "enableEnhancedCivicAnswers",
}
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
MAX_CANDIDATES = 8
IMPLICIT_CACHE_MIN_TOKENS = 1024
"""The smallest prefix Gemini 2.5 Flash caches implicitly."""


def error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Google's error envelope (the same for every Google API)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def retry_info(seconds: float) -> dict[str, Any]:
    """A ``google.rpc.RetryInfo`` detail: ``retryDelay`` as a protobuf Duration (``"12s"``, ``"0.5s"``)."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return {"@type": _RETRY_INFO, "retryDelay": f"{text}s"}


def bad_key_body() -> dict[str, Any]:
    """What Gemini answers to a wrong key: a 400 whose ``ErrorInfo`` reason says so."""
    return error_body(400, "API key not valid. Please pass a valid API key.", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
         "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])


def status_error_body(fault: Fault) -> dict[str, Any]:
    """A Google-shaped error for a ``status`` fault. A 429 carries a ``RetryInfo`` (``fault.retry_after``)
    and, with ``fault.code``, a ``QuotaFailure`` whose ``quotaId`` is that code (``...PerDay...`` = daily)."""
    status = fault.status
    details: list[dict[str, Any]] = []
    if status == 429:
        message = ("You exceeded your current quota, please check your plan and billing details."
                   if fault.code else "Resource has been exhausted (e.g. check quota).")
        if fault.code:
            details.append({"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests",
                 "quotaId": fault.code, "quotaValue": "250"}]})
        if fault.retry_after is not None:
            details.append(retry_info(fault.retry_after))
    elif status == 503:
        message = "The model is overloaded. Please try again later."
    elif status >= 500:
        message = "An internal error has occurred. Please retry or report it."
    elif status == 403:
        message = "Method doesn't allow unregistered callers (callers without established identity)."
    elif status == 404:
        message = "models/mock is not found for API version v1beta, or is not supported for generateContent."
    else:
        message = f"Mock fault: HTTP {status}."
    return error_body(status, message, details)


def _camel(config: dict[str, Any]) -> dict[str, Any]:
    """snake_case keys as their camelCase form (the REST API takes both)."""
    out = {}
    for key, value in config.items():
        head, *rest = key.split("_")
        out[head + "".join(w.title() for w in rest)] = value
    return out


def validate_generate_request(body: Any) -> None:
    """Raise ``RequestError`` if ``body`` is not a ``generateContent`` request the mock can answer
    (unknown fields are refused, as the real API does: a misspelt parameter is not silently ignored)."""
    if not isinstance(body, dict):
        raise RequestError("Invalid JSON payload received. Expected an object.")
    for key in body:
        if key not in _TOP_FIELDS:
            raise RequestError(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.', key)
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise RequestError("* GenerateContentRequest.contents: contents is not specified", "contents")
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or not isinstance(content.get("parts"), list) or not content["parts"]:
            raise RequestError(f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
                               f"contents[{i}]")
        if content.get("role", "user") not in ("user", "model", "function"):
            raise RequestError(f"Please use a valid role: user, model. (got {content.get('role')!r})",
                               f"contents[{i}].role")
        for j, part in enumerate(content["parts"]):
            if isinstance(part, dict):
                gemini_part(part, content.get("role", "user"), f"contents[{i}].parts[{j}]")
    config = _camel(body.get("generationConfig") or body.get("generation_config") or {})
    for key in config:
        if key not in _CONFIG_FIELDS:
            raise RequestError(f'Invalid JSON payload received. Unknown name "{key}" at \'generation_config\': '
                               "Cannot find field.", key)
    tokens = config.get("maxOutputTokens")
    if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1):
        raise RequestError("* GenerateContentRequest.generation_config.max_output_tokens: must be positive",
                           "maxOutputTokens")
    count = config.get("candidateCount")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                              or not 1 <= count <= MAX_CANDIDATES):
        raise RequestError(f"* GenerateContentRequest.generation_config.candidate_count: must be in [1, "
                           f"{MAX_CANDIDATES}]", "candidateCount")
    top = config.get("logprobs")
    if top is not None and (not config.get("responseLogprobs") or not isinstance(top, int) or not 0 <= top <= 20):
        raise RequestError("* GenerateContentRequest.generation_config.logprobs: logprobs must be in [0, 20] and "
                           "needs response_logprobs", "logprobs")
    temperature = config.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float) or not 0 <= temperature <= 2):
        raise RequestError("* GenerateContentRequest.generation_config.temperature: must be in [0.0, 2.0]",
                           "temperature")


def _parts_text(parts: Any) -> str:
    return "\n".join(str(p.get("text", "")) for p in parts or [] if isinstance(p, dict) and "text" in p)


def contents_text(body: dict[str, Any]) -> str:
    """Every text part of the request (what a fault's ``match`` is searched in)."""
    instruction = body.get("systemInstruction") or body.get("system_instruction") or {}
    texts = [_parts_text(instruction.get("parts"))] if isinstance(instruction, dict) else []
    return "\n".join([*texts, *(_parts_text(c.get("parts")) for c in body["contents"])])


def to_chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAI-shaped conversation the mock model answers (system instruction first; a turn of
    ``functionResponse`` parts is the functions' answer: a ``tool`` message, as OpenAI says it)."""
    messages = []
    instruction = body.get("systemInstruction") or body.get("system_instruction")
    if isinstance(instruction, dict) and instruction.get("parts"):
        messages.append({"role": "system", "content": _parts_text(instruction["parts"])})
    for content in body["contents"]:
        results = [p["functionResponse"] for p in content["parts"]
                   if isinstance(p, dict) and isinstance(p.get("functionResponse"), dict)]
        if results:
            messages.append({"role": "tool", "content": "\n".join(_result_text(r.get("response")) for r in results)})
            continue
        role = "assistant" if content.get("role") == "model" else "user"
        messages.append({"role": role, "content": _chat_content(content["parts"], content.get("role", "user"))})
    return messages


def _chat_content(parts: list[Any], role: Any) -> Any:
    """A turn's text, or (when it holds images) its text and image parts in order as OpenAI parts: the
    same conversation as the OpenAI dialect sees it, so the same answer."""
    images = [gemini_part(p, role, "parts") if isinstance(p, dict) else None for p in parts]
    if not any(images):
        return _parts_text(parts)
    out: list[dict[str, Any]] = []
    for part, image in zip(parts, images, strict=True):
        if image is not None:
            out.append(image)
        elif isinstance(part, dict) and "text" in part:
            out.append({"type": "text", "text": str(part["text"])})
    return out


def _result_text(response: Any) -> str:
    if isinstance(response, dict) and set(response) <= {"result", "output"} and len(response) == 1:
        value = next(iter(response.values()))
        return value if isinstance(value, str) else canonical_json(value)
    return canonical_json(response)


def _declarations(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """The functions a request declares: ``(name, JSON schema of the arguments)``."""
    out = []
    for tool in body.get("tools") or []:
        for decl in (tool.get("functionDeclarations") or tool.get("function_declarations") or []
                     if isinstance(tool, dict) else []):
            schema = decl.get("parametersJsonSchema") or _openapi_to_json_schema(decl.get("parameters"))
            out.append((decl.get("name"), schema))
    return out


def _called_function(body: dict[str, Any], messages: list[dict[str, Any]]) -> tuple[str, Any] | None:
    tool_config = body.get("toolConfig") or body.get("tool_config") or {}
    calling = _camel(tool_config.get("functionCallingConfig") or tool_config.get("function_calling_config") or {})
    mode = str(calling.get("mode") or "AUTO").upper()
    allowed = calling.get("allowedFunctionNames") or []
    declared = _declarations(body)
    if mode == "ANY" and allowed:
        return tool_target(declared, "function", allowed[0], False)
    return tool_target(declared, {"ANY": "required", "NONE": "none"}.get(mode, "auto"), None,
                       messages[-1]["role"] == "tool")


def _openapi_to_json_schema(schema: Any) -> Any:
    """``responseSchema`` (OpenAPI subset, types in capitals) -> JSON Schema the mock model can fill."""
    if isinstance(schema, dict):
        out = {k: _openapi_to_json_schema(v) for k, v in schema.items()}
        if isinstance(out.get("type"), str):
            out["type"] = out["type"].lower()
        return out
    if isinstance(schema, list):
        return [_openapi_to_json_schema(v) for v in schema]
    return schema


def _implicitly_cached(body: dict[str, Any], model: str, cache: PromptCache | None, total: int) -> int:
    """Tokens of the request's prefix (all but the last part of the last turn) that an earlier request
    already sent, if it is long enough to be cached; the prefix is remembered otherwise."""
    if cache is None:
        return 0
    instruction = body.get("systemInstruction") or body.get("system_instruction") or {}
    contents = body["contents"]
    prefix = [instruction.get("parts") if isinstance(instruction, dict) else None,
              [[c.get("role"), c["parts"]] for c in contents[:-1]], contents[-1]["parts"][:-1], body.get("tools")]
    parts = [p for c in contents[:-1] for p in c["parts"]] + list(contents[-1]["parts"][:-1])
    if isinstance(instruction, dict):
        parts += instruction.get("parts") or []
    tokens = sum(math.ceil(len(str(p["text"]) if isinstance(p, dict) and "text" in p else canonical_json(p)) / 4)
                 for p in parts)
    if tokens < IMPLICIT_CACHE_MIN_TOKENS:
        return 0
    key = hashlib.blake2b(canonical_json(["gemini", model, prefix]).encode(), digest_size=16).hexdigest()
    return min(tokens, total) if cache.hit(key) else 0


def build_response(body: dict[str, Any], model: str, identity: str, cache: PromptCache | None = None) -> dict[str, Any]:
    """The ``GenerateContentResponse`` the mock answers to a validated request (``cache``: the server's
    prompt cache, for implicit caching)."""
    messages = to_chat_messages(body)
    config = _camel(body.get("generationConfig") or body.get("generation_config") or {})
    response_format: dict[str, Any] | None = None
    if config.get("responseMimeType") == "application/json":
        schema = config.get("responseJsonSchema") or _openapi_to_json_schema(config.get("responseSchema"))
        response_format = ({"type": "json_schema", "json_schema": {"schema": schema}} if isinstance(schema, dict)
                           and schema else {"type": "json_object"})
    function = _called_function(body, messages)
    top = config.get("logprobs") or 0
    candidates = []
    output = 0
    for index in range(config.get("candidateCount") or 1):
        extra = salt(config.get("seed"), index)
        seed = canonical_json(messages) + extra
        if function is not None:
            args = tool_arguments(function[1], seed, last_user_text(messages))
            parts: list[dict[str, Any]] = [{"functionCall": {"name": function[0], "args": args}}]
            text, finish, used = "", "stop", count_tokens(json.dumps(args))
        else:
            text, finish, used = answer(messages, response_format, config.get("stopSequences"),
                                        config.get("maxOutputTokens"), extra)
            parts = [{"text": text}]
        output += used
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"},
                                     "finishReason": "MAX_TOKENS" if finish == "length" else "STOP", "index": index}
        if config.get("responseLogprobs"):
            tokens = token_logprobs(text, seed, top)
            candidate["logprobsResult"] = {
                "topCandidates": [{"candidates": [{"token": a, "logProbability": alp} for a, alp in alts]}
                                  for _, _, alts in tokens],
                "chosenCandidates": [{"token": t, "logProbability": lp} for t, lp, _ in tokens]}
            candidate["avgLogprobs"] = sum(lp for _, lp, _ in tokens) / len(tokens) if tokens else 0.0
        candidates.append(candidate)
    prompt = prompt_tokens(messages)
    thinking = _camel(config.get("thinkingConfig") or {})
    budget = thinking.get("thinkingBudget")
    thoughts = min(int(budget), 16 + 2 * output) if isinstance(budget, int) and budget > 0 else 0
    usage: dict[str, Any] = {"promptTokenCount": prompt, "candidatesTokenCount": output,
                             "totalTokenCount": prompt + output + thoughts,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]}
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    cached = _implicitly_cached(body, model, cache, prompt)
    if cached:  # a part of promptTokenCount, as Google reports it
        usage["cachedContentTokenCount"] = cached
    return {
        "candidates": candidates,
        "usageMetadata": usage, "modelVersion": model, "responseId": identity[:22],
    }


def response_tokens(response: dict[str, Any]) -> int:
    """Tokens an answer used (what a tokens-per-minute window counts)."""
    meta = response.get("usageMetadata") or {}
    return int(meta.get("totalTokenCount") or 0) or math.ceil(len(json.dumps(response)) / 4)
