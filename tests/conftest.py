"""Shared fixtures: a real mock server on 127.0.0.1, and an environment with no real API keys."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seeds_nb import MockServer, OpenAIClient

from _support import TEST_KEY


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real provider or pick up a developer's key."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENROUTER_API_KEY",
                 "OPENROUTER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def shared_server() -> Iterator[MockServer]:
    """A fault-free server shared by tests that only read from it."""
    with MockServer(latency_s=0.0) as server:
        yield server


@pytest.fixture
def server() -> Iterator[MockServer]:
    """A fresh server per test, for tests that add faults or count requests."""
    with MockServer(latency_s=0.0) as srv:
        yield srv


@pytest.fixture
async def make_client(server: MockServer):  # type: ignore[no-untyped-def]
    """Build clients against the per-test server; closes them at the end, on the test's loop."""
    made: list[OpenAIClient] = []

    def factory(**kwargs: object) -> OpenAIClient:
        kwargs.setdefault("base_url", server.url)
        kwargs.setdefault("api_key", TEST_KEY)
        client = OpenAIClient(str(kwargs.pop("model", "gpt-4.1-mini")), **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()
