"""``GoogleClient``: the Gemini API (``POST {base_url}/models/{model}:generateContent``) over the shared core.

Only translation lives here (``GoogleCodec``): chat messages -> Gemini ``contents`` (system messages
into ``systemInstruction``, ``assistant`` as role ``model``, content parts as Gemini parts), our
generation parameters -> ``generationConfig``, the answer -> ``Response`` (``usageMetadata`` in the
genai-prices convention), and Google's error envelope -> the ``SeedsError`` tree, with a 429's
``google.rpc.RetryInfo`` delay handed to the core's retry wait and client-wide pause. No vendor SDK:
the protocol is plain JSON over the core's HTTP pool.

Structured output: a pydantic ``response_format`` becomes ``responseMimeType: application/json``
plus ``responseJsonSchema`` (the model's JSON schema as it is, ``$defs`` included); the pipeline
validates the JSON text into ``parsed`` as for every provider.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Mapping, Sequence
from sys import intern
from typing import Any

from pydantic import BaseModel

from seeds_nb.core.client import BaseClient, check_base_url
from seeds_nb.core.codec import Codec
from seeds_nb.core.exceptions import (
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    PromptError,
    error_for_status,
)
from seeds_nb.core.images import ImagePart
from seeds_nb.core.retry import parse_duration, retry_after_from_headers
from seeds_nb.core.secrets import Secret, SecretHeaders
from seeds_nb.core.tooling import call_arguments, function_specs, tool_choice
from seeds_nb.core.types import Choice, Message, Response, TokenLogprob, ToolCall, Usage

from ._google_batch import BATCH_INPUTS, GoogleBatchAPI

__all__ = ["CALL_ID_PREFIX", "GEMINI_BASE_URL", "GoogleClient", "GoogleCodec", "gemini_tool_config", "gemini_tools",
           "google_error", "response_format_config"]

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
ECOLOGITS_PROVIDER = "google_genai"
KEY_ENVS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
CALL_ID_PREFIX = "gemini-call-"
"""The id given to a ``functionCall`` Gemini sent without one (its position in the answer); never sent back."""
"""Where the key is looked for, in this order (as the google-genai SDK: ``GOOGLE_API_KEY`` wins)."""
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
           "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
           "IMAGE_SAFETY": "content_filter", "LANGUAGE": "content_filter"}
_SYSTEM_ROLES = ("system", "developer")
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_BAD_KEY_REASONS = ("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED")
#: our parameter -> ``generationConfig`` field (values passed as they are)
_CONFIG = {"temperature": "temperature", "top_p": "topP", "top_k": "topK", "max_output_tokens": "maxOutputTokens",
           "max_tokens": "maxOutputTokens", "seed": "seed", "presence_penalty": "presencePenalty",
           "frequency_penalty": "frequencyPenalty", "candidate_count": "candidateCount",
           "response_mime_type": "responseMimeType", "thinking_config": "thinkingConfig"}
#: our parameter -> a top-level request field
_TOP = {"safety_settings": "safetySettings", "tools": "tools", "tool_config": "toolConfig",
        "cached_content": "cachedContent"}


class GoogleCodec(Codec):
    """The Gemini API on the wire: ``contents`` + ``systemInstruction`` + ``generationConfig``,
    ``usageMetadata`` into ``Usage``, Google's ``{"error": {code, message, status, details}}`` into
    the ``SeedsError`` tree (a 429's ``RetryInfo.retryDelay`` becomes ``retry_after``)."""

    provider = "google"
    key_env = "GEMINI_API_KEY"
    known_params = frozenset({*_CONFIG, *_TOP, "stop", "stop_sequences", "response_format", "system_instruction",
                              "n", "logprobs", "top_logprobs", "tool_choice", "extra_body"})
    unsupported = {"parallel_tool_calls": "the Gemini API has no switch for parallel function calls; drop it (a "
                                          "model that calls several functions returns them all in tool_calls)"}

    #: the google-genai SDK's (and the original library's) name for a structured answer's schema
    param_aliases = {"response_schema": "response_format"}

    def __init__(self, *, model: str, base_url: str, system_instruction: str | None = None) -> None:
        super().__init__(model=model, base_url=base_url)
        self.system_instruction = system_instruction
        self.path = f"/models/{model}:generateContent"

    def auth_headers(self, secret: Secret) -> SecretHeaders:
        headers = SecretHeaders({"content-type": "application/json"})
        return headers.with_extra({"x-goog-api-key": secret.get() or ""}) if secret else headers

    def canonical_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``response_schema=`` is ``response_format=``: a pydantic model as it is, a JSON schema dict as
        OpenAI's ``json_schema`` form (sent as ``responseJsonSchema``; ``.parsed`` is the JSON)."""
        schema = params.get("response_schema")
        out = super().canonical_params(params)
        if isinstance(schema, dict) and schema.get("type") not in ("json_schema", "json_object"):
            out["response_format"] = {"type": "json_schema", "json_schema": {"name": "response_schema",
                                                                            "schema": schema}}
        return out

    # -- request -------------------------------------------------------------------------------
    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        system: list[dict[str, Any]] = []
        default = params.get("system_instruction", self.system_instruction)
        if default is not None and not isinstance(default, str):
            raise ConfigurationError(f"system_instruction must be a string (or None); got {default!r}")
        if default:
            system += _parts(default)
        contents: list[dict[str, Any]] = []
        names: dict[str, str] = {}  # tool call id -> function name (a functionResponse is matched by name)
        for message in messages:
            if message.role in _SYSTEM_ROLES:
                system += _parts(message.content)
            elif message.role == "tool":
                part = _function_response(message, names)
                if contents and contents[-1].get("_results"):
                    contents[-1]["parts"].append(part)  # results of parallel calls go in one turn
                else:
                    contents.append({"role": "user", "parts": [part], "_results": True})
            elif message.tool_calls:
                text = message.content
                parts = (_parts(text) if text else [])
                for call in message.tool_calls:
                    names[call["id"]] = call["function"]["name"]
                    parts.append(_function_call(call))
                contents.append({"role": "model", "parts": parts})
            else:
                contents.append({"role": "model" if message.role == "assistant" else "user",
                                 "parts": _parts(message.content)})
        for content in contents:
            content.pop("_results", None)
        if not contents:
            raise PromptError("a Gemini prompt needs at least one user message besides the system instruction")
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": system}
        body.update(self.options(params))
        return self.path, body

    def options(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Everything of the request but its messages: ``generationConfig`` and the top-level fields
        (also what identifies the parameters in the cache key: ``max_tokens`` and ``max_output_tokens``
        are the same request, so they are the same key)."""
        for name, alias in (("max_output_tokens", "max_tokens"), ("stop_sequences", "stop")):
            if params.get(name) is not None and params.get(alias) is not None:
                raise ConfigurationError(f"pass {name} or its alias {alias}, not both")
        for name, alias in (("candidate_count", "n"), ("tool_config", "tool_choice")):
            if params.get(name) is not None and params.get(alias) is not None:
                raise ConfigurationError(f"pass {name} or OpenAI's {alias}, not both")
        stop = params.get("stop") if params.get("stop") is not None else params.get("stop_sequences")
        config: dict[str, Any] = {}
        top: dict[str, Any] = {}
        for name, value in params.items():
            if value is None:
                continue
            if name in _CONFIG:
                config[_CONFIG[name]] = value
            elif name == "tools":
                top["tools"] = gemini_tools(value)
            elif name == "tool_choice":
                top["toolConfig"] = gemini_tool_config(value)
            elif name == "n":
                config["candidateCount"] = value
            elif name == "logprobs":
                config["responseLogprobs"] = value
            elif name == "top_logprobs":
                config["logprobs"] = value
            elif name in _TOP:
                top[_TOP[name]] = value
        if stop is not None:
            config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
        if params.get("response_format") is not None:
            config.update(response_format_config(params["response_format"]))
        if config:
            top["generationConfig"] = config
        extra = params.get("extra_body") or {}
        for key, value in extra.items():  # extra generationConfig fields merge; others are set as given
            if key == "generationConfig" and isinstance(value, dict):
                top["generationConfig"] = {**top.get("generationConfig", {}), **value}
            else:
                top[key] = value
        return top

    def cache_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        out = self.options(params)
        instruction = params.get("system_instruction", self.system_instruction)
        if instruction:  # the client's default instruction changes the answer: it is part of the key
            out["systemInstruction"] = instruction
        return out

    # -- response ------------------------------------------------------------------------------
    def parse_response(self, body: bytes, headers: Mapping[str, str], params: Mapping[str, Any]) -> Response:
        data = json.loads(body)
        candidates = data.get("candidates") or []
        meta = data.get("usageMetadata")
        if meta is None:  # a server that reports no usage: unknown, never 0
            usage = Usage.unknown()
        else:
            thoughts = int(meta.get("thoughtsTokenCount") or 0)
            usage = Usage(  # cached content is part of promptTokenCount; thoughts are billed as output
                prompt_tokens=int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0),
                completion_tokens=int(meta.get("candidatesTokenCount") or 0) + thoughts,
                cached_tokens=int(meta.get("cachedContentTokenCount") or 0), reasoning_tokens=thoughts,
            )
        # no candidate at all: the prompt itself was blocked (promptFeedback.blockReason)
        choices = [_choice(c, i) for i, c in enumerate(candidates)] or [Choice(0, "", "content_filter")]
        return Response.from_choices(
            choices, model=intern(_model_name(data.get("modelVersion")) or self.model), usage=usage,
            provider=self.provider, request_id=data.get("responseId"), _raw=body,
        )

    def error_for_status(self, status: int, body: bytes, headers: Mapping[str, str], url: str) -> APIStatusError:
        return google_error(status, body, headers, url, provider=self.provider, base_url=self.base_url,
                            model=self.model, key_env=self.key_env)


def google_error(status: int, body: bytes, headers: Mapping[str, str], url: str, *, provider: str, base_url: str,
                 model: str, key_env: str) -> APIStatusError:
    """Google's ``{"error": {"code", "message", "status", "details"}}`` -> the ``SeedsError`` tree.

    Why here and not in ``error_for_status`` alone: Google says a bad key with a 400 (``ErrorInfo``
    reason ``API_KEY_INVALID``), its 429 wait in a ``RetryInfo`` detail rather than a header, and a
    spent daily quota in a ``QuotaFailure`` whose ``quotaId`` names the period (``...PerDay...``).
    """
    text = body.decode("utf-8", "replace")
    message, code, details = text[:300], None, []
    try:
        err = json.loads(body).get("error") or {}
        message = err.get("message") or message
        code = err.get("status")
        details = [d for d in err.get("details") or [] if isinstance(d, dict)]
    except (ValueError, AttributeError):
        pass
    reasons = {d.get("reason") for d in details if d.get("@type") == _ERROR_INFO}
    if status == 400 and reasons & set(_BAD_KEY_REASONS):
        return AuthenticationError(f"400 from {provider} server at {base_url}: {message} - check {key_env} or api_key=",
                                   status_code=status, body=text, headers=dict(headers), code=code,
                                   provider=provider, url=url)
    retry_after = None
    for detail in details:
        if detail.get("@type") == _RETRY_INFO and isinstance(detail.get("retryDelay"), str):
            retry_after = parse_duration(detail["retryDelay"])  # a protobuf Duration: "12s", "0.5s"
    if retry_after is None:
        retry_after = retry_after_from_headers(headers)
    quota_ids = [str(v.get("quotaId") or "") for d in details if d.get("@type") == _QUOTA_FAILURE
                 for v in d.get("violations") or [] if isinstance(v, dict)]
    daily = any("PerDay" in q for q in quota_ids)
    return error_for_status(status, message, provider=provider, base_url=base_url, url=url, model=model,
                            key_env=key_env, body=text, headers=dict(headers), code=code, retry_after=retry_after,
                            quota_exhausted=daily,
                            quota_hint="daily quota exhausted: wait for it to reset or raise it in Google AI Studio")


def _choice(candidate: Mapping[str, Any], position: int) -> Choice:
    """One of Gemini's ``candidates``: its text (thought summaries are not the answer), its function calls,
    its ``logprobsResult``."""
    parts = [p for p in (candidate.get("content") or {}).get("parts") or [] if isinstance(p, dict)]
    content = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    raw_finish = candidate.get("finishReason")
    finish = _FINISH.get(raw_finish, raw_finish.lower()) if isinstance(raw_finish, str) and raw_finish else None
    calls = tuple(ToolCall.from_value(str(p["functionCall"].get("id") or f"{CALL_ID_PREFIX}{k}"),
                                      str(p["functionCall"].get("name")), p["functionCall"].get("args") or {})
                  for k, p in enumerate(q for q in parts if isinstance(q.get("functionCall"), dict)))
    if calls:
        finish = "tool_calls"
    logprobs = None
    result = candidate.get("logprobsResult")
    if isinstance(result, dict):
        chosen = result.get("chosenCandidates") or []
        tops = result.get("topCandidates") or []
        logprobs = tuple(
            TokenLogprob(str(c.get("token", "")), float(c.get("logProbability") or 0.0),
                         tuple((str(a.get("token", "")), float(a.get("logProbability") or 0.0))
                               for a in (tops[i].get("candidates") or [] if i < len(tops) else [])))
            for i, c in enumerate(chosen))
    index = candidate.get("index")
    return Choice(index if isinstance(index, int) else position, content, intern(finish) if finish else finish,
                  calls, logprobs)


def _function_call(call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-form tool call (``Message.tool_calls``) -> a Gemini ``functionCall`` part (an id Gemini sent
    goes back; one we made up for a call without does not)."""
    out: dict[str, Any] = {"name": call["function"]["name"], "args": call_arguments(call, "Gemini")}
    if not call["id"].startswith(CALL_ID_PREFIX):
        out["id"] = call["id"]
    return {"functionCall": out}


def _function_response(message: Message, names: Mapping[str, str]) -> dict[str, Any]:
    """A ``tool`` message -> a ``functionResponse`` part, named by the call it answers (Gemini matches by name)."""
    call_id = message.tool_call_id or ""
    name = names.get(call_id)
    if name is None:
        raise PromptError(f"the tool result for call {call_id!r} follows no assistant message with that call; "
                          "put the answer's message (response.to_message()) before its tool results")
    text = message.text()
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    out: dict[str, Any] = {"name": name, "response": value if isinstance(value, dict) else {"result": value}}
    if not call_id.startswith(CALL_ID_PREFIX):
        out["id"] = call_id
    return {"functionResponse": out}


def gemini_tools(tools: Any) -> list[dict[str, Any]]:
    """OpenAI-form tools -> one ``functionDeclarations`` tool (schemas as ``parametersJsonSchema``: JSON Schema
    as it is, as ``responseJsonSchema`` takes it); Gemini's own tools pass through."""
    specs = function_specs(tools)
    if specs is None:
        return list(tools)
    return [{"functionDeclarations": [{"name": s.name, **({"description": s.description} if s.description else {}),
                                       "parametersJsonSchema": s.parameters} for s in specs]}]


def gemini_tool_config(value: Any) -> dict[str, Any]:
    """OpenAI's ``tool_choice`` -> ``toolConfig.functionCallingConfig`` (``required`` is ``ANY``; a named
    function is ``ANY`` allowed only that one)."""
    choice = tool_choice(value)
    if choice is None:
        raise ConfigurationError(f"tool_choice must be 'auto', 'none', 'required' or {{'type': 'function', "
                                 f"'function': {{'name': ...}}}} (Gemini's own form goes in tool_config=); "
                                 f"got {value!r}")
    if choice.mode == "function":
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.name]}}
    return {"functionCallingConfig": {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice.mode]}}


def _model_name(name: Any) -> str | None:
    return name.removeprefix("models/") if isinstance(name, str) and name else None


def _parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our content (text, or OpenAI-style parts) -> Gemini parts; Gemini-native parts pass through."""
    if isinstance(content, str):
        return [{"text": content}]
    return [_part(part) for part in content]


def _part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind is None:  # already a Gemini part: {"text"}, {"inlineData"}, {"fileData"}, {"functionResponse"}...
        return part
    if kind == "text":
        return {"text": part.get("text", "")}
    image = part.get("source")
    if kind == "image" and isinstance(image, ImagePart):  # normalised by Message: see seeds_nb.core.images
        if image.url is None:
            return {"inlineData": {"mimeType": image.mime, "data": image.base64()}}
        file_data = {"fileUri": image.url}
        mime = mimetypes.guess_type(image.url.split("?", 1)[0])[0]
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    raise PromptError(f"GoogleClient cannot send a content part of type {kind!r}; use 'text', 'image' "
                      "({'type': 'image', 'source': ...}), 'image_url', or a Gemini part such as "
                      "{'inlineData': {'mimeType': ..., 'data': ...}}")


def response_format_config(value: Any) -> dict[str, Any]:
    """``generationConfig`` fields asking for JSON: a pydantic model (or an OpenAI-style ``json_schema``)
    as ``responseJsonSchema``; ``{"type": "json_object"}`` as JSON without a schema."""
    if isinstance(value, type) and issubclass(value, BaseModel):
        return {"responseMimeType": "application/json", "responseJsonSchema": value.model_json_schema()}
    if isinstance(value, dict) and value.get("type") == "json_schema" and isinstance(value.get("json_schema"), dict):
        return {"responseMimeType": "application/json", "responseJsonSchema": value["json_schema"].get("schema") or {}}
    if isinstance(value, dict) and value.get("type") == "json_object":
        return {"responseMimeType": "application/json"}
    raise ConfigurationError(
        "GoogleClient takes response_format as a pydantic model class, an OpenAI-style {'type': 'json_schema', "
        "'json_schema': {'schema': {...}}} or {'type': 'json_object'}; got " + repr(value))


class GoogleClient(BaseClient):
    """Gemini API client (``generateContent``), no SDK needed.

    Args:
        model: e.g. ``"gemini-2.5-flash"`` (a ``models/`` prefix is accepted and dropped).
        api_key: defaults to ``GOOGLE_API_KEY``, then ``GEMINI_API_KEY``; sent as ``x-goog-api-key``.
            Optional for a base_url other than Google's (the seeds_nb mock: ``server.gemini_url``).
        base_url: defaults to ``GOOGLE_GEMINI_BASE_URL``, then
            ``https://generativelanguage.googleapis.com/v1beta``.
        system_instruction: a system instruction for every prompt (before the prompt's own system
            messages, which also go to ``systemInstruction``); a call's ``system_instruction=`` replaces it.
        batch_input: how ``submit_batch`` sends requests to the Batch API: ``"auto"`` (inline when a batch
            fits in Google's 20 MB, else as a JSONL file uploaded with the Files API), ``"inline"``, ``"file"``.
        cache_dir, timeout, and the other keyword arguments: as for ``OpenAIClient``.

    Generation parameters: ``temperature``, ``top_p``, ``top_k``, ``max_output_tokens`` (or its alias
    ``max_tokens``), ``stop`` / ``stop_sequences``, ``seed``, ``presence_penalty``, ``frequency_penalty``,
    ``candidate_count``, ``response_mime_type``, ``thinking_config``, ``safety_settings``, ``tools``,
    ``tool_config``, ``cached_content``, ``response_format``, and ``extra_body={...}`` for the rest.
    """

    provider = "google"
    codec_class = GoogleCodec
    batch_api_class = GoogleBatchAPI
    default_model = "gemini-2.5-flash"
    api_key_env = KEY_ENVS
    base_url_env = ("GOOGLE_GEMINI_BASE_URL",)
    default_base_url = GEMINI_BASE_URL

    def __init__(self, model: str, api_key: str | None = None, base_url: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None, timeout: float = 60.0, *,
                 system_instruction: str | None = None, batch_input: str = "auto", **kwargs: Any) -> None:
        secret, base_url = self.resolve_credentials(api_key, base_url)
        del api_key  # only the Secret holds it from here (a traceback shows locals)
        if isinstance(base_url, str):
            base_url = base_url.rstrip("/")
        if not secret and base_url == GEMINI_BASE_URL:
            raise ConfigurationError(
                "no Gemini API key: set the GEMINI_API_KEY (or GOOGLE_API_KEY) environment variable or pass "
                "api_key=...; to try seeds_nb without a key, use the mock server: "
                "`server = seeds_nb.MockServer().start()` then GoogleClient(model, base_url=server.gemini_url)")
        if isinstance(model, str):
            model = model.removeprefix("models/")
        if system_instruction is not None and (not isinstance(system_instruction, str)
                                               or not system_instruction.strip()):
            raise ConfigurationError(
                f"system_instruction must be a non-empty string (or None); got {system_instruction!r}")
        if batch_input not in BATCH_INPUTS:
            raise ConfigurationError(f"batch_input must be one of {', '.join(BATCH_INPUTS)} (how submit_batch sends "
                                     f"its requests: inline up to 20 MB, or as an uploaded JSONL file); got "
                                     f"{batch_input!r}")
        self.system_instruction = system_instruction
        #: how ``submit_batch`` sends a batch's requests: ``"auto"`` (inline up to 20 MB, else a JSONL file),
        #: ``"inline"`` or ``"file"``
        self.batch_input = batch_input
        codec = GoogleCodec(model=model, base_url=check_base_url(base_url), system_instruction=system_instruction) \
            if isinstance(model, str) and model.strip() else None
        super().__init__(model, api_key=secret, base_url=base_url, cache_dir=cache_dir, timeout=timeout, codec=codec,
                         **kwargs)
        # genai-prices calls the provider "google" (our name); EcoLogits' model repository calls it "google_genai"
        self.tracker.impacts_provider = ECOLOGITS_PROVIDER
