"""``compare_models``: the same prompts through several clients at once, one ``BatchResult`` each.

Provider-neutral on purpose: it only runs ``batch_generate`` of each client concurrently, so any
client (OpenAI, Anthropic, a local server, the mock) can be compared with any other, and the
returned ``dict[str, BatchResult]`` feeds ``seeds_nb.plots.compare`` directly.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError
from .result import BatchResult
from .types import Response

if TYPE_CHECKING:
    from .client import BaseClient

__all__ = ["compare_models"]

CompareProgress = Callable[[str, int, "int | None", "Response | None"], Any]


async def compare_models(prompts: Iterable[Any], clients: Mapping[str, BaseClient], max_concurrent: int = 5,
                         on_progress: CompareProgress | None = None, **params: Any) -> dict[str, BatchResult]:
    """Send every prompt to every client concurrently; results keep the order of ``clients``.

    Args:
        prompts: the prompts (materialised once, since every client reads them).
        clients: a name for each client, e.g. ``{"gpt-4.1-mini": openai_client, "claude": claude}``.
        max_concurrent: requests in flight *per client* (each provider has its own limits).
        on_progress: ``on_progress(name, completed, total, response)``, called as each request ends.
        **params: generation parameters for every client (each must know them, e.g. ``max_tokens``).

    Cancelling the call cancels every run; each run keeps what finished (see ``BatchRun``).
    """
    if not clients:
        raise ConfigurationError("compare_models needs at least one client: clients={'name': client, ...}")
    prompts = list(prompts)
    for client in clients.values():  # fail before anything is sent, not half-way through
        client._check_params(params)

    def progress_for(name: str) -> Callable[[int, int | None, Response | None], Any] | None:
        if on_progress is None:
            return None

        async def report(completed: int, total: int | None, response: Response | None) -> None:
            out = on_progress(name, completed, total, response)
            if inspect.isawaitable(out):
                await out

        return report

    tasks = {name: asyncio.ensure_future(client.batch_generate(prompts, max_concurrent, progress_for(name), **params))
             for name, client in clients.items()}
    try:
        await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():  # one run raised or we were cancelled: leave no run behind
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    return {name: task.result() for name, task in tasks.items()}
