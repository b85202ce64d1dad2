"""The pure-library core: types, errors, the client base, the batch engine, cache and tracking.

It never imports ipywidgets, plotly or IPython, so it works in a plain script.
"""

from .batch import BatchRun, BatchStats, CallbackWarning, ProgressCallback
from .cache import CacheStats, ResponseCache
from .client import BaseClient, mask_secret
from .compare import compare_models
from .exceptions import (
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BudgetExceeded,
    CacheError,
    Cancelled,
    ConfigurationError,
    NotFoundError,
    PromptError,
    RateLimitError,
    RequestTimeout,
    ResponseParseError,
    SeedsError,
    ServerError,
    TransportError,
)
from .result import BatchResult
from .retry import RetryPolicy
from .sync import run_sync
from .tracking import Tracker, TrackingWarning
from .types import Message, Response, Tracking, Usage

__all__ = [
    "APIError", "APIStatusError", "AuthenticationError", "BadRequestError", "BaseClient", "BatchResult",
    "BatchRun", "BatchStats", "BudgetExceeded", "CacheError", "CacheStats", "CallbackWarning", "Cancelled",
    "ConfigurationError", "Message", "NotFoundError", "ProgressCallback", "PromptError", "RateLimitError",
    "RequestTimeout", "Response", "ResponseCache", "ResponseParseError", "RetryPolicy", "SeedsError",
    "ServerError", "Tracker", "Tracking", "TrackingWarning", "TransportError", "Usage", "compare_models",
    "mask_secret", "run_sync",
]
