"""Server-side Batch API jobs over real HTTP against the mock, for OpenAI and Anthropic.

The mock's batch clock is a fake one the tests move by hand, so every state (validating,
in_progress part-way, cancelling, ended) is reached exactly, with no sleeping.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from seeds_nb import (
    AnthropicClient,
    APIError,
    BadRequestError,
    BaseClient,
    BatchExpired,
    BatchJob,
    BatchNotReady,
    Cancelled,
    ConfigurationError,
    MockServer,
    OpenAIClient,
    PromptError,
    ServerError,
)
from seeds_nb.core.batch import CallbackWarning
from seeds_nb.mock import Fault, mock_completion
from seeds_nb.providers._anthropic_batch import AnthropicBatchAPI
from seeds_nb.providers._batch_results import split_member
from seeds_nb.providers._openai_batch import OpenAIBatchAPI

from _support import TEST_KEY, BatchClock

DAY_S = 86_400.0
PROVIDERS = ["openai", "anthropic"]



@pytest.fixture
def clock() -> BatchClock:
    return BatchClock()


@pytest.fixture
def server(clock: BatchClock) -> Iterator[MockServer]:  # overrides conftest's: a batch job takes one "day"
    with MockServer(batch_duration_s=DAY_S, clock=clock) as srv:
        yield srv


@pytest.fixture
async def make(server: MockServer, tmp_path: Path) -> AsyncIterator[Callable[..., BaseClient]]:
    made: list[BaseClient] = []

    def factory(provider: str, **kwargs: object) -> BaseClient:
        kwargs.setdefault("api_key", TEST_KEY)
        kwargs.setdefault("cache_dir", str(tmp_path / "cache"))
        if provider == "openai":
            client: BaseClient = OpenAIClient("gpt-4.1-mini", base_url=server.url, **kwargs)  # type: ignore[arg-type]
        else:
            client = AnthropicClient("claude-haiku-4-5", base_url=server.anthropic_url, **kwargs)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


def sync_answer(provider: str, prompt: str) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
    if provider == "anthropic":
        body["max_tokens"] = 1024
    return mock_completion(body)["choices"][0]["message"]["content"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_submit_poll_and_results_aligned_by_custom_id(make, clock: BatchClock, server: MockServer,
                                                            provider: str) -> None:
    client = make(provider)
    prompts = [f"Question number {i}" for i in range(30)]
    job = await client.submit_batch(prompts, max_requests_per_batch=12)
    assert len(job.batches) == 3 and [b.count for b in job.batches] == [12, 12, 6] and len(job) == 30
    assert job.status == ("validating" if provider == "openai" else "in_progress") and not job.done
    with pytest.raises(BatchNotReady, match="await job.wait"):
        await job.results()
    clock.advance(DAY_S / 2)
    await job.refresh()
    assert job.status == "in_progress"
    if provider == "openai":  # OpenAI reports progress; Anthropic only counts once a batch has ended
        assert 0 < job.counts.succeeded < 30 and job.raw_status == "in_progress"
    else:
        assert job.counts.processing == 30 and job.raw_status == "in_progress"
    clock.advance(DAY_S)
    updates: list[str] = []
    await job.wait(poll_interval=0.01, on_update=lambda j: updates.append(j.status))
    assert updates == ["completed"] and job.done
    assert job.raw_status == ("completed" if provider == "openai" else "ended")
    assert job.counts.succeeded == 30 and job.counts.processing == 0
    result = await job.results()
    assert result.successful_count == 30 and result.failed_count == 0
    assert result.contents == [sync_answer(provider, p) for p in prompts]  # aligned, whatever the line order
    assert result.prompts == prompts and result.provider == provider
    assert all(math.isnan(r.latency_s) and r.attempts == 1 and r.request_id for r in result.responses)
    assert result.total_cost_usd > 0 and result.total_energy_kwh > 0
    assert server.request_count == 0  # no chat request was sent: only the Batch API
    assert await job.results() is result


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_results_come_back_shuffled_and_batch_pricing_is_half(make, clock: BatchClock, tmp_path: Path,
                                                                    provider: str) -> None:
    client = make(provider, cache_dir=None)
    prompts = [f"Price check {i}" for i in range(20)]
    job = await client.submit_batch(prompts, jobs_dir=tmp_path)
    clock.advance(2 * DAY_S)
    await job.wait(poll_interval=0.01)
    batch = job.batches[0]
    order = [custom_id for custom_id, _ in [x async for x in job._api.results(batch, {})]]
    assert sorted(order, key=lambda c: int(c[4:])) != order  # not in input order
    result = await job.results()
    sync = await client.agenerate(prompts[0])
    batched = result.responses[0]
    assert batched.usage == sync.usage and batched.content == sync.content
    assert batched.tracking.cost_usd == pytest.approx(sync.tracking.cost_usd / 2)
    full = client.tracker.track(batched.model, batched.usage, 1.0).cost_usd
    assert batched.tracking.cost_usd == pytest.approx(full / 2)
    assert batched.tracking.energy_kwh_min <= batched.tracking.energy_kwh <= batched.tracking.energy_kwh_max


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_restart_and_reload_with_a_new_client(make, clock: BatchClock, tmp_path: Path, provider: str) -> None:
    first = make(provider)
    job = await first.submit_batch([f"Survive a restart {i}" for i in range(8)], max_requests_per_batch=5)
    job_id, batch_ids = job.id, [b.id for b in job.batches]
    saved = json.loads(job.path.read_text())
    assert job.path.parent == tmp_path / "cache" / "batch_jobs" and saved["id"] == job_id
    assert [b["id"] for b in saved["batches"]] == batch_ids and TEST_KEY not in job.path.read_text()
    await first.aclose()  # the kernel restarts: only the files remain
    del job

    clock.advance(2 * DAY_S)
    second = make(provider)
    again = BatchJob.load(job_id, client=second)
    await again.wait(poll_interval=0.01)
    result = await again.results()
    assert result.successful_count == 8 and result.prompts[7] == "Survive a restart 7"
    by_batch_id = second.load_batch(batch_ids[1])  # a provider batch id finds its job too
    assert by_batch_id.id == job_id and by_batch_id.status == "completed"


async def test_load_refuses_unknown_ids_and_other_providers(make) -> None:
    openai_client, claude = make("openai"), make("anthropic")
    job = await openai_client.submit_batch(["one"])
    with pytest.raises(ConfigurationError, match="no saved batch job"):
        openai_client.load_batch("job_missing")
    with pytest.raises(ConfigurationError, match="submitted to openai"):
        BatchJob.load(job.id, client=claude)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_expired_lines(make, server: MockServer, clock: BatchClock, provider: str) -> None:
    server.add_fault(Fault(kind="expire", match="too late"))
    client = make(provider)
    prompts = ["on time 0", "too late 1", "on time 2", "too late 3"]
    job = await client.submit_batch(prompts)
    clock.advance(2 * DAY_S)
    await job.refresh()
    assert job.status == "expired" and job.counts.expired == 2 and job.counts.succeeded == 2
    result = await job.results()
    assert sorted(result.errors) == [1, 3] and result.stop_reason == "expired"
    assert all(isinstance(e, BatchExpired) for e in result.errors.values())
    assert result.contents[0] == sync_answer(provider, "on time 0")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cancel_part_way_keeps_what_finished(make, clock: BatchClock, provider: str) -> None:
    client = make(provider)
    job = await client.submit_batch([f"Cancel me {i}" for i in range(40)])
    clock.advance(DAY_S / 2)
    await job.cancel()
    assert job.status == "cancelling" and job.raw_status == ("cancelling" if provider == "openai" else "canceling")
    clock.advance(DAY_S / 10)
    await job.refresh()
    assert job.status == "cancelled" and job.done
    result = await job.results()
    cancelled = [i for i, e in result.errors.items() if isinstance(e, Cancelled)]
    assert 0 < result.successful_count < 40 and len(cancelled) == 40 - result.successful_count
    assert result.cancelled_count == len(cancelled) and result.stop_reason == "cancelled"
    assert job.counts.cancelled == len(cancelled) and job.counts.succeeded == result.successful_count


async def test_cancel_before_anything_ran_cancels_every_line(make, clock: BatchClock) -> None:
    job = await make("openai").submit_batch(["a", "b", "c"])
    await job.cancel()
    clock.advance(DAY_S)
    result = await job.results()
    assert result.cancelled_count == 3 and job.status == "cancelled"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_per_line_errors_are_typed(make, server: MockServer, clock: BatchClock, provider: str) -> None:
    server.add_fault(Fault(status=400, match="bad"))
    server.add_fault(Fault(status=500, match="boom"))
    job = await make(provider).submit_batch(["fine", "bad request", "boom", "fine too"])
    clock.advance(2 * DAY_S)
    result = await job.results()
    assert job.status == "completed" and job.counts.failed == 2 and result.successful_count == 2
    assert isinstance(result.errors[1], BadRequestError) and result.errors[1].status_code == 400
    assert isinstance(result.errors[2], ServerError) and result.errors[2].status_code == 500
    assert result.errors[1].provider == provider


async def test_a_bad_prompt_fails_only_its_index(make, clock: BatchClock) -> None:
    job = await make("anthropic").submit_batch(["ok", "   ", [{"role": "system", "content": "no user turn"}]])
    clock.advance(2 * DAY_S)
    result = await job.results()
    assert result.successful_count == 1 and job.batches[0].count == 1
    assert isinstance(result.errors[1], PromptError) and isinstance(result.errors[2], PromptError)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_answers_fill_the_cache_and_cached_prompts_are_not_resubmitted(
        make, server: MockServer, clock: BatchClock, provider: str) -> None:
    client = make(provider)
    prompts = [f"Cache me {i}" for i in range(6)]
    job = await client.submit_batch(prompts)
    clock.advance(2 * DAY_S)
    await job.results()
    sync = await client.batch_generate(prompts)
    assert sync.cached_count == 6 and server.request_count == 0  # the sync batch of the same prompts is free
    # A cache hit is priced as what it would cost now: a synchronous request, twice the batch rate.
    assert sync.avoided_cost_usd == pytest.approx(2 * (await job.results()).total_cost_usd)

    again = await client.submit_batch([*prompts[:3], "Brand new"])
    assert sum(b.count for b in again.batches) == 1  # only the new prompt went to the provider
    clock.advance(2 * DAY_S)
    result = await again.results()
    assert result.cached_count == 3 and result.successful_count == 4 and result.responses[3].cached is False


@pytest.mark.parametrize(("provider", "api"), [("openai", OpenAIBatchAPI), ("anthropic", AnthropicBatchAPI)])
async def test_inputs_are_split_by_bytes_too(make, clock: BatchClock, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             provider: str, api: type) -> None:
    monkeypatch.setattr(api, "max_bytes", 1_000)
    job = await make(provider, cache_dir=None).submit_batch([f"{i} " + "x" * 200 for i in range(10)],
                                                           jobs_dir=tmp_path)
    assert len(job.batches) > 2 and sum(b.count for b in job.batches) == 10
    clock.advance(2 * DAY_S)
    result = await job.results()
    assert result.successful_count == 10


async def test_a_provider_batch_that_fails_validation(make, clock: BatchClock, monkeypatch: pytest.MonkeyPatch) -> None:
    original = OpenAIBatchAPI.encode

    def wrong_url(self: OpenAIBatchAPI, custom_id: str, path: str, body: dict[str, object]) -> bytes:
        line = original(self, custom_id, path, body)
        return line.replace(b"/v1/chat/completions", b"/v1/embeddings") if custom_id == "req-1" else line

    monkeypatch.setattr(OpenAIBatchAPI, "encode", wrong_url)
    job = await make("openai").submit_batch(["a", "b", "c", "d"], max_requests_per_batch=2)
    clock.advance(DAY_S)
    await job.refresh()
    assert [b.status for b in job.batches] == ["failed", "completed"] and job.status == "failed"
    assert "line 2" in job.batches[0].errors[0]
    result = await job.results()
    assert sorted(result.errors) == [0, 1] and isinstance(result.errors[0], APIError)
    assert "line 2" in str(result.errors[0]) and result.successful_count == 2


async def test_a_failed_creation_keeps_the_batches_already_running(make, monkeypatch: pytest.MonkeyPatch) -> None:
    original, calls = OpenAIBatchAPI.create, []

    async def flaky(self: OpenAIBatchAPI, lines: list[bytes], job_id: str, part: str):  # type: ignore[no-untyped-def]
        calls.append(part)
        if len(calls) >= 2:  # the second creation, and every one after it
            raise APIError("upload refused", provider="openai")
        return await original(self, lines, job_id, part)

    monkeypatch.setattr(OpenAIBatchAPI, "create", flaky)
    with pytest.warns(RuntimeWarning, match="already created keep running"):
        job = await make("openai").submit_batch(["a", "b", "c"], max_requests_per_batch=2)
    assert len(job.batches) == 1 and job.path.exists()
    with pytest.raises(APIError, match="upload refused"):
        await make("openai").submit_batch(["x"])  # the first creation failing leaves no job behind
    assert len(list(job.path.parent.glob("job_*.json"))) == 2  # one job + its prompts sidecar


async def test_wait_timeout_a_raising_callback_and_repr(make) -> None:
    job = await make("anthropic").submit_batch(["slow"])

    def broken(job: BatchJob) -> None:
        raise ValueError("oops")

    with pytest.raises(TimeoutError, match="still in_progress"), pytest.warns(CallbackWarning, match="oops"):
        await job.wait(poll_interval=0.01, timeout=0.03, on_update=broken)
    assert "1 prompts in 1 batch(es), status='in_progress'" in repr(job)


async def test_a_client_without_batch_api_says_so() -> None:
    class Local(OpenAIClient):
        batch_api_class = None  # an OpenAI-compatible local server: no Batch API

    client = Local("m", api_key=None, base_url="http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="no server-side Batch API"):
        await client.submit_batch(["x"])


def test_split_member_keeps_a_body_raw_and_falls_back_on_other_layouts() -> None:
    line = b'{"id":"x","custom_id":"req-1","response":{"status_code":200,"body":{"a":"\\"body\\": 1"}},"error":null}'
    data, raw = split_member(line, "body", lambda d: d.get("response"))
    assert raw is not None and json.loads(raw) == {"a": '"body": 1'} and data["response"]["body"] is None
    odd = b'{"error":{"body":1},"response":{"body":{"a":2}}}'
    data, raw = split_member(odd, "body", lambda d: d.get("response"))
    assert raw is None and data == {"error": {"body": 1}, "response": {"body": {"a": 2}}}


# -- damaged job files ------------------------------------------------------------------------------
def _damage(which: str, change: Callable[[dict], object], *, replace: bool = False) -> Callable[[Path, Path], Path]:
    """Edit the job file or its sidecar in place (or, with ``replace``, write what ``change`` returns)."""
    def damage(job_file: Path, sidecar: Path) -> Path:
        path = job_file if which == "job" else sidecar
        data = json.loads(path.read_text())
        replaced = change(data)
        path.write_text(json.dumps(replaced if replace else data))
        return path
    return damage


def _truncate(job_file: Path, sidecar: Path) -> Path:
    job_file.write_text(job_file.read_text()[:40])
    return job_file


def _not_utf8(job_file: Path, sidecar: Path) -> Path:
    job_file.write_bytes(b"\xff\xfe{}")
    return job_file


def _lose_cache_keys(job_file: Path, sidecar: Path) -> Path:
    _damage("job", lambda m: m.update(cached=[[0, 2]]))(job_file, sidecar)  # two prompts answered from the cache
    return _damage("sidecar", lambda s: s.update(keys=s["keys"][:1]))(job_file, sidecar)  # but one key left


DAMAGES = {
    "not JSON": _truncate,
    "not UTF-8": _not_utf8,
    "a list, not an object": _damage("job", lambda m: [m], replace=True),
    "no provider": _damage("job", lambda m: m.pop("provider")),
    "no id": _damage("job", lambda m: m.pop("id")),
    "id of another file": _damage("job", lambda m: m.update(id="job_other")),
    "model is a number": _damage("job", lambda m: m.update(model=4)),
    "created_at is text": _damage("job", lambda m: m.update(created_at="yesterday")),
    "size is negative": _damage("job", lambda m: m.update(size=-1)),
    "params is a list": _damage("job", lambda m: m.update(params=[])),
    "batches is a dict": _damage("job", lambda m: m.update(batches={"id": "b"})),
    "a batch that is only a bogus field": _damage("job", lambda m: m.update(batches=[{"bogus": 1}])),
    "a batch with an unknown field": _damage("job", lambda m: m["batches"][0].update(bogus=1)),
    "a batch without id": _damage("job", lambda m: m["batches"][0].pop("id")),
    "a batch that is a string": _damage("job", lambda m: m.update(batches=["batch_1"])),
    "batch ranges are not pairs": _damage("job", lambda m: m["batches"][0].update(ranges=[[0]])),
    "batch ranges past the end": _damage("job", lambda m: m["batches"][0].update(ranges=[[0, 99]])),
    "batch counts of an unknown kind": _damage("job", lambda m: m["batches"][0].update(counts={"won": 1})),
    "batch count is text": _damage("job", lambda m: m["batches"][0].update(count="3")),
    "batch errors is text": _damage("job", lambda m: m["batches"][0].update(errors="boom")),
    "cached is not pairs": _damage("job", lambda m: m.update(cached=[[1]])),
    "cached holds text": _damage("job", lambda m: m.update(cached=[["a", "b"]])),
    "errors key is not an index": _damage("job", lambda m: m.update(errors={"x": ["prompt", "bad"]})),
    "errors value is not a pair": _damage("job", lambda m: m.update(errors={"1": "bad"})),
    "errors is a list": _damage("job", lambda m: m.update(errors=[["prompt", "bad"]])),
    "sidecar is a list": _damage("sidecar", lambda s: [s], replace=True),
    "sidecar prompts is text": _damage("sidecar", lambda s: s.update(prompts="one two")),
    "sidecar prompts hold numbers": _damage("sidecar", lambda s: s.update(prompts=[1, 2, 3])),
    "sidecar keys is a dict": _damage("sidecar", lambda s: s.update(keys={"a": "b"})),
    "sidecar keys hold null": _damage("sidecar", lambda s: s.update(keys=[None, None, None])),
    "sidecar longer than the job": _damage("sidecar", lambda s: s.update(prompts=s["prompts"] * 3)),
    "sidecar lost cache keys": _lose_cache_keys,
}


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
async def test_a_damaged_job_file_is_a_configuration_error_naming_it(make, tmp_path: Path, damage: str) -> None:
    client = make("openai")
    job = await client.submit_batch(["one", "two", "three"], jobs_dir=tmp_path / "jobs")
    job_file = job.path
    sidecar = job_file.with_name(f"{job.id}.prompts.json")
    assert sidecar.is_file()
    client.load_batch(job.id, jobs_dir=tmp_path / "jobs")  # intact: loads
    damaged = DAMAGES[damage](job_file, sidecar)
    with pytest.raises(ConfigurationError) as info:
        client.load_batch(job.id, jobs_dir=tmp_path / "jobs")
    message = str(info.value)
    assert str(damaged) in message and "is damaged" in message, message
    assert "move it away and submit the prompts again" in message, message


async def test_a_damaged_unrelated_job_file_does_not_stop_a_search_by_batch_id(make, tmp_path: Path) -> None:
    client = make("anthropic")
    jobs = tmp_path / "jobs"
    job = await client.submit_batch(["find me"], jobs_dir=jobs)
    for name, text in (("job_00000000_000000_aaaaaa.json", '{"batches": 5}'),  # sorted before the real one
                       ("job_00000000_000000_bbbbbb.json", '{"batches": [1, "x", {"id": 2}]'),  # not JSON
                       ("job_00000000_000000_cccccc.json", "[]"),
                       ("job_00000000_000000_dddddd.json", '{"batches": [["id"]]}')):
        (jobs / name).write_text(text)
    found = client.load_batch(job.batches[0].id, jobs_dir=jobs)
    assert found.id == job.id and found.batches[0].id == job.batches[0].id
    with pytest.raises(ConfigurationError, match="no saved batch job 'msgbatch_nowhere'") as info:
        client.load_batch("msgbatch_nowhere", jobs_dir=jobs)
    assert "4 damaged job files were skipped" in str(info.value)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_structured_output_through_a_batch_job(make, clock: BatchClock, server: MockServer,
                                                     provider: str) -> None:
    """A ``response_format`` goes with every line, each answer comes back parsed (and in the result's
    table), a job reloaded with the format parses too, and the answers it cached are hits that keep
    ``.parsed`` for a direct batch of the same prompts."""
    from pydantic import BaseModel

    class Topic(BaseModel):
        title: str
        score: int

    client = make(provider)
    prompts = [f"Structure me {i}" for i in range(5)]
    job = await client.submit_batch(prompts, response_format=Topic)
    clock.advance(2 * DAY_S)
    result = await job.results()
    assert result.successful_count == 5
    assert all(isinstance(r.parsed, Topic) for r in result.responses)
    table = result.to_pandas()
    assert table["score"].tolist() == [r.parsed.score for r in result.responses]  # parsed fields as columns
    reloaded = client.load_batch(job.id, response_format=Topic)
    assert all(isinstance(r.parsed, Topic) for r in (await reloaded.results()).responses)
    direct = await client.batch_generate(prompts, response_format=Topic)
    assert direct.cached_count == 5 and server.request_count == 0
    assert [r.parsed for r in direct.responses] == [r.parsed for r in result.responses]
