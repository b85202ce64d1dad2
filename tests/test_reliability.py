"""Fault injection over real HTTP: retries, typed errors, cancellation, budgets, the shared rate gate."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict

import pytest

from seeds_nb import (
    AnthropicClient,
    APIStatusError,
    AuthenticationError,
    BudgetExceeded,
    Cancelled,
    ConfigurationError,
    MockServer,
    OpenAIClient,
    RateLimitError,
    RequestTimeout,
    ResponseParseError,
    ServerError,
    TransportError,
)
from seeds_nb.core.ratelimit import RateGate
from seeds_nb.core.retry import RetryPolicy, parse_duration, retry_after_from_headers
from seeds_nb.mock import Fault

from _support import TEST_KEY, leftover_tasks


def arrivals_by_prompt(server: MockServer) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for entry in server.requests:
        body = entry["body"] or {}
        out[body["messages"][-1]["content"]].append(entry["time"])
    return out


async def test_thirty_percent_429s_with_retry_after_all_succeed_and_waits_are_honoured(make_client,
                                                                                        server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=429, rate=0.3, times=1, retry_after=0.2))
    client = make_client()
    retries: list[tuple[int, Exception, float]] = []
    run = client.batch([f"rl {i}" for i in range(60)], max_concurrent=10)
    run.on_retry = lambda index, error, wait: retries.append((index, error, wait))
    result = await run
    assert result.failed_count == 0 and result.successful_count == 60
    assert {f"rl {i}" for i, _, _ in retries} == {p for p, t in arrivals_by_prompt(server).items() if len(t) > 1}
    assert all(isinstance(e, RateLimitError) and w == 0.2 for _, e, w in retries)
    retried = {p: t for p, t in arrivals_by_prompt(server).items() if len(t) > 1}
    assert 8 <= len(retried) <= 30  # about 30% of 60 met a 429 once
    assert server.request_count == 60 + len(retried)
    for times in retried.values():
        assert times[1] - times[0] >= 0.2 - 0.01  # never retried before the server said
    assert client.gate.pauses >= 1  # the 429s slowed the whole client
    assert all(r.attempts == 2 for i, r in enumerate(result.responses) if f"rl {i}" in retried)


async def test_ten_percent_500s_all_succeed(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=500, rate=0.1, times=2))
    client = make_client()
    client.retry = RetryPolicy(max_retries=4, base_delay_s=0.01, max_delay_s=0.05)
    result = await client.batch_generate([f"e {i}" for i in range(100)], max_concurrent=16)
    assert result.failed_count == 0
    assert server.request_count > 100


async def test_401_fails_fast_without_retries() -> None:
    with MockServer(api_key="sk-right-key-000000") as server:
        client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key="sk-wrong-key-1111111")
        with pytest.raises(AuthenticationError, match="401.*check OPENAI_API_KEY") as info:
            await client.agenerate("hello")
        assert info.value.status_code == 401 and "sk-wrong-key-1111111" not in str(info.value)
        assert server.request_count == 1
        await client.aclose()


async def test_quota_exhausted_429_is_not_retried(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="status", status=429, code="insufficient_quota"))
    with pytest.raises(RateLimitError, match="quota exhausted") as info:
        await make_client().agenerate("money")
    assert info.value.quota_exhausted and not info.value.retryable
    assert server.request_count == 1


async def test_slow_responses_past_the_timeout_raise_request_timeout_after_retries(make_client,
                                                                                    server: MockServer) -> None:
    server.add_fault(Fault(kind="slow", delay_s=2.0))
    client = make_client(timeout=0.2, max_retries=1)
    client.retry = RetryPolicy(max_retries=1, base_delay_s=0.01)
    with pytest.raises(RequestTimeout, match="did not answer in time.*raise timeout="):
        await client.agenerate("slow one")
    assert server.request_count == 2


async def test_dropped_connections_are_retried_then_reported(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="drop", match="flaky", times=1))
    server.add_fault(Fault(kind="drop", match="dead"))
    client = make_client()
    client.retry = RetryPolicy(max_retries=2, base_delay_s=0.01)
    result = await client.batch_generate(["flaky 1", "dead 1", "fine"], max_concurrent=3)
    assert result.responses[0] is not None and result.responses[0].attempts == 2
    assert isinstance(result.errors[1], TransportError) and not isinstance(result.errors[1], RequestTimeout)
    assert "dropped" in str(result.errors[1]) or "cannot reach" in str(result.errors[1])
    assert result.responses[2] is not None


async def test_malformed_body_is_a_parse_error_naming_the_server(make_client, server: MockServer) -> None:
    server.add_fault(Fault(kind="malformed"))
    with pytest.raises(ResponseParseError, match=f"server at {server.url}.*not a valid completion"):
        await make_client().agenerate("garbled")
    assert server.request_count == 1  # a broken body is not retried


async def test_unreachable_server_is_a_clear_transport_error() -> None:
    client = OpenAIClient("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY)
    client.retry = RetryPolicy(max_retries=1, base_delay_s=0.01)
    with pytest.raises(TransportError, match="cannot reach openai server at http://127.0.0.1:9/v1"):
        await client.agenerate("anyone?")
    await client.aclose()


async def test_permanent_500_on_3_of_100(make_client, server: MockServer) -> None:
    bad = {7, 50, 93}
    server.add_fault(Fault(kind="status", status=500, match="PERMA"))
    client = make_client()
    client.retry = RetryPolicy(max_retries=2, base_delay_s=0.01)
    prompts = [f"PERMA {i}" if i in bad else f"ok {i}" for i in range(100)]
    result = await client.batch_generate(prompts, max_concurrent=10)
    assert set(result.errors) == bad
    assert all(isinstance(e, ServerError) and e.status_code == 500 and "500 from openai" in str(e)
               for e in result.errors.values())
    assert all((r is None) == (i in bad) for i, r in enumerate(result.responses))


async def test_cancel_mid_batch_keeps_results_and_leaks_nothing() -> None:
    with MockServer(latency_s=0.05) as server:
        client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
        before = leftover_tasks()
        run = client.batch([f"c {i}" for i in range(200)], max_concurrent=4)

        def stop_at_20(done: int, total: int | None, response: object) -> None:
            if done == 20:
                run.cancel()

        run.on_progress = stop_at_20
        result = await run
        assert result.stop_reason == "cancelled"
        assert len(result) == 200 and result.successful_count + result.failed_count == 200
        assert 20 <= result.successful_count < 30
        assert all(isinstance(result.errors[i], Cancelled) for i in result.errors)
        assert leftover_tasks() - before == set()
        started = sum(1 for s in result.started_s if not math.isnan(s))  # requests begun before the cancel
        await asyncio.sleep(0.2)  # a request already on the wire may still land; nothing new is sent
        assert server.request_count <= started < 30
        await client.aclose()


async def test_task_cancellation_and_timeouts_keep_the_partial_result() -> None:
    with MockServer(latency_s=0.05) as server:
        client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
        progressed = asyncio.Event()

        def on_progress(done: int, total: int | None, response: object) -> None:
            if done == 10:
                progressed.set()

        task = asyncio.ensure_future(client.batch_generate([f"t {i}" for i in range(100)], max_concurrent=2,
                                                           on_progress=on_progress))
        await progressed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        partial = info.value.partial_result
        assert partial is client.last_run.result and partial.stop_reason == "cancelled"
        assert partial.successful_count >= 10 and partial.successful_count + partial.failed_count == 100

        with pytest.raises(TimeoutError) as timeout_info:
            async with asyncio.timeout(0.3):
                await client.batch_generate([f"u {i}" for i in range(100)], max_concurrent=2)
        partial = timeout_info.value.__cause__.partial_result
        assert partial.successful_count + partial.failed_count == 100 and partial.cancelled_count > 0
        await client.aclose()


async def test_cost_budget_stops_new_requests(make_client, server: MockServer) -> None:
    client = make_client()
    one = await client.agenerate("probe")
    budget = one.tracking.cost_usd * 10
    result = await client.batch_generate([f"b {i}" for i in range(100)], max_concurrent=2, max_cost_usd=budget)
    assert result.stop_reason == "max_cost_usd"
    stopped = [e for e in result.errors.values() if isinstance(e, BudgetExceeded)]
    assert stopped and all(e.limit == "max_cost_usd" for e in stopped)
    spent = sorted(r.tracking.cost_usd for r in result.responses if r is not None)
    assert sum(spent) >= budget  # it ran until the budget was spent ...
    assert sum(spent[:-2]) < budget  # ... and at most the other in-flight request finished after
    assert result.successful_count + result.failed_count == 100
    assert server.request_count == 1 + result.successful_count


async def test_carbon_budget(make_client) -> None:
    result = await make_client().batch_generate([f"g {i}" for i in range(50)], max_concurrent=1,
                                                max_gwp_kgco2eq=1e-9)
    assert result.stop_reason == "max_gwp_kgco2eq" and result.successful_count == 1
    assert result.budget_stopped_count == 49


async def test_the_key_never_appears_in_logs_or_errors(make_client, server: MockServer,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    server.add_fault(Fault(kind="status", status=500, match="bad"))
    caplog.set_level(logging.DEBUG)
    client = make_client(max_retries=0)
    result = await client.batch_generate(["bad", "good"])
    text = caplog.text + repr(result) + "".join(str(e) + repr(e) for e in result.errors.values())
    text += repr(client) + str(vars(client))
    assert TEST_KEY not in text


# -- pure units: header parsing, backoff, the gate (fake clock, no sleeping) -------------------------
def test_retry_after_parsing() -> None:
    assert retry_after_from_headers({"retry-after-ms": "250"}) == 0.25
    assert retry_after_from_headers({"retry-after": "3"}) == 3.0
    assert retry_after_from_headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert retry_after_from_headers({"retry-after": "soon"}) is None
    assert retry_after_from_headers({}) is None
    assert parse_duration("6m0s") == 360 and parse_duration("1.5s") == 1.5 and parse_duration("120ms") == 0.12
    assert parse_duration("1h2m3s") == 3723 and parse_duration("nonsense") is None


def test_backoff_is_full_jitter_capped_and_server_waits_are_capped() -> None:
    import random

    policy = RetryPolicy(max_retries=3, base_delay_s=0.5, max_delay_s=2.0, max_wait_s=5.0)
    error = ServerError("boom", status_code=500)
    rng = random.Random(1)
    delays = [policy.delay(error, attempt, rng) for attempt in (1, 2, 3, 4, 5) for _ in range(200)]
    assert min(delays) >= 0 and max(delays) <= 2.0
    assert max(policy.delay(error, 1, rng) for _ in range(200)) <= 0.5
    told = RateLimitError("slow down", status_code=429, retry_after=30.0)
    assert policy.delay(told, 1) == 5.0
    assert policy.should_retry(error, 3) and not policy.should_retry(error, 4)
    assert not policy.should_retry(APIStatusError("bad", status_code=400), 1)


def test_x_should_retry_header_overrides_the_status() -> None:
    policy = RetryPolicy(max_retries=2)
    assert not policy.should_retry(ServerError("boom", status_code=500, headers={"X-Should-Retry": "false"}), 1)
    assert policy.should_retry(APIStatusError("odd", status_code=400, headers={"x-should-retry": "true"}), 1)
    assert not policy.should_retry(APIStatusError("odd", status_code=400, headers={"x-should-retry": "true"}), 3)


async def test_gate_pause_holds_every_request_and_buckets_limit_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    gate = RateGate(requests_per_minute=60, clock=lambda: now[0], sleep=fake_sleep)
    gate.pause(2.0)
    assert await gate.acquire() is True  # after the pause, a probe goes first
    assert slept == [2.0]
    gate.probe_answered(remaining=500, reset_s=60.0)  # plenty of room: recovery ends
    for _ in range(4):  # the rest of the burst: 5 seconds' worth at 60/min
        await gate.acquire()
    assert slept == [2.0]
    await gate.acquire()  # one over: wait for one token (1 s at 60/min)
    assert slept[-1] == pytest.approx(1.0, abs=1e-6)


async def test_take_ready_hands_out_only_permits_that_need_no_wait() -> None:
    """What a gate serving several processes (seeds_nb.ray's gate actor) adds after one acquire: never more
    than the bucket holds now, none during a pause or a recovery phase."""
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds

    gate = RateGate(requests_per_minute=60, clock=lambda: now[0], sleep=fake_sleep)  # a burst of 5
    await gate.acquire()
    assert gate.take_ready(10) == 4 and gate.take_ready(10) == 0
    now[0] += 2.0  # two tokens refilled
    assert gate.take_ready(10) == 2
    now[0] += 3.0
    gate.pause(1.0)
    assert gate.take_ready(10) == 0
    tokens = RateGate(tokens_per_minute=600, clock=lambda: now[0], sleep=fake_sleep)  # 50 tokens of burst
    assert tokens.take_ready(10, estimated_tokens=20) == 2


def test_a_client_given_a_shared_gate_takes_no_limits_of_its_own() -> None:
    shared = RateGate(requests_per_minute=60)
    client = OpenAIClient("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY, gate=shared)
    assert client.gate is shared
    with pytest.raises(ConfigurationError, match="shared gate"):
        OpenAIClient("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY, gate=shared,
                     requests_per_minute=60)
    client.close()


def test_ledgers_of_parts_of_a_run_merge_into_its_totals() -> None:
    from seeds_nb.core.ledger import Ledger

    whole, part = Ledger(total=10, in_flight=3), Ledger(total=4, in_flight=2)
    part.completed, part.succeeded, part.cost_usd, part.gwp_kgco2eq = 4, 3, 0.25, 0.5
    whole.merge(part)
    whole.merge(part)
    assert (whole.completed, whole.succeeded, whole.cost_usd, whole.gwp_kgco2eq) == (8, 6, 0.5, 1.0)
    assert (whole.total, whole.in_flight) == (10, 3)  # the run's own figures, not summed


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_429_with_only_rate_limit_reset_headers_waits_until_the_reset(provider: str) -> None:
    """No retry-after, only "requests used up, resets in 0.3 s" (in each provider's header format):
    the error carries that wait, and the retry waits it (a whole-client pause), not a short backoff."""
    with MockServer() as server:
        def make(retries: int) -> OpenAIClient | AnthropicClient:
            if provider == "openai":
                return OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, max_retries=retries)
            return AnthropicClient("claude-haiku-4-5", base_url=server.anthropic_url, api_key=TEST_KEY,
                                   max_retries=retries)

        server.add_fault(Fault(status=429, reset_s=0.3, times=1, match="reset me"))
        once = make(0)
        with pytest.raises(RateLimitError) as info:
            await once.agenerate("reset me")
        assert "retry-after" not in {k.lower() for k in info.value.headers}
        assert info.value.retry_after is not None and 0.2 < info.value.retry_after <= 0.3
        assert RetryPolicy().delay(info.value, 1) == info.value.retry_after  # not a jittered backoff

        retrying = make(2)
        response = await retrying.agenerate("reset me too")
        arrivals = arrivals_by_prompt(server)["reset me too"]
        assert response.attempts == 2 and retrying.gate.pauses >= 1
        assert arrivals[1] - arrivals[0] >= 0.2  # the wait the headers asked for, not a 0-0.5 s jitter
        await once.aclose()
        await retrying.aclose()


@pytest.mark.parametrize(("status", "error_type"), [(400, "BadRequestError"), (403, "AuthenticationError"),
                                                     (404, "NotFoundError"), (422, "APIStatusError")])
async def test_client_errors_fail_at_once_with_a_typed_error(make_client, server: MockServer, status: int,
                                                             error_type: str) -> None:
    server.add_fault(Fault(status=status, match="refuse"))
    with pytest.raises(APIStatusError) as info:
        await make_client().agenerate("refuse this")
    assert type(info.value).__name__ == error_type and info.value.status_code == status
    assert not info.value.retryable and server.request_count == 1
    assert f"{status} from openai server at {server.url}" in str(info.value)


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503])
async def test_timeouts_conflicts_and_server_errors_are_retried(make_client, server: MockServer, status: int) -> None:
    server.add_fault(Fault(status=status, times=1, match="flaky"))
    client = make_client()
    client.retry = RetryPolicy(max_retries=2, base_delay_s=0.01)
    response = await client.agenerate("flaky once")
    assert response.attempts == 2 and [e["status"] for e in server.requests] == [status, 200]


async def test_requests_per_minute_paces_the_whole_client_over_http(server: MockServer) -> None:
    """600 requests/min = 10/s after a burst of five seconds' worth (50): 60 prompts need >= ~1 s."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, requests_per_minute=600)
    await client.warm_up()
    started = time.monotonic()
    result = await client.batch_generate([f"paced {i}" for i in range(60)], max_concurrent=32)
    elapsed = time.monotonic() - started
    assert result.successful_count == 60 and server.request_count == 60
    # A lower bound the gate enforces (the last ten waited for tokens at 10/s): a slow machine only adds to
    # it. (Spans of the server's arrival stamps shrink when a loaded server logs the first burst late.)
    assert elapsed >= 0.9
    await client.aclose()


async def test_tokens_per_minute_paces_by_estimated_tokens_over_http(server: MockServer) -> None:
    """6,000 tokens/min = 100/s (a burst of 500): a request is estimated at its JSON bytes / 4 plus
    max_tokens (~75 here), so about six fit the burst and the rest wait for tokens."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, tokens_per_minute=6000)
    await client.warm_up()
    started = time.monotonic()
    result = await client.batch_generate([f"tokens {i}" for i in range(12)], max_concurrent=12, max_tokens=50)
    assert result.successful_count == 12
    assert time.monotonic() - started >= 1.0  # enforced by the gate: a lower bound, as above
    await client.aclose()
