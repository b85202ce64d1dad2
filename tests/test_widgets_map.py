"""``run_batch`` over a table: ``client.map`` under the panel and grid (the same output, parsed fields as grid
columns, a sink with no grid), and ``confirm=True`` (the estimate first, nothing sent until Run).

In-process against the mock server over real HTTP; widgets talk to a recording comm (no kernel).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from seeds_nb import ConfigurationError, MockServer, OpenAIClient
from seeds_nb.core.estimate import Estimate
from seeds_nb.widgets import ResultsGrid, run_batch

from _support import CommLog, record_comms

TEST_KEY = "sk-test-widgets-map"


class Verdict(BaseModel):
    label: str
    score: int


@pytest.fixture
def comm_log(monkeypatch: pytest.MonkeyPatch) -> CommLog:
    return record_comms(monkeypatch)


def frame(n: int = 8) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "text": [f"review number {i}" for i in range(n)]})


@pytest.fixture
async def client(server: MockServer):  # type: ignore[no-untyped-def]
    made = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
    yield made
    await made.aclose()


async def test_run_batch_over_a_frame_returns_what_map_returns_and_the_grid_shows_parsed_fields(
        comm_log: CommLog, client: OpenAIClient, server: MockServer) -> None:
    pending = run_batch(client, frame(), "Judge: {text}", response_format=Verdict, show=False)
    out = await pending
    assert isinstance(out, pd.DataFrame) and out["id"].tolist() == list(range(8))
    assert list(out.columns[:6]) == ["id", "text", "response", "label", "score", "status"]
    assert out["status"].tolist() == ["ok"] * 8 and server.request_count == 8
    mapped = await client.map(frame(), "Judge: {text}", response_format=Verdict)  # cached? no cache: sent again
    # energy and carbon follow each request's measured latency (EcoLogits caps generation time by it),
    # so two sends agree on everything else exactly and on those only in being tracked at all
    timed = ["latency_s", "energy_kwh", "gwp_kgco2eq"]
    pd.testing.assert_frame_equal(out.drop(columns=timed), mapped.drop(columns=timed))
    assert (out[timed[1:]] > 0).all().all() and (mapped[timed[1:]] > 0).all().all()
    grid = pending.grid
    assert grid is not None and grid.fields == ["label", "score"] and grid.row_count == 8
    assert [spec[1] for spec in grid.columns][4:6] == ["label", "score"]
    by_index = {row[0]: row for row in grid.window["rows"]}
    first = out.iloc[7]
    assert by_index[7][4:6] == [str(first["label"]), str(first["score"])]
    grid.select(3)
    assert grid.detail["fields"] == [["label", str(out.iloc[3]["label"])], ["score", str(out.iloc[3]["score"])]]
    assert not grid.can_rerun  # a map's prompts come from its table: no re-run from the grid
    assert client.last_run is not None and client.last_run.result.successful_count == 8
    assert pending.progress.state == "success"


async def test_the_grid_of_a_finished_result_takes_its_fields(client: OpenAIClient) -> None:
    result = await client.batch_generate(["a", "b"], response_format=Verdict)
    grid = ResultsGrid.from_result(result)
    assert grid.fields == ["label", "score"] and [spec[1] for spec in grid.columns][4:6] == ["label", "score"]
    assert ResultsGrid.from_result(await client.batch_generate(["c"])).fields == []


async def test_run_batch_into_a_sink_has_no_grid_and_returns_the_path(client: OpenAIClient, server: MockServer,
                                                                      tmp_path: Path) -> None:
    sink = tmp_path / "out.parquet"
    handle = run_batch(client, frame(12), "Judge: {text}", response_format=Verdict, sink=sink, background=True,
                       show=False)
    assert handle.grid is None
    path = await handle
    assert path == sink and pq.read_table(sink).column("id").to_pylist() == list(range(12))
    assert repr(handle.progress).startswith("BatchProgress: 12/12 done")  # counted though no row was kept
    again = await run_batch(client, frame(12), "Judge: {text}", response_format=Verdict, sink=sink, show=False)
    assert again == sink and server.request_count == 12  # resumed: nothing sent twice
    with pytest.raises(ConfigurationError, match="keeps no rows in memory, so it has no grid"):
        run_batch(client, frame(), "Judge: {text}", sink=sink, grid=True)
    with pytest.raises(ConfigurationError, match="pass a template too"):
        run_batch(client, ["a"], sink=sink)


async def test_confirm_shows_the_estimate_and_sends_nothing_until_run(comm_log: CommLog, client: OpenAIClient,
                                                                      server: MockServer) -> None:
    pending = run_batch(client, frame(), "Judge: {text}", confirm=True, show=False, max_cost_usd=5.0)
    gate = pending.confirm
    assert gate is not None and isinstance(gate.estimate, Estimate) and gate.estimate.to_send == 8
    assert "nothing sent" in gate.estimate_html.value and "max_cost_usd=5" in gate.estimate_html.value
    task = asyncio.ensure_future(pending)
    for _ in range(20):  # let the run reach its wait for the click: nothing may go out meanwhile
        await asyncio.sleep(0)
    assert not task.done() and server.request_count == 0 and gate.choice is None
    gate.run_button.click()
    out = await task
    assert out["status"].tolist() == ["ok"] * 8 and server.request_count == 8
    assert gate.run_button.disabled and "running" in gate.status_html.value


async def test_declining_ends_every_prompt_as_cancelled(client: OpenAIClient, server: MockServer) -> None:
    pending = run_batch(client, ["a", "b", "c"], confirm=True, show=False)
    assert pending.confirm is not None
    pending.confirm.decline_button.click()  # before anything waits: the choice is kept
    result = await pending
    assert result.stop_reason == "cancelled" and result.cancelled_count == 3 and server.request_count == 0
    assert pending.progress.state == "cancelled"


async def test_confirm_in_the_background_starts_on_the_click(client: OpenAIClient, server: MockServer) -> None:
    handle = run_batch(client, [f"q{i}" for i in range(5)], confirm=True, background=True, show=False, grid=False)
    assert handle.confirm is not None
    with pytest.raises(TimeoutError):
        handle.result(timeout=0.2)  # not clicked: the run waits
    assert server.request_count == 0
    handle.confirm.decide(True)  # what the button does, from the main thread
    result = await handle
    assert result.successful_count == 5 and server.request_count == 5


async def test_confirm_refuses_a_generator(client: OpenAIClient) -> None:
    with pytest.raises(ConfigurationError, match="reads the prompts twice"):
        run_batch(client, (p for p in ["a", "b"]), confirm=True)
