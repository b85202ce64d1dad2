"""Messages, usage, tracking and responses: the values a request goes in and comes out as.

``Message`` is a pydantic model because it is user input and deserves validation with a clear
message. ``Usage``, ``Tracking`` and ``Response`` are slotted dataclasses because a batch keeps
100,000 of them: they hold plain numbers, and the raw body is kept as bytes, parsed on access.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .exceptions import PromptError
from .images import ImagePart, normalize_parts

__all__ = ["Message", "Prompt", "Response", "Tracking", "Unsendable", "Usage", "check_prompts", "normalize_prompt",
           "prompt_text"]

Role = Literal["system", "user", "assistant", "developer", "tool"]
_ROLES = ("system", "user", "assistant", "developer", "tool")


class Message(BaseModel):
    """One chat message. ``content`` is text, or a list of content parts: ``{"type": "text", "text": ...}``,
    an image as ``{"type": "image", "source": ...}`` or OpenAI's ``{"type": "image_url", ...}`` (both kept
    as ``{"type": "image", "source": ImagePart}``: see ``seeds_nb.core.images``), or a provider's own part."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str | list[dict[str, Any]]

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

    def to_dict(self) -> dict[str, Any]:
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
    return tuple(messages)


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
