"""The seeds_nb exception tree.

Every error a user can meet is a ``SeedsError``; library exceptions (httpx, aiohttp, sqlite3,
pydantic) are translated at one boundary each, so a notebook shows a message that names the
problem and the fix rather than a traceback from deep inside a dependency.

* SeedsError
  * ConfigurationError      (also ValueError) bad argument, missing API key, unknown option
  * PromptError             (also ValueError) a prompt that cannot be sent (bad role, empty)
  * CacheError              the cache directory cannot be opened, read or written
  * BudgetExceeded          a batch budget tripped (or cannot be enforced) before this prompt was sent
  * Cancelled               the batch was cancelled before this prompt finished
  * BatchExpired            a provider's Batch API job ran out of time before this prompt ran
  * APIError                anything that went wrong talking to the provider
    * TransportError        connection refused / reset / dropped
      * RequestTimeout      no answer within the timeout
    * ResponseParseError    the server answered with something that is not the expected JSON
    * APIStatusError        an HTTP error status (status_code, body excerpt, headers)
      * BadRequestError     400
      * AuthenticationError 401 / 403
      * NotFoundError       404
      * RateLimitError      429 (retry_after, quota_exhausted)
      * ServerError         5xx / 529

Warnings (``UserWarning``): ``CacheWarning`` (an answer could not be stored, or the cache file is
read-only or damaged), plus ``TrackingWarning`` and ``CallbackWarning`` next to what they concern.

The original library's names (seeds-clients), so its ``except`` clauses run with the imports renamed:
``SeedsClientError`` = ``SeedsError``, ``ProviderError`` = ``APIError``, ``ValidationError`` =
``ResponseParseError`` (an answer that does not match its ``response_format``), and ``TrackingError``,
which nothing raises (unknown cost or carbon is a ``TrackingWarning`` and ``None``), as in the original.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "APIError",
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BatchExpired",
    "BudgetExceeded",
    "CacheError",
    "CacheWarning",
    "Cancelled",
    "ConfigurationError",
    "NotFoundError",
    "PromptError",
    "ProviderError",
    "RateLimitError",
    "RequestTimeout",
    "ResponseParseError",
    "SeedsClientError",
    "SeedsError",
    "ServerError",
    "TrackingError",
    "TransportError",
    "ValidationError",
]

_BODY_EXCERPT = 500


class SeedsError(Exception):
    """Base of every error raised by seeds_nb."""


class ConfigurationError(SeedsError, ValueError):
    """A client or batch was configured in a way that cannot work; the message says the fix."""


class PromptError(SeedsError, ValueError):
    """A prompt cannot be turned into a request (bad role, empty content, wrong type)."""


class CacheError(SeedsError):
    """The response cache could not be opened, read or written."""


class CacheWarning(UserWarning):
    """The cache could not store an answer (the answer is still returned), or is read-only or damaged."""


class BudgetExceeded(SeedsError):
    """Not sent: the batch's cost or carbon budget was spent before this prompt's turn, or it could not
    be enforced (``spent`` is None: an answer's cost or carbon was unknown)."""

    def __init__(self, limit: str, limit_value: float, spent: float | None, reason: str | None = None) -> None:
        self.limit = limit
        self.limit_value = limit_value
        self.spent = spent
        self.reason = reason
        if reason is not None:
            text = f"budget {limit}={limit_value:g} cannot be enforced: {reason}; prompt not sent"
        else:
            text = f"budget {limit}={limit_value:g} reached (spent {spent or 0.0:.6g}); prompt not sent"
        super().__init__(text)


class Cancelled(SeedsError):
    """The batch was cancelled before this prompt finished; a re-run with a cache resumes it."""

    def __init__(self, message: str = "cancelled before this prompt finished") -> None:
        super().__init__(message)


class BatchExpired(SeedsError):
    """The provider's batch ran out of time (24 h) before this prompt was processed; it was not
    billed. Submit the failed prompts again."""


class APIError(SeedsError):
    """Talking to the provider failed."""

    retryable: bool = False
    status_code: int | None = None
    """The HTTP status of an ``APIStatusError``; None when no status came back (a dropped connection)."""

    def __init__(self, message: str, *, provider: str | None = None, url: str | None = None) -> None:
        self.provider = provider
        self.url = url
        super().__init__(message)


class TransportError(APIError):
    """The connection failed (refused, reset, dropped); retried."""

    retryable = True


class RequestTimeout(TransportError):
    """The server did not answer within the client's timeout; retried."""


class ResponseParseError(APIError):
    """The server's answer was not the JSON the protocol promises (names the server), or did not match
    the ``response_format``. ``content`` keeps the answer's text when there was one: it was paid for."""

    content: str | None = None


class APIStatusError(APIError):
    """The server answered with an HTTP error status.

    ``body`` is an excerpt (at most 500 characters) and ``headers`` are lower-cased, so a
    caller can read ``retry-after`` or a request id without keeping the whole response.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        provider: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body[:_BODY_EXCERPT]
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.code = code
        super().__init__(message, provider=provider, url=url)

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-request-id") or self.headers.get("request-id")


class BadRequestError(APIStatusError):
    """400: the request itself is wrong; never retried."""


class AuthenticationError(APIStatusError):
    """401/403: the API key is missing, wrong or lacks permission; never retried."""


class NotFoundError(APIStatusError):
    """404: unknown model or endpoint; never retried."""


class RateLimitError(APIStatusError):
    """429: too many requests (retried), or quota exhausted (``quota_exhausted``; not retried)."""

    def __init__(self, message: str, *, retry_after: float | None = None, quota_exhausted: bool = False,
                 **kwargs: object) -> None:
        self.retry_after = retry_after
        self.quota_exhausted = quota_exhausted
        super().__init__(message, **kwargs)  # type: ignore[arg-type]

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return not self.quota_exhausted


class ServerError(APIStatusError):
    """5xx or Anthropic's 529 overloaded; retried."""

    retryable = True


class TrackingError(SeedsError):
    """The original library's name; never raised: unknown cost or carbon is ``None`` and a ``TrackingWarning``."""


SeedsClientError = SeedsError
"""The original library's (seeds-clients) name for ``SeedsError``."""
ProviderError = APIError
"""The original library's name for ``APIError`` (it has ``provider`` and ``status_code`` too)."""
ValidationError = ResponseParseError
"""The original library's name for ``ResponseParseError`` (it kept the answer as ``raw_response``; ours
keeps its text as ``content``)."""


def error_for_status(status: int, message: str, *, provider: str, base_url: str, url: str, model: str,
                     key_env: str, body: str = "", headers: Mapping[str, str] | None = None,
                     code: str | None = None, retry_after: float | None = None, quota_exhausted: bool = False,
                     quota_hint: str = "quota exhausted") -> APIStatusError:
    """The one place an HTTP error status becomes a typed error with a message that names the fix.

    Providers parse their own error bodies (``message``, ``code``, whether a 429 is a spent quota)
    and hand the rest to this function.
    """
    where = f"{provider} server at {base_url}"
    kwargs: dict[str, object] = dict(status_code=status, body=body, headers=headers, code=code, provider=provider,
                                     url=url)
    if status == 429:
        hint = quota_hint if quota_exhausted else "rate limited; retried with backoff"
        return RateLimitError(f"429 from {where}: {message} ({hint})", retry_after=retry_after,
                              quota_exhausted=quota_exhausted, **kwargs)
    if status in (401, 403):
        return AuthenticationError(f"{status} from {where}: {message} - check {key_env} or api_key=",
                                   **kwargs)  # type: ignore[arg-type]
    if status == 404:
        return NotFoundError(f"404 from {where}: {message} - check model={model!r} and base_url",
                             **kwargs)  # type: ignore[arg-type]
    if status >= 500:  # 5xx, and Anthropic's 529 overloaded: retried with backoff
        return ServerError(f"{status} from {where}: {message}", **kwargs)  # type: ignore[arg-type]
    if status == 400:
        return BadRequestError(f"400 from {where}: {message}", **kwargs)  # type: ignore[arg-type]
    error = APIStatusError(f"{status} from {where}: {message}", **kwargs)  # type: ignore[arg-type]
    error.retryable = status in (408, 409)
    return error
