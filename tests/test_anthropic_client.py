"""AnthropicClient over real HTTP against the mock's Messages API, and compare_models."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from pydantic import BaseModel

from seeds_nb import (
    AnthropicClient,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    Message,
    MockServer,
    OpenAIClient,
    PromptError,
    RateLimitError,
    compare_models,
)
from seeds_nb.core.retry import RetryPolicy
from seeds_nb.core.types import Usage
from seeds_nb.mock import Fault, mock_completion
from seeds_nb.providers.anthropic import seconds_until

from _support import TEST_KEY

FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.02)


async def post_messages(server: MockServer, body: dict[str, object]) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(f"{server.anthropic_url}/v1/messages", json=body,
                               headers={"anthropic-version": "2023-06-01"})


@pytest.fixture
async def claude(server: MockServer) -> AsyncIterator[Callable[..., AnthropicClient]]:
    made: list[AnthropicClient] = []

    def factory(**kwargs: object) -> AnthropicClient:
        kwargs.setdefault("base_url", server.anthropic_url)
        kwargs.setdefault("api_key", TEST_KEY)
        client = AnthropicClient(str(kwargs.pop("model", "claude-sonnet-4-5")), **kwargs)  # type: ignore[arg-type]
        client.retry = FAST
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


async def test_messages_request_shape_answer_usage_and_tracking(claude, server: MockServer) -> None:
    response = await claude().agenerate([Message("system", "Be brief."), Message("user", "What is Python?")])
    sent = server.requests[-1]
    assert sent["path"] == "/v1/messages"
    assert sent["body"] == {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.",
                            "messages": [{"role": "user", "content": "What is Python?"}]}
    # The mock answers the same conversation with the same words whatever the protocol.
    chat = mock_completion({"model": "m", "messages": [{"role": "system", "content": "Be brief."},
                                                       {"role": "user", "content": "What is Python?"}]})
    assert response.content == chat["choices"][0]["message"]["content"]
    assert response.usage.prompt_tokens == chat["usage"]["prompt_tokens"]
    assert response.finish_reason == "stop" and response.provider == "anthropic"
    assert response.request_id and response.raw["type"] == "message"
    assert response.tracking.cost_usd and response.tracking.gwp_kgco2eq


async def test_parameters_content_parts_and_stop_sequences(claude, server: MockServer) -> None:
    client = claude(max_tokens=64)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    prompt = [{"role": "user", "content": [{"type": "text", "text": "Describe, then stop. Count to 9"}, image]}]
    response = await client.agenerate(prompt, temperature=0.1, top_k=5, stop=", 4", extra_body={"metadata": {}})
    body = server.requests[-1]["body"]
    assert body["max_tokens"] == 64 and body["temperature"] == 0.1 and body["top_k"] == 5
    assert body["stop_sequences"] == [", 4"] and body["metadata"] == {}
    assert body["messages"][0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    assert response.content == "1, 2, 3" and response.raw["stop_reason"] == "stop_sequence"
    short = await client.agenerate("Tell me a story", max_tokens=3)
    assert short.finish_reason == "length" and short.usage.completion_tokens == 3


def test_usage_maps_cache_tokens_so_genai_prices_prices_them() -> None:
    client = AnthropicClient("claude-sonnet-4-5", base_url="http://127.0.0.1:9")
    body = (b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",'
            b'"content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":200,'
            b'"cache_creation_input_tokens":300,"cache_read_input_tokens":500,"output_tokens":200}}')
    response = client.pipeline.codec.parse_response(body, httpx.Headers(), {})
    assert response.usage == Usage(prompt_tokens=1000, completion_tokens=200, cached_tokens=500,
                                   cache_write_tokens=300)
    cost = client.tracker.track(response.model, response.usage, 1.0).cost_usd
    assert cost == pytest.approx(0.004875)


async def test_prompt_caching_over_http_writes_then_reads(claude) -> None:
    client = claude()
    context = {"type": "text", "text": "A long shared document. " * 50, "cache_control": {"type": "ephemeral"}}
    first = await client.agenerate([{"role": "user", "content": [context, {"type": "text", "text": "Q1"}]}])
    second = await client.agenerate([{"role": "user", "content": [context, {"type": "text", "text": "Q2"}]}])
    assert first.usage.cache_write_tokens > 0 and first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == first.usage.cache_write_tokens and second.usage.cache_write_tokens == 0
    assert second.usage.prompt_tokens >= second.usage.cached_tokens
    # a cache read is priced at a tenth of fresh input, so the second call costs less
    assert second.tracking.cost_usd < first.tracking.cost_usd


class City(BaseModel):
    name: str
    population: int


async def test_pydantic_response_format_is_a_forced_tool(claude, server: MockServer) -> None:
    response = await claude().agenerate("Name a city", response_format=City)
    body = server.requests[-1]["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "City"}
    assert body["tools"][0]["input_schema"] == City.model_json_schema()
    assert isinstance(response.parsed, City) and response.finish_reason == "stop"
    assert City.model_validate_json(response.content) == response.parsed


async def test_bad_response_format_and_unknown_params_are_clear(claude) -> None:
    client = claude()
    with pytest.raises(ConfigurationError, match="pydantic model class"):
        await client.agenerate("x", response_format={"type": "json_object"})
    with pytest.raises(ConfigurationError, match="anthropic cannot send seed=: the Messages API has no seed"):
        await client.agenerate("x", seed=1)
    with pytest.raises(PromptError, match="follows no assistant message that made that call"):
        await client.agenerate([Message("user", "x"), Message("tool", "result", tool_call_id="call_1")])
    with pytest.raises(PromptError, match="at least one user message"):
        await client.agenerate([Message("system", "only a system prompt")])


async def test_529_overloaded_is_retried(claude, server: MockServer) -> None:
    server.add_fault(Fault(status=529, times=2))
    response = await claude().agenerate("busy?")
    assert response.attempts == 3 and server.request_count == 3
    assert [e["status"] for e in server.requests] == [529, 529, 200]


async def test_429_with_retry_after_is_retried_and_pauses_the_client(claude, server: MockServer) -> None:
    server.add_fault(Fault(status=429, times=1, retry_after=0.05))
    client = claude()
    started = time.monotonic()
    response = await client.agenerate("limited")
    assert response.attempts == 2 and client.gate.pauses >= 1
    assert time.monotonic() - started >= 0.05


async def test_spend_limit_429_is_not_retried(claude, server: MockServer) -> None:
    server.add_fault(Fault(status=429, code="enforced_spend_limit_reached"))
    with pytest.raises(RateLimitError, match="spend limit") as info:
        await claude().agenerate("money")
    assert info.value.quota_exhausted and not info.value.retryable and info.value.code == "enforced_spend_limit_reached"
    assert server.request_count == 1


async def test_400_and_missing_max_tokens_are_bad_requests(claude, server: MockServer) -> None:
    server.add_fault(Fault(status=400, match="malformed"))
    with pytest.raises(BadRequestError, match="400"):
        await claude().agenerate("malformed request")
    raw = await post_messages(server, {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]})
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in raw.json()["error"]["message"]


async def test_401_and_403_fail_fast_naming_the_variable() -> None:
    with MockServer(api_key="sk-ant-right-000000") as server:
        client = AnthropicClient("claude-sonnet-4-5", base_url=server.anthropic_url, api_key="sk-ant-wrong-1111")
        with pytest.raises(AuthenticationError, match="401.*ANTHROPIC_API_KEY") as info:
            await client.agenerate("hello")
        assert "sk-ant-wrong-1111" not in str(info.value) and server.request_count == 1
        ok = AnthropicClient("claude-sonnet-4-5", base_url=server.anthropic_url, api_key="sk-ant-right-000000")
        assert (await ok.agenerate("hello")).content
        server.add_fault(Fault(status=403))
        with pytest.raises(AuthenticationError, match="403"):
            await ok.agenerate("forbidden")
        await client.aclose()
        await ok.aclose()


def test_rate_limit_headers_are_read_with_rfc3339_resets() -> None:
    client = AnthropicClient("claude-sonnet-4-5", base_url="http://127.0.0.1:9")
    reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30))
    codec = client.pipeline.codec
    (used_up,) = codec.rate_limits(httpx.Headers({"anthropic-ratelimit-tokens-remaining": "0",
                                                  "anthropic-ratelimit-tokens-reset": reset}), exhausted_only=True)
    assert used_up.kind == "tokens" and used_up.remaining == 0 and 25 < used_up.reset_s <= 31
    assert codec.rate_limits(httpx.Headers({"anthropic-ratelimit-requests-remaining": "7"}), exhausted_only=True) == []
    (room,) = codec.rate_limits(httpx.Headers({"anthropic-ratelimit-requests-remaining": "7"}), exhausted_only=False)
    assert room.remaining == 7 and room.reset_s is None
    assert seconds_until("not a date") is None and seconds_until("2000-01-01T00:00:00Z") == 0.0


async def test_rate_limit_headers_on_answers(claude, server: MockServer) -> None:
    client = claude()
    await client.agenerate("headers")
    answer = await post_messages(server, {"model": "claude-sonnet-4-5", "max_tokens": 5,
                                          "messages": [{"role": "user", "content": "hi"}]})
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        assert seconds_until(answer.headers[f"anthropic-ratelimit-{kind}-reset"]) is not None
    assert answer.headers["request-id"].startswith("req_")


def test_environment_fallbacks_missing_key_and_masked_repr(monkeypatch: pytest.MonkeyPatch,
                                                           server: MockServer) -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY.*anthropic_url"):
        AnthropicClient("claude-sonnet-4-5")
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    assert AnthropicClient("claude-sonnet-4-5").base_url == "https://api.anthropic.com"
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)  # a trailing /v1 is dropped
    client = AnthropicClient("claude-sonnet-4-5")
    assert client.base_url == server.anthropic_url
    assert TEST_KEY not in repr(client) and "sk-...abcd" in repr(client)
    assert client.generate("from the environment").content
    with pytest.raises(ConfigurationError, match="max_tokens"):
        AnthropicClient("claude-sonnet-4-5", max_tokens=0)


def test_official_anthropic_sdk_against_the_mock(server: MockServer) -> None:
    anthropic = pytest.importorskip("anthropic")
    sdk = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-test", max_retries=0)
    message = sdk.messages.create(model="claude-haiku-4-5", max_tokens=50, system="Be brief.",
                                  messages=[{"role": "user", "content": "Count to 3"}])
    assert message.content[0].text == "1, 2, 3" and message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.cache_read_input_tokens == 0
    server.add_fault(Fault(status=529, match="overload"))
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "overload"}])
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"
    sdk.close()


# -- compare_models ------------------------------------------------------------------------------

async def test_compare_models_runs_every_client_and_feeds_plots(claude, make_client) -> None:
    prompts = [f"Compare {i}" for i in range(12)]
    seen: list[str] = []
    cells: dict[str, dict[int, object]] = {"gpt": {}, "claude": {}}
    results = await compare_models(prompts, {"gpt": make_client(), "claude": claude(model="claude-haiku-4-5")},
                                   max_concurrent=4, on_progress=lambda name, done, total, r: seen.append(name),
                                   on_result=lambda name, index, item: cells[name].setdefault(index, item),
                                   max_tokens=50, temperature=0.0)
    assert list(results) == ["gpt", "claude"]
    for name, result in results.items():
        assert result.successful_count == 12 and result.prompts[3] == "Compare 3"
        assert seen.count(name) == 12
        assert cells[name] == dict(enumerate(result.responses))  # every cell, by index, as it arrived
    assert results["claude"].provider == "anthropic" and results["gpt"].model == "gpt-4.1-mini"
    pytest.importorskip("plotly")
    from seeds_nb.plots import compare

    figure = compare(results)
    assert {trace.x[0] for trace in figure.data} == {"gpt"} and len(figure.data[0].x) == 2


async def test_compare_models_checks_parameters_before_sending(claude, make_client, server: MockServer) -> None:
    with pytest.raises(ConfigurationError, match="seed"):
        await compare_models(["a"], {"gpt": make_client(), "claude": claude()}, seed=3)
    assert server.request_count == 0
    with pytest.raises(ConfigurationError, match="at least one client"):
        await compare_models(["a"], {})


def test_both_clients_are_thin_translations_over_the_core() -> None:
    from seeds_nb import BaseClient

    for cls in (AnthropicClient, OpenAIClient):
        assert issubclass(cls, BaseClient)
        assert {"_generate", "_send_with_retries", "batch_generate", "submit_batch"}.isdisjoint(vars(cls))
