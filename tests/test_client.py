"""OpenAIClient and the batch engine over real HTTP against the mock server."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator

import httpx
import pytest
from pydantic import BaseModel

from seeds_nb import (
    BatchResult,
    ConfigurationError,
    Message,
    MockServer,
    OpenAIClient,
    PromptError,
    Response,
    ServerError,
)
from seeds_nb.core.batch import CallbackWarning
from seeds_nb.mock import Fault, mock_completion

from _support import TEST_KEY, leftover_tasks


async def test_agenerate_returns_the_mock_answer_with_usage_and_tracking(make_client, server: MockServer) -> None:
    client = make_client()
    response = await client.agenerate([Message(role="user", content="What is Python?")])
    expected = mock_completion({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": "What is Python?"}]})
    assert response.content == expected["choices"][0]["message"]["content"]
    assert response.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert response.usage.completion_tokens == expected["usage"]["completion_tokens"]
    assert response.finish_reason == "stop" and not response.cached and response.latency_s > 0
    assert response.tracking.cost_usd is not None and response.tracking.cost_usd > 0
    assert response.tracking.gwp_kgco2eq_min < response.tracking.gwp_kgco2eq < response.tracking.gwp_kgco2eq_max
    assert response.raw["object"] == "chat.completion"
    assert server.request_count == 1


async def test_prompt_forms_are_equivalent(make_client) -> None:
    client = make_client()
    as_str = await client.agenerate("Hi there")
    as_msg = await client.agenerate([Message("user", "Hi there")])
    as_dict = await client.agenerate([{"role": "user", "content": "Hi there"}])
    assert as_str.content == as_msg.content == as_dict.content


async def test_generation_parameters_reach_the_server(make_client, server: MockServer) -> None:
    client = make_client()
    response = await client.agenerate("Tell me a story", temperature=0.2, max_tokens=5, top_p=0.9, seed=7,
                                      stop=["\n"], extra_body={"user": "u1"})
    body = server.requests[-1]["body"]
    assert body["temperature"] == 0.2 and body["max_tokens"] == 5 and body["top_p"] == 0.9
    assert body["seed"] == 7 and body["stop"] == ["\n"] and body["user"] == "u1"
    assert response.finish_reason == "length" and response.usage.completion_tokens == 5


class Summary(BaseModel):
    title: str
    key_points: list[str]
    word_count: int


async def test_pydantic_response_format_is_parsed(make_client, server: MockServer) -> None:
    client = make_client()
    response = await client.agenerate("Summarize: seeds grow.", response_format=Summary)
    assert isinstance(response.parsed, Summary)
    sent = server.requests[-1]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["additionalProperties"] is False


async def test_unknown_parameter_is_a_clear_error(make_client) -> None:
    client = make_client()
    with pytest.raises(ConfigurationError, match="unknown generation parameter.*temprature.*known:"):
        await client.agenerate("hi", temprature=0.5)


def test_missing_key_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY.*api_key="):
        OpenAIClient("gpt-4.1-mini")


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: MockServer) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    client = OpenAIClient("gpt-4.1-mini")
    assert client.base_url == server.url
    assert client.generate("hello").content
    client.close()


async def test_repr_masks_the_key(make_client) -> None:
    client = make_client()
    text = repr(client) + str(client)
    assert TEST_KEY not in text and "sk-...abcd" in text


def test_bad_role_is_a_clear_validation_error() -> None:
    with pytest.raises(ValueError, match="role must be one of system, user, assistant"):
        Message(role="robot", content="hi")


async def test_bad_prompts(make_client) -> None:
    client = make_client()
    with pytest.raises(PromptError, match="role must be one of"):
        await client.agenerate([{"role": "robot", "content": "x"}])
    with pytest.raises(PromptError, match="empty prompt"):
        await client.agenerate("   ")
    with pytest.raises(PromptError, match="a prompt must be a string or a list of Message"):
        await client.agenerate(42)
    with pytest.raises(PromptError, match="prompts must be an iterable of prompts.*got int"):
        await client.batch_generate(42)
    with pytest.raises(PromptError, match="wrap a single prompt in a list"):
        await client.batch_generate("just one prompt")
    with pytest.raises(ConfigurationError, match="max_concurrent must be an integer >= 1; got 0"):
        await client.batch_generate(["a"], max_concurrent=0)


async def test_empty_batch_gives_an_empty_result(make_client, server: MockServer) -> None:
    result = await make_client().batch_generate([])
    assert isinstance(result, BatchResult) and len(result) == 0 and result.errors == {}
    assert result.total_cost_usd == 0.0 and server.request_count == 0


async def test_a_bad_prompt_inside_a_batch_fails_only_its_index(make_client) -> None:
    result = await make_client().batch_generate(["ok 1", [{"role": "robot", "content": "x"}], "ok 2"])
    assert result.responses[0] is not None and result.responses[2] is not None
    assert result.responses[1] is None and isinstance(result.errors[1], PromptError)


def test_generate_in_a_plain_script(server: MockServer) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    assert client.generate("Count to 3").content == "1, 2, 3"
    client.close()


def test_a_client_used_from_several_asyncio_runs_leaves_no_pool_open(server: MockServer) -> None:
    """A script calling ``asyncio.run`` per request gets a pool per loop, each closed with its loop."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        contents = [asyncio.run(client.agenerate(f"Count to {n}")).content for n in (1, 2, 3)]
        assert asyncio.run(client.batch_generate(["a", "b"])).successful_count == 2
        gc.collect()  # an unclosed aiohttp session says so when it is collected
    assert contents == ["1", "1, 2", "1, 2, 3"]
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []
    client.close()


async def test_a_worker_threads_loop_gets_its_own_pool_and_the_main_one_is_kept(server: MockServer) -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main_pool = client.pipeline.pool()
        assert (await client.agenerate("Count to 1")).content == "1"
        in_thread = await asyncio.to_thread(asyncio.run, client.agenerate("Count to 2"))
        assert in_thread.content == "1, 2"
        assert client.pipeline.pool() is main_pool and not main_pool.is_closed
        await client.aclose()
        gc.collect()
    assert main_pool.is_closed
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message)] == []


async def test_generate_inside_a_running_loop(make_client) -> None:
    """As in a Jupyter cell: sync call while the kernel's loop runs; no nest_asyncio."""
    client = make_client()
    assert client.generate("Count to 2").content == "1, 2"
    assert (await client.agenerate("Count to 2")).content == "1, 2"  # the loop's own pool still works


async def test_mixed_success_and_failure_stay_aligned(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=500, match="FAIL"))
    client = make_client(max_retries=1)
    prompts = [f"FAIL {i}" if i in (3, 17, 42) else f"prompt {i}" for i in range(60)]
    result = await client.batch_generate(prompts, max_concurrent=8)
    assert sorted(result.errors) == [3, 17, 42]
    assert all(isinstance(e, ServerError) and e.status_code == 500 for e in result.errors.values())
    for i, response in enumerate(result.responses):
        if i in (3, 17, 42):
            assert response is None
        else:
            expected = mock_completion({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": prompts[i]}]})
            assert response is not None and response.content == expected["choices"][0]["message"]["content"]
    assert result.successful_count == 57 and result.failed_count == 3
    assert server.request_count == 57 + 3 * 2  # the failures were retried once


async def test_prompts_are_pulled_lazily(make_client) -> None:
    pulled = 0
    high_water = 0
    completed = 0

    def prompts() -> Iterator[str]:
        nonlocal pulled
        for i in range(100_000):
            pulled += 1
            yield f"lazy {i}"

    async for _index, _item in make_client().batch_generate_iter(prompts(), max_concurrent=4):
        completed += 1
        high_water = max(high_water, pulled - completed)
        if completed == 50:
            break
    assert pulled < 60  # a 100k generator was not materialised
    assert high_water <= 4 + 1


async def test_progress_callback_contract(make_client) -> None:
    calls: list[tuple[int, int | None, Response | None]] = []
    result = await make_client().batch_generate(["a", "b", "c"], on_progress=lambda d, t, r: calls.append((d, t, r)))
    assert [c[0] for c in calls] == [1, 2, 3] and {c[1] for c in calls} == {3}
    assert all(isinstance(c[2], Response) for c in calls)
    assert result.successful_count == 3


async def test_progress_total_is_none_for_generators_and_response_none_on_failure(make_client,
                                                                                  server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=400, match="bad"))
    calls: list[tuple[int, int | None, Response | None]] = []
    await make_client().batch_generate((p for p in ["good", "bad"]), max_concurrent=1,
                                       on_progress=lambda d, t, r: calls.append((d, t, r)))
    assert [(d, t) for d, t, _ in calls] == [(1, None), (2, None)]
    assert isinstance(calls[0][2], Response) and calls[1][2] is None


async def test_a_raising_callback_never_breaks_the_batch(make_client) -> None:
    def boom(done: int, total: int | None, response: Response | None) -> None:
        raise RuntimeError("callback bug")

    with pytest.warns(CallbackWarning, match="on_progress raised RuntimeError: callback bug"):
        result = await make_client().batch_generate([f"p{i}" for i in range(10)], on_progress=boom)
    assert result.successful_count == 10


async def test_on_result_gets_every_index_once_before_its_progress_and_may_raise(make_client,
                                                                                 server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=400, match="bad"))
    client = make_client()
    prompts = [f"bad {i}" if i % 5 == 2 else f"p{i}" for i in range(20)]
    run = client.batch(prompts, max_concurrent=4, on_progress=lambda done, total, r: progress.append(done))
    results: list[tuple[int, object]] = []
    progress: list[int] = []

    def on_result(index: int, item: object) -> None:
        assert len(progress) == len(results)  # the previous one's progress came first; this one's comes next
        results.append((index, item))
        if index == 7:
            raise RuntimeError("table bug")

    run.on_result = on_result
    with pytest.warns(CallbackWarning, match="on_result raised RuntimeError: table bug"):
        result = await run
    assert sorted(i for i, _ in results) == list(range(20)) and progress == list(range(1, 21))
    for index, item in results:
        assert item is (result.responses[index] if index % 5 != 2 else result.errors[index])


async def test_async_callbacks_are_awaited(make_client) -> None:
    seen: list[int] = []

    async def cb(done: int, total: int | None, response: Response | None) -> None:
        await asyncio.sleep(0)
        seen.append(done)

    await make_client().batch_generate(["a", "b"], on_progress=cb)
    assert seen == [1, 2]


async def test_breaking_out_of_iter_cancels_in_flight_requests() -> None:
    with MockServer(latency_s=0.3) as slow:
        client = OpenAIClient("gpt-4.1-mini", base_url=slow.url, api_key=TEST_KEY)
        before = leftover_tasks()
        stream = client.batch_generate_iter([f"q{i}" for i in range(40)], max_concurrent=5)
        async for _index, _item in stream:
            break
        await stream.aclose()  # what the loop's finaliser does; explicit here to be deterministic
        sent = slow.request_count
        assert leftover_tasks() - before == set()
        run = client.last_run
        assert run is not None and run.done and run.result.stop_reason == "cancelled"
        assert run.ledger.completed == 40  # every index accounted for (as counts: iter keeps nothing)
        assert run.ledger.succeeded + run.ledger.failed == 40 and run.ledger.cancelled >= 35
        assert len(run.result) == 0
        assert sent <= 6 + 5  # nothing new started after the break
        await client.aclose()


async def test_every_index_exactly_once_with_iter(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=404, rate=0.2))
    seen: list[int] = []
    async for index, item in make_client().batch_generate_iter([f"x{i}" for i in range(200)], max_concurrent=16):
        seen.append(index)
        assert isinstance(item, Response | Exception)
    assert sorted(seen) == list(range(200))


def test_public_surface_is_stable() -> None:
    import inspect

    import seeds_nb

    public = sorted(n for n, v in vars(seeds_nb).items() if not n.startswith("_") and not inspect.ismodule(v)
                    and n not in {"load_ipython_extension", "unload_ipython_extension", "version",
                                  "PackageNotFoundError"})
    assert sorted(set(seeds_nb.__all__) - {"load_ipython_extension", "unload_ipython_extension"}) == public


def test_core_imports_no_notebook_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, seeds_nb, seeds_nb.core; "
            "print(sorted(m for m in ('ipywidgets','plotly','IPython','pandas','traitlets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_warning_for_known_models(server: MockServer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY).generate("warning-free")


def test_closing_from_another_loop_leaves_an_idle_loops_pool_to_that_loop(server: MockServer,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A pool on an idle loop cannot be closed from inside another running loop: it stays with its
    loop and is closed when that loop shuts down, with nothing left pending or unclosed."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    idle = asyncio.new_event_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            assert idle.run_until_complete(client.agenerate("Count to 1")).content == "1"
            asyncio.run(client.aclose())
            gc.collect()
            idle.run_until_complete(idle.shutdown_asyncgens())
        finally:
            idle.close()
        gc.collect()
    assert client._closed
    assert [str(w.message) for w in caught if "Unclosed" in str(w.message) or "never awaited" in str(w.message)] == []
    assert [r.getMessage() for r in caplog.records if "destroyed" in r.getMessage()] == []


async def test_an_injected_httpx_transport_carries_every_request(server: MockServer, tmp_path) -> None:
    """``transport=`` (httpx's extension point) is used for chat requests too, not only the control plane."""
    sent: list[str] = []

    class Counting(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.url.path)
            return await super().handle_async_request(request)

    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, transport=Counting(),
                          cache_dir=str(tmp_path))
    result = await client.batch_generate([f"injected {i}" for i in range(6)], max_concurrent=3)
    assert result.successful_count == 6 and sent == ["/v1/chat/completions"] * 6 == [
        "/v1/chat/completions"] * server.request_count
    await client.aclose()
