"""What a provider supplies: the translation between our types and its wire protocol.

Why a separate object: everything else a request needs (cache, rate gate, retries, tracking, the
ledger, structured-output validation) lives once in the core's pipeline, and a provider only
translates. The pipeline, the Batch API adapters and the mock-free tests all talk to a codec through
these public methods, so no module needs another's private members. A new provider (Gemini,
OpenRouter, a self-hosted server) is a new codec and a thin client class that picks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from .exceptions import APIStatusError, ConfigurationError
from .secrets import Secret, SecretHeaders
from .tracking import Targets
from .types import Message, Response

__all__ = ["Codec", "RateLimit"]


class RateLimit(NamedTuple):
    """One rate limit as a response's headers report it."""

    kind: str
    """``requests``, ``tokens``, ``input-tokens`` ..."""
    remaining: int | None
    reset_s: float | None
    """Seconds until it resets; None when the header is absent or unreadable."""


class Codec:
    """The base of a provider's codec; subclasses implement every method (the base has no protocol)."""

    provider: ClassVar[str] = "base"
    #: generation parameters passed through to the request body
    known_params: ClassVar[frozenset[str]] = frozenset()
    #: parameters other providers take but this one's API lacks -> why, and what to use instead
    #: (refused before anything is sent, never dropped silently)
    unsupported: ClassVar[Mapping[str, str]] = {}
    #: the environment variable the provider's key is usually in (named in error messages)
    key_env: ClassVar[str] = "API_KEY"
    #: whether its answers carry the server's measured energy and carbon (``Usage.measured_*``), which
    #: makes ``tracking_method="measured"`` possible
    measures_impacts: ClassVar[bool] = False

    #: another name a parameter is also taken by (a vendor SDK's, the original library's) -> ours
    param_aliases: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *, model: str, base_url: str) -> None:
        self.model = model
        self.base_url = base_url

    def canonical_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with each alias under our name (``param_aliases``), so the cache key, the request and
        the structured-output check see one name; an alias given with its name is a ``ConfigurationError``."""
        out = dict(params)
        for alias, name in self.param_aliases.items():
            if alias not in out:
                continue
            value = out.pop(alias)
            if value is not None and out.get(name) is not None:
                raise ConfigurationError(f"pass {name} or its alias {alias}, not both")
            if value is not None or name not in out:
                out[name] = value
        return out

    def auth_headers(self, secret: Secret) -> SecretHeaders:
        """Headers of every request, credentials included (built once per client)."""
        raise NotImplementedError

    def build_request(self, messages: Sequence[Message], params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """``(path relative to base_url, JSON body)``; raise ``PromptError`` for what the protocol cannot carry."""
        raise NotImplementedError

    def cache_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters as they enter the cache key (JSON-able)."""
        return dict(params)

    def parse_response(self, body: bytes, headers: Mapping[str, str], params: Mapping[str, Any]) -> Response:
        """A success body -> ``Response``. A structured answer's JSON goes in ``content``; validating it
        against ``response_format`` is the pipeline's. Missing usage is ``Usage.unknown()``, never 0."""
        raise NotImplementedError

    def structured_text(self, content: str) -> str:
        """The JSON of a structured answer, as the pipeline validates it. A server asked through the
        prompt (no ``response_format`` support) may wrap it in a Markdown fence: its codec unwraps it."""
        return content

    def error_for_status(self, status: int, body: bytes, headers: Mapping[str, str], url: str) -> APIStatusError:
        """An HTTP error -> the ``SeedsError`` tree (see ``exceptions.error_for_status``)."""
        raise NotImplementedError

    def tracking_targets(self, model: str) -> Targets | None:
        """Where ``model``'s price and impacts are looked up; None: under this provider, as named. A
        router overrides it (``openai/gpt-4.1`` is priced and estimated as OpenAI's ``gpt-4.1``)."""
        return None

    def rate_limits(self, headers: Mapping[str, str], *, exhausted_only: bool) -> list[RateLimit]:
        """The rate limits the headers report; with ``exhausted_only`` only those used up (``remaining``
        0), which is all the success path needs (it reads no reset dates it does not need)."""
        return []
