"""``%%seeds_batch``: a batch of LLM prompts from one notebook cell, run live (``%load_ext seeds_nb``).

Loading the extension does two things:

1. registers the ``SeedsBatch`` magics (``%%seeds_batch``, its ``--help``/``?`` and
   ``%config SeedsBatch.*`` defaults), which is what ``run_cell_magic`` calls use;
2. appends an input transformer to ``shell.input_transformers_cleanup`` that rewrites a cell
   starting with ``%%seeds_batch`` into ``await seeds_nb.magic.run_cell_async(line, cell)``, before
   IPython's own ``%%`` handling sees it.

Why the transformer: a cell magic is a plain function, so it would have to block the kernel's
thread while the batch runs, and a blocked kernel handles no widget messages (no Cancel button).
As a top-level ``await`` the cell yields to the kernel's loop, which (ipykernel >= 7.4) keeps
dispatching button clicks, and a kernel interrupt cancels the awaited batch cleanly.
"""

from __future__ import annotations

import re
from typing import Any

from IPython.core.getipython import get_ipython

try:  # IPython's asyncio loop runner: the only one our coroutine can run under
    from IPython.core.async_helpers import _asyncio_runner
except ImportError:  # pragma: no cover - a future IPython without it: fall back to the sync path
    _asyncio_runner = None  # type: ignore[assignment]

from ._background import BackgroundBatch
from ._magics import BatchInterrupted, SeedsBatch
from ._plan import estimate_plan
from ._render import Prompt, build_prompts, over_rows, render, split_prompts

__all__ = [
    "BackgroundBatch", "BatchInterrupted", "Prompt", "SeedsBatch", "build_prompts", "estimate_plan",
    "load_ipython_extension", "over_rows", "render", "run_cell_async", "run_cell_sync", "split_prompts",
    "transform_cell", "unload_ipython_extension",
]

# `%%seeds_batch` alone or followed by options; not `%%seeds_batch?` (IPython's help handles that).
_HEAD = re.compile(r"%%seeds_batch(?:[ \t]+(?P<line>.*?))?[ \t]*\r?\n?\Z")
_registered: SeedsBatch | None = None


def _instance() -> SeedsBatch:
    """The registered ``SeedsBatch`` (created on demand if the transformer outlived a reload)."""
    global _registered
    if _registered is None:
        shell = get_ipython()
        if shell is None:
            raise RuntimeError("%%seeds_batch needs IPython: run it in a notebook after %load_ext seeds_nb")
        load_ipython_extension(shell)
    assert _registered is not None
    return _registered


async def run_cell_async(line: str, cell: str) -> None:
    """What a transformed ``%%seeds_batch`` cell awaits."""
    await _instance().run_async(line, cell)


def run_cell_sync(line: str, cell: str) -> None:
    """What a ``%%seeds_batch`` cell runs when top-level await is off (``%autoawait off``, trio)."""
    _instance().run_blocking(line, cell)


def _can_await(shell: Any) -> bool:
    """Top-level await is on and runs on asyncio (not ``%autoawait trio``/``curio``)."""
    runner = getattr(shell, "loop_runner", None)
    return bool(getattr(shell, "autoawait", False)) and runner is not None and runner is _asyncio_runner


def transform_cell(lines: list[str]) -> list[str]:
    """Input transformer: a ``%%seeds_batch`` cell becomes one line awaiting ``run_cell_async``."""
    if not lines:
        return lines
    match = _HEAD.match(lines[0])
    if match is None:
        return lines
    line = match.group("line") or ""
    body = "".join(lines[1:])
    entry = "run_cell_async" if _can_await(get_ipython()) else "run_cell_sync"
    call = f"__import__('seeds_nb.magic', fromlist=[{entry!r}]).{entry}({line!r}, {body!r})"
    return [("await " if entry == "run_cell_async" else "") + call + "\n"]


transform_cell.seeds_nb_transformer = True  # type: ignore[attr-defined]  # found again on reload


def _remove_transformer(shell: Any) -> None:
    cleanup = shell.input_transformers_cleanup
    cleanup[:] = [t for t in cleanup if not getattr(t, "seeds_nb_transformer", False)]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext seeds_nb``: register ``%%seeds_batch`` and its await transformer (idempotent)."""
    global _registered
    if _registered is None or _registered.shell is not ipython:  # a second load keeps the instance (and config)
        _registered = SeedsBatch(shell=ipython)
    ipython.register_magics(_registered)
    _remove_transformer(ipython)
    ipython.input_transformers_cleanup.append(transform_cell)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext seeds_nb``: remove the transformer (clients and the mock server live on)."""
    global _registered
    _remove_transformer(ipython)
    if _registered is not None and _registered in getattr(ipython, "configurables", []):
        ipython.configurables.remove(_registered)
    ipython.magics_manager.magics["cell"].pop("seeds_batch", None)
    _registered = None
