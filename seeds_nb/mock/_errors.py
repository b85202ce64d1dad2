"""The mock's one request error (its own module: the protocol modules and the mock model both raise it)."""

from __future__ import annotations

__all__ = ["RequestError"]


class RequestError(ValueError):
    """An invalid request; carries the OpenAI ``param`` name so the server can build a 400 body."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
