"""``ClientSpec``: what a Ray actor needs to build its own client (a class and its arguments), never a client.

Why not a client: a client holds an API key and open connections, and refuses to be pickled. The key is
read on each worker from its environment (the provider's usual variable, set through Ray's
``runtime_env={"env_vars": {...}}``), so it never travels inside a pickle of ours. The rate limits of the
spec are taken out of the per-actor clients and given to the run's one gate actor: they hold for the
whole run, not per actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from seeds_nb.core.client import BaseClient
from seeds_nb.core.exceptions import ConfigurationError
from seeds_nb.core.ratelimit import Gate

__all__ = ["ClientSpec"]

_LIMITS = ("requests_per_minute", "tokens_per_minute")
_REFUSED = {
    "api_key": "the key is never sent to the workers in a pickle: set the provider's environment variable "
               "on them instead, e.g. ray.init(runtime_env={'env_vars': {'OPENAI_API_KEY': ...}})",
    "transport": "a transport is an object of the driver's process; the workers open their own connections",
    "gate": "seeds_nb.ray gives every actor the run's cluster-wide gate; set requests_per_minute= in the spec",
}


class ClientSpec:
    """A provider client's class and keyword arguments, e.g. ``ClientSpec(OpenAIClient, model="gpt-4.1-mini",
    requests_per_minute=600, cache_dir="/shared/cache")``; each Ray actor builds one client from it."""

    __slots__ = ("cls", "kwargs")

    def __init__(self, cls: type[BaseClient], /, **kwargs: Any) -> None:
        if not (isinstance(cls, type) and issubclass(cls, BaseClient)):
            raise ConfigurationError(f"ClientSpec takes a client class such as OpenAIClient first; got {cls!r}")
        for name, why in _REFUSED.items():
            if name in kwargs:
                raise ConfigurationError(f"ClientSpec does not take {name}=: {why}")
        if not isinstance(kwargs.get("model"), str):
            raise ConfigurationError(f"ClientSpec({cls.__name__}, model='...') needs the model by keyword")
        self.cls = cls
        self.kwargs = dict(kwargs)

    @classmethod
    def of(cls, client: Any) -> ClientSpec:
        """A spec from what ``map(client=...)`` takes: a ``ClientSpec`` or a ``(class, {kwargs})`` pair."""
        if isinstance(client, ClientSpec):
            return client
        if isinstance(client, BaseClient):
            raise ConfigurationError(
                f"seeds_nb.ray.map takes a client *spec*, not a {type(client).__name__}: each Ray actor builds its "
                f"own client (a client holds a key and connections); pass client=ClientSpec({type(client).__name__}, "
                f"model={client.model!r}, ...) or ({type(client).__name__}, {{'model': {client.model!r}}})")
        if isinstance(client, tuple) and len(client) == 2 and isinstance(client[1], Mapping):
            return cls(client[0], **dict(client[1]))
        raise ConfigurationError("client= must be a ClientSpec(OpenAIClient, model=...) or a pair "
                                 f"(OpenAIClient, {{'model': ...}}); got {client!r}")

    @property
    def model(self) -> str:
        return str(self.kwargs["model"])

    @property
    def requests_per_minute(self) -> float | None:
        value = self.kwargs.get("requests_per_minute")
        return None if value is None else float(value)

    @property
    def tokens_per_minute(self) -> float | None:
        value = self.kwargs.get("tokens_per_minute")
        return None if value is None else float(value)

    def build(self, gate: Gate | None = None) -> BaseClient:
        """The client, in the process that calls this (an actor): its limits are ``gate``'s when given."""
        kwargs = dict(self.kwargs)
        if gate is not None:
            for name in _LIMITS:
                kwargs.pop(name, None)
            kwargs["gate"] = gate
        return self.cls(**kwargs)

    def check(self) -> None:
        """Build it once on the driver, so a wrong argument fails in the caller's line (no request is sent;
        a key the driver lacks is no error here: the workers read their own)."""
        kwargs = dict(self.kwargs)
        kwargs.pop("cache_dir", None)  # the cache is opened where it is used: on the workers
        try:
            client = self.cls(**kwargs)
        except ConfigurationError as exc:
            if "API key" in str(exc) or "api_key" in str(exc):
                return  # the driver need not hold the key: the workers read it from their environment
            raise
        client.close()

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.kwargs.items())
        return f"ClientSpec({self.cls.__name__}, {args})"
