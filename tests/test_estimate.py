"""``client.estimate`` / ``map(dry_run=True)``: what a batch would send, cost and take, with nothing sent.

Checked against what the mock then bills over real HTTP: the input count matches the server's reported
``prompt_tokens`` exactly with the chars/4 rule (the mock bills that way; the error against real
tokenizers is in docs/datasets.md), cache hits and rows a sink holds are counted apart and cost nothing,
and the sink's files are not touched.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from seeds_nb import ConfigurationError, MockServer, PromptError
from seeds_nb.core.estimate import Estimate, schema_text

TOPICS = [f"topic number {i} with a few more words" for i in range(12)]


class Label(BaseModel):
    label: str
    confidence: float


def frame(n: int = 12) -> pd.DataFrame:
    return pd.DataFrame({"id": range(n), "topic": [f"topic number {i} with a few more words" for i in range(n)]})


async def test_input_tokens_match_what_the_server_bills_and_output_brackets_it(make_client,
                                                                              server: MockServer) -> None:
    client = make_client()
    est = client.estimate(TOPICS, max_tokens=40)
    assert isinstance(est, Estimate) and server.request_count == 0
    assert (est.prompts, est.to_send, est.cached) == (12, 12, None)
    result = await client.batch_generate(TOPICS, max_tokens=40)
    billed_in = sum(r.usage.prompt_tokens for r in result.responses if r is not None)
    billed_out = sum(r.usage.completion_tokens for r in result.responses if r is not None)
    assert est.input_tokens == billed_in  # chars/4 + 4 per message + 3: the mock bills the same way
    assert est.output_tokens[0] <= billed_out <= est.output_tokens[1] == 12 * 40
    assert est.cost_usd is not None and est.cost_usd[0] <= result.total_cost_usd <= est.cost_usd[1]
    assert est.gwp_kgco2eq is not None and 0 < est.gwp_kgco2eq[0] < est.gwp_kgco2eq[1]
    assert "input ≈" in repr(est) and "chars/4" in repr(est) and "nothing sent" in repr(est)


async def test_a_response_format_schema_is_counted_as_input(make_client, server: MockServer) -> None:
    client = make_client()
    plain = client.estimate(TOPICS)
    structured = client.estimate(TOPICS, response_format=Label)
    per_prompt = math.ceil(len(schema_text(Label)) / 4)
    assert structured.input_tokens - plain.input_tokens == 12 * per_prompt > 0
    assert any("schema" in note for note in structured.notes) and server.request_count == 0


async def test_cache_hits_are_counted_apart_and_cost_nothing(make_client, server: MockServer, tmp_path: Path) -> None:
    client = make_client(cache_dir=tmp_path / "cache")
    cold = client.estimate(TOPICS)
    assert (cold.cached, cold.to_send) == (0, 12)
    await client.batch_generate(TOPICS[:8])
    warm = client.estimate(TOPICS)
    assert (warm.prompts, warm.cached, warm.to_send) == (12, 8, 4)
    assert warm.cost_usd is not None and cold.cost_usd is not None
    assert warm.cost_usd[1] == pytest.approx(cold.cost_usd[1] * 4 / 12, rel=0.01)  # prompts differ a little
    assert "8 answered by the cache" in repr(warm)
    # a response_format is part of the key: the same prompts with one are not hits
    assert client.estimate(TOPICS, response_format=Label).cached == 0
    assert client.estimate(TOPICS, use_cache=False).cached is None  # a run that skips the cache pays for all
    assert (await client.map([{"t": t} for t in TOPICS], "{t}", dry_run=True, use_cache=False)).to_send == 12
    assert server.request_count == 8


async def test_map_dry_run_counts_rows_a_sink_holds_and_touches_no_file(make_client, server: MockServer,
                                                                        tmp_path: Path) -> None:
    client = make_client()
    sink = tmp_path / "out.parquet"
    await client.map(frame(10), "Explain {topic}", sink=sink)
    assert server.request_count == 10
    before = (sink.stat().st_mtime_ns, sink.read_bytes())
    est = await client.map(frame(15), "Explain {topic}", sink=sink, dry_run=True)
    assert isinstance(est, Estimate) and (est.prompts, est.done, est.to_send) == (15, 10, 5)
    assert "10 already in the sink" in repr(est)
    assert [index for index, _, _ in est.sample] == [10, 11, 12, 13, 14]  # the rows' own numbers
    assert (sink.stat().st_mtime_ns, sink.read_bytes()) == before
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]  # no parts split off, nothing else written
    # a changed template changes the prompts: none of them counts as done
    assert client.estimate(frame(15), "Describe {topic}", sink=sink).done == 0
    assert server.request_count == 10


async def test_rows_a_template_cannot_fill_and_an_unpriced_model(make_client, server: MockServer) -> None:
    client = make_client(model="my-local-llama")
    rows = [{"topic": "a"}, {"subject": "b"}, {"topic": "c"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the estimate says it; no warning leaks into the notebook
        est = client.estimate(rows, "Explain {topic}")
    assert (est.prompts, est.unsendable, est.to_send) == (3, 1, 2)
    assert est.cost_usd is None and est.gwp_kgco2eq is None
    text = repr(est)
    assert "unknown for this model" in text and "$0 " not in text and "pass price_model=" in text
    assert "1 prompt(s) cannot be sent, e.g.: row 1" in text and server.request_count == 0


async def test_duration_at_the_clients_limits(make_client) -> None:
    limited = make_client(requests_per_minute=600)
    est = limited.estimate(TOPICS * 10)
    assert est.duration_s == (12.0, 12.0) and "time ≈ 12 s" in repr(est)
    unlimited = make_client()
    assert unlimited.estimate(TOPICS).duration_s is None
    assert "depends on the server" in repr(unlimited.estimate(TOPICS))
    assert unlimited.estimate(TOPICS, max_concurrent=4, latency_s=2.0).duration_s == (6.0, 6.0)
    by_tokens = make_client(tokens_per_minute=6000).estimate(TOPICS, max_tokens=10)
    assert by_tokens.duration_s is not None and by_tokens.duration_s[0] < by_tokens.duration_s[1]
    with pytest.raises(ConfigurationError, match="latency_s must be"):
        unlimited.estimate(TOPICS, latency_s=float("nan"))


async def test_batch_rate_budgets_and_tokenizers(make_client) -> None:
    client = make_client()
    direct, batch = client.estimate(TOPICS), client.estimate(TOPICS, batch=True)
    assert direct.cost_usd is not None and batch.cost_usd is not None
    assert batch.cost_usd[1] == pytest.approx(direct.cost_usd[1] / 2) and "batch rate" in repr(batch)
    tight = client.estimate(TOPICS, max_cost_usd=1e-9)
    assert any("max_cost_usd=1e-09" in n and "over it" in n for n in tight.notes)
    words = client.estimate(TOPICS, tokenizer=lambda text: len(text.split()))
    assert words.tokenizer == "<lambda>" and words.input_tokens == sum(len(t.split()) + 4 + 3 for t in TOPICS)
    with pytest.raises(ConfigurationError, match="tokenizer must be"):
        client.estimate(TOPICS, tokenizer="gpt2")


async def test_tiktoken_asked_for_but_missing_says_how_to_install(make_client) -> None:
    # tiktoken is not a dependency (it downloads its vocabulary): the message without it is checked
    try:
        import tiktoken  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="pip install tiktoken"):
            make_client().estimate(TOPICS, tokenizer="tiktoken")
        assert make_client().estimate(TOPICS).tokenizer == "chars/4"  # auto falls back, and says which
    else:
        pytest.skip("tiktoken is installed here; the fallback message cannot be seen")


async def test_bad_inputs_fail_loudly(make_client) -> None:
    client = make_client()
    with pytest.raises(PromptError, match=r"client.map\(data, 'Summarise \{column\}'\)"):
        client.estimate(frame())
    with pytest.raises(ConfigurationError, match="pass a template too"):
        client.estimate(TOPICS, system="be brief")
    with pytest.raises(ConfigurationError, match="which the data does not have"):
        client.estimate(frame(), "Explain {topc}")
