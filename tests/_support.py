"""Helpers shared by test modules (conftest holds only fixtures)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import comm
import pytest
from comm import DummyComm

TEST_KEY = "sk-test-SECRETKEY-0123456789abcd"


def leftover_tasks() -> set[asyncio.Task[object]]:
    """Tasks other than the current one (a clean batch leaves none)."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


class FakeClock:
    """A clock that only moves when told to, and counts how often it is read."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CommLog:
    """Records every message widgets send (``comm_open``, ``comm_msg`` ...) with its model id."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str, str, dict[str, Any]]] = []

    def updates(self, comm_id: str | None = None) -> list[dict[str, Any]]:
        return [data["state"] for _, kind, cid, data in self.messages
                if kind == "comm_msg" and data.get("method") == "update" and comm_id in (None, cid)]

    def count(self, kind: str = "comm_msg") -> int:
        return sum(1 for m in self.messages if m[1] == kind)

    def clear(self) -> None:
        self.messages.clear()


def record_comms(monkeypatch: pytest.MonkeyPatch) -> CommLog:
    """Give every widget created from now on a comm that records what it would send to the frontend."""
    log = CommLog()

    class RecordingComm(DummyComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            log.messages.append((time.monotonic(), msg_type, self.comm_id, data or {}))

    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: RecordingComm(*a, **k))
    return log


def click_cancel(panel: Any) -> None:
    """Deliver what panel.js sends when Cancel is clicked, through the widget's comm as the kernel would."""
    panel.comm.handle_msg({"content": {"data": {"method": "custom", "content": {"event": "cancel"}}}, "buffers": []})


class BatchClock:
    """A mock server's batch clock (``MockServer(clock=...)``), moved by the test: every job state is reached
    exactly, with no sleeping."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
