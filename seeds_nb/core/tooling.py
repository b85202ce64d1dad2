"""Tool calling and sampling parameters in OpenAI's form, checked once for every provider.

Why here: a user writes ``tools=[{"type": "function", "function": {...}}]``, ``tool_choice="required"``,
``n=3``, ``logprobs=True`` once, in OpenAI's form, whatever the client. Each provider's codec turns the
checked values into its own protocol (Anthropic's ``input_schema``, Gemini's ``functionDeclarations``);
the checks and the reading of the OpenAI form live here so the three cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .exceptions import ConfigurationError, PromptError

__all__ = ["EXTRA_COLUMNS", "FunctionSpec", "ToolChoice", "check_sampling", "extra_value", "function_specs",
           "present_columns", "requested_columns", "tool_choice"]

MAX_TOP_LOGPROBS = 20


class FunctionSpec(NamedTuple):
    """One function a model may call: OpenAI's ``{"type": "function", "function": {...}}`` read out."""

    name: str
    description: str | None
    parameters: dict[str, Any]


class ToolChoice(NamedTuple):
    """OpenAI's ``tool_choice``: ``mode`` is ``auto`` / ``none`` / ``required`` / ``function`` (then ``name``)."""

    mode: str
    name: str | None = None


def function_specs(tools: Any) -> list[FunctionSpec] | None:
    """The functions of an OpenAI-form ``tools`` list; ``None`` when the list is in a provider's own
    form (passed through as it is). A list mixing the two, or a malformed entry, is a ``ConfigurationError``."""
    if not isinstance(tools, list | tuple) or not tools:
        raise ConfigurationError("tools must be a non-empty list such as [{'type': 'function', 'function': "
                                 "{'name': 'get_weather', 'parameters': {...JSON schema...}}}]; got " + repr(tools))
    openai_form = [isinstance(t, Mapping) and t.get("type") == "function" for t in tools]
    if not any(openai_form):
        return None
    if not all(openai_form):
        raise ConfigurationError("tools mixes OpenAI's form ({'type': 'function', 'function': {...}}) with another; "
                                 "give every tool in OpenAI's form")
    specs = []
    for tool in tools:
        function = tool.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ConfigurationError(f"each tool needs a 'function' with a 'name' (and a JSON schema as "
                                     f"'parameters'); got {tool!r}")
        parameters = function.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        if not isinstance(parameters, Mapping):
            raise ConfigurationError(f"tool {function['name']!r}: 'parameters' must be a JSON schema (a dict); "
                                     f"got {parameters!r}")
        specs.append(FunctionSpec(function["name"], function.get("description"), dict(parameters)))
    return specs


def tool_choice(value: Any) -> ToolChoice | None:
    """OpenAI's ``tool_choice`` read out; ``None`` when it is in a provider's own form (passed through)."""
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, Mapping) and value.get("type") == "function":
        function = value.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise ConfigurationError("tool_choice forcing a function is {'type': 'function', 'function': "
                                     f"{{'name': ...}}}}; got {value!r}")
        return ToolChoice("function", function["name"])
    if isinstance(value, str):
        raise ConfigurationError(f"tool_choice must be 'auto', 'none', 'required' or {{'type': 'function', "
                                 f"'function': {{'name': ...}}}}; got {value!r}")
    return None


def call_arguments(call: Mapping[str, Any], provider: str) -> Any:
    """An OpenAI-form tool call's ``arguments`` string as JSON, for providers that take it as an object
    (Anthropic's ``input``, Gemini's ``args``): a call whose arguments are not JSON cannot be sent there."""
    function = call["function"]
    try:
        return json.loads(function.get("arguments") or "{}")
    except ValueError:
        raise PromptError(f"tool call {call['id']!r} has arguments that are not JSON ({function.get('arguments')!r}); "
                          f"{provider} takes a tool call's arguments as a JSON object") from None


def check_sampling(params: Mapping[str, Any]) -> None:
    """``n``, ``logprobs`` and ``top_logprobs`` as OpenAI takes them, refused here with the fix rather than
    as a server's 400 (the same rules on every provider that has them)."""
    n = params.get("n")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigurationError(f"n (answers per prompt) must be an integer >= 1; got {n!r}")
    logprobs = params.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise ConfigurationError(f"logprobs must be True or False (how many alternatives: top_logprobs=5); "
                                 f"got {logprobs!r}")
    top = params.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise ConfigurationError(f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}; got {top!r}")
        if not logprobs:
            raise ConfigurationError("top_logprobs needs logprobs=True as well (top_logprobs says how many "
                                     "alternatives to return for each token)")
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigurationError(f"seed must be an integer; got {seed!r}")


EXTRA_COLUMNS = ("tool_calls", "choices", "logprobs")
"""Columns an export adds when the run asked for them (``tools=``, ``n > 1``, ``logprobs=True``) or an
answer carries them: nothing is added to a plain run's table."""


def requested_columns(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``EXTRA_COLUMNS`` a run's parameters ask for."""
    n = params.get("n") or params.get("candidate_count") or 1
    wanted = {"tool_calls": bool(params.get("tools")), "choices": isinstance(n, int) and n > 1,
              "logprobs": bool(params.get("logprobs"))}
    return tuple(name for name in EXTRA_COLUMNS if wanted[name])


def present_columns(responses: Iterable[Any]) -> tuple[str, ...]:
    """The ``EXTRA_COLUMNS`` some response has a value for (a result built without its parameters)."""
    found: set[str] = set()
    for response in responses:
        if response is None:
            continue
        if response.tool_calls:
            found.add("tool_calls")
        if response.logprobs is not None:
            found.add("logprobs")
        if len(response.choices) > 1:
            found.add("choices")
        if len(found) == len(EXTRA_COLUMNS):
            break
    return tuple(name for name in EXTRA_COLUMNS if name in found)


def extra_value(response: Any, column: str) -> Any:
    """One response's cell of an ``EXTRA_COLUMNS`` column, as plain JSON-able data (Arrow and Parquet
    take it as lists of structs): tool calls in OpenAI's form, every choice's text, each token's logprob."""
    if column == "tool_calls":
        return [call.to_dict() for call in response.tool_calls]
    if column == "choices":
        return [choice.content for choice in response.choices]
    return None if response.logprobs is None else [token.to_dict() for token in response.logprobs]
