"""seeds_nb: run batches of LLM requests from a notebook and see them run.

The core (``seeds_nb.core``) is a plain async library; widgets, plots and the
``%%seeds_batch`` magic sit on top and are imported only when used.
"""

from importlib.metadata import PackageNotFoundError, version

from .core import *  # noqa: F403
from .core import __all__ as _core_all
from .mock import Fault, MockServer
from .providers import AnthropicClient, BatchCounts, BatchExpired, BatchJob, BatchNotReady, OpenAIClient

try:
    __version__ = version("seeds_nb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = sorted([*_core_all, "AnthropicClient", "BatchCounts", "BatchExpired", "BatchJob", "BatchNotReady",
                  "Fault", "MockServer", "OpenAIClient", "load_ipython_extension"])


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext seeds_nb``: registers ``%%seeds_batch`` (IPython is imported only here)."""
    from .magic import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    """``%unload_ext seeds_nb``: removes the magic's input transformer."""
    from .magic import unload_ipython_extension as _unload

    _unload(ipython)
