"""The deterministic mock "model": pure functions from a request body to a chat.completion dict.

Everything here is a pure function of the request (hash-based via blake2b, never Python's randomized
``hash()``), so answers are identical across runs and processes, and code can compute the expected
answer without HTTP via :func:`mock_completion`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from typing import Any

from ._errors import RequestError
from ._images import MOCK_IMAGE_TOKENS, check_openai_part, describe

VALID_ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})
MAX_COUNT = 1000  # "Count to N" answers are capped so a silly prompt cannot produce megabytes
MAX_N = 128  # choices per request, as OpenAI's limit
MAX_TOP_LOGPROBS = 20

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")
_COUNT_RE = re.compile(r"\bcount(?:\s+from\s+1)?\s+(?:up\s+)?to\s+(\d+)", re.IGNORECASE)
_VOCAB = (
    "the model data seed notebook cell value result signal pattern context answer system layer "
    "token vector graph sample batch metric error trend insight method source output input "
    "simple robust quick careful clear useful typical stable small large recent common "
    "analysis review summary detail example estimate approach question concept process "
    "is can may often usually suggests shows indicates improves reduces supports explains "
    "with from across within between under over after before through"
).split()
_BYTE_WORDS = tuple(_VOCAB[b % len(_VOCAB)] for b in range(256))  # byte -> word, one lookup per word
_SNIPPET_CHARS = 60
_MAX_SCHEMA_DEPTH = 6


def _hash_int(*parts: object) -> int:
    """Stable 64-bit hash of ``parts`` (blake2b, identical across processes)."""
    data = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def unit_hash(*parts: object) -> float:
    """Stable hash of ``parts`` mapped into [0, 1); used for deterministic fault rates and jitter."""
    return _hash_int(*parts) / 2.0**64


def canonical_json(obj: Any) -> str:
    """Key-sorted compact JSON, so semantically equal bodies hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def request_identity(body: Any) -> str:
    """Identity of a request: blake2b hex of its canonical JSON (messages + params)."""
    return hashlib.blake2b(canonical_json(body).encode(), digest_size=16).hexdigest()


def content_text(content: Any) -> str:
    """Text of a message ``content``: a string, or the ``text`` parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return str(content)


def messages_text(messages: list[dict[str, Any]]) -> str:
    """All message texts joined; what a fault's ``match`` substring is searched in."""
    return "\n".join(content_text(m.get("content")) for m in messages)


def count_tokens(text: str) -> int:
    """Rough token count of generated text: words plus punctuation pieces."""
    return len(_TOKEN_RE.findall(text))


def image_urls(content: Any) -> list[str]:
    """The URLs (data or http) of a message content's ``image_url`` parts."""
    if not isinstance(content, list):
        return []
    return [p["image_url"]["url"] for p in content if isinstance(p, dict) and p.get("type") == "image_url"
            and isinstance(p.get("image_url"), dict) and isinstance(p["image_url"].get("url"), str)]


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Approximate OpenAI prompt accounting: ceil(chars/4) + 4 per message, + 3 for priming, and
    ``MOCK_IMAGE_TOKENS`` per image."""
    return sum(math.ceil(len(content_text(m.get("content"))) / 4) + 4
               + MOCK_IMAGE_TOKENS * len(image_urls(m.get("content"))) for m in messages) + 3


def validate_request(body: Any) -> None:
    """Raise :class:`RequestError` if ``body`` is not a chat request the mock can answer."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.", None)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array of message objects.", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RequestError(f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]")
        role = msg.get("role")
        if role not in VALID_ROLES:
            raise RequestError(
                f"Invalid value: {role!r}. Supported values are: 'system', 'assistant', 'user', "
                "'developer', and 'tool'.",
                f"messages[{i}].role",
            )
        content = msg.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, dict) and part.get("type") == "image_url":
                    check_openai_part(part, role, f"messages[{i}].content[{j}]")
    tool_ids: set[str] = set()
    for i, msg in enumerate(messages):
        for call in msg.get("tool_calls") or ():
            if isinstance(call, dict):
                tool_ids.add(str(call.get("id")))
        if msg.get("role") == "tool" and msg.get("tool_call_id") not in tool_ids:
            raise RequestError("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                               "message with 'tool_calls'.", f"messages.[{i}].role")
    n = body.get("n")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N):
        raise RequestError(f"Invalid 'n': integer below minimum value or above maximum {MAX_N}.", "n")
    check_logprobs(body.get("logprobs"), body.get("top_logprobs"))
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise RequestError("Invalid type for 'seed': expected an integer.", "seed")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(
                isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str) for t in tools):
            raise RequestError("Invalid 'tools': each tool is {'type': 'function', 'function': {'name', ...}}.",
                               "tools")
    if body.get("stream"):
        raise RequestError("The mock server does not support stream=true.", "stream")
    for key in ("max_tokens", "max_completion_tokens"):
        val = body.get(key)
        if val is not None and (not isinstance(val, int) or isinstance(val, bool) or val < 1):
            raise RequestError(f"Invalid '{key}': must be a positive integer.", key)


def check_logprobs(logprobs: Any, top: Any) -> None:
    """OpenAI's rules for ``logprobs`` / ``top_logprobs`` (the mock refuses what the real API refuses)."""
    if logprobs is not None and not isinstance(logprobs, bool):
        raise RequestError("Invalid type for 'logprobs': expected a boolean.", "logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise RequestError(f"Invalid 'top_logprobs': must be an integer from 0 to {MAX_TOP_LOGPROBS}.",
                               "top_logprobs")
        if not logprobs:
            raise RequestError("Invalid value for 'top_logprobs': 'logprobs' must be set to true.", "top_logprobs")


def _last_user_content(messages: list[dict[str, Any]]) -> Any:
    # A tool's result is what the model answers after calling it: the last user or tool message is the prompt.
    for msg in reversed(messages):
        if msg.get("role") in ("user", "tool"):
            return msg.get("content")
    return messages[-1].get("content")


def last_user_text(messages: list[dict[str, Any]]) -> str:
    return content_text(_last_user_content(messages))


def salt(seed: Any, index: int) -> str:
    """What makes choice ``index`` of a request with ``seed`` differ from the plain answer (empty for the
    first choice without a seed: an answer is the same as before the mock knew seeds)."""
    return (f"\x1fseed={seed}" if seed is not None else "") + (f"\x1fchoice={index}" if index else "")


def tool_target(tools: list[tuple[str, Any]], mode: str, forced: str | None,
                answered: bool) -> tuple[str, Any] | None:
    """The tool the mock model calls: ``(name, JSON schema of its arguments)``, or None to answer in text.

    ``mode`` is OpenAI's ``auto`` / ``none`` / ``required`` / ``function`` (then ``forced`` names it).
    With ``auto`` the model calls the first tool unless the conversation already ends with a tool's
    result (``answered``): then it answers in words, which is what makes a round trip end."""
    if not tools or mode == "none":
        return None
    if mode == "function":
        return next((t for t in tools if t[0] == forced), None)
    if mode == "auto" and answered:
        return None
    return tools[0]


def tool_arguments(schema: Any, seed: str, prompt: str = "") -> dict[str, Any]:
    """Deterministic arguments for a tool call, valid for the schema and derived from the conversation: the
    first plain string property holds the prompt's text (so a test can see where it came from)."""
    schema = schema if isinstance(schema, dict) and schema else {"type": "object", "properties": {}}
    value = schema_value(schema, schema, seed)
    if not isinstance(value, dict):
        return {"value": value}
    text = " ".join(prompt.split())
    for name, spec in (schema.get("properties") or {}).items():
        if text and isinstance(spec, dict) and spec.get("type") == "string" and not {"format", "enum", "const",
                                                                                     "pattern"} & set(spec):
            cut = text[: spec.get("maxLength", _SNIPPET_CHARS)]
            if len(cut) >= spec.get("minLength", 0):
                value[name] = cut
            break
    return value


_PIECE_RE = re.compile(r"\s*(?:\w+|[^\w\s])")


def token_logprobs(content: str, seed: str, top: int) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """Deterministic ``(token, logprob, alternatives)`` for each token of ``content`` (tokens keep their
    leading space, so they join back into the content; alternatives are less likely, most likely first)."""
    out = []
    for i, piece in enumerate(_PIECE_RE.findall(content)):
        logprob = -round(unit_hash(seed, i) * 1.5, 4)
        alternatives = [(piece, logprob)] if top else []
        for k in range(1, top):
            word = _VOCAB[_hash_int(seed, i, k) % len(_VOCAB)]
            alternatives.append((" " + word, round(logprob - k - unit_hash(seed, i, k), 4)))
        out.append((piece, logprob, alternatives))
    return out


def _words(seed: str, lo: int, hi: int) -> list[str]:
    """A deterministic word sequence of length in [lo, hi] derived from ``seed``."""
    digest = hashlib.blake2b(seed.encode(), digest_size=64).digest()
    n = lo + digest[0] % (hi - lo + 1)
    stream = digest[1:]
    while len(stream) < n:  # only needed if hi > 63
        stream += hashlib.blake2b(stream, digest_size=64).digest()
    return list(map(_BYTE_WORDS.__getitem__, stream[:n]))


def _answer_text(messages: list[dict[str, Any]], seed: str) -> tuple[str, int | None]:
    """The plain-text answer: counting for "Count to N", otherwise a hash-chosen sentence; with its
    token count when it is cheap to know (a batch of 100k answers should not regex every one)."""
    content = _last_user_content(messages)
    prompt = content_text(content)
    m = _COUNT_RE.search(prompt)
    if m:
        return ", ".join(str(i) for i in range(1, min(int(m.group(1)), MAX_COUNT) + 1)), None
    snippet = " ".join(prompt.split())
    if len(snippet) > _SNIPPET_CHARS:
        snippet = snippet[: _SNIPPET_CHARS - 3] + "..."
    words = _words(seed, 8, 60)
    words[0] = words[0].capitalize()
    seen = "".join(" " + describe(url) for url in image_urls(content))  # what arrived, for tests to check
    head = f"Mock answer to '{snippet}'{seen}: "
    # Words are single tokens separated by spaces, then "." : the count is exact.
    return head + " ".join(words) + ".", count_tokens(head) + len(words) + 1


# --------------------------------------------------------------------------- JSON schema values


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    """Resolve a local JSON pointer ``$ref`` such as ``#/$defs/Item`` (or ``#`` for the root)."""
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _merge_all_of(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for sub in schema["allOf"]:
        sub = _resolve(sub["$ref"], root) if "$ref" in sub else sub
        for key, val in sub.items():
            if key == "properties":
                merged.setdefault("properties", {}).update(val)
            elif key == "required":
                merged["required"] = list(dict.fromkeys([*merged.get("required", []), *val]))
            else:
                merged.setdefault(key, val)
    return merged


def _int_in(schema: dict[str, Any], h: int) -> int:
    lo = hi = None
    if "minimum" in schema:
        lo = math.ceil(schema["minimum"])
    if "exclusiveMinimum" in schema:
        lo = max(lo if lo is not None else -(2**62), math.floor(schema["exclusiveMinimum"]) + 1)
    if "maximum" in schema:
        hi = math.floor(schema["maximum"])
    if "exclusiveMaximum" in schema:
        hi = min(hi if hi is not None else 2**62, math.ceil(schema["exclusiveMaximum"]) - 1)
    if lo is None:
        lo = 1 if hi is None or hi >= 100 else hi - 99
    if hi is None:
        hi = max(lo + 99, 100)
    step = schema.get("multipleOf")
    if isinstance(step, int) and step > 0:
        first = math.ceil(lo / step) * step
        count = max((hi - first) // step + 1, 1)
        return first + step * (h % count)
    return lo + h % (hi - lo + 1)


def _number_in(schema: dict[str, Any], h: int) -> float:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    lo = float(lo) if lo is not None else (float(hi) - 100.0 if hi is not None else 0.0)
    hi = float(hi) if hi is not None else lo + 100.0
    value = round(lo + (h % 1000 + 1) / 1001 * (hi - lo), 2)
    return value if lo < value < hi else (lo + hi) / 2


def _string_for(schema: dict[str, Any], name: str, seed: str, path: str) -> str:
    fmt = schema.get("format")
    h = _hash_int(seed, path)
    if fmt == "date-time":
        text = f"2024-{1 + h % 12:02d}-{1 + h % 28:02d}T12:00:00Z"
    elif fmt == "date":
        text = f"2024-{1 + h % 12:02d}-{1 + h % 28:02d}"
    elif fmt == "time":
        text = f"{h % 24:02d}:{h % 60:02d}:00"
    elif fmt == "email":
        text = f"{_VOCAB[h % len(_VOCAB)]}@example.com"
    elif fmt in ("uri", "url"):
        text = f"https://example.com/{_VOCAB[h % len(_VOCAB)]}"
    elif fmt == "uuid":
        x = f"{h:016x}{_hash_int(path, seed):016x}"
        text = f"{x[:8]}-{x[8:12]}-4{x[13:16]}-8{x[17:20]}-{x[20:32]}"
    else:
        label = name.replace("_", " ").strip() or "text"
        text = f"{label}: " + " ".join(_words(seed + path, 2, 6))
    min_len, max_len = schema.get("minLength", 0), schema.get("maxLength")
    if len(text) < min_len:
        text += "x" * (min_len - len(text))
    return text[:max_len] if max_len is not None else text


def schema_value(
    schema: Any, root: dict[str, Any], seed: str, path: str = "$", name: str = "", depth: int = 0
) -> Any:
    """A deterministic value that validates against ``schema`` (the subset pydantic/OpenAI strict uses)."""
    if not isinstance(schema, dict):
        return None if schema is False else _string_for({}, name, seed, path)
    if "$ref" in schema:
        return schema_value(_resolve(schema["$ref"], root), root, seed, path, name, depth + 1)
    if "allOf" in schema:
        schema = _merge_all_of(schema, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][_hash_int(seed, path) % len(schema["enum"])]
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        non_null = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        # Prefer the informative branch; past the depth limit take null (if allowed) to end recursion.
        if not non_null or (depth >= _MAX_SCHEMA_DEPTH and len(non_null) < len(options)):
            return None
        return schema_value(non_null[0], root, seed, path, name, depth + 1)
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "null")
    if typ is None:
        typ = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if typ == "object":
        props = schema.get("properties", {})
        return {k: schema_value(v, root, seed, f"{path}.{k}", k, depth + 1) for k, v in props.items()}
    if typ == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        n = lo if depth >= _MAX_SCHEMA_DEPTH else max(lo, 1 + _hash_int(seed, path) % 3)
        n = min(n, hi) if hi is not None else n
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", {})
        return [
            schema_value(prefix[i] if i < len(prefix) else items, root, seed, f"{path}[{i}]", name, depth + 1)
            for i in range(max(n, len(prefix)))
        ]
    if typ == "string":
        return _string_for(schema, name, seed, path)
    if typ == "integer":
        return _int_in(schema, _hash_int(seed, path))
    if typ == "number":
        return _number_in(schema, _hash_int(seed, path))
    if typ == "boolean":
        return _hash_int(seed, path) % 2 == 0
    return None


def _render(messages: list[dict[str, Any]], response_format: Any, salt: str = "") -> str:
    """Full (untruncated) content for the messages, honouring ``response_format``."""
    return _render_counted(messages, response_format, salt)[0]


def _render_counted(messages: list[dict[str, Any]], response_format: Any, salt: str = "") -> tuple[str, int | None]:
    seed = canonical_json(messages) + salt
    text, tokens = _answer_text(messages, seed)
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict) and schema:
            return json.dumps(schema_value(schema, schema, seed), ensure_ascii=False), None
        kind = "json_object"
    if kind == "json_object":
        return json.dumps({"answer": text}, ensure_ascii=False), None
    return text, tokens


def answer(messages: list[dict[str, Any]], response_format: Any, stop: Any,
           max_tokens: int | None, salt: str = "") -> tuple[str, str, int]:
    """(content, finish_reason, completion tokens) of the mock model for a conversation (``salt``: see
    :func:`salt`; a seed or a later choice gives another answer, the same each time)."""
    full, tokens = _render_counted(messages, response_format, salt)
    if tokens is not None and not stop and (max_tokens is None or tokens <= max_tokens):
        return full, "stop", max(tokens, 1)
    content, finish = _truncate(full, stop, max_tokens)
    return content, finish, max(count_tokens(content), 1)


def _truncate(content: str, stop: Any, max_tokens: int | None) -> tuple[str, str]:
    """Apply ``stop`` sequences then ``max_tokens``; returns (content, finish_reason)."""
    stops = [stop] if isinstance(stop, str) else [s for s in (stop or []) if isinstance(s, str) and s]
    cut = min((i for i in (content.find(s) for s in stops if s) if i >= 0), default=-1)
    if cut >= 0:
        content = content[:cut]
    if max_tokens is not None:
        for i, m in enumerate(_TOKEN_RE.finditer(content)):
            if i == max_tokens:
                return content[: m.start()].rstrip(), "length"
    return content, "stop"


MOCK_USD_PER_TOKEN = (0.5e-6, 1.5e-6)
"""What the mock bills per input and output token when asked for OpenRouter's usage accounting: its own
rates, deliberately no real model's, so a test can tell a billed cost from a price table's."""


def mock_cost_usd(prompt: int, completion: int) -> float:
    """The ``usage.cost`` the mock reports for these token counts."""
    return round(prompt * MOCK_USD_PER_TOKEN[0] + completion * MOCK_USD_PER_TOKEN[1], 12)


def mock_completion(body: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    """The ``chat.completion`` dict the mock server returns for ``body`` (raises RequestError if invalid).

    The server's answer equals this except for ``created``, so tests and docs can compute expectations
    offline.
    """
    validate_request(body)
    return build_completion(body, request_identity(body), int(time.time()) if created is None else created)


def build_completion(body: dict[str, Any], identity: str, created: int) -> dict[str, Any]:
    """:func:`mock_completion` for an already validated body whose identity the caller has computed."""
    messages = body["messages"]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    tools = [(t["function"]["name"], t["function"].get("parameters")) for t in body.get("tools") or ()]
    choice = body.get("tool_choice")
    forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    mode = "function" if forced else choice if isinstance(choice, str) else "auto"
    target = tool_target(tools, mode, forced, messages[-1].get("role") == "tool")
    top = body.get("top_logprobs") or 0
    choices = []
    completion = 0
    for index in range(body.get("n") or 1):
        extra = salt(body.get("seed"), index)
        message: dict[str, Any]
        if target is not None:
            arguments = json.dumps(tool_arguments(target[1], canonical_json(messages) + extra,
                                                  last_user_text(messages)), ensure_ascii=False)
            message = {"role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": [
                {"id": "call_" + request_identity([identity, index])[:24], "type": "function",
                 "function": {"name": target[0], "arguments": arguments}}]}
            finish, used, content = "tool_calls", count_tokens(arguments), ""
        else:
            content, finish, used = answer(messages, body.get("response_format"), body.get("stop"), max_tokens, extra)
            message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        completion += used
        logprobs = None
        if body.get("logprobs"):
            logprobs = {"content": [
                {"token": t, "logprob": lp, "bytes": list(t.encode()),
                 "top_logprobs": [{"token": a, "logprob": alp, "bytes": list(a.encode())} for a, alp in alts]}
                for t, lp, alts in token_logprobs(content, canonical_json(messages) + extra, top)], "refusal": None}
        choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish})
    prompt = prompt_tokens(messages)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    accounting = body.get("usage")
    if isinstance(accounting, dict) and accounting.get("include"):  # OpenRouter's usage accounting
        usage["cost"] = mock_cost_usd(prompt, completion)
        usage["is_byok"] = False
    return {
        "id": "chatcmpl-" + identity[:29],
        "object": "chat.completion",
        "created": created,
        "model": body["model"],
        "choices": choices,
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_seeds_mock",
    }
