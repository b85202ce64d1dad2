"""The ``seeds_nb`` logger: retries and their waits, client-wide pauses, cache write failures, budget
and authentication stops. Silent by default (a library must not print); turn it on with
``seeds_nb.configure_logging("INFO")`` or the ``SEEDS_NB_LOG_LEVEL`` environment variable.

Nothing logged holds an API key: messages are built from errors whose text is already scrubbed.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

__all__ = ["ENV_VAR", "configure_logging", "get_logger", "logger"]

ENV_VAR = "SEEDS_NB_LOG_LEVEL"
logger = logging.getLogger("seeds_nb")
logger.addHandler(logging.NullHandler())

_FORMAT = "%(asctime)s seeds_nb %(levelname)s: %(message)s"
_handler: logging.Handler | None = None


def configure_logging(level: int | str | None = None, *, handler: logging.Handler | None = None,
                      fmt: str | None = None, datefmt: str | None = None, propagate: bool | None = None,
                      module_levels: Mapping[str, int | str] | None = None) -> logging.Logger:
    """Show seeds_nb's log on stderr at ``level`` (``"DEBUG"``, ``"INFO"``, ``"WARNING"``...; default:
    ``$SEEDS_NB_LOG_LEVEL``, else ``"INFO"``). Calling it again changes the level; returns the logger.

    The original library's keywords work too: ``handler`` (used instead of stderr), ``fmt``/``datefmt``
    (its format), ``propagate`` (to the root logger) and ``module_levels`` (``{"core.cache": "DEBUG"}``)."""
    global _handler
    chosen = _level(level if level is not None else os.environ.get(ENV_VAR) or "INFO")
    formatter = logging.Formatter(fmt or _FORMAT, datefmt)
    if handler is not None:
        if fmt is not None or datefmt is not None:
            handler.setFormatter(formatter)
        if handler not in logger.handlers:
            logger.addHandler(handler)
    else:
        if _handler is None:
            _handler = logging.StreamHandler(sys.stderr)
            logger.addHandler(_handler)
        if fmt is not None or datefmt is not None or _handler.formatter is None:
            _handler.setFormatter(formatter)
    logger.setLevel(chosen)
    if propagate is not None:
        logger.propagate = propagate
    for name, module_level in (module_levels or {}).items():
        logger.getChild(name.removeprefix("seeds_nb.")).setLevel(_level(module_level))
    return logger


def get_logger(name: str | None = None) -> logging.Logger:
    """The ``seeds_nb`` logger, or its child ``name`` (the original library's helper)."""
    return logger.getChild(name.removeprefix("seeds_nb.")) if name and name != "seeds_nb" else logger


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    resolved = logging.getLevelName(str(level).strip().upper())
    if not isinstance(resolved, int):
        from .exceptions import ConfigurationError

        raise ConfigurationError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return resolved

if os.environ.get(ENV_VAR):  # pragma: no cover - exercised in a subprocess test
    try:
        configure_logging()
    except ValueError as exc:  # a bad variable must not break `import seeds_nb`
        import warnings

        warnings.warn(f"{ENV_VAR}: {exc}", RuntimeWarning, stacklevel=1)
