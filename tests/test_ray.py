"""seeds_nb.ray on a real local Ray (2 CPUs, no dashboard, a small object store) over real HTTP: the mock
server runs in this (the driver's) process and the actors reach it by its URL. The key reaches the workers
only through Ray's runtime_env, and the server refuses requests without it."""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import pyarrow.parquet as pq  # noqa: E402

import seeds_nb.ray as sray  # noqa: E402
from seeds_nb import ConfigurationError, MockServer, OpenAIClient  # noqa: E402
from seeds_nb.mock import Fault  # noqa: E402

from _support import TEST_KEY  # noqa: E402

pytestmark = [pytest.mark.timeout(240), pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20, log_to_driver=False,
             configure_logging=False, runtime_env={"env_vars": {"OPENAI_API_KEY": TEST_KEY}})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture
def guarded() -> Iterator[MockServer]:
    """A server that answers only requests carrying the key (which the workers read from their env)."""
    with MockServer(api_key=TEST_KEY) as srv:
        yield srv


def rows(n: int) -> list[dict[str, object]]:
    return [{"id": i, "text": f"row {i}"} for i in range(n)]


def spec(server: MockServer, **kwargs: object) -> sray.ClientSpec:
    return sray.ClientSpec(OpenAIClient, model="gpt-4.1-mini", base_url=server.url, **kwargs)


# -- 2,000 rows through two actors, in order, with the panel on the driver -------------------------------------
async def test_two_thousand_rows_through_two_actors_in_order_with_cost_and_carbon(guarded: MockServer) -> None:
    ds = ray.data.from_items(rows(2000), override_num_blocks=8)
    started: list[sray.RayMap] = []
    result = await sray.run(ds, "Summarise {text}", client=spec(guarded), concurrency=2, max_concurrent=16,
                            total=2000, on_start=started.append)
    out = result.dataset.take_all()
    assert [r["id"] for r in out] == list(range(2000))
    assert all(r["status"] == "ok" and r["response"] for r in out)
    assert all(r["cost_usd"] > 0 and r["gwp_kgco2eq"] > 0 for r in out)
    assert guarded.request_count == 2000
    # Both actors worked, and the totals on the driver are the sum of the rows.
    assert len(ray.get(started[0].progress.worker_handles.remote())) == 2
    ledger = result.ledger
    assert (ledger.completed, ledger.succeeded, ledger.failed) == (2000, 2000, 0)
    assert ledger.cost_usd == pytest.approx(sum(r["cost_usd"] for r in out))
    assert ledger.gwp_kgco2eq == pytest.approx(sum(r["gwp_kgco2eq"] for r in out))
    assert result.stop_reason is None
    panel = started[0].panel  # the driver's panel, fed by the progress actor, drew the final counts
    assert repr(panel).startswith("BatchProgress: 2000/2000 done · 2000 ok (0 cached) · 0 failed")
    assert panel.state == "success"


def test_a_client_spec_carries_no_key_and_a_client_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        sray.ClientSpec(OpenAIClient, model="gpt-4.1-mini", api_key=TEST_KEY)
    good = sray.ClientSpec(OpenAIClient, model="gpt-4.1-mini", base_url="http://127.0.0.1:9/v1")
    assert TEST_KEY.encode() not in pickle.dumps(good)
    client = OpenAIClient("gpt-4.1-mini", base_url="http://127.0.0.1:9/v1", api_key=TEST_KEY)
    with pytest.raises(ConfigurationError, match="ClientSpec"):
        sray.map(ray.data.from_items(rows(2)), "{text}", client=client)
    client.close()
    with pytest.raises(ConfigurationError, match=r"\{missing\}"):
        sray.map(ray.data.from_items(rows(2)), "{missing}", client=good)


# -- the rate limit holds for the whole run, counted at the server ---------------------------------------------
def test_requests_per_minute_holds_across_both_actors_at_the_server(guarded: MockServer) -> None:
    """1,200/min = 20/s with a bucket of five seconds' worth (100). Over any span T from the first request the
    server may see at most 100 + 20 T; two actors each with their own 1,200/min would send ~200 at once."""
    ds = ray.data.from_items(rows(240), override_num_blocks=4)
    out = sray.map(ds, "Paced {text}", client=spec(guarded, requests_per_minute=1200), concurrency=2,
                   max_concurrent=16, batch_size=60).take_all()
    assert len(out) == 240 and all(r["status"] == "ok" for r in out)
    times = sorted(entry["time"] for entry in guarded.requests)
    assert len(times) == 240
    first = times[0]
    for count, stamp in enumerate(times, start=1):
        assert count <= 100 + 20 * (stamp - first) + 1, f"{count} requests within {stamp - first:.2f} s"


def test_a_429_pauses_every_worker_through_the_gate_actor(guarded: MockServer) -> None:
    """One request meets a 429 asking for 1 s: while it waits, no actor sends anything."""
    guarded.add_fault(Fault(status=429, retry_after=1, times=1, match="row 40"))
    ds = ray.data.from_items(rows(200), override_num_blocks=4)
    out = sray.map(ds, "{text}", client=spec(guarded), concurrency=2, max_concurrent=4, batch_size=50).take_all()
    assert all(r["status"] == "ok" for r in out)
    log = guarded.requests
    refused = next(e for e in log if e["status"] == 429)
    during = [e for e in log if refused["time"] + 0.05 < e["time"] < refused["time"] + 0.9]
    assert during == []
    assert sum(1 for e in log if e["time"] > refused["time"]) > 50  # both actors went on after it


# -- budgets stop the whole run ----------------------------------------------------------------------------------
async def test_a_budget_stops_the_whole_run(guarded: MockServer) -> None:
    probe = OpenAIClient("gpt-4.1-mini", base_url=guarded.url, api_key=TEST_KEY)
    one = (await probe.agenerate("Summarise row 0")).tracking.cost_usd
    await probe.aclose()
    guarded.reset()
    assert one
    ds = ray.data.from_items(rows(1000), override_num_blocks=8)
    result = await sray.run(ds, "Summarise {text}", client=spec(guarded), concurrency=2, max_concurrent=4,
                            batch_size=50, max_cost_usd=30 * one, progress=False)
    out = result.dataset.take_all()
    statuses = [r["status"] for r in out]
    assert len(out) == 1000 and set(statuses) == {"ok", "budget"}
    sent = guarded.request_count
    assert statuses.count("ok") == sent < 1000
    # Stopped once the budget was spent, and soon after: past it went at most what was in flight or held as
    # permits on each actor (4 + 4 each) when the spending reached the gate actor.
    costs = [r["cost_usd"] for r in out if r["status"] == "ok"]
    assert sum(costs) >= 30 * one
    assert sum(costs) - 30 * one <= 2 * (4 + 4) * max(costs)
    assert result.stop_reason == "max_cost_usd"
    assert result.ledger.budget_stopped == 1000 - sent and result.ledger.completed == 1000


# -- the sink: a killed actor loses nothing and writes nothing twice; a re-run sends only what is missing ------
def sink_rows(path: Path) -> list[dict[str, object]]:
    return pq.read_table(path).to_pylist()


async def test_a_killed_actor_loses_no_row_and_writes_none_twice(tmp_path: Path) -> None:
    sink = tmp_path / "out"
    jobs: list[sray.RayMap] = []
    killed = threading.Event()
    with MockServer(api_key=TEST_KEY, latency_s=0.02) as srv:
        def kill_one_when_rows_are_done() -> None:
            job = jobs[0]
            while ray.get(job.progress.batch_count.remote()) < 2:
                threading.Event().wait(0.05)
            victim = ray.get(job.progress.worker_handles.remote())[0]
            ray.kill(victim, no_restart=False)  # Ray restarts it and runs its batch again
            killed.set()

        watcher = threading.Thread(target=kill_one_when_rows_are_done, daemon=True)
        ds = ray.data.from_items(rows(800), override_num_blocks=8)
        result = await sray.run(ds, "{text}", client=spec(srv, cache_dir=str(tmp_path / "cache")), concurrency=2,
                                max_concurrent=8, batch_size=50, sink=sink, progress=False,
                                on_start=lambda job: (jobs.append(job), watcher.start()))
        watcher.join(10)
    assert killed.is_set()
    written = sink_rows(sink)
    assert sorted(r["id"] for r in written) == list(range(800))  # every row once
    assert all(r["status"] in ("ok", "cached") for r in written)
    assert result.ledger.completed == 800


async def test_a_re_run_sends_only_the_rows_the_sink_is_missing_and_the_cache_is_the_local_clients(
        tmp_path: Path, guarded: MockServer) -> None:
    sink, cache = tmp_path / "out", str(tmp_path / "cache")
    # A local client.map fills the cache; the Ray map's actors read the same entries (same key, same files).
    local = OpenAIClient("gpt-4.1-mini", base_url=guarded.url, api_key=TEST_KEY, cache_dir=cache)
    await local.map(rows(50), "{text}")
    await local.aclose()
    guarded.reset()
    client = spec(guarded, max_retries=0, cache_dir=cache)
    guarded.add_fault(Fault(status=500, match="row 1"))  # rows 100-199 fail (1 and 10-19 are in the cache)
    ds = ray.data.from_items(rows(400), override_num_blocks=4)
    first = await asyncio.to_thread(lambda: sray.map(ds, "{text}", client=client, sink=sink, concurrency=1,
                                                     batch_size=50).take_all())
    assert guarded.request_count == 350
    assert sorted(r["id"] for r in first if r["cached"]) == list(range(50))
    assert sorted(r["id"] for r in first if r["status"] == "failed") == list(range(100, 200))
    guarded.clear_faults()
    guarded.reset()
    again = await sray.run(ray.data.from_items(rows(400), override_num_blocks=4), "{text}", client=client,
                           sink=sink, concurrency=1, batch_size=50, progress=False)
    assert guarded.request_count == 100  # only the failed rows were sent again
    assert sorted(entry["body"]["messages"][0]["content"] for entry in guarded.requests) == sorted(
        f"row {i}" for i in range(100, 200))
    written = again.dataset.take_all()  # one row per input row: the failed ones replaced
    assert sorted(r["id"] for r in written) == list(range(400))
    assert all(r["status"] in ("ok", "cached") for r in written)


# -- the panel on the driver ---------------------------------------------------------------------------------------
async def test_cancel_on_the_driver_panel_stops_the_whole_run() -> None:
    from seeds_nb.widgets import BatchProgress

    slow = MockServer(api_key=TEST_KEY, latency_s=0.05).start()
    try:
        cancelled: list[BatchProgress] = []

        def click_cancel_soon(job: sray.RayMap) -> None:
            cancelled.append(job.panel)
            threading.Timer(3.0, job.panel.request_cancel).start()

        stopped = await sray.run(ray.data.from_items(rows(3000)), "{text}", client=spec(slow), concurrency=1,
                                 max_concurrent=4, batch_size=40, total=3000, on_start=click_cancel_soon)
    finally:
        slow.stop()
    out = stopped.dataset.take_all()
    assert stopped.stop_reason == "cancelled" and len(out) == 3000
    assert {r["status"] for r in out} <= {"ok", "cancelled"} and sum(r["status"] == "ok" for r in out) < 3000
    assert cancelled[0].state == "cancelled"
