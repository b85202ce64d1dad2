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
