"""API keys that never show: in a repr, a log record, a pickle, an error message or a traceback's locals.

Why objects rather than care at each use: a traceback printed with local variables (IPython's
``%xmode Verbose``, rich, ``TracebackException(capture_locals=True)``) shows the ``repr`` of every
local of every frame. So the raw key lives only inside a ``Secret``, headers that carry it live in
a ``SecretHeaders`` whose repr masks them, and the raw string is only ever a temporary value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["Secret", "SecretHeaders", "mask_secret"]

_SENSITIVE = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization"})


def mask_secret(secret: str | None) -> str | None:
    """``sk-...abcd``: enough to tell keys apart, never enough to use one."""
    if not secret:
        return None
    return f"{secret[:3]}...{secret[-4:]}" if len(secret) > 12 else "***"


def _refuse_pickle() -> NoReturn:
    raise TypeError("an API key is not pickled; pass it again where the client is rebuilt")


class Secret:
    """Holds an API key so that reprs, ``vars()``, logs and tracebacks only ever show it masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or None

    def get(self) -> str | None:
        """The raw key: use it inline (``f"Bearer {secret.get()}"``), never bind it to a name."""
        return self._value

    @property
    def masked(self) -> str | None:
        return mask_secret(self._value)

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by its masked form (for a server
        that echoes the key back in an error body)."""
        if self._value and len(self._value) >= 8 and self._value in text:
            return text.replace(self._value, self.masked or "***")
        return text

    def __bool__(self) -> bool:
        return self._value is not None

    def __repr__(self) -> str:
        return f"Secret({self.masked!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        _refuse_pickle()


class SecretHeaders(dict[str, str]):
    """Request headers whose repr masks the credential ones. A ``dict`` so HTTP libraries take their
    fast path for it (aiohttp and httpx both special-case dicts); read-only by convention."""

    __slots__ = ()

    def with_extra(self, extra: Mapping[str, str] | None = None, *, drop: tuple[str, ...] = ()) -> SecretHeaders:
        """A copy with ``extra`` headers added and ``drop`` removed."""
        merged = SecretHeaders({k: v for k, v in self.items() if k not in drop})
        merged.update(extra or {})
        return merged

    def __repr__(self) -> str:
        shown = {k: ("***" if k.lower() in _SENSITIVE else v) for k, v in self.items()}
        return f"SecretHeaders({shown!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        _refuse_pickle()
