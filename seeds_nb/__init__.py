"""seeds_nb: run batches of LLM requests from a notebook and see them run.

The core (``seeds_nb.core``) is a plain async library; widgets, plots and the
``%%seeds_batch`` magic sit on top and are imported only when used. ``MockServer`` is here because
it is what a newcomer without an API key starts with; its knobs (``Fault``...) are in
``seeds_nb.mock``.
"""

from importlib.metadata import PackageNotFoundError, version

from .core.batch import BatchRun, BatchStream, CallbackWarning
from .core.boamps import export_boamps_report
from .core.client import BaseClient
from .core.compare import compare_models
from .core.exceptions import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    CacheError,
    CacheWarning,
    Cancelled,
    ConfigurationError,
    NotFoundError,
    PromptError,
    ProviderError,
    RateLimitError,
    RequestTimeout,
    ResponseParseError,
    SeedsClientError,
    SeedsError,
    ServerError,
    TransportError,
    ValidationError,
)
from .core.ledger import Ledger, LifetimeTracking
from .core.log import configure_logging, get_logger
from .core.result import BatchResult
from .core.tracking import TrackingWarning
from .core.types import Choice, Message, Response, TokenLogprob, ToolCall, Tracking, Usage
from .mock import MockServer
from .providers import (
    AnthropicClient,
    BatchCounts,
    BatchExpired,
    BatchJob,
    BatchNotReady,
    GoogleClient,
    ModelGardenClient,
    OpenAIClient,
    OpenRouterClient,
    SelfHostedClient,
)

try:
    __version__ = version("seeds_nb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

# Written out, and pinned by tests/test_layers.py: adding a name here is an API decision.
__all__ = [
    # clients and the embedded server
    "AnthropicClient", "BaseClient", "GoogleClient", "MockServer", "OpenAIClient", "OpenRouterClient",
    "SelfHostedClient",
    # what a run gives back
    "BatchCounts", "BatchJob", "BatchResult", "BatchRun", "BatchStream", "Choice", "Ledger", "LifetimeTracking",
    "Message", "Response", "TokenLogprob", "ToolCall", "Tracking", "Usage",
    # errors and warnings
    "APIError", "APIStatusError", "AuthenticationError", "BadRequestError", "BatchExpired", "BatchNotReady",
    "BudgetExceeded", "CacheError", "CacheWarning", "CallbackWarning", "Cancelled", "ConfigurationError",
    "NotFoundError", "PromptError", "RateLimitError", "RequestTimeout", "ResponseParseError", "SeedsError",
    "ServerError", "TrackingWarning", "TransportError",
    # the original library's (seeds-clients) error names: SeedsError, APIError, ResponseParseError
    "ProviderError", "SeedsClientError", "ValidationError",
    # and its name for SelfHostedClient
    "ModelGardenClient",
    # functions
    "compare_models", "configure_logging", "export_boamps_report", "get_logger", "load_ipython_extension",
    "unload_ipython_extension",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext seeds_nb``: registers ``%%seeds_batch`` (IPython is imported only here)."""
    from .magic import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext seeds_nb``: removes the magic's input transformer."""
    from .magic import unload_ipython_extension as _unload

    _unload(ipython)
