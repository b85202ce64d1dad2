"""The mock's Batch APIs and Anthropic Messages, driven by the official ``openai`` and ``anthropic`` SDKs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from seeds_nb.mock import Fault, MockServer

from _support import BatchClock

anthropic = pytest.importorskip("anthropic")

DAY_S = 86_400.0



@pytest.fixture
def clock() -> BatchClock:
    return BatchClock()


@pytest.fixture
def server(clock: BatchClock) -> Iterator[MockServer]:
    with MockServer(batch_duration_s=DAY_S, clock=clock, api_key="sk-test-key") as srv:
        yield srv


@pytest.fixture
def oai(server: MockServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=server.url, api_key="sk-test-key", max_retries=0,
                           http_client=openai.DefaultHttpxClient(trust_env=False))
    yield client
    client.close()


@pytest.fixture
def claude(server: MockServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=server.anthropic_url, api_key="sk-test-key", max_retries=0,
                                 http_client=anthropic.DefaultHttpxClient(trust_env=False))
    yield client
    client.close()


def openai_line(i: int, prompt: str) -> dict[str, object]:
    return {"custom_id": f"request-{i}", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": prompt}], "max_tokens": 40}}


def upload(oai: openai.OpenAI, lines: list[dict[str, object]]) -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return oai.files.create(file=("input.jsonl", io.BytesIO(data)), purpose="batch").id


def test_openai_sdk_files_and_batches_lifecycle(oai: openai.OpenAI, server: MockServer, clock: BatchClock) -> None:
    server.add_fault(Fault(status=400, match="reject"))
    prompts = ["Count to 3", "please reject this", *[f"question {i}" for i in range(2, 10)]]
    file_id = upload(oai, [openai_line(i, p) for i, p in enumerate(prompts)])
    info = oai.files.retrieve(file_id)
    assert info.purpose == "batch" and info.filename == "input.jsonl" and info.bytes > 0
    assert oai.files.content(file_id).content.count(b"\n") == 10

    batch = oai.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h",
                               metadata={"run": "test"})
    assert batch.status == "validating" and batch.request_counts.total == 10 and batch.metadata == {"run": "test"}
    clock.now += DAY_S / 2
    running = oai.batches.retrieve(batch.id)
    assert running.status == "in_progress" and running.in_progress_at and running.output_file_id is None
    assert 0 < running.request_counts.completed + running.request_counts.failed < 10
    clock.now += DAY_S * 0.45
    assert oai.batches.retrieve(batch.id).status == "finalizing"
    clock.now += DAY_S
    done = oai.batches.retrieve(batch.id)
    assert done.status == "completed" and done.completed_at and done.finalizing_at
    assert (done.request_counts.completed, done.request_counts.failed) == (9, 1)

    output = [json.loads(line) for line in oai.files.content(done.output_file_id).content.splitlines()]
    errors = [json.loads(line) for line in oai.files.content(done.error_file_id).content.splitlines()]
    assert sorted(int(o["custom_id"].split("-")[1]) for o in output) == [0, *range(2, 10)]
    assert [o["custom_id"] for o in output] != sorted((o["custom_id"] for o in output), key=lambda c: int(c[8:]))
    first = next(o for o in output if o["custom_id"] == "request-0")
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "1, 2, 3" and first["error"] is None
    assert errors[0]["custom_id"] == "request-1" and errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert [b.id for b in oai.batches.list(limit=5).data] == [batch.id]


def test_openai_sdk_cancel_and_partial_expiry(oai: openai.OpenAI, server: MockServer, clock: BatchClock) -> None:
    lines = [openai_line(i, f"item {i}") for i in range(20)]
    cancelled = oai.batches.create(input_file_id=upload(oai, lines), endpoint="/v1/chat/completions",
                                   completion_window="24h")
    clock.now += DAY_S / 2
    assert oai.batches.cancel(cancelled.id).status == "cancelling"
    clock.now += DAY_S / 100
    after = oai.batches.retrieve(cancelled.id)
    assert after.status == "cancelled" and after.cancelled_at and after.cancelling_at
    errors = [json.loads(x) for x in oai.files.content(after.error_file_id).content.splitlines()]
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert len(errors) + after.request_counts.completed == 20
    with pytest.raises(openai.NotFoundError):
        oai.batches.cancel("batch_missing")

    server.add_fault(Fault(kind="expire", rate=0.5))
    expiring = oai.batches.create(input_file_id=upload(oai, lines), endpoint="/v1/chat/completions",
                                  completion_window="24h")
    clock.now += 2 * DAY_S
    ended = oai.batches.retrieve(expiring.id)
    assert ended.status == "expired" and ended.expired_at
    with pytest.raises(openai.ConflictError, match="expired"):
        oai.batches.cancel(expiring.id)
    expired = [json.loads(x) for x in oai.files.content(ended.error_file_id).content.splitlines()]
    assert 2 <= len(expired) <= 18 and {e["error"]["code"] for e in expired} == {"batch_expired"}
    assert ended.request_counts.completed == 20 - len(expired)


def test_openai_validation_failures(oai: openai.OpenAI, server: MockServer, clock: BatchClock) -> None:
    bad = [openai_line(0, "a"), openai_line(0, "duplicate id"), {**openai_line(2, "c"), "url": "/v1/embeddings"}]
    batch = oai.batches.create(input_file_id=upload(oai, bad), endpoint="/v1/chat/completions",
                               completion_window="24h")
    clock.now += DAY_S
    failed = oai.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.output_file_id is None and failed.failed_at
    assert [(e.code, e.line) for e in failed.errors.data] == [("duplicate_custom_id", 2), ("mismatched_url", 3)]
    with pytest.raises(openai.BadRequestError, match="chat/completions"):
        oai.batches.create(input_file_id=batch.input_file_id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.BadRequestError, match=".jsonl"):
        oai.files.create(file=("input.txt", io.BytesIO(b"{}")), purpose="batch")
    with pytest.raises(openai.NotFoundError):
        oai.files.retrieve("file-missing")


def test_anthropic_sdk_message_batches(claude: anthropic.Anthropic, server: MockServer, clock: BatchClock) -> None:
    server.add_fault(Fault(status=529, match="overloaded"))
    requests = [{"custom_id": f"r{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 30,
                                                  "messages": [{"role": "user", "content": f"line {i}"}]}}
                for i in range(6)]
    requests[2]["params"]["messages"][0]["content"] = "overloaded line"
    requests[3]["params"] = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "no max"}]}
    batch = claude.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 6
    assert batch.results_url is None and batch.expires_at > batch.created_at
    early = httpx.get(f"{server.anthropic_url}/v1/messages/batches/{batch.id}/results",
                      headers={"x-api-key": "sk-test-key", "anthropic-version": "2023-06-01"})
    assert early.status_code == 400 and "not ended" in early.json()["error"]["message"]
    clock.now += DAY_S
    ended = claude.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at and ended.results_url.endswith("/results")
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 4, 2)
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert set(results) == {f"r{i}" for i in range(6)}
    assert results["r0"].type == "succeeded" and results["r0"].message.usage.service_tier == "batch"
    assert results["r2"].type == "errored" and results["r2"].error.error.type == "overloaded_error"
    assert results["r3"].type == "errored" and "max_tokens" in results["r3"].error.error.message
    assert [b.id for b in claude.messages.batches.list(limit=10).data] == [batch.id]
    assert claude.messages.batches.delete(batch.id).type == "message_batch_deleted"


def test_anthropic_sdk_cancel_and_expiry(claude: anthropic.Anthropic, server: MockServer, clock: BatchClock) -> None:
    requests = [{"custom_id": f"c{i}", "params": {"model": "claude-haiku-4-5", "max_tokens": 10,
                                                  "messages": [{"role": "user", "content": f"late {i}"}]}}
                for i in range(10)]
    batch = claude.messages.batches.create(requests=requests)
    clock.now += DAY_S / 2
    canceling = claude.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    clock.now += DAY_S / 100
    kinds = [r.result.type for r in claude.messages.batches.results(batch.id)]
    assert set(kinds) <= {"succeeded", "canceled"} and "canceled" in kinds
    assert claude.messages.batches.cancel(batch.id).processing_status == "ended"  # again: a no-op
    finished = claude.messages.batches.create(requests=requests[:1])
    clock.now += 2 * DAY_S
    with pytest.raises(anthropic.ConflictError, match="ended"):
        claude.messages.batches.cancel(finished.id)

    server.add_fault(Fault(kind="expire", match="late 3"))
    expiring = claude.messages.batches.create(requests=requests)
    clock.now += 2 * DAY_S
    assert claude.messages.batches.retrieve(expiring.id).request_counts.expired == 1
    expired = [r.custom_id for r in claude.messages.batches.results(expiring.id) if r.result.type == "expired"]
    assert expired == ["c3"]


def test_anthropic_endpoints_check_auth_version_and_ids(server: MockServer) -> None:
    url = f"{server.anthropic_url}/v1/messages/batches"
    headers = {"x-api-key": "sk-test-key", "anthropic-version": "2023-06-01"}
    assert httpx.get(url, headers={"x-api-key": "wrong", "anthropic-version": "2023-06-01"}).status_code == 401
    assert "anthropic-version" in httpx.get(url, headers={"x-api-key": "sk-test-key"}).json()["error"]["message"]
    bad_id = {"requests": [{"custom_id": "has space", "params": {}}]}
    assert httpx.post(url, headers=headers, json=bad_id).status_code == 400
    twice = {"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]}
    assert "not unique" in httpx.post(url, headers=headers, json=twice).json()["error"]["message"]
    assert httpx.get(f"{url}/msgbatch_missing", headers=headers).status_code == 404


def test_gemini_files_api_raw_multipart_and_a_file_batch_over_plain_http(server: MockServer, clock: BatchClock) -> None:
    """Gemini's Files API as the mock plays it (the upload forms, a file-input batch, its result file), by hand."""
    root = server.gemini_url.removesuffix("/v1beta")
    key = {"x-goog-api-key": "sk-test-key"}
    assert httpx.post(f"{root}/upload/v1beta/files", content=b"x", headers={"x-goog-api-key": "no"}).status_code == 400
    lines = [{"key": "a", "request": {"contents": [{"role": "user", "parts": [{"text": "Count to 3"}]}]}},
             {"key": "b", "request": {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}}]
    jsonl = "".join(json.dumps(line) + "\n" for line in lines).encode()
    raw = httpx.post(f"{root}/upload/v1beta/files", content=jsonl,
                     headers={**key, "X-Goog-Upload-Protocol": "raw", "Content-Type": "application/jsonl"}).json()
    assert raw["file"]["name"].startswith("files/") and raw["file"]["sizeBytes"] == str(len(jsonl))
    one_part = (b"--B\r\nContent-Type: application/json\r\n\r\n{}\r\n--B--\r\n")
    bad = httpx.post(f"{root}/upload/v1beta/files", content=one_part,
                     headers={**key, "X-Goog-Upload-Protocol": "multipart",
                              "Content-Type": "multipart/related; boundary=B"})
    assert bad.status_code == 400 and "two parts" in bad.json()["error"]["message"]
    batches = f"{server.gemini_url}/models/gemini-2.5-flash:batchGenerateContent"
    missing = httpx.post(batches, headers=key, json={"batch": {"inputConfig": {"fileName": "files/nope"}}})
    assert missing.status_code == 404
    created = httpx.post(batches, headers=key, json={"batch": {"inputConfig": {"fileName": raw["file"]["name"]}}})
    name = created.json()["name"]
    clock.now += 2 * DAY_S
    done = httpx.get(f"{server.gemini_url}/{name}", headers=key).json()
    results_file = done["response"]["responsesFile"]
    assert done["done"] and "inlinedResponses" not in done["response"]
    assert httpx.get(f"{root}/download/v1beta/{results_file}:download", headers=key).status_code == 400  # no alt
    out = httpx.get(f"{root}/download/v1beta/{results_file}:download", params={"alt": "media"}, headers=key)
    got = [json.loads(line) for line in out.content.splitlines()]
    assert [g["key"] for g in got] == ["a", "b"]
    assert got[0]["response"]["candidates"][0]["content"]["parts"][0]["text"] == "1, 2, 3"
