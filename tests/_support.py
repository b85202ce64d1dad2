"""Helpers shared by test modules (conftest holds only fixtures)."""

from __future__ import annotations

import asyncio

TEST_KEY = "sk-test-SECRETKEY-0123456789abcd"


def leftover_tasks() -> set[asyncio.Task[object]]:
    """Tasks other than the current one (a clean batch leaves none)."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}
