"""``client.map``: a prompt template over a table's rows, the same kind of table back with the answers as
columns; and ``BatchResult``'s exports (pandas, polars, Arrow, Parquet, JSON Lines) with parsed fields.

Over real HTTP against the mock server, for every input kind: pandas, polars, Arrow, Hugging Face
``datasets``, a list of dicts and a generator of dicts.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

from seeds_nb import ConfigurationError, Message, MockServer, PromptError, ResponseParseError, SelfHostedClient
from seeds_nb.mock import Fault

REVIEWS = ["great phone, love it", "battery died in a day", "it is fine", "screen cracked", "best purchase"]
ADDED = ["response", "status", "error", "cached", "prompt_tokens", "completion_tokens", "cost_usd", "gwp_kgco2eq",
         "energy_kwh", "latency_s", "tracking_method"]


class Mood(StrEnum):
    good = "good"
    bad = "bad"


class Aspect(BaseModel):
    name: str
    weight: float


class Review(BaseModel):
    sentiment: Mood
    stars: int
    aspect: Aspect


def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [101, 102, 103, 104, 105], "review": REVIEWS})


def to_kind(kind: str) -> Any:
    df = frame()
    if kind == "pandas":
        return df
    if kind == "polars":
        return pl.from_pandas(df)
    if kind == "arrow":
        return pa.Table.from_pandas(df, preserve_index=False)
    if kind == "datasets":
        return datasets.Dataset.from_pandas(df, preserve_index=False)
    records = df.to_dict("records")
    if kind == "records":
        return records
    return (row for row in records)  # a generator: pulled lazily


def column(table: Any, name: str) -> list[Any]:
    if isinstance(table, pd.DataFrame):
        return table[name].tolist()
    if isinstance(table, pl.DataFrame):
        return table[name].to_list()
    if isinstance(table, pa.Table):
        return table.column(name).to_pylist()
    if isinstance(table, datasets.Dataset):
        return list(table[name])
    return [row[name] for row in table]


def names(table: Any) -> list[str]:
    if isinstance(table, pd.DataFrame | pl.DataFrame):
        return list(table.columns)
    if isinstance(table, pa.Table | datasets.Dataset):
        return list(table.column_names)
    return list(table[0])


OUTPUT_TYPE = {"pandas": pd.DataFrame, "polars": pl.DataFrame, "arrow": pa.Table, "datasets": datasets.Dataset,
               "records": list, "generator": list}


@pytest.mark.parametrize("kind", list(OUTPUT_TYPE))
async def test_map_returns_the_same_kind_of_table_with_structured_columns(kind: str, make_client,
                                                                          server: MockServer) -> None:
    client = make_client()
    out = await client.map(to_kind(kind), "Review: {review} (id {id})", response_format=Review, max_concurrent=3)
    assert isinstance(out, OUTPUT_TYPE[kind])
    assert names(out) == ["id", "review", "response", "sentiment", "stars", "aspect", *ADDED[1:]]
    assert column(out, "id") == [101, 102, 103, 104, 105]  # input order, input columns kept
    assert column(out, "status") == ["ok"] * 5 and server.request_count == 5
    sent = [entry["body"]["messages"][-1]["content"] for entry in server.requests]
    assert sorted(sent) == sorted(f"Review: {r} (id {i})" for i, r in zip(range(101, 106), REVIEWS, strict=True))
    for answer, stars, aspect in zip(column(out, "response"), column(out, "stars"), column(out, "aspect"),
                                     strict=True):
        parsed = Review.model_validate_json(answer)
        assert stars == parsed.stars and aspect == parsed.aspect.model_dump()  # nested model: a struct / dict
    assert all(c > 0 for c in column(out, "cost_usd")) and column(out, "cached") == [False] * 5
    result = client.last_run.result
    assert result.successful_count == 5 and result.total_cost_usd == pytest.approx(sum(column(out, "cost_usd")))


async def test_a_function_prompt_a_system_template_and_rows_that_cannot_be_filled(make_client,
                                                                                  server: MockServer) -> None:
    rows = [{"topic": "rust"}, {"topic": "go"}, {"subject": "no topic here"}]
    client = make_client()
    out = await client.map(rows, "Explain {topic}", system="You teach {topic} to beginners.")
    assert [r["status"] for r in out] == ["ok", "ok", "failed"]
    assert out[2]["error"].startswith("PromptError: row 2: prompt template 'Explain {topic}': unknown name {topic}")
    assert server.request_count == 2
    systems = sorted(entry["body"]["messages"][0]["content"] for entry in server.requests)
    assert systems == ["You teach go to beginners.", "You teach rust to beginners."]
    calls = await client.map(frame(), lambda row: [Message("user", f"id {row['id']}: {row['review'][:5]}")])
    assert calls["status"].tolist() == ["ok"] * 5
    assert "id 101: great" in [entry["body"]["messages"][0]["content"] for entry in server.requests[-5:]]

    def broken(row: dict[str, Any]) -> str:
        if row["id"] == 103:
            raise KeyError("oops")
        return f"ok {row['id']}"

    partly = await client.map(frame(), broken)
    assert partly["status"].tolist() == ["ok", "ok", "failed", "ok", "ok"]
    assert "the prompt function raised KeyError" in partly["error"][2]


async def test_mistakes_fail_before_anything_is_sent(make_client, server: MockServer) -> None:
    client = make_client()
    with pytest.raises(ConfigurationError, match=r"uses \{reviw\}, which the data does not have; its columns are: "
                                                 r"id, review"):
        await client.map(frame(), "Classify {reviw}")
    with pytest.raises(ConfigurationError, match="already has; pass prefix='llm_'"):
        await client.map(frame().assign(status=1), "Classify {review}")
    with pytest.raises(ConfigurationError, match=r"takes a table \(.*\) or an iterable of dicts .*; got str"):
        await client.map("just a string", "Classify {review}")
    with pytest.raises(PromptError, match="not a variable name"):
        await client.map(frame(), "Classify {} {review}")

    class Clashing(BaseModel):
        status: str

    named = await client.map(frame(), "Classify {review}", response_format=Clashing)
    assert "parsed_status" in named.columns and named["status"].tolist() == ["ok"] * 5  # map()'s own status
    out = await client.map(frame().assign(status=1), "Classify {review}", response_format=Clashing, prefix="llm_")
    assert {"llm_status", "llm_parsed_status"} <= set(out.columns) and out["status"].tolist() == [1] * 5
    assert server.request_count == 10
    with pytest.raises(PromptError, match="row 1 of the data is a str, not a dict"):
        await client.map([{"review": "a"}, "b"], "Classify {review}")


@pytest.mark.parametrize("data", [frame(), pl.from_pandas(frame()), pa.Table.from_pandas(frame()),
                                  datasets.Dataset.from_pandas(frame())], ids=["pandas", "polars", "arrow", "datasets"])
async def test_a_table_given_as_prompts_is_refused_with_map_named(make_client, server: MockServer, data: Any) -> None:
    client = make_client()
    with pytest.raises(PromptError, match=r"not a list of prompts .*column names.*client.map\(data, "):
        await client.batch_generate(data)
    with pytest.raises(PromptError, match="client.map"):
        async for _ in client.batch_generate_iter(data):
            pass
    assert server.request_count == 0


async def test_a_generator_is_pulled_lazily(make_client) -> None:
    pulled = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal pulled
        for i in range(30):
            pulled += 1
            yield {"n": i}

    seen: list[int] = []

    def progress(done: int, total: int | None, response: Any) -> None:
        seen.append(pulled - done)

    out = await make_client().map(rows(), "Count to {n}", max_concurrent=2, on_progress=progress)
    assert len(out) == 30 and [r["n"] for r in out] == list(range(30))
    assert max(seen) <= 3  # never far ahead of what was answered


async def test_structured_answers_on_cache_hits_and_failed_validation(make_client, server: MockServer,
                                                                      tmp_path: Path) -> None:
    client = make_client(cache_dir=str(tmp_path))
    first = await client.map(frame(), "Review: {review}", response_format=Review)
    again = await client.map(frame(), "Review: {review}", response_format=Review)
    assert again["cached"].tolist() == [True] * 5 and server.request_count == 5
    assert again["stars"].tolist() == first["stars"].tolist() and again["cost_usd"].tolist() == first[
        "cost_usd"].tolist()  # what the answer would cost now: avoided, shown per row
    assert client.last_run.result.total_cost_usd == 0 and client.last_run.result.avoided_cost_usd > 0
    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4.1-mini",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"sentiment\": 1}"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}})
    server.add_fault(Fault(kind="malformed", body=body, match="broken"))
    bad = await make_client(max_retries=0).map([{"review": "broken one"}], "Review: {review}", response_format=Review)
    assert bad[0]["status"] == "failed" and bad[0]["error"].startswith(ResponseParseError.__name__)
    assert "does not match Review" in bad[0]["error"] and bad[0]["sentiment"] is None


async def test_exports_carry_parsed_fields_and_the_input_columns(make_client, tmp_path: Path) -> None:
    client = make_client()
    await client.map(frame(), "Review: {review}", response_format=Review)
    result = client.last_run.result
    pandas_out = result.to_pandas()
    assert list(pandas_out.columns[:5]) == ["id", "review", "prompt", "status", "content"]
    assert list(pandas_out.columns[5:8]) == ["sentiment", "stars", "aspect"]
    records = result.to_records()
    assert records[0]["id"] == 101 and isinstance(records[0]["stars"], int) and set(records[0]["aspect"]) == {
        "name", "weight"}
    arrow = result.to_arrow()
    assert arrow.schema.field("aspect").type == pa.struct([("name", pa.string()), ("weight", pa.float64())])
    polars = result.to_polars()
    assert polars["stars"].to_list() == pandas_out["stars"].tolist()
    path = result.to_parquet(tmp_path / "reviews.parquet")
    back = pq.read_table(path)
    assert back.column("id").to_pylist() == [101, 102, 103, 104, 105] and back.num_rows == 5
    assert back.column("sentiment").to_pylist() == pandas_out["sentiment"].tolist()  # enums as their values
    assert set(back.column("sentiment").to_pylist()) <= {"good", "bad"}
    lines = result.to_jsonl(tmp_path / "reviews.jsonl")
    assert [json.loads(line)["stars"] for line in lines.splitlines()] == pandas_out["stars"].tolist()
    assert (tmp_path / "reviews.jsonl").read_text() == lines


async def test_plain_batches_export_their_parsed_fields_too(make_client) -> None:
    client = make_client()
    result = await client.batch_generate(["judge a", "judge b"], response_format=Review)
    frame_out = result.to_pandas()
    assert "stars" in frame_out.columns and "id" not in frame_out.columns
    assert result.to_arrow().column("stars").to_pylist() == frame_out["stars"].tolist()
    unknown = await client.batch_generate(["plain"])
    assert "stars" not in unknown.to_pandas().columns and unknown.to_arrow().num_rows == 1
    assert all(math.isfinite(v) for v in unknown.to_polars()["cost_usd"].to_list())



# -- sinks: rows written as they finish, bigger than memory, resumable -----------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
async def test_a_sink_writes_every_row_in_order_and_a_rerun_sends_only_what_failed(
        suffix: str, make_client, server: MockServer, tmp_path: Path) -> None:
    server.add_fault(Fault(status=400, match="row 17 "))
    rows = [{"n": i, "tag": "x" * (i % 3)} for i in range(2300)]  # three ranges of rows
    client = make_client(max_retries=0)
    sink = tmp_path / f"answers{suffix}"
    path = await client.map(rows, "row {n} {tag}", sink=sink, max_concurrent=16)
    assert path == sink and os.listdir(tmp_path) == [sink.name]  # parts merged and gone
    assert client.last_run.result.responses == [] and client.last_run.ledger.completed == 2300  # nothing kept
    written = read_sink(sink)
    assert [r["_row"] for r in written] == list(range(2300)) and [r["n"] for r in written] == list(range(2300))
    assert written[17]["status"] == "failed" and "BadRequestError" in written[17]["error"]
    assert sum(r["status"] == "ok" for r in written) == 2299 and server.request_count == 2300
    server.clear_faults()
    await client.map(rows, "row {n} {tag}", sink=sink, max_concurrent=16)  # resume
    assert server.request_count == 2301  # only row 17 again
    again = read_sink(sink)
    assert [r["_row"] for r in again] == list(range(2300)) and {r["status"] for r in again} == {"ok"}
    changed = rows[:5] + [{"n": 5, "tag": "changed"}] + rows[6:]
    await client.map(changed, "row {n} {tag}", sink=sink, max_concurrent=16)
    assert server.request_count == 2302  # a row whose prompt changed is sent again


def read_sink(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return pq.read_table(path).to_pylist()


def test_a_killed_map_resumes_from_its_sink_and_sends_only_the_rest(server: MockServer, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    n = 2600
    worker = Path(__file__).parent / "workers" / "map_worker.py"
    sink, cache_dir = tmp_path / "rows.parquet", tmp_path / "cache"
    args = [sys.executable, str(worker), server.url, str(cache_dir), str(sink), str(n)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = 0
    parts = tmp_path / "rows.parquet.parts"
    for line in proc.stdout:  # kill it once a first range (rows 0-999) has been written as a part
        if line.startswith("ack"):
            acked = int(line.split()[1])
            if parts.is_dir() and any(p.name.startswith("part-") for p in parts.iterdir()):
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert 1000 <= acked < n and not sink.exists()  # killed mid-run: parts only, no file that looks complete
    from seeds_nb.core.cache import ResponseCache

    cache = ResponseCache(cache_dir)
    stored = len(cache)  # everything reported is committed; some answers in flight at the kill are not
    cache.close()
    assert stored >= acked
    before = server.request_count
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert server.request_count - before == n - stored  # nothing answered before is sent again
    written = pq.read_table(sink).to_pylist()
    assert [r["_row"] for r in written] == list(range(n)) and [r["n"] for r in written] == list(range(n))
    assert {r["status"] for r in written} <= {"ok", "cached"} and not (tmp_path / "rows.parquet.parts").exists()


async def test_an_answer_that_fails_validation_is_retried_and_names_the_field(make_client, server: MockServer) -> None:
    body = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "gpt-4.1-mini",
                       "choices": [{"index": 0, "message": {"role": "assistant",
                                                            "content": '{"sentiment": "good", "stars": "many"}'},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}})
    server.add_fault(Fault(kind="malformed", body=body, match="flaky", times=1))  # wrong once, then right
    server.add_fault(Fault(kind="malformed", body=body, match="always"))
    client = make_client(max_retries=2)
    out = await client.map([{"review": "flaky one"}, {"review": "always wrong"}], "Review: {review}",
                           response_format=Review)
    assert out[0]["status"] == "ok" and isinstance(out[0]["stars"], int)
    assert client.last_run.result.responses[0].attempts == 2
    assert out[1]["status"] == "failed" and "does not match Review: stars:" in out[1]["error"]
    assert server.request_count == 2 + 3  # the second was tried 1 + max_retries times


async def test_a_map_into_a_sink_holds_no_row_it_has_written(make_client, tmp_path: Path) -> None:
    """Memory stays bounded with a sink: rows from a generator are not kept once written (they were, for
    the output list, until a 200k-row run showed +70 MB for 10x the rows)."""
    import gc
    import weakref

    class Row(dict):  # a dict that can be weakly referenced, to count the live ones
        __hash__ = object.__hash__

    alive: weakref.WeakSet[Row] = weakref.WeakSet()

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(3000):
            row = Row(n=i)
            alive.add(row)
            yield row

    counts: list[int] = []

    def progress(done: int, total: int | None, response: Any) -> None:
        if done % 500 == 0:
            gc.collect()
            counts.append(len(alive))

    await make_client().map(rows(), "Row {n}", sink=tmp_path / "rows.jsonl", max_concurrent=8, on_progress=progress)
    assert len(counts) == 6 and max(counts) <= 1000 + 8 + 1  # at most the range being written, plus in flight


async def test_the_tracking_method_column_matches_the_results_frame(make_client, server: MockServer,
                                                                    tmp_path: Path) -> None:
    """``map`` says where each row's energy and carbon come from, as ``to_pandas()`` of a batch does:
    estimated, measured by a self-hosted server, or nothing for a failed row; in a sink too."""
    server.add_fault(Fault(status=400, match="row 2 "))
    rows = [{"n": i} for i in range(4)]
    client = make_client(max_retries=0)
    estimated = await client.map(pd.DataFrame(rows), "row {n} ")
    methods = [m if isinstance(m, str) else None for m in estimated["tracking_method"]]  # NaN in pandas
    assert methods == ["ecologits", "ecologits", None, "ecologits"]
    frame = client.last_run.result.to_pandas()
    assert list(frame["tracking_method"])[:2] == ["ecologits", "ecologits"]
    gpu = SelfHostedClient("default", base_url=server.selfhosted_url, usd_per_million_tokens=1.0, max_retries=0)
    try:
        measured = await gpu.map(rows, "row {n} ")
        frame = gpu.last_run.result.to_pandas()
        assert [r["tracking_method"] for r in measured] == ["measured", "measured", None, "measured"]
        assert [r["tracking_method"] for r in measured][:2] == list(frame["tracking_method"])[:2]
        sink = tmp_path / "gpu.parquet"
        await gpu.map(rows, "row {n} ", sink=sink)
        assert [r["tracking_method"] for r in read_sink(sink)] == ["measured", "measured", None, "measured"]
    finally:
        await gpu.aclose()
