"""A client's lifetime tracking (``client.tracking``, alias ``cumulative_tracking``): the sum of its runs' ledgers.

Every figure is checked against the ledgers of the runs that produced it (real batches on the mock over
real HTTP, a real cache directory, real threads), never against numbers written into the test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from seeds_nb import Ledger, MockServer, OpenAIClient, Response
from seeds_nb.mock import Fault

from _support import TEST_KEY, BatchClock

DAY_S = 86_400.0


def assert_same(lifetime: Ledger, expected: Ledger) -> None:
    """Field by field: counts exactly, sums to float precision (they were added in another order)."""
    for f in fields(Ledger):
        if f.name in ("total", "started"):
            continue
        got, want = getattr(lifetime, f.name), getattr(expected, f.name)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-18), f.name


def summed(*ledgers: Ledger) -> Ledger:
    total = Ledger()
    for ledger in ledgers:
        total.merge(ledger)
    return total


def singles(*items: Response | BaseException) -> Ledger:
    ledger = Ledger()
    for item in items:
        ledger.add(item)
    return ledger


async def test_lifetime_totals_over_batches_map_and_single_calls_equal_the_sum_of_their_ledgers(
        make_client, server: MockServer, tmp_path: Path) -> None:
    server.add_fault(Fault(kind="status", status=400, match="broken"))
    client = make_client(cache_dir=str(tmp_path / "cache"))
    first = await client.batch_generate([f"Question {i}" for i in range(6)] + ["broken 1"])
    second = await client.batch_generate([f"Question {i}" for i in range(10)])  # 6 from the cache
    await client.map([{"q": "Question 1"}, {"q": "Question 42"}], "{q}")
    mapped = client.last_run.result
    one = await client.agenerate("Question 2")  # cached
    two = await client.agenerate("A single fresh one")
    with pytest.raises(Exception) as failed:
        await client.agenerate("broken 2")
    assert first.failed_count == 1 and second.cached_count == 6 and mapped.cached_count == 1 and one.cached

    expected = summed(first.ledger, second.ledger, mapped.ledger, singles(one, two, failed.value))
    tracking = client.tracking
    assert_same(tracking.snapshot(), expected)
    assert tracking.api_request_count == expected.succeeded - expected.cached == 6 + 4 + 1 + 1
    assert tracking.cached_request_count == expected.cached == 6 + 1 + 1
    assert tracking.total_request_count == expected.succeeded and tracking.error_count == 2
    assert tracking.cache_hit_rate == pytest.approx(expected.cached / expected.succeeded)
    assert tracking.api_cost_usd == pytest.approx(first.total_cost_usd + second.total_cost_usd
                                                  + mapped.total_cost_usd + two.tracking.cost_usd)
    assert tracking.avoided_gwp_kgco2eq == pytest.approx(second.avoided_gwp_kgco2eq + mapped.avoided_gwp_kgco2eq
                                                         + one.tracking.gwp_kgco2eq)
    # the API/cached split of tokens: the cached answers' tokens are the ledgers' cached part
    assert tracking.api_prompt_tokens + tracking.cached_prompt_tokens == expected.prompt_tokens
    assert tracking.cached_completion_tokens == sum(
        r.usage.completion_tokens for run in (second, mapped) for r in run.responses if r is not None and r.cached
    ) + one.usage.completion_tokens
    assert client.cumulative_tracking is tracking and client.get_cumulative_tracking() is tracking


async def test_a_second_run_all_from_the_cache_spends_nothing_and_avoids_what_the_first_spent(
        make_client, tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path / "cache"))
    prompts = [f"Summarise item {i}" for i in range(8)]
    first = await client.batch_generate(prompts)
    client.tracking.reset()
    second = await client.batch_generate(prompts)
    tracking = client.tracking
    assert second.cached_count == 8 and second.total_cost_usd == 0.0
    assert tracking.api_request_count == 0 and tracking.cached_request_count == 8 and tracking.cache_hit_rate == 1.0
    assert tracking.api_cost_usd == 0.0 and tracking.api_energy_kwh == 0.0 and tracking.api_gwp_kgco2eq == 0.0
    # a hit is priced as the request it replaces (same usage, same latency): what the first run spent
    assert tracking.avoided_cost_usd == pytest.approx(first.total_cost_usd) and first.total_cost_usd > 0
    assert tracking.avoided_energy_kwh == pytest.approx(first.total_energy_kwh)
    assert tracking.emissions_avoided_kgco2eq == pytest.approx(first.total_gwp_kgco2eq) and first.total_gwp_kgco2eq > 0
    assert tracking.api_prompt_tokens == 0 and tracking.cached_prompt_tokens == first.total_prompt_tokens


async def test_reset_starts_from_zero_even_in_the_middle_of_a_run(make_client) -> None:
    client = make_client()
    await client.batch_generate(["before 1", "before 2"])
    assert client.tracking.total_request_count == 2
    client.reset_cumulative_tracking()
    assert_same(client.tracking.snapshot(), Ledger())
    seen = 0
    before = Ledger()
    async with client.batch_generate_iter([f"during {i}" for i in range(10)], max_concurrent=2) as stream:
        async for _index, _item in stream:
            seen += 1
            run = client.last_run
            assert run is not None
            # live: the run is counted as it goes, before it ends (less what a reset forgot)
            assert client.tracking.total_request_count == run.ledger.succeeded - before.succeeded
            if seen == 4:
                before = run.ledger.snapshot()
                client.tracking.reset()  # the 4 already counted are forgotten, the 6 to come are not
    assert_same(client.tracking.snapshot(), _less(run.ledger, before))
    assert client.tracking.total_request_count == 6 and run.ledger.succeeded == 10


def _less(ledger: Ledger, baseline: Ledger) -> Ledger:
    out = ledger.snapshot()
    out.merge(baseline, -1)
    return out


def test_runs_on_several_threads_add_up(server: MockServer, tmp_path: Path) -> None:
    """Batches on the sync API's thread runner from four threads at once, and single calls in between."""
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, cache_dir=str(tmp_path / "c"))
    results: list[object] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for round_ in range(3):
                results.append(client.batch_generate_sync([f"w{worker} r{round_} p{i}" for i in range(12)]
                                                          + [f"shared {i}" for i in range(4)], max_concurrent=4))
                results.append(client.generate(f"single w{worker} r{round_}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert errors == []
    ledgers = [r.ledger for r in results if not isinstance(r, Response)]  # type: ignore[attr-defined]
    answers = [r for r in results if isinstance(r, Response)]
    expected = summed(*ledgers, singles(*answers))
    assert len(ledgers) == 12 and expected.succeeded == 12 * 16 + 12
    assert_same(client.tracking.snapshot(), expected)
    # the shared prompts were answered once from the API and then from the cache (races aside, never lost)
    assert client.tracking.api_request_count + client.tracking.cached_request_count == 12 * 16 + 12


@pytest.fixture
def batch_server() -> Iterator[tuple[MockServer, BatchClock]]:
    clock = BatchClock()
    with MockServer(batch_duration_s=DAY_S, clock=clock) as srv:
        yield srv, clock


async def test_batch_api_results_count_once_when_first_read(batch_server: tuple[MockServer, BatchClock],
                                                            tmp_path: Path) -> None:
    server, clock = batch_server
    client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY, cache_dir=str(tmp_path / "c"))
    try:
        single = await client.agenerate("Batch 0")  # answered now: the job takes it from the cache
        job = await client.submit_batch([f"Batch {i}" for i in range(5)])
        clock.advance(2 * DAY_S)
        await job.wait(poll_interval=0.01)
        result = await job.results()
        await job.results()  # read again: the same result, not counted twice
        assert result.successful_count == 5 and result.cached_count == 1
        tracking = client.tracking
        assert tracking.api_request_count == 1 + 4 and tracking.cached_request_count == 1
        assert_same(tracking.snapshot(), summed(result.ledger, singles(single)))
        assert result.total_cost_usd > 0 and tracking.api_cost_usd > result.total_cost_usd
    finally:
        await client.aclose()
