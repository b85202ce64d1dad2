"""The ``seeds_nb`` logger: retries and their waits, client-wide pauses, cache write failures, budget
and authentication stops. Silent by default (a library must not print); turn it on with
``seeds_nb.configure_logging("INFO")`` or the ``SEEDS_NB_LOG_LEVEL`` environment variable.

Nothing logged holds an API key: messages are built from errors whose text is already scrubbed.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["ENV_VAR", "configure_logging", "logger"]

ENV_VAR = "SEEDS_NB_LOG_LEVEL"
logger = logging.getLogger("seeds_nb")
logger.addHandler(logging.NullHandler())

_FORMAT = "%(asctime)s seeds_nb %(levelname)s: %(message)s"
_handler: logging.Handler | None = None


def configure_logging(level: int | str | None = None) -> logging.Logger:
    """Show seeds_nb's log on stderr at ``level`` (``"DEBUG"``, ``"INFO"``, ``"WARNING"``...; default:
    ``$SEEDS_NB_LOG_LEVEL``, else ``"INFO"``). Calling it again changes the level; returns the logger."""
    global _handler
    chosen = level if level is not None else os.environ.get(ENV_VAR) or "INFO"
    if isinstance(chosen, str):
        name = chosen.strip().upper()
        resolved = logging.getLevelName(name)
        if not isinstance(resolved, int):
            from .exceptions import ConfigurationError

            raise ConfigurationError(f"unknown log level {chosen!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        chosen = resolved
    if _handler is None:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(_handler)
    logger.setLevel(chosen)
    return logger


if os.environ.get(ENV_VAR):  # pragma: no cover - exercised in a subprocess test
    try:
        configure_logging()
    except ValueError as exc:  # a bad variable must not break `import seeds_nb`
        import warnings

        warnings.warn(f"{ENV_VAR}: {exc}", RuntimeWarning, stacklevel=1)
