"""Messages, usage, tracking and responses: the values a request goes in and comes out as.

``Message`` is a pydantic model because it is user input and deserves validation with a clear
message. ``Usage``, ``Tracking`` and ``Response`` are slotted dataclasses because a batch keeps
100,000 of them: they hold plain numbers, and the raw body is kept as bytes, parsed on access.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from .exceptions import PromptError
from .images import ImagePart, normalize_parts

__all__ = ["Choice", "Message", "Prompt", "Response", "TokenLogprob", "ToolCall", "Tracking", "Unsendable", "Usage",
           "check_prompts", "normalize_prompt", "prompt_text"]

Role = Literal["system", "user", "assistant", "developer", "tool"]
_ROLES = ("system", "user", "assistant", "developer", "tool")


class Message(BaseModel):
    """One chat message. ``content`` is text, or a list of content parts: ``{"type": "text", "text": ...}``,
    an image as ``{"type": "image", "source": ...}`` or OpenAI's ``{"type": "image_url", ...}`` (both kept
    as ``{"type": "image", "source": ImagePart}``: see ``seeds_nb.core.images``), or a provider's own part.

    Tool calling, in OpenAI's form (each provider translates it): an ``assistant`` message may carry
    the ``tool_calls`` it made (``Response.to_message()`` builds it; its content may then be empty), and
    a ``tool`` message answers one of them by ``tool_call_id``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str | list[dict[str, Any]] = ""
    tool_calls: tuple[dict[str, Any], ...] | None = None
    tool_call_id: str | None = None

    def __init__(self, role: str | None = None, content: Any = None, **data: Any) -> None:
        # Positional `Message("user", "hi")` reads naturally in a notebook; pydantic models are
        # keyword-only by default, so accept both.
        if role is not None:
            data["role"] = role
        if content is not None:
            data["content"] = content
        if "content" in data:  # here rather than only in the validator: a bad image is a PromptError, unwrapped
            data["content"] = normalize_parts(data["content"])
            if data.get("role") != "user" and isinstance(data["content"], list) and any(
                    isinstance(p, dict) and p.get("type") == "image" for p in data["content"]):
                raise PromptError(f"an image can only be in a user message (the chat APIs refuse it in a "
                                  f"{data.get('role')!r} message); move it to a user message")
        super().__init__(**data)

    @field_validator("role", mode="before")
    @classmethod
    def _check_role(cls, value: Any) -> Any:
        if value not in _ROLES:
            raise ValueError(f"role must be one of {', '.join(_ROLES)}; got {value!r}")
        return value

    @field_validator("content", mode="after")
    @classmethod
    def _check_content(cls, value: Any) -> Any:
        return normalize_parts(value)  # ``model_validate`` skips __init__; normalising twice is a no-op
    @field_validator("tool_calls", mode="before")
    @classmethod
    def _check_tool_calls(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, dict | str) or not isinstance(value, Iterable):
            raise ValueError("tool_calls must be a list of tool calls (Response.tool_calls, or OpenAI's "
                             "{'id', 'type': 'function', 'function': {'name', 'arguments'}} dicts)")
        calls = []
        for call in value:
            if isinstance(call, ToolCall):
                call = call.to_dict()
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(call.get("id"), str) \
                    or not isinstance(function.get("name"), str):
                raise ValueError("each tool call needs an 'id' and a 'function' with a 'name' and 'arguments' "
                                 f"(a JSON string), as OpenAI returns them; got {call!r}")
            args = function.get("arguments")
            if not isinstance(args, str):  # arguments travel as a JSON string in OpenAI's form
                call = {**call, "function": {**function, "arguments": json.dumps(args, ensure_ascii=False)}}
            calls.append({"type": "function", **call})
        return tuple(calls) or None

    @model_validator(mode="before")
    @classmethod
    def _tool_only_content(cls, data: Any) -> Any:
        # An assistant message that only calls tools has no content (OpenAI sends null): stored as "".
        if isinstance(data, dict) and data.get("content", "") is None:
            data = {**data, "content": ""}
        if isinstance(data, dict) and "content" not in data and not data.get("tool_calls"):
            raise ValueError("content is required (only an assistant message with tool_calls may omit it)")
        return data

    @model_validator(mode="after")
    def _check_tools(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only an assistant message carries tool_calls; got role {self.role!r}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message answers one tool call: pass tool_call_id=<the call's id> "
                             "(Response.tool_calls[i].id)")
        if self.tool_call_id is not None and self.role != "tool":
            raise ValueError(f"tool_call_id belongs on a 'tool' message; got role {self.role!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's form; the tool fields only when set (so a plain message keys the cache as before)."""
        if self.tool_calls:
            return {"role": self.role, "content": self.content or None, "tool_calls": list(self.tool_calls)}
        if self.tool_call_id is not None:
            return {"role": self.role, "content": self.content, "tool_call_id": self.tool_call_id}
        return {"role": self.role, "content": self.content}

    def images(self) -> list[ImagePart]:
        """The message's images, in order."""
        if isinstance(self.content, str):
            return []
        return [p["source"] for p in self.content if p.get("type") == "image" and isinstance(p.get("source"),
                                                                                                ImagePart)]

    def text(self) -> str:
        """The message's text, an image as a label such as ``[image/png 12 KB]`` (for excerpts and displays).

        Text parts are joined with spaces; the label keeps megabytes of base64 out of every display."""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image" and isinstance(part.get("source"), ImagePart):
                texts.append(part["source"].label())
        return " ".join(texts)


Prompt = str | Sequence[Message] | Sequence[dict[str, Any]]


class Unsendable:
    """Stands for a prompt that could not be built (a row a template cannot fill): the batch engine
    takes it like any prompt, and its index ends as ``error`` without a request."""

    __slots__ = ("error",)

    def __init__(self, error: PromptError) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"Unsendable({self.error})"


def normalize_prompt(prompt: Any) -> tuple[Message, ...]:
    """Turn a user prompt (a string, Messages, or role/content dicts) into a tuple of Messages.

    Raises ``PromptError`` naming what is wrong and what is accepted.
    """
    if isinstance(prompt, str):
        if not prompt.strip():
            raise PromptError("empty prompt: a prompt string must contain some text")
        return (Message.model_construct(role="user", content=prompt),)  # valid by construction: no validation
    if isinstance(prompt, Message):
        return (prompt,)
    if isinstance(prompt, Unsendable):
        raise prompt.error
    if isinstance(prompt, bytes | bytearray | memoryview):
        raise PromptError("a prompt must be text (str), not bytes; decode it first, e.g. prompt.decode('utf-8')")
    if isinstance(prompt, dict) or not isinstance(prompt, Iterable):
        raise PromptError(
            f"a prompt must be a string or a list of Message objects; got {type(prompt).__name__}"
        )
    messages: list[Message] = []
    for item in prompt:
        if isinstance(item, Message):
            messages.append(item)
        elif isinstance(item, dict):
            try:
                messages.append(Message(**item))
            except ValidationError as exc:
                raise PromptError(_first_validation_message(exc)) from None
        else:
            raise PromptError(
                f"a prompt list must hold Message objects or {{'role', 'content'}} dicts; "
                f"got {type(item).__name__}"
            )
    if not messages:
        raise PromptError("empty prompt: a prompt needs at least one message")
    if any(m.role == "tool" for m in messages):
        _check_tool_results(messages)
    return tuple(messages)


def _check_tool_results(messages: list[Message]) -> None:
    """Every ``tool`` message answers a call an earlier assistant message made (every provider refuses a
    stray result, Gemini even needs the call to know the function's name): said here, once, with the fix."""
    calls: set[str] = set()
    for message in messages:
        if message.tool_calls:
            calls.update(str(c["id"]) for c in message.tool_calls)
        elif message.role == "tool" and message.tool_call_id not in calls:
            raise PromptError(f"the tool result for call {message.tool_call_id!r} follows no assistant message "
                              "that made that call; put the answer's message first: "
                              "[*prompt, response.to_message(), Message('tool', result, tool_call_id=call.id)]")


_TABLE_TYPES = ("DataFrame", "LazyFrame", "Series", "Table", "RecordBatch", "Dataset", "DatasetDict", "ndarray")


def check_prompts(prompts: Any) -> None:
    """Refuse what is not an iterable of prompts, before anything is sent: a string (one prompt, not a
    list), bytes, or a table (iterating a DataFrame yields its column names, not its rows)."""
    if isinstance(prompts, str):
        raise PromptError("prompts must be an iterable of prompts, got one string; wrap a single prompt in a "
                          "list: [prompt]")
    kind = type(prompts)
    if kind.__name__ in _TABLE_TYPES and kind.__module__.split(".")[0] in (
            "pandas", "polars", "pyarrow", "datasets", "numpy"):
        raise PromptError(f"prompts is a {kind.__module__.split('.')[0]} {kind.__name__}, not a list of prompts "
                          "(iterating it would send its column names); to prompt once per row use "
                          "client.map(data, 'Summarise {column}'), which returns the table with the answers as "
                          "new columns, or pass a list of strings")
    if isinstance(prompts, bytes | bytearray | memoryview) or not isinstance(prompts, Iterable):
        raise PromptError(f"prompts must be an iterable of prompts (a list of strings, or of Message lists); "
                          f"got {kind.__name__}")


def _first_validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"invalid message ({where}): {err.get('msg')}"


def prompt_text(messages: Sequence[Message], limit: int = 200) -> str:
    """The last user message's text (or the last message's), cut to ``limit`` characters."""
    chosen = next((m for m in reversed(messages) if m.role == "user"), messages[-1] if messages else None)
    text = chosen.text() if chosen is not None else ""
    # ASCII "...": a single non-ASCII character would make Python store the whole excerpt at 2 bytes/char.
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(slots=True)
class Usage:
    """Token counts. ``prompt_tokens`` is the whole input, ``cached_tokens`` and
    ``cache_write_tokens`` are parts of it (the genai-prices convention).

    ``None`` means unknown (a server that sent no ``usage``): then cost and carbon are unknown too,
    never a silent 0. ``Usage.unknown()`` builds one.

    ``reported_cost_usd`` is what the server itself billed, when it says (OpenRouter's usage
    accounting): then that is the cost, not a price-table estimate.

    ``measured_energy_kwh`` / ``measured_gwp_kgco2eq`` are what a self-hosted server measured for this
    request (``SelfHostedClient`` reads them from its answer): then they are the energy and carbon,
    not an EcoLogits estimate. They sit here, beside the token counts, because they travel the same
    way (from the answer, through the cache, into ``Tracking``).
    """

    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    reported_cost_usd: float | None = None
    measured_energy_kwh: float | None = None
    measured_gwp_kgco2eq: float | None = None

    @classmethod
    def unknown(cls) -> Usage:
        return cls(None, None)

    @property
    def known(self) -> bool:
        return self.prompt_tokens is not None and self.completion_tokens is not None

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int | None]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cached_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


@dataclass(slots=True)
class Tracking:
    """Cost and environmental impacts of one request; ``None`` means unknown, never a silent 0.

    Impacts keep EcoLogits' range: ``*_min``/``*_max`` bound the estimate, the plain field is
    the mean. GWP, ADPe and PE include usage and embodied emissions; ``*_usage_*`` / ``*_embodied_*``
    split the means by EcoLogits' phases (electricity used, hardware manufactured); energy is all usage.

    ``method`` says where energy and carbon came from: ``"ecologits"`` (estimated from the model and its
    token count), ``"measured"`` (the serving machine measured them and said so in its answer: a
    self-hosted server, see ``SelfHostedClient``; they cover the electricity used, no embodied phase,
    and have no range: min = max), or ``"none"`` (unknown, or tracking off).
    """

    cost_usd: float | None = None
    energy_kwh: float | None = None
    energy_kwh_min: float | None = None
    energy_kwh_max: float | None = None
    gwp_kgco2eq: float | None = None
    gwp_kgco2eq_min: float | None = None
    gwp_kgco2eq_max: float | None = None
    adpe_kgsbeq: float | None = None
    adpe_kgsbeq_min: float | None = None
    adpe_kgsbeq_max: float | None = None
    pe_mj: float | None = None
    pe_mj_min: float | None = None
    pe_mj_max: float | None = None
    electricity_mix_zone: str | None = None
    warnings: tuple[str, ...] = ()
    gwp_usage_kgco2eq: float | None = None
    adpe_usage_kgsbeq: float | None = None
    pe_usage_mj: float | None = None
    method: str = "none"

    @property
    def tracking_method(self) -> str:
        """``method`` under the original library's name."""
        return self.method

    # The embodied phase is the total less the usage phase: derived, not stored (every answer keeps a
    # Tracking, so three more floats would be ~100 bytes per response).
    @property
    def gwp_embodied_kgco2eq(self) -> float | None:
        return _less(self.gwp_kgco2eq, self.gwp_usage_kgco2eq)

    @property
    def adpe_embodied_kgsbeq(self) -> float | None:
        return _less(self.adpe_kgsbeq, self.adpe_usage_kgsbeq)

    @property
    def pe_embodied_mj(self) -> float | None:
        return _less(self.pe_mj, self.pe_usage_mj)

    @property
    def energy_usage_kwh(self) -> float | None:
        """The usage phase's energy: all of it (EcoLogits counts no embodied energy)."""
        return self.energy_kwh

    def to_dict(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in self.__slots__}
        out.update(gwp_embodied_kgco2eq=self.gwp_embodied_kgco2eq, adpe_embodied_kgsbeq=self.adpe_embodied_kgsbeq,
                   pe_embodied_mj=self.pe_embodied_mj)
        return out


def _less(total: float | None, usage: float | None) -> float | None:
    return None if total is None or usage is None else total - usage



@dataclass(slots=True, frozen=True)
class ToolCall:
    """One tool (function) call the model made. ``arguments`` is the parsed JSON (``None`` when the
    model sent text that is not JSON: ``raw_arguments`` keeps what it sent, a paid answer is never lost)."""

    id: str
    name: str
    arguments: Any
    raw_arguments: str

    @classmethod
    def from_raw(cls, id: str, name: str, raw_arguments: str) -> ToolCall:
        """From OpenAI's form, where arguments travel as a JSON string."""
        try:
            arguments = json.loads(raw_arguments) if raw_arguments else {}
        except ValueError:
            arguments = None
        return cls(id, name, arguments, raw_arguments)

    @classmethod
    def from_value(cls, id: str, name: str, arguments: Any) -> ToolCall:
        """From Anthropic's and Gemini's form, where arguments arrive as a JSON object."""
        return cls(id, name, arguments, json.dumps(arguments, ensure_ascii=False))

    def to_dict(self) -> dict[str, Any]:
        """OpenAI's form (what an assistant message sends back, and what exports show)."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.raw_arguments}}


@dataclass(slots=True, frozen=True)
class TokenLogprob:
    """One generated token's log probability, with the most likely alternatives when ``top_logprobs``
    was asked for (``(token, logprob)`` pairs, most likely first)."""

    token: str
    logprob: float
    top_logprobs: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"token": self.token, "logprob": self.logprob,
                "top_logprobs": [{"token": t, "logprob": lp} for t, lp in self.top_logprobs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenLogprob:
        return cls(data["token"], float(data["logprob"]),
                   tuple((t["token"], float(t["logprob"])) for t in data.get("top_logprobs") or ()))


@dataclass(slots=True, frozen=True)
class Choice:
    """One of the ``n`` answers to a request (``Response.choices``)."""

    index: int
    content: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "content": self.content, "finish_reason": self.finish_reason}
        if self.tool_calls:
            out["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.logprobs is not None:
            out["logprobs"] = [t.to_dict() for t in self.logprobs]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        calls = tuple(ToolCall.from_raw(c["id"], c["function"]["name"], c["function"]["arguments"])
                      for c in data.get("tool_calls") or ())
        logprobs = data.get("logprobs")
        return cls(int(data["index"]), data["content"], data.get("finish_reason"), calls,
                   None if logprobs is None else tuple(map(TokenLogprob.from_dict, logprobs)))


@dataclass(slots=True, eq=False)
class Response:
    """One completion. ``cached`` is True when it came from the cache (then it cost nothing now:
    ``tracking`` holds what it *would* have cost, reported as avoided)."""

    content: str
    model: str
    usage: Usage
    finish_reason: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    tracking: Tracking = field(default_factory=Tracking)
    provider: str = ""
    request_id: str | None = None
    parsed: Any = None
    attempts: int = 1
    _raw: bytes = b""
    # every choice, when there is more than one answer (``n=3``) or the answer carries tool calls or logprobs;
    # None for a plain answer, which then costs one slot and no copy (a batch keeps 100k of them)
    _choices: tuple[Choice, ...] | None = None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tool calls of the (first) answer; ``()`` when it called none."""
        return self._choices[0].tool_calls if self._choices else ()

    @property
    def logprobs(self) -> tuple[TokenLogprob, ...] | None:
        """The (first) answer's token log probabilities; ``None`` unless ``logprobs=True`` was asked for."""
        return self._choices[0].logprobs if self._choices else None

    @property
    def choices(self) -> tuple[Choice, ...]:
        """Every answer of the request (``n=...``), in order; the first is ``content`` / ``tool_calls`` /
        ``logprobs``. Usage and cost are the request's, counted once."""
        if self._choices is not None:
            return self._choices
        return (Choice(0, self.content, self.finish_reason),)

    def to_message(self) -> Message:
        """This answer as the ``assistant`` message that continues the conversation (with its tool calls,
        so the next prompt can add their ``tool`` results)."""
        return Message(role="assistant", content=self.content,
                       tool_calls=[c.to_dict() for c in self.tool_calls] or None)

    @classmethod
    def from_choices(cls, choices: Sequence[Choice], **fields: Any) -> Response:
        """A response whose ``content`` and ``finish_reason`` are the first choice's (every provider's
        parser builds it so: ``n`` answers, tool calls and logprobs are kept the same way everywhere)."""
        first = choices[0] if choices else Choice(0, "")
        keep = len(choices) > 1 or bool(first.tool_calls) or first.logprobs is not None
        return cls(content=first.content, finish_reason=first.finish_reason,
                   _choices=tuple(choices) if keep else None, **fields)

    @property
    def raw(self) -> dict[str, Any]:
        """The provider's JSON body, parsed on access (kept as bytes to keep batches small)."""
        return json.loads(self._raw) if self._raw else {}

    @property
    def raw_bytes(self) -> bytes:
        """The provider's JSON body as received (what the cache stores)."""
        return self._raw

    @property
    def cost_usd(self) -> float | None:
        return self.tracking.cost_usd

    @property
    def gwp_kgco2eq(self) -> float | None:
        return self.tracking.gwp_kgco2eq

    @property
    def energy_kwh(self) -> float | None:
        return self.tracking.energy_kwh

    def __repr__(self) -> str:
        excerpt = self.content if len(self.content) <= 60 else self.content[:59] + "…"
        flag = ", cached" if self.cached else ""
        return (
            f"Response({excerpt!r}, model={self.model!r}, tokens={self.usage.total_tokens}, "
            f"latency_s={self.latency_s:.3f}{flag})"
        )
