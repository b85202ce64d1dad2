"""The three protocols the mock speaks on its chat endpoints, as small "dialect" objects.

One request pipeline in ``_server.py`` (log, auth, validation, rate windows, faults, latency) serves
``POST /v1/chat/completions``, ``POST /v1/messages`` and ``POST /v1beta/models/{model}:generateContent``;
a dialect supplies only what differs: the auth header, validation, the answer's shape, error bodies
and rate-limit headers.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from typing import Any

from . import _anthropic as anth
from . import _gemini as gem
from ._faults import BAD_KEY, DEFAULT_RPM, DEFAULT_TPM, Fault, RateWindow, error_body, go_duration, status_error_body
from ._model import RequestError, build_completion, messages_text, validate_request

__all__ = ["ANTHROPIC", "GEMINI", "OPENAI", "Dialect"]


class Dialect:
    """What differs between the chat protocols; the OpenAI one."""

    name = "openai"
    request_id_header = "x-request-id"
    #: the status of a request with a wrong key
    unauthorized_status = 401
    #: whether a fault's ``retry_after`` is sent as ``retry-after`` headers
    retry_after_header = True

    def request_id(self, n: int) -> str:
        return f"req_{n:024x}"

    def with_path(self, body: Any, match: Mapping[str, str]) -> Any:
        """The body with what the protocol puts in the URL path (Gemini's model) added."""
        return body

    def authorized(self, headers: Mapping[str, str], api_key: str | None) -> bool:
        return api_key is None or hmac.compare_digest(headers.get("Authorization", "").encode(),
                                                      f"Bearer {api_key}".encode())

    def unauthorized(self, request_id: str) -> dict[str, Any]:
        return {"error": BAD_KEY}

    def invalid(self, message: str, param: str | None, request_id: str) -> dict[str, Any]:
        return error_body(message, "invalid_request_error", param)

    def validate(self, body: Any, headers: Mapping[str, str]) -> None:
        validate_request(body)

    def answer(self, body: dict[str, Any], identity: str, created: int, cache: anth.PromptCache) -> dict[str, Any]:
        return build_completion(body, identity, created)

    def tokens(self, answer: dict[str, Any]) -> int:
        return int(answer["usage"]["total_tokens"])

    def text(self, body: dict[str, Any]) -> str:
        return messages_text(body["messages"])

    def fault_body(self, fault: Fault, request_id: str) -> dict[str, Any]:
        return status_error_body(fault)

    def limit_headers(self, rpm: RateWindow, tpm: RateWindow, now_mono: float, now_epoch: float) -> dict[str, str]:
        headers = rpm.headers("requests", DEFAULT_RPM, now_mono)
        headers.update(tpm.headers("tokens", DEFAULT_TPM, now_mono))
        return headers

    def exhausted(self, kind: str) -> dict[str, str]:
        return {f"x-ratelimit-remaining-{kind}": "0"}

    def exhausted_until(self, kind: str, wait_s: float, now_epoch: float) -> dict[str, str]:
        """The limit ``kind`` is used up and resets in ``wait_s`` (a 429 with only these headers)."""
        return {**self.exhausted(kind), f"x-ratelimit-reset-{kind}": go_duration(wait_s)}

    def rate_limited(self, model: str, kind: str, limit: int | None, used: int, asked: int, wait: float,
                     request_id: str) -> dict[str, Any]:
        label = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
        msg = (f"Rate limit reached for {model} in organization org-seeds-mock on {label}: "
               f"Limit {limit}, Used {used}, Requested {asked}. Please try again in {go_duration(wait)}.")
        return error_body(msg, kind, None, "rate_limit_exceeded")

    def malformed(self, answer: dict[str, Any]) -> str:
        return json.dumps(answer)[: 40 + len(answer["id"])]


class AnthropicDialect(Dialect):
    """Anthropic's Messages API: ``x-api-key``, ``anthropic-version``, its error envelope and headers."""

    name = "anthropic"
    request_id_header = "request-id"

    def authorized(self, headers: Mapping[str, str], api_key: str | None) -> bool:
        if api_key is None:
            return True
        return (hmac.compare_digest(headers.get("x-api-key", "").encode(), api_key.encode())
                or super().authorized(headers, api_key))

    def unauthorized(self, request_id: str) -> dict[str, Any]:
        return anth.error_body("invalid x-api-key", "authentication_error", request_id)

    def invalid(self, message: str, param: str | None, request_id: str) -> dict[str, Any]:
        return anth.error_body(message, "invalid_request_error", request_id)

    def validate(self, body: Any, headers: Mapping[str, str]) -> None:
        if not headers.get("anthropic-version"):
            raise RequestError("anthropic-version: header is required")
        anth.validate_messages_request(body)

    def answer(self, body: dict[str, Any], identity: str, created: int, cache: anth.PromptCache) -> dict[str, Any]:
        return anth.build_message(body, identity, cache)

    def tokens(self, answer: dict[str, Any]) -> int:
        usage = answer["usage"]
        return int(usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
                   + usage["output_tokens"])

    def text(self, body: dict[str, Any]) -> str:
        return messages_text(body["messages"])

    def fault_body(self, fault: Fault, request_id: str) -> dict[str, Any]:
        return anth.status_error_body(fault, request_id)

    def limit_headers(self, rpm: RateWindow, tpm: RateWindow, now_mono: float, now_epoch: float) -> dict[str, str]:
        return anth.limit_headers(rpm, tpm, DEFAULT_RPM, DEFAULT_TPM, now_mono, now_epoch)

    def exhausted(self, kind: str) -> dict[str, str]:
        return {f"anthropic-ratelimit-{kind}-remaining": "0"}

    def exhausted_until(self, kind: str, wait_s: float, now_epoch: float) -> dict[str, str]:
        return {**self.exhausted(kind), f"anthropic-ratelimit-{kind}-reset": anth.rfc3339(now_epoch + wait_s)}

    def rate_limited(self, model: str, kind: str, limit: int | None, used: int, asked: int, wait: float,
                     request_id: str) -> dict[str, Any]:
        msg = (f"This request would exceed the rate limit for your organization of {limit} {kind} per minute "
               f"for {model} (used {used}, requested {asked}). Please try again in {go_duration(wait)}.")
        return anth.error_body(msg, "rate_limit_error", request_id)

    def malformed(self, answer: dict[str, Any]) -> str:
        return json.dumps(answer)[: 20 + len(answer["id"])]


class GeminiDialect(Dialect):
    """Gemini's ``generateContent``: ``x-goog-api-key``, the model in the path, Google's error envelope
    (a wrong key is a 400 ``API_KEY_INVALID``; a 429 says its wait in a ``RetryInfo``), no rate headers."""

    name = "gemini"
    request_id_header = "x-mock-request-id"
    unauthorized_status = 400
    retry_after_header = False

    def with_path(self, body: Any, match: Mapping[str, str]) -> Any:
        return {**body, "model": match.get("model", "")} if isinstance(body, dict) else body

    def authorized(self, headers: Mapping[str, str], api_key: str | None) -> bool:
        return api_key is None or hmac.compare_digest(headers.get("x-goog-api-key", "").encode(), api_key.encode())

    def unauthorized(self, request_id: str) -> dict[str, Any]:
        return gem.bad_key_body()

    def invalid(self, message: str, param: str | None, request_id: str) -> dict[str, Any]:
        return gem.error_body(400, message)

    def validate(self, body: Any, headers: Mapping[str, str]) -> None:
        gem.validate_generate_request(body)

    def answer(self, body: dict[str, Any], identity: str, created: int, cache: anth.PromptCache) -> dict[str, Any]:
        return gem.build_response(body, body["model"], identity, cache)

    def tokens(self, answer: dict[str, Any]) -> int:
        return gem.response_tokens(answer)

    def text(self, body: dict[str, Any]) -> str:
        return gem.contents_text(body)

    def fault_body(self, fault: Fault, request_id: str) -> dict[str, Any]:
        return gem.status_error_body(fault)

    def limit_headers(self, rpm: RateWindow, tpm: RateWindow, now_mono: float, now_epoch: float) -> dict[str, str]:
        return {}

    def exhausted(self, kind: str) -> dict[str, str]:
        return {}

    def exhausted_until(self, kind: str, wait_s: float, now_epoch: float) -> dict[str, str]:
        return {}

    def rate_limited(self, model: str, kind: str, limit: int | None, used: int, asked: int, wait: float,
                     request_id: str) -> dict[str, Any]:
        per = "Requests" if kind == "requests" else "InputTokens"
        return gem.error_body(429, "You exceeded your current quota, please check your plan and billing details.", [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                {"quotaMetric": f"generativelanguage.googleapis.com/generate_content_{kind}",
                 "quotaId": f"Generate{per}PerMinutePerProjectPerModel", "quotaValue": str(limit)}]},
            gem.retry_info(wait)])

    def malformed(self, answer: dict[str, Any]) -> str:
        return json.dumps(answer)[:40]


OPENAI = Dialect()
ANTHROPIC = AnthropicDialect()
GEMINI = GeminiDialect()
