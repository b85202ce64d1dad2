"""The pure-library core: types, errors, the client base, the request pipeline, the batch engine, the
cache, tracking, the ledger and the thread runner.

It never imports ipywidgets, plotly, IPython or another seeds_nb layer (a test walks the imports),
so it works in a plain script. The one exception is the lazy ``BatchResult.plot()`` accessor.
"""

from .batch import BatchRun, BatchStream, CallbackWarning, ProgressCallback
from .cache import CacheStats, ResponseCache
from .client import BaseClient
from .codec import Codec, RateLimit
from .compare import compare_models
from .exceptions import (
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
    TrackingError,
    TransportError,
    ValidationError,
)
from .ledger import Ledger
from .log import configure_logging
from .pipeline import Pipeline, Prepared
from .result import BatchResult
from .retry import RetryPolicy
from .runner import Running, run_sync, start_thread
from .secrets import Secret, SecretHeaders, mask_secret
from .tracking import Tracker, TrackingWarning
from .types import Message, Response, Tracking, Usage

__all__ = [
    "APIError", "APIStatusError", "AuthenticationError", "BadRequestError", "BaseClient", "BatchResult",
    "BatchRun", "BatchStream", "BudgetExceeded", "CacheError", "CacheStats", "CacheWarning", "CallbackWarning",
    "Cancelled", "Codec", "ConfigurationError", "Ledger", "Message", "NotFoundError", "Pipeline", "Prepared",
    "ProgressCallback", "PromptError", "ProviderError", "RateLimit", "RateLimitError", "RequestTimeout", "Response",
    "ResponseCache", "ResponseParseError", "RetryPolicy", "Running", "Secret", "SecretHeaders", "SeedsClientError",
    "SeedsError", "ServerError", "Tracker", "Tracking", "TrackingError", "TrackingWarning", "TransportError", "Usage",
    "ValidationError", "compare_models",
    "configure_logging", "mask_secret", "run_sync", "start_thread",
]
