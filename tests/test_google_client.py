"""GoogleClient over real HTTP against the mock's Gemini dialect (generateContent and the Batch API)."""

from __future__ import annotations

import json
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from seeds_nb import (
    AuthenticationError,
    BadRequestError,
    BatchExpired,
    Cancelled,
    ConfigurationError,
    GoogleClient,
    Message,
    MockServer,
    NotFoundError,
    PromptError,
    RateLimitError,
    ServerError,
    compare_models,
)
from seeds_nb.core.retry import RetryPolicy
from seeds_nb.core.types import Usage
from seeds_nb.mock import Fault, mock_completion

from _support import TEST_KEY, BatchClock

FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.02)
MODEL = "gemini-2.5-flash"
DAY_S = 86_400.0


@pytest.fixture(autouse=True)
def _no_google_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up a developer's Gemini key or base URL."""
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def gemini(server: MockServer) -> AsyncIterator[Callable[..., GoogleClient]]:
    made: list[GoogleClient] = []

    def factory(**kwargs: object) -> GoogleClient:
        kwargs.setdefault("base_url", server.gemini_url)
        kwargs.setdefault("api_key", TEST_KEY)
        client = GoogleClient(str(kwargs.pop("model", MODEL)), **kwargs)  # type: ignore[arg-type]
        client.retry = FAST
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


def chat_answer(messages: list[dict[str, str]]) -> dict[str, object]:
    """What the mock model answers to a conversation, whatever the protocol."""
    return mock_completion({"model": "m", "messages": messages})


async def post_gemini(server: MockServer, body: object, model: str = MODEL) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(f"{server.gemini_url}/models/{model}:generateContent", json=body)


# -- chat --------------------------------------------------------------------------------------------

async def test_request_shape_answer_usage_and_tracking(gemini, server: MockServer) -> None:
    prompt = [Message("system", "Be brief."), Message("user", "What is Python?"), Message("assistant", "A language."),
              Message("user", "Say more.")]
    response = await gemini().agenerate(prompt)
    sent = server.requests[-1]
    assert sent["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert sent["body"] == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "What is Python?"}]},
                     {"role": "model", "parts": [{"text": "A language."}]},
                     {"role": "user", "parts": [{"text": "Say more."}]}]}
    chat = chat_answer([m.to_dict() for m in prompt])
    assert response.content == chat["choices"][0]["message"]["content"]  # type: ignore[index]
    assert response.usage.prompt_tokens == chat["usage"]["prompt_tokens"]  # type: ignore[index]
    assert response.usage.completion_tokens == chat["usage"]["completion_tokens"]  # type: ignore[index]
    assert response.finish_reason == "stop" and response.provider == "google" and response.model == MODEL
    assert response.request_id == response.raw["responseId"]
    # priced by genai-prices (provider "google") and estimated by EcoLogits (provider "google_genai")
    assert response.tracking.cost_usd and response.tracking.gwp_kgco2eq and response.tracking.energy_kwh
    assert not [w for w in response.tracking.warnings if "unknown" in w]  # EcoLogits' precision notes only


async def test_system_instruction_on_the_client_is_sent_and_keyed(gemini, server: MockServer, tmp_path: Path) -> None:
    plain = gemini(cache_dir=str(tmp_path))
    pirate = gemini(cache_dir=str(tmp_path), system_instruction="Talk like a pirate.")
    first = await pirate.agenerate([Message("system", "Be brief."), Message("user", "Hello")])
    assert server.requests[-1]["body"]["systemInstruction"] == {
        "parts": [{"text": "Talk like a pirate."}, {"text": "Be brief."}]}
    await pirate.agenerate("Hello", system_instruction="Talk like a robot.")  # a call's value replaces it
    assert server.requests[-1]["body"]["systemInstruction"] == {"parts": [{"text": "Talk like a robot."}]}
    # the client's instruction changes the answer, so it is part of the cache key
    again = await plain.agenerate([Message("system", "Be brief."), Message("user", "Hello")])
    assert not again.cached and again.content != first.content and server.request_count == 3
    assert (await pirate.agenerate([Message("system", "Be brief."), Message("user", "Hello")])).cached
    with pytest.raises(ConfigurationError, match="system_instruction"):
        GoogleClient(MODEL, base_url=server.gemini_url, system_instruction="  ")


async def test_generation_config_reaches_the_server(gemini, server: MockServer) -> None:
    client = gemini()
    response = await client.agenerate("Count to 9", temperature=0.1, top_p=0.9, top_k=5, max_tokens=40, seed=7,
                                      stop=", 4", presence_penalty=0.5)
    config = server.requests[-1]["body"]["generationConfig"]
    assert config == {"temperature": 0.1, "topP": 0.9, "topK": 5, "maxOutputTokens": 40, "seed": 7,
                      "stopSequences": [", 4"], "presencePenalty": 0.5}
    assert response.content == "1, 2, 3" and response.finish_reason == "stop"
    short = await client.agenerate("Tell me a story", max_output_tokens=3)
    assert server.requests[-1]["body"]["generationConfig"] == {"maxOutputTokens": 3}
    assert short.finish_reason == "length" and short.usage.completion_tokens == 3
    extra = {"generationConfig": {"candidateCount": 1}, "safetySettings": []}
    await client.agenerate("Two stops", stop_sequences=["a", "b"], extra_body=extra)
    body = server.requests[-1]["body"]
    assert body["generationConfig"] == {"stopSequences": ["a", "b"], "candidateCount": 1}
    assert body["safetySettings"] == []


async def test_max_tokens_is_an_alias_of_max_output_tokens_in_the_cache_key_too(gemini, server: MockServer,
                                                                                 tmp_path: Path) -> None:
    client = gemini(cache_dir=str(tmp_path))
    first = await client.agenerate("alias", max_tokens=20)
    second = await client.agenerate("alias", max_output_tokens=20)
    assert second.cached and second.content == first.content and server.request_count == 1
    with pytest.raises(ConfigurationError, match="max_output_tokens or its alias max_tokens"):
        await client.agenerate("both", max_tokens=5, max_output_tokens=5)
    with pytest.raises(ConfigurationError, match="stop_sequences or its alias stop"):
        await client.agenerate("both", stop="a", stop_sequences=["b"])
    with pytest.raises(ConfigurationError, match="system_instruction must be a string"):
        await client.agenerate("odd", system_instruction=["a list"])
    assert server.request_count == 1


async def test_thoughts_are_output_tokens_and_not_the_answer(gemini, server: MockServer) -> None:
    response = await gemini().agenerate("Count to 3", thinking_config={"thinkingBudget": 64})
    meta = response.raw["usageMetadata"]
    assert server.requests[-1]["body"]["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 64}}
    assert meta["thoughtsTokenCount"] > 0 and response.content == "1, 2, 3"
    assert response.usage.reasoning_tokens == meta["thoughtsTokenCount"]
    assert response.usage.completion_tokens == meta["candidatesTokenCount"] + meta["thoughtsTokenCount"]


async def test_implicit_caching_over_http_is_cheaper(gemini) -> None:
    client = gemini()
    document = {"type": "text", "text": "A long shared document. " * 200}
    first = await client.agenerate([{"role": "user", "content": [document, {"type": "text", "text": "Q1"}]}])
    second = await client.agenerate([{"role": "user", "content": [document, {"type": "text", "text": "Q2"}]}])
    assert first.usage.cached_tokens == 0 and "cachedContentTokenCount" not in first.raw["usageMetadata"]
    assert second.usage.cached_tokens == second.raw["usageMetadata"]["cachedContentTokenCount"] >= 1024
    assert second.usage.prompt_tokens == first.usage.prompt_tokens > second.usage.cached_tokens
    assert second.tracking.cost_usd < first.tracking.cost_usd  # cached input is priced at the cached rate
    short = await client.agenerate("Q3")  # below the minimum: never cached
    assert short.usage.cached_tokens == 0


def test_usage_metadata_maps_cached_and_thought_tokens_so_genai_prices_prices_them() -> None:
    from genai_prices import Usage as PriceUsage
    from genai_prices import calc_price

    client = GoogleClient(MODEL, base_url="http://127.0.0.1:9")
    body = (b'{"candidates":[{"content":{"parts":[{"text":"thinking...","thought":true},{"text":"ok"}],'
            b'"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1000,'
            b'"cachedContentTokenCount":600,"candidatesTokenCount":150,"thoughtsTokenCount":50,'
            b'"toolUsePromptTokenCount":10,"totalTokenCount":1210},"modelVersion":"models/gemini-2.5-flash",'
            b'"responseId":"abc"}')
    response = client.pipeline.codec.parse_response(body, httpx.Headers(), {})
    assert response.content == "ok" and response.model == MODEL and response.request_id == "abc"
    assert response.usage == Usage(prompt_tokens=1010, completion_tokens=200, cached_tokens=600, reasoning_tokens=50)
    expected = calc_price(PriceUsage(input_tokens=1010, cache_read_tokens=600, output_tokens=200), MODEL,
                          provider_id="google").total_price
    assert client.tracker.track(response.model, response.usage, 1.0).cost_usd == pytest.approx(float(expected))
    no_usage = client.pipeline.codec.parse_response(b'{"candidates":[]}', httpx.Headers(), {})
    assert no_usage.usage == Usage.unknown() and no_usage.finish_reason == "content_filter"


# -- structured output -----------------------------------------------------------------------------

class City(BaseModel):
    name: str
    population: int


async def test_pydantic_response_format_is_a_json_schema_and_a_cache_hit_keeps_parsed(
        gemini, server: MockServer, tmp_path: Path) -> None:
    client = gemini(cache_dir=str(tmp_path))
    response = await client.agenerate("Name a city", response_format=City)
    config = server.requests[-1]["body"]["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": City.model_json_schema()}
    assert isinstance(response.parsed, City) and City.model_validate_json(response.content) == response.parsed
    hit = await client.agenerate("Name a city", response_format=City)
    assert hit.cached and hit.parsed == response.parsed and server.request_count == 1
    free = await client.agenerate("Anything as JSON", response_format={"type": "json_object"})
    assert server.requests[-1]["body"]["generationConfig"] == {"responseMimeType": "application/json"}
    assert isinstance(free.parsed, dict)


async def test_response_schema_is_the_sdks_name_for_response_format(gemini, server: MockServer,
                                                                     tmp_path: Path) -> None:
    client = gemini(cache_dir=str(tmp_path))
    named = await client.agenerate("Name a city", response_schema=City)
    assert isinstance(named.parsed, City) and server.requests[-1]["body"]["generationConfig"] == {
        "responseMimeType": "application/json", "responseJsonSchema": City.model_json_schema()}
    assert (await client.agenerate("Name a city", response_format=City)).cached  # one request, one key
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    raw = await client.agenerate("Name a town", response_schema=schema)
    assert server.requests[-1]["body"]["generationConfig"]["responseJsonSchema"] == schema
    assert isinstance(raw.parsed, dict) and isinstance(raw.parsed["name"], str)
    defaulted = gemini(response_schema=City)  # a constructor default, as the other parameters
    assert isinstance((await defaulted.agenerate("Name a village")).parsed, City)
    with pytest.raises(ConfigurationError, match="pass response_format or its alias response_schema, not both"):
        await client.agenerate("x", response_format=City, response_schema=City)
    result = await client.batch_generate(["Name city 1", "Name city 2"], response_schema=City)
    assert all(isinstance(r.parsed, City) for r in result.responses if r) and result.successful_count == 2


async def test_bad_prompts_and_parameters_are_clear(gemini, server: MockServer) -> None:
    client = gemini()
    with pytest.raises(ConfigurationError, match="pydantic model class"):
        await client.agenerate("x", response_format={"type": "text"})
    with pytest.raises(ConfigurationError, match="unknown generation parameter.*logit_bias"):
        await client.agenerate("x", logit_bias={})
    with pytest.raises(PromptError, match="follows no assistant message that made that call"):
        await client.agenerate([Message("user", "x"), Message("tool", "result", tool_call_id="call_1")])
    with pytest.raises(PromptError, match="at least one user message"):
        await client.agenerate([Message("system", "only a system instruction")])
    with pytest.raises(PromptError, match="'audio_url'"):
        await client.agenerate([{"role": "user", "content": [{"type": "audio_url", "audio_url": "x"}]}])
    assert server.request_count == 0
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    await client.agenerate([{"role": "user", "content": [{"type": "text", "text": "Describe"}, image, remote]}])
    assert server.requests[-1]["body"]["contents"][0]["parts"] == [
        {"text": "Describe"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg", "mimeType": "image/jpeg"}}]


# -- errors ----------------------------------------------------------------------------------------

async def test_400_invalid_argument_is_a_bad_request_not_retried(gemini, server: MockServer) -> None:
    server.add_fault(Fault(status=400, match="malformed"))
    with pytest.raises(BadRequestError, match="400") as info:
        await gemini().agenerate("malformed request")
    assert info.value.code == "INVALID_ARGUMENT" and server.request_count == 1
    # the mock refuses what the real API refuses: a field it does not know
    with pytest.raises(BadRequestError, match='Unknown name "bogus"'):
        await gemini().agenerate("typo", extra_body={"bogus": 1})
    raw = await post_gemini(server, {"contents": []})
    assert raw.status_code == 400 and raw.json()["error"]["status"] == "INVALID_ARGUMENT"


async def test_wrong_key_is_an_authentication_error_that_never_shows_the_key() -> None:
    with MockServer(api_key="right-key-0000000000") as server:
        client = GoogleClient(MODEL, base_url=server.gemini_url, api_key=TEST_KEY)
        with pytest.raises(AuthenticationError, match="API key not valid.*GEMINI_API_KEY") as info:
            await client.agenerate("hello")
        assert info.value.status_code == 400 and server.request_count == 1  # Google says it with a 400
        shown = "".join(traceback.TracebackException.from_exception(info.value, capture_locals=True).format())
        assert TEST_KEY not in shown and TEST_KEY not in repr(client) and TEST_KEY not in str(info.value.headers)
        ok = GoogleClient(MODEL, base_url=server.gemini_url, api_key="right-key-0000000000")
        assert (await ok.agenerate("hello")).content  # the key travels in x-goog-api-key
        server.add_fault(Fault(status=403, match="forbidden"))
        server.add_fault(Fault(status=401, match="unauthenticated"))
        with pytest.raises(AuthenticationError, match="403"):
            await ok.agenerate("forbidden")
        with pytest.raises(AuthenticationError, match="401") as info:
            await ok.agenerate("unauthenticated")
        assert info.value.code == "UNAUTHENTICATED" and server.request_count == 4  # none retried
        await client.aclose()
        await ok.aclose()


async def test_404_is_not_found_naming_the_model(gemini, server: MockServer) -> None:
    server.add_fault(Fault(status=404))
    with pytest.raises(NotFoundError, match="model='gemini-9'") as info:
        await gemini(model="gemini-9").agenerate("who?")
    assert info.value.code == "NOT_FOUND" and server.request_count == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried(gemini, server: MockServer, status: int) -> None:
    server.add_fault(Fault(status=status, times=2))
    response = await gemini().agenerate("busy?")
    assert response.attempts == 3 and [e["status"] for e in server.requests] == [status, status, 200]
    server.add_fault(Fault(status=status, match="always"))
    with pytest.raises(ServerError) as info:
        await gemini().agenerate("always down")
    assert info.value.status_code == status and info.value.code in ("INTERNAL", "UNAVAILABLE")


async def test_429_retry_info_is_the_wait_and_pauses_the_whole_client(gemini, server: MockServer) -> None:
    server.add_fault(Fault(status=429, times=1, retry_after=0.05))
    client = gemini()
    pipeline = client.pipeline
    waits: list[tuple[int, float]] = []
    prepared = pipeline.prepare("limited", {})
    response = await pipeline.send(prepared, {}, on_retry=lambda step, exc, wait: waits.append((step, wait)))
    assert [e["status"] for e in server.requests] == [429, 200] and response.attempts == 2
    assert waits == [(+1, 0.05), (-1, 0.0)]  # the RetryInfo delay, not a jittered backoff
    assert client.gate.pauses >= 1
    error = pipeline.codec.error_for_status(
        429, b'{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":['
             b'{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"}]}}', {}, "u")
    assert isinstance(error, RateLimitError) and error.retry_after == 12.0 and error.retryable


async def test_a_spent_daily_quota_is_not_retried(gemini, server: MockServer) -> None:
    server.add_fault(Fault(status=429, code="GenerateRequestsPerDayPerProjectPerModel-FreeTier", retry_after=30))
    with pytest.raises(RateLimitError, match="daily quota") as info:
        await gemini().agenerate("one too many")
    assert info.value.quota_exhausted and not info.value.retryable and server.request_count == 1


async def test_the_mock_rate_limit_speaks_google(server: MockServer) -> None:
    with MockServer(rpm_limit=1) as limited:
        first = await post_gemini(limited, {"contents": [{"parts": [{"text": "one"}]}]})
        second = await post_gemini(limited, {"contents": [{"parts": [{"text": "two"}]}]})
    assert first.status_code == 200 and second.status_code == 429
    error = second.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert any(d["@type"].endswith("RetryInfo") and d["retryDelay"].endswith("s") for d in error["details"])


def test_environment_keys_base_url_and_missing_key(monkeypatch: pytest.MonkeyPatch, server: MockServer) -> None:
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY.*gemini_url"):
        GoogleClient(MODEL)
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key-0000000000")
    client = GoogleClient(f"models/{MODEL}")
    assert client.base_url == "https://generativelanguage.googleapis.com/v1beta" and client.model == MODEL
    assert client.api_key_hint == "gem...0000"
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key-1111111111")  # as the google-genai SDK: it wins
    assert GoogleClient(MODEL).api_key_hint == "goo...1111"
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.gemini_url + "/")
    local = GoogleClient(MODEL)
    assert local.base_url == server.gemini_url and "google-key-1111111111" not in repr(local)
    assert local.generate("from the environment").content


# -- the guide's API, from the base client ---------------------------------------------------------

async def test_batch_generate_iter_map_and_sync_forms(gemini, server: MockServer) -> None:
    client = gemini()
    prompts = [f"Question {i}" for i in range(6)]
    result = await client.batch_generate(prompts, max_concurrent=3, max_tokens=30)
    assert result.successful_count == 6 and result.total_cost_usd > 0 and result.total_gwp_kgco2eq > 0
    assert result.provider == "google" and result.contents[2] == (await client.agenerate("Question 2",
                                                                                          max_tokens=30)).content
    seen = {}
    async with client.batch_generate_iter(prompts[:3], max_tokens=30) as stream:
        async for index, item in stream:
            seen[index] = item.content
    assert seen == dict(enumerate(result.contents[:3]))
    rows = await client.map([{"city": "Paris"}, {"city": "Lyon"}], "Describe {city}", response_format=City)
    assert [type(r["population"]) for r in rows] == [int, int] and all(r["status"] == "ok" for r in rows)
    assert client.batch_generate_sync(prompts[:2]).successful_count == 2


async def test_compare_models_with_gemini(gemini, make_client) -> None:
    results = await compare_models(["a", "b", "c"], {"gpt": make_client(), "gemini": gemini()}, max_tokens=20)
    assert results["gemini"].successful_count == 3 and results["gemini"].provider == "google"
    assert results["gemini"].contents == results["gpt"].contents  # the mock model answers alike


# -- the Batch API ---------------------------------------------------------------------------------


@pytest.fixture
def clock() -> BatchClock:
    return BatchClock()


@pytest.fixture
def batch_server(clock: BatchClock) -> Iterator[MockServer]:
    with MockServer(batch_duration_s=DAY_S, clock=clock) as srv:
        yield srv


@pytest.fixture
async def batch_client(batch_server: MockServer, tmp_path: Path) -> AsyncIterator[GoogleClient]:
    client = GoogleClient(MODEL, base_url=batch_server.gemini_url, api_key=TEST_KEY, cache_dir=str(tmp_path))
    yield client
    await client.aclose()


async def test_batch_job_round_trip_aligned_priced_and_cached(batch_client: GoogleClient, batch_server: MockServer,
                                                              clock: BatchClock) -> None:
    batch_server.add_fault(Fault(status=400, match="bad"))
    prompts = [f"Question {i}" for i in range(7)] + ["a bad one", "Count to 4"]
    job = await batch_client.submit_batch(prompts, max_requests_per_batch=5, response_format=None)
    assert len(job.batches) == 2 and job.batches[0].id.startswith("batches/")
    assert job.status == "validating" and job.raw_status == "BATCH_STATE_PENDING"
    sent = batch_server.batches
    assert [b["provider"] for b in sent] == ["gemini", "gemini"] and [b["requests"] for b in sent] == [5, 4]
    clock.now += DAY_S / 2
    await job.refresh()
    assert job.status == "in_progress" and job.raw_status == "BATCH_STATE_RUNNING"
    clock.now += DAY_S
    await job.wait(poll_interval=0.01)
    assert job.status == "completed" and job.counts.succeeded == 8 and job.counts.failed == 1
    result = await job.results()
    assert result.successful_count == 8 and isinstance(result.errors[7], BadRequestError)
    assert result.errors[7].provider == "google" and result.errors[7].status_code == 400
    assert result.responses[8].content == "1, 2, 3, 4"
    sync = [chat_answer([{"role": "user", "content": p}])["choices"][0]["message"]["content"]  # type: ignore[index]
            for p in prompts[:7]]
    assert result.contents[:7] == sync  # aligned with the prompts
    assert batch_server.request_count == 0  # the Batch API only, no chat request
    full = batch_client.tracker.track(MODEL, result.responses[0].usage, 1.0).cost_usd
    assert result.responses[0].tracking.cost_usd == pytest.approx(full / 2)  # the batch rate
    assert result.total_gwp_kgco2eq > 0
    # the answers went to the cache: a chat request for one of them is a hit
    hit = await batch_client.agenerate("Question 3")
    assert hit.cached and hit.content == sync[3] and batch_server.request_count == 0
    # a new client finds the job again by its Gemini batch name
    again = batch_client.load_batch(job.batches[1].id)
    assert again.id == job.id and (await again.results()).contents == result.contents


async def test_batch_job_from_a_jsonl_file(batch_server: MockServer, clock: BatchClock, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """batch_input="file": the requests go up as a JSONL file (Files API, one multipart request), the batch
    reads it, and its results come back as a file of keyed lines, aligned like inline results."""
    batch_server.add_fault(Fault(status=400, match="bad"))
    prompts = [f"Question {i}" for i in range(5)] + ["a bad one", "Count to 4"]
    async with GoogleClient(MODEL, base_url=batch_server.gemini_url, api_key=TEST_KEY, cache_dir=str(tmp_path),
                            batch_input="file") as client:
        job = await client.submit_batch(prompts, response_format=None)
        async with httpx.AsyncClient(headers={"x-goog-api-key": TEST_KEY}) as http:
            operation = (await http.get(f"{batch_server.gemini_url}/{job.batches[0].id}")).json()
            file_name = operation["metadata"]["inputConfig"]["fileName"]
            uploaded = (await http.get(f"{batch_server.gemini_url}/{file_name}")).json()
            assert uploaded["mimeType"] == "application/jsonl" and uploaded["displayName"].startswith(job.id)
            raw = (await http.get(batch_server.gemini_url.replace("/v1beta", "/download/v1beta")
                                  + f"/{file_name}:download", params={"alt": "media"})).content
        lines = [json.loads(line) for line in raw.splitlines()]
        assert [line["key"] for line in lines] == [f"req-{i}" for i in range(7)]
        assert lines[6]["request"]["contents"][0]["parts"] == [{"text": "Count to 4"}]
        clock.now += 2 * DAY_S
        await job.wait(poll_interval=0.01)
        result = await job.results()
        assert result.successful_count == 6 and isinstance(result.errors[5], BadRequestError)
        assert result.responses[6].content == "1, 2, 3, 4"
        sync = [chat_answer([{"role": "user", "content": p}])["choices"][0]["message"]["content"]  # type: ignore[index]
                for p in prompts[:5]]
        assert result.contents[:5] == sync and batch_server.request_count == 0
        full = client.tracker.track(MODEL, result.responses[0].usage, 1.0).cost_usd
        assert result.responses[0].tracking.cost_usd == pytest.approx(full / 2)  # the batch rate
        assert (await client.agenerate("Question 2")).cached  # the answers went to the cache
    # "auto" sends what fits in the inline limit inline, the rest as a file; "inline" never uploads
    monkeypatch.setattr("seeds_nb.providers._google_batch.INLINE_MAX_BYTES", 1_000)
    async with GoogleClient(MODEL, base_url=batch_server.gemini_url, api_key=TEST_KEY) as auto:
        small = await auto.submit_batch(["one prompt"])
        big = await auto.submit_batch([f"Prompt number {i} with some words" for i in range(40)])
        async with httpx.AsyncClient(headers={"x-goog-api-key": TEST_KEY}) as http:
            def config(job_name: str) -> Any:
                return http.get(f"{batch_server.gemini_url}/{job_name}")
            assert "inputConfig" not in (await config(small.batches[0].id)).json()["metadata"]
            assert "fileName" in (await config(big.batches[0].id)).json()["metadata"]["inputConfig"]
        clock.now += 2 * DAY_S
        await big.wait(poll_interval=0.01)
        assert (await big.results()).successful_count == 40
    with pytest.raises(ConfigurationError, match="batch_input must be one of auto, inline, file"):
        GoogleClient(MODEL, base_url=batch_server.gemini_url, batch_input="upload")


async def test_a_full_control_url_must_be_on_the_base_urls_host(batch_server: MockServer) -> None:
    """Uploads and downloads go beside the API's path, on its host; the key goes to no other host."""
    async with GoogleClient(MODEL, base_url=batch_server.gemini_url, api_key=TEST_KEY) as client:
        root = batch_server.gemini_url.removesuffix("/v1beta")
        listed = await client.pipeline.control("GET", f"{root}/v1beta/batches")
        assert listed.status_code == 200
        for elsewhere in ("http://example.org/v1beta/batches", root.replace("127.0.0.1", "localhost") + "/x",
                          f"https://{root.removeprefix('http://')}/x"):
            with pytest.raises(ConfigurationError, match="is not on the server of base_url"):
                await client.pipeline.control("GET", elsewhere)


async def test_batch_cancel_and_expiry(batch_client: GoogleClient, batch_server: MockServer, clock: BatchClock) -> None:
    job = await batch_client.submit_batch([f"Cancel me {i}" for i in range(30)])
    clock.now += DAY_S / 2
    await job.cancel()
    clock.now += DAY_S / 10
    await job.refresh()
    assert job.status == "cancelled" and job.raw_status == "BATCH_STATE_CANCELLED"
    result = await job.results()
    cancelled = [i for i, e in result.errors.items() if isinstance(e, Cancelled)]
    assert 0 < result.successful_count < 30 and len(cancelled) == 30 - result.successful_count
    batch_server.add_fault(Fault(kind="expire", match="slow"))
    late = await batch_client.submit_batch(["too slow", "also slow"])
    clock.now += 2 * DAY_S
    await late.refresh()
    assert late.status == "expired" and late.raw_status == "BATCH_STATE_EXPIRED"
    expired = await late.results()
    assert all(isinstance(e, BatchExpired) for e in expired.errors.values()) and expired.failed_count == 2
