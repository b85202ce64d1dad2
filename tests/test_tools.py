"""Tool calling, n > 1, logprobs and seed over real HTTP on the mock, for OpenAI, Anthropic and Gemini.

One parametrised client fixture runs the same user code (OpenAI's form: ``tools=``, ``tool_choice=``,
``role: "tool"`` results) against each dialect, so the three translations are held to one behaviour.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from seeds_nb import (
    AnthropicClient,
    BaseClient,
    ConfigurationError,
    GoogleClient,
    Message,
    MockServer,
    OpenAIClient,
    PromptError,
    ToolCall,
)

from _support import TEST_KEY

pytestmark = pytest.mark.anyio

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {
        "type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city", "days"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                                       "required": ["zone"]}}}
PROVIDERS = ("openai", "anthropic", "google")


@pytest.fixture
async def connect(server: MockServer) -> AsyncIterator[Callable[..., BaseClient]]:
    made: list[BaseClient] = []

    def factory(provider: str, **kwargs: Any) -> BaseClient:
        kwargs.setdefault("api_key", TEST_KEY)
        client: BaseClient
        if provider == "openai":
            client = OpenAIClient("gpt-4.1-mini", base_url=server.url, **kwargs)
        elif provider == "anthropic":
            client = AnthropicClient("claude-sonnet-4-5", base_url=server.anthropic_url, **kwargs)
        else:
            client = GoogleClient("gemini-2.5-flash", base_url=server.gemini_url, **kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_call_round_trip(provider: str, connect: Callable[..., BaseClient], server: MockServer) -> None:
    client = connect(provider)
    prompt = [Message("user", "What is the weather in Lyon?")]
    first = await client.agenerate(prompt, tools=[WEATHER, TIME])
    assert first.finish_reason == "tool_calls" and len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert isinstance(call, ToolCall) and call.name == "get_weather" and call.id
    assert call.arguments["city"] == "What is the weather in Lyon?"  # the mock's arguments come from the prompt
    assert 1 <= call.arguments["days"] <= 7  # and are valid for the tool's schema
    assert json.loads(call.raw_arguments) == call.arguments
    # the result goes back as OpenAI's tool message; the model answers in words, from the result
    result = json.dumps({"forecast": "sunny spells", "high_c": 21})
    final = await client.agenerate([*prompt, first.to_message(), Message("tool", result, tool_call_id=call.id)],
                                   tools=[WEATHER, TIME])
    assert final.tool_calls == () and final.finish_reason == "stop"
    assert "sunny spells" in final.content  # the mock answers the last tool result: it reached the server
    body = server.requests[-1]["body"]
    if provider == "anthropic":  # each provider's own form on the wire
        assert body["tools"][0] == {"name": "get_weather", "description": "The weather in a city now.",
                                    "input_schema": WEATHER["function"]["parameters"]}  # type: ignore[index]
        assert body["messages"][1]["content"][0] == {"type": "tool_use", "id": call.id, "name": "get_weather",
                                                     "input": call.arguments}
        assert body["messages"][2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": result}]}
    elif provider == "google":
        declaration = body["tools"][0]["functionDeclarations"][0]
        assert declaration["name"] == "get_weather"
        assert declaration["parametersJsonSchema"] == WEATHER["function"]["parameters"]  # type: ignore[index]
        assert body["contents"][1] == {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": call.arguments}}]}
        assert body["contents"][2] == {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": json.loads(result)}}]}
    else:
        assert body["tools"] == [WEATHER, TIME]
        assert body["messages"][1]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                                    "arguments": call.raw_arguments}
        assert body["messages"][2] == {"role": "tool", "content": result, "tool_call_id": call.id}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_choice_is_translated_and_honoured(provider: str, connect: Callable[..., BaseClient],
                                                      server: MockServer) -> None:
    client = connect(provider)
    forced = await client.agenerate("Weather please", tools=[WEATHER, TIME],
                                    tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert [c.name for c in forced.tool_calls] == ["get_time"]
    wire = server.requests[-1]["body"]
    expected = {"openai": {"type": "function", "function": {"name": "get_time"}},
                "anthropic": {"type": "tool", "name": "get_time"},
                "google": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}}
    assert wire.get("toolConfig", wire.get("tool_choice")) == expected[provider]
    none = await client.agenerate("Weather please", tools=[WEATHER], tool_choice="none")
    assert none.tool_calls == () and none.content
    required = await client.agenerate("Weather please", tools=[WEATHER], tool_choice="required")
    assert [c.name for c in required.tool_calls] == ["get_weather"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tools_are_in_the_cache_key_and_tool_calls_survive_a_hit(
        provider: str, connect: Callable[..., BaseClient], server: MockServer, tmp_path: Path) -> None:
    client = connect(provider, cache_dir=tmp_path)
    plain = await client.agenerate("Weather in Oslo?")
    fresh = await client.agenerate("Weather in Oslo?", tools=[WEATHER])
    assert not fresh.cached and plain.tool_calls == () and fresh.tool_calls  # not the tool-less answer
    other = await client.agenerate("Weather in Oslo?", tools=[TIME])
    assert not other.cached and other.tool_calls[0].name == "get_time"
    sent = len(server.requests)
    hit = await client.agenerate("Weather in Oslo?", tools=[WEATHER])
    assert hit.cached and len(server.requests) == sent
    assert hit.tool_calls == fresh.tool_calls and hit.finish_reason == "tool_calls"


@pytest.mark.parametrize("provider", ["openai", "google"])
async def test_n_choices_all_kept_usage_once(provider: str, connect: Callable[..., BaseClient],
                                             tmp_path: Path) -> None:
    client = connect(provider, cache_dir=tmp_path)
    one = await client.agenerate("Name a colour")
    three = await client.agenerate("Name a colour", n=3)
    assert len(three.choices) == 3 and len({c.content for c in three.choices}) == 3
    assert three.content == three.choices[0].content == one.content  # the first choice is the plain answer
    assert [c.index for c in three.choices] == [0, 1, 2]
    # the server's usage, counted once: all three answers' tokens, the prompt once
    assert three.usage.prompt_tokens == one.usage.prompt_tokens
    assert three.usage.completion_tokens > one.usage.completion_tokens
    assert three.tracking.cost_usd is not None and three.tracking.cost_usd > one.tracking.cost_usd
    assert len(one.choices) == 1 and one.choices[0].content == one.content
    hit = await client.agenerate("Name a colour", n=3)
    assert hit.cached and hit.choices == three.choices


@pytest.mark.parametrize("provider", ["openai", "google"])
async def test_logprobs_parsed_and_top_alternatives(provider: str, connect: Callable[..., BaseClient],
                                                    tmp_path: Path) -> None:
    client = connect(provider, cache_dir=tmp_path)
    plain = await client.agenerate("Say something")
    assert plain.logprobs is None
    response = await client.agenerate("Say something", logprobs=True, top_logprobs=3)
    tokens = response.logprobs
    assert tokens and "".join(t.token for t in tokens).strip() == response.content
    assert all(t.logprob <= 0 and len(t.top_logprobs) == 3 for t in tokens)
    assert all(t.top_logprobs[0] == (t.token, t.logprob) for t in tokens)
    assert all(a[1] >= b[1] for t in tokens for a, b in zip(t.top_logprobs, t.top_logprobs[1:], strict=False))
    hit = await client.agenerate("Say something", logprobs=True, top_logprobs=3)
    assert hit.cached and hit.logprobs == tokens  # another key than the plain answer, restored on a hit


@pytest.mark.parametrize("provider", ["openai", "google"])
async def test_seed_is_honoured_and_keyed(provider: str, connect: Callable[..., BaseClient], server: MockServer,
                                          tmp_path: Path) -> None:
    client = connect(provider, cache_dir=tmp_path)
    a = await client.agenerate("Tell me a fact", seed=1)
    b = await client.agenerate("Tell me a fact", seed=2)
    plain = await client.agenerate("Tell me a fact")
    assert not (a.cached or b.cached or plain.cached) and len({a.content, b.content, plain.content}) == 3
    again = await client.agenerate("Tell me a fact", seed=1, use_cache=False)
    assert again.content == a.content  # the same seed, the same answer, from the server
    wire = server.requests[-1]["body"]
    assert wire.get("seed", wire.get("generationConfig", {}).get("seed")) == 1


async def test_anthropic_refuses_what_it_lacks_before_sending(connect: Callable[..., BaseClient],
                                                              server: MockServer) -> None:
    client = connect("anthropic")
    for params, says in (({"n": 2}, "one answer per request"), ({"logprobs": True}, "no token log probabilities"),
                         ({"seed": 3}, "has no seed")):
        with pytest.raises(ConfigurationError, match=f"anthropic cannot send {next(iter(params))}=: .*{says}"):
            await client.agenerate("x", **params)
    with pytest.raises(ConfigurationError, match="cannot send seed="):
        connect("anthropic", seed=3)  # as a constructor default too
    assert server.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bad_tool_and_sampling_arguments_are_clear(provider: str, connect: Callable[..., BaseClient],
                                                         server: MockServer) -> None:
    client = connect(provider)
    with pytest.raises(ConfigurationError, match="each tool needs a 'function' with a 'name'"):
        await client.agenerate("x", tools=[{"type": "function", "function": {"description": "no name"}}])
    with pytest.raises(ConfigurationError, match="tool_choice must be 'auto', 'none', 'required'"):
        await client.agenerate("x", tools=[WEATHER], tool_choice="always")
    with pytest.raises(ConfigurationError, match="tools must be a non-empty list"):
        await client.agenerate("x", tools={"name": "f"})
    with pytest.raises(PromptError, match="follows no assistant message that made that call"):
        await client.agenerate([Message("user", "x"), Message("tool", "42", tool_call_id="call_nope")])
    broken = Message("assistant", "", tool_calls=[{"id": "call_1", "type": "function",
                                                   "function": {"name": "get_weather", "arguments": "{city: Nice"}}])
    turns = [Message("user", "x"), broken, Message("tool", "sunny", tool_call_id="call_1")]
    if provider == "openai":  # OpenAI takes the arguments as the string they are
        assert (await client.agenerate(turns)).content
    else:  # Anthropic's input and Gemini's args are JSON objects: refused before sending, naming the call
        name = {"anthropic": "Anthropic", "google": "Gemini"}[provider]
        with pytest.raises(PromptError, match=f"tool call 'call_1' has arguments that are not JSON.*{name}"):
            await client.agenerate(turns)
    if provider != "anthropic":
        with pytest.raises(ConfigurationError, match="top_logprobs needs logprobs=True"):
            await client.agenerate("x", top_logprobs=2)
        with pytest.raises(ConfigurationError, match=r"n \(answers per prompt\) must be an integer >= 1"):
            await client.agenerate("x", n=0)
    assert len(server.requests) == (1 if provider == "openai" else 0)  # nothing else was sent


async def test_openai_dict_messages_round_trip_and_unparsable_arguments_kept(
        connect: Callable[..., BaseClient], server: MockServer) -> None:
    """Messages as the OpenAI SDK's users write them (dicts, content None) work; a tool call whose arguments
    are not JSON keeps them raw instead of failing the paid answer."""
    client = connect("openai")
    first = await client.agenerate("Weather in Rome?", tools=[WEATHER])
    call = first.tool_calls[0].to_dict()
    final = await client.agenerate([
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "rain"}], tools=[WEATHER])
    assert "rain" in final.content
    broken = ToolCall.from_raw("c1", "f", "{not json")
    assert broken.arguments is None and broken.raw_arguments == "{not json"


async def test_batch_exports_tool_calls_choices_and_logprobs(connect: Callable[..., BaseClient]) -> None:
    client = connect("openai")
    result = await client.batch_generate(["a?", "b?"], logprobs=True, top_logprobs=1, n=2)
    frame = result.to_pandas()
    assert list(frame["choices"].map(len)) == [2, 2]
    assert frame["logprobs"][0][0]["token"] and frame["logprobs"][0][0]["top_logprobs"][0]["logprob"] <= 0
    plain = (await client.batch_generate(["a?"])).to_pandas()
    assert not {"logprobs", "tool_calls", "choices"} & set(plain.columns)  # only when asked for
    tools = (await client.batch_generate(["weather?"], tools=[WEATHER])).to_records()
    assert tools[0]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_map_adds_logprobs_and_tool_call_columns_when_asked(connect: Callable[..., BaseClient],
                                                                  tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    client = connect("google")
    data = pd.DataFrame({"city": ["Lyon", "Oslo"]})
    out = await client.map(data, "Weather in {city}?", tools=[WEATHER])
    assert [calls[0]["function"]["name"] for calls in out["tool_calls"]] == ["get_weather"] * 2
    out = await client.map(data, "About {city}", logprobs=True)
    assert "tool_calls" not in out.columns and all(len(lp) > 3 for lp in out["logprobs"])
    sink = await client.map(data, "About {city}", logprobs=True, sink=tmp_path / "rows.parquet")
    back = pd.read_parquet(sink)
    assert list(back["logprobs"].map(len)) == list(out["logprobs"].map(len))


def test_official_sdks_read_the_mocks_tool_calls_choices_and_logprobs(server: MockServer) -> None:
    """The mock's answers are the real protocols': the vendors' SDKs parse them into their own types."""
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0,
                       http_client=openai.DefaultHttpxClient(trust_env=False)) as sdk:
        answer = sdk.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "Lyon?"}],
                                             tools=[WEATHER], n=2, logprobs=True, top_logprobs=2, seed=4)
        assert [c.index for c in answer.choices] == [0, 1] and answer.choices[0].finish_reason == "tool_calls"
        call = answer.choices[0].message.tool_calls[0]
        assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Lyon?"
        words = sdk.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "Hi"}],
                                            logprobs=True, top_logprobs=2)
        tokens = words.choices[0].logprobs.content
        assert "".join(t.token for t in tokens) == words.choices[0].message.content
        assert all(len(t.top_logprobs) == 2 for t in tokens)
        with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding message"):
            sdk.chat.completions.create(model="gpt-4.1-mini", messages=[
                {"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "1"}])
    with anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-ant-test", max_retries=0) as claude:
        message = claude.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=[
            {"role": "user", "content": "Oslo?"}], tools=[{"name": "get_weather", "input_schema": {
                "type": "object", "properties": {"city": {"type": "string"}}}}])
        assert message.stop_reason == "tool_use" and message.content[0].type == "tool_use"
        assert message.content[0].input == {"city": "Oslo?"}
        with pytest.raises(anthropic.BadRequestError, match="seed: Extra inputs are not permitted"):
            claude.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[
                {"role": "user", "content": "x"}], extra_body={"seed": 1})


async def test_grid_detail_shows_tool_calls_and_choices(connect: Callable[..., BaseClient]) -> None:
    from seeds_nb.widgets import ResultsGrid

    client = connect("openai")
    result = await client.batch_generate(["Weather in Nice?", "Name a colour"], tools=[WEATHER], n=2)
    grid = ResultsGrid.from_result(result)
    grid.select(0)
    call = result.responses[0].tool_calls[0]  # type: ignore[union-attr]
    assert grid.detail["tool_calls"] == [["get_weather", call.id, call.raw_arguments]]
    assert "Weather in Nice?" in call.raw_arguments  # the arguments as sent (the mock puts the prompt in them)
    plain = await client.batch_generate(["Name a colour"], n=3)
    grid = ResultsGrid.from_result(plain)
    grid.select(0)
    choices = plain.responses[0].choices  # type: ignore[union-attr]
    assert grid.detail["tool_calls"] == [] and grid.detail["choices"] == [[c.index, c.content] for c in choices]
    assert len(choices) == 3
