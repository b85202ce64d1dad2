"""Provider defaults live on the client classes: ``from_env``, the key and URL variables, the default model.

Each client is built from its provider's environment variables and sends a request to the mock server
(which checks the key, so a key not read from the environment fails with a 401). Secrets read from the
environment never show in a repr, an error message or a traceback's locals.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import pytest

from seeds_nb import (
    AnthropicClient,
    ConfigurationError,
    GoogleClient,
    MockServer,
    OpenAIClient,
    OpenRouterClient,
    SelfHostedClient,
)
from seeds_nb.core.client import BaseClient

from _support import TEST_KEY

ALL_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GOOGLE_API_KEY",
                 "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL",
                 "SELFHOSTED_API_KEY", "SELFHOSTED_BASE_URL", "MODEL_GARDEN_API_KEY", "MODEL_GARDEN_BASE_URL")


@pytest.fixture(autouse=True)
def _no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def keyed_server() -> Iterator[MockServer]:
    """A server that answers only requests carrying TEST_KEY."""
    with MockServer(latency_s=0.0, api_key=TEST_KEY) as srv:
        yield srv


def _url(server: MockServer, cls: type[BaseClient]) -> str:
    return {AnthropicClient: server.anthropic_url, GoogleClient: server.gemini_url,
            SelfHostedClient: server.selfhosted_url}.get(cls, server.url)


@pytest.mark.filterwarnings("ignore:cost unknown for model 'default'")  # a self-hosted model has no price
@pytest.mark.parametrize(("cls", "model"), [
    (OpenAIClient, "gpt-4.1-mini"), (AnthropicClient, "claude-haiku-4-5"), (GoogleClient, "gemini-2.5-flash"),
    (OpenRouterClient, "openai/gpt-4.1-mini"), (SelfHostedClient, "default")])
def test_from_env_reads_the_providers_variables_and_default_model(
        cls: type[BaseClient], model: str, keyed_server: MockServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cls.api_key_env[0], TEST_KEY)
    monkeypatch.setenv(cls.base_url_env[0], _url(keyed_server, cls))
    client = cls.from_env()
    try:
        assert (client.model, client.provider) == (model, cls.provider)
        assert _url(keyed_server, cls).startswith(client.base_url)  # the server from the environment
        assert client.generate("hello").content  # the server checked the key read from the environment
        assert TEST_KEY not in repr(client) and TEST_KEY not in str(client)
    finally:
        client.close()
    other = cls.from_env("another-model", base_url=_url(keyed_server, cls), api_key="sk-explicit-0000000000")
    assert other.model == "another-model" and "sk-...0000" in repr(other)  # explicit arguments win
    other.close()


def test_key_variables_are_read_in_the_classes_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gemini: GOOGLE_API_KEY wins over GEMINI_API_KEY (as Google's SDK); self-hosted: the original
    library's MODEL_GARDEN_* names come second."""
    assert GoogleClient.api_key_env == ("GOOGLE_API_KEY", "GEMINI_API_KEY")
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key-111111111111")
    assert GoogleClient.env_api_key().get() == "gemini-key-111111111111"
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key-222222222222")
    assert GoogleClient.env_api_key().get() == "google-key-222222222222"
    monkeypatch.setenv("MODEL_GARDEN_BASE_URL", "http://127.0.0.1:9/v1")
    assert SelfHostedClient.env_base_url() == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("SELFHOSTED_BASE_URL", "http://127.0.0.1:8/v1")
    assert SelfHostedClient.env_base_url() == "http://127.0.0.1:8/v1"
    assert OpenAIClient.env_base_url() is None and not OpenAIClient.env_api_key()


def test_a_class_without_a_default_model_asks_for_one() -> None:
    with pytest.raises(ConfigurationError, match=r"BaseClient has no default model: pass one"):
        BaseClient.from_env()


def test_without_a_key_the_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls, needle in ((OpenAIClient, "OPENAI_API_KEY"), (AnthropicClient, "ANTHROPIC_API_KEY"),
                        (GoogleClient, "GEMINI_API_KEY"), (OpenRouterClient, "OPENROUTER_API_KEY"),
                        (SelfHostedClient, "SELFHOSTED_BASE_URL")):
        with pytest.raises(ConfigurationError, match=needle):
            cls.from_env()


@pytest.mark.parametrize("cls", [OpenAIClient, AnthropicClient, GoogleClient, OpenRouterClient, SelfHostedClient])
def test_an_environment_key_never_shows_in_a_repr_an_error_or_a_tracebacks_locals(
        cls: type[BaseClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that fails to build (a bad URL in the environment) with a key in the environment: the key is
    in no repr, no error text and no local variable of any frame of the traceback."""
    monkeypatch.setenv(cls.api_key_env[-1], TEST_KEY)
    monkeypatch.setenv(cls.base_url_env[0], "ftp://not-http.example")
    assert TEST_KEY not in repr(cls.env_api_key()) and TEST_KEY not in str(cls.env_api_key())
    with pytest.raises(ConfigurationError) as info:
        cls.from_env()
    assert "base_url must start with http" in str(info.value) and TEST_KEY not in str(info.value)
    shown = "".join(traceback.TracebackException(info.type, info.value, info.tb, capture_locals=True).format())
    assert "from_env" in shown and TEST_KEY not in shown
