"""``compare_models``: the same prompts through several clients at once, one ``BatchResult`` each.

Provider-neutral on purpose: it only runs a ``client.batch`` of each client concurrently, so any
client (OpenAI, Anthropic, a local server, the mock) can be compared with any other, and the
returned ``dict[str, BatchResult]`` feeds ``seeds_nb.plots.compare`` directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .batch import BatchRun
from .client import BaseClient
from .exceptions import ConfigurationError
from .result import BatchResult
from .types import Response

__all__ = ["compare_models"]

CompareProgress = Callable[[str, int, "int | None", "Response | None"], Any]
CompareResult = Callable[[str, int, "Response | Exception"], Any]
CompareRun = Callable[[str, BatchRun], Any]


async def compare_models(prompts: Iterable[Any], clients: Mapping[str, BaseClient], max_concurrent: int = 5,
                         on_progress: CompareProgress | None = None, on_result: CompareResult | None = None,
                         on_run: CompareRun | None = None, **params: Any) -> dict[str, BatchResult]:
    """Send every prompt to every client concurrently; results keep the order of ``clients``.

    Args:
        prompts: the prompts (materialised once, since every client reads them).
        clients: a name for each client, e.g. ``{"gpt-4.1-mini": openai_client, "claude": claude}``.
        max_concurrent: requests in flight *per client* (each provider has its own limits).
        on_progress: ``on_progress(name, completed, total, response)``, called as each request ends.
        on_result: ``on_result(name, index, response_or_error)``, called as each request ends (before
            ``on_progress``): what a side-by-side table fills its cells from while the runs go on.
        on_run: ``on_run(name, run)``, called once per client with its ``BatchRun`` before it starts: a
            display reads each run's live ``run.ledger`` rather than counting answers itself.
        **params: generation parameters for every client (each must know them, e.g. ``max_tokens``).

    Cancelling the call cancels every run; each run keeps what finished (see ``BatchRun``).
    """
    if not clients:
        raise ConfigurationError("compare_models needs at least one client: clients={'name': client, ...}")
    prompts = list(prompts)
    for client in clients.values():  # fail before anything is sent, not half-way through
        client.pipeline.check_params(params)

    # Per client, the callbacks get its name; BatchRun awaits what they return and survives their errors.
    def progress_for(name: str) -> Callable[[int, int | None, Response | None], Any] | None:
        return None if on_progress is None else (lambda done, total, response: on_progress(name, done, total, response))

    def result_for(name: str) -> Callable[[int, Response | Exception], Any] | None:
        return None if on_result is None else (lambda index, item: on_result(name, index, item))

    async def run(name: str, client: BaseClient) -> BatchResult:
        batch = client.batch(prompts, max_concurrent, progress_for(name), **params)
        batch.on_result = result_for(name)
        if on_run is not None:
            on_run(name, batch)
        return await batch

    tasks = {name: asyncio.ensure_future(run(name, client)) for name, client in clients.items()}
    try:
        await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():  # one run raised or we were cancelled: leave no run behind
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    return {name: task.result() for name, task in tasks.items()}
