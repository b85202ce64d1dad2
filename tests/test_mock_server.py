"""Tests for seeds_nb.mock: the embedded OpenAI-compatible mock server, exercised over real HTTP."""

from __future__ import annotations

import asyncio
import enum
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from seeds_nb.mock import Fault, MockServer, mock_completion
from seeds_nb.mock._faults import go_duration
from seeds_nb.mock._model import count_tokens, schema_value

ROOT = Path(__file__).resolve().parents[1]
HTTP = httpx.Client(timeout=10, trust_env=False)  # one pooled client: per-call clients are slow to build
_SDK_CLIENTS: list[openai.OpenAI] = []


def body_for(prompt: str, **params: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": prompt}], **params}


def post(server: MockServer, body: Any, **kwargs: Any) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        kwargs["content"] = body
        kwargs.setdefault("headers", {})["content-type"] = "application/json"
    else:
        kwargs["json"] = body
    return HTTP.post(f"{server.url}/chat/completions", **kwargs)


@pytest.fixture
def server() -> Iterator[MockServer]:
    with MockServer() as srv:
        yield srv


@pytest.fixture(autouse=True, scope="module")
def _close_clients() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    while _SDK_CLIENTS:
        _SDK_CLIENTS.pop().close()


def sdk(server: MockServer, api_key: str = "sk-test") -> openai.OpenAI:
    """The official SDK pointed at the mock, without retries so faults surface as exceptions."""
    http = openai.DefaultHttpxClient(trust_env=False)
    client = openai.OpenAI(base_url=server.url, api_key=api_key, max_retries=0, timeout=10, http_client=http)
    _SDK_CLIENTS.append(client)
    return client


# ----------------------------------------------------------------------------- lifecycle


def test_start_stop_url_port_and_repr() -> None:
    srv = MockServer()
    assert srv.start() is srv
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", srv.url)
        assert srv.base_url == srv.url and srv.port == int(srv.url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5):
            pass
        assert HTTP.get(f"http://127.0.0.1:{srv.port}/health").json() == {"status": "ok"}
        post(srv, body_for("hi"))
        assert repr(srv) == f"MockServer(url='{srv.url}', latency_s=0.0, requests=1)"
    finally:
        srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        HTTP.get(f"http://127.0.0.1:{srv.port}/health")


def test_works_inside_running_event_loop() -> None:
    async def main() -> str:
        with MockServer() as srv:  # created while this thread's loop is running
            async with httpx.AsyncClient(base_url=srv.url, trust_env=False) as client:
                resp = await client.post("/chat/completions", json=body_for("Count to 3"))
                return resp.json()["choices"][0]["message"]["content"]

    assert asyncio.run(main()) == "1, 2, 3"


def test_reset_clears_counts_log_fault_fires_and_rate_window() -> None:
    with MockServer(rpm_limit=1, faults=[Fault(status=500, times=1)]) as srv:
        assert post(srv, body_for("a")).status_code == 500
        assert post(srv, body_for("b")).status_code == 429  # rpm window full
        assert srv.request_count == 2 and len(srv.requests) == 2
        srv.reset()
        assert srv.request_count == 0 and srv.requests == []
        assert post(srv, body_for("a")).status_code == 500  # fire count and window forgotten


def test_request_log_records_bodies_statuses_in_order(server: MockServer) -> None:
    server.add_fault(Fault(status=503, match="bad"))
    post(server, body_for("good"))
    post(server, body_for("bad one"))
    post(server, b"{nope")
    log = server.requests
    assert [e["status"] for e in log] == [200, 503, 400]
    assert log[0]["body"] == body_for("good") and log[2]["body"] is None
    assert all(e["path"] == "/v1/chat/completions" and isinstance(e["time"], float) for e in log)
    assert server.request_count == 3


# ----------------------------------------------------------------------------- OpenAI SDK


def test_openai_sdk_chat_completion(server: MockServer) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is Python?"}]
    resp = sdk(server).chat.completions.create(model="gpt-4.1-mini", messages=messages)  # type: ignore[arg-type]
    expected = mock_completion({"model": "gpt-4.1-mini", "messages": messages})
    choice = resp.choices[0]
    assert choice.message.content == expected["choices"][0]["message"]["content"]
    assert choice.message.content.startswith("Mock answer to 'What is Python?': ")
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert resp.model == "gpt-4.1-mini" and resp.id.startswith("chatcmpl-")
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == (3 + 4) + (4 + 4) + 3  # ceil(len/4) + 4 per message, + 3
    assert resp.usage.completion_tokens == count_tokens(choice.message.content)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.system_fingerprint == "fp_seeds_mock"


def test_openai_sdk_models_list(server: MockServer) -> None:
    ids = [m.id for m in sdk(server).models.list()]
    assert {"gpt-4.1-mini", "gpt-4o", "claude-sonnet-4-5", "mock-model"} <= set(ids)


class Summary(BaseModel):
    title: str
    key_points: list[str]
    word_count: int


class Severity(enum.StrEnum):
    low = "low"
    high = "high"


class Finding(BaseModel):
    summary: Summary
    severity: Severity
    owner: str | None


class Report(BaseModel):
    findings: list[Finding]
    reviewed: bool
    score: float | None


def test_openai_sdk_parse_pydantic_models(server: MockServer) -> None:
    client = sdk(server)
    msgs = [{"role": "user", "content": "Summarise the release notes."}]
    parsed = client.chat.completions.parse(model="gpt-4.1", messages=msgs, response_format=Summary)  # type: ignore[arg-type]
    summary = parsed.choices[0].message.parsed
    assert isinstance(summary, Summary) and summary.key_points and summary.title
    report = client.chat.completions.parse(model="gpt-4.1", messages=msgs, response_format=Report)  # type: ignore[arg-type]
    result = report.choices[0].message.parsed
    assert isinstance(result, Report) and result.findings
    assert all(isinstance(f.severity, Severity) and isinstance(f.summary, Summary) for f in result.findings)
    sent = server.requests[-1]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True


def test_schema_values_validate_against_their_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schemas: list[dict[str, Any]] = [
        Report.model_json_schema(),
        {"type": "object", "properties": {"k": {"const": "fixed"}, "n": {"type": "integer", "minimum": 50,
         "exclusiveMaximum": 53}, "xs": {"type": "array", "items": {"type": "number"}, "minItems": 5},
         "nil": {"type": "null"}, "either": {"type": ["null", "boolean"]}, "s": {"type": "string",
         "minLength": 40, "maxLength": 45}, "when": {"type": "string", "format": "date-time"}},
         "required": ["k", "n", "xs", "nil"], "additionalProperties": False},  # fmt: skip
        {"$defs": {"Node": {"type": "object", "properties": {"kids": {"type": "array", "items": {
            "$ref": "#/$defs/Node"}}}, "required": ["kids"]}}, "$ref": "#/$defs/Node"},  # fmt: skip
    ]
    for schema in schemas:
        for seed in ("a", "b", "c"):
            jsonschema.validate(schema_value(schema, schema, seed), schema)


# ----------------------------------------------------------------------------- the mock model


def test_deterministic_content_and_usage(server: MockServer) -> None:
    first = post(server, body_for("What is Rust?")).json()
    second = post(server, body_for("What is Rust?")).json()
    assert first["choices"] == second["choices"] and first["usage"] == second["usage"]
    other = post(server, body_for("What is Go?")).json()
    assert other["choices"][0]["message"]["content"] != first["choices"][0]["message"]["content"]
    # Identical in a fresh process with a different hash seed: no reliance on Python's hash().
    code = "import json,sys; from seeds_nb.mock import mock_completion; print(json.dumps(mock_completion(json.loads(sys.argv[1]))))"  # noqa: E501
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(body_for("What is Rust?"))],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True)  # fmt: skip
    assert json.loads(out.stdout)["choices"] == first["choices"]


def test_count_prompt_and_text_parts(server: MockServer) -> None:
    content = post(server, body_for("Count to 5")).json()["choices"][0]["message"]["content"]
    assert content == "1, 2, 3, 4, 5"
    parts = [{"type": "text", "text": "Describe this"},
             {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    content = post(server, body_for(parts)).json()["choices"][0]["message"]["content"]  # type: ignore[arg-type]
    assert content.startswith("Mock answer to 'Describe this' [image https://example.com/cat.png]: ")
    parts[1] = {"type": "image_url", "image_url": {"url": "x"}}  # as the real API: not a URL is a 400
    refused = post(server, body_for(parts))  # type: ignore[arg-type]
    assert refused.status_code == 400 and "Invalid image URL" in refused.json()["error"]["message"]


def test_max_tokens_truncates_with_length_finish(server: MockServer) -> None:
    full = post(server, body_for("Explain caching")).json()["choices"][0]["message"]["content"]
    for key in ("max_tokens", "max_completion_tokens"):
        data = post(server, body_for("Explain caching", **{key: 7})).json()
        assert data["choices"][0]["finish_reason"] == "length"
        assert data["usage"]["completion_tokens"] == 7
        content = data["choices"][0]["message"]["content"]
        assert full.startswith(content) and count_tokens(content) == 7


def test_stop_sequences(server: MockServer) -> None:
    full = post(server, body_for("Explain caching")).json()["choices"][0]["message"]["content"]
    data = post(server, body_for("Explain caching", stop=["zzz", "caching"])).json()
    assert data["choices"][0]["message"]["content"] == full[: full.index("caching")]
    assert data["choices"][0]["finish_reason"] == "stop"
    counted = post(server, body_for("Count to 9", stop=", 4")).json()
    assert counted["choices"][0]["message"]["content"] == "1, 2, 3"


def test_json_object_response_format(server: MockServer) -> None:
    data = post(server, body_for("Give JSON", response_format={"type": "json_object"})).json()
    assert json.loads(data["choices"][0]["message"]["content"])["answer"].startswith("Mock answer to")


def test_headers_on_chat_responses(server: MockServer) -> None:
    resp = post(server, body_for("hi"))
    for name in ("x-request-id", "openai-processing-ms", "x-ratelimit-limit-requests",
                 "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
                 "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"):  # fmt: skip
        assert name in resp.headers
    assert post(server, body_for("hi")).headers["x-request-id"] != resp.headers["x-request-id"]
    assert [go_duration(s) for s in (0.12, 1, 8.64, 360, 3725)] == ["120ms", "1s", "8.64s", "6m0s", "1h2m5s"]


# ----------------------------------------------------------------------------- validation and auth


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt-4.1-mini", "messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role"),
        ({"model": "gpt-4.1-mini", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        (b'{"model": "gpt-4.1-mini", "messages": [', None),
    ],
)
def test_invalid_requests_get_400(server: MockServer, body: Any, param: str | None) -> None:
    resp = post(server, body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["code"] is None


def test_api_key_required_and_never_logged() -> None:
    key = "sk-very-secret-0123456789"
    with MockServer(api_key=key) as srv:
        missing = post(srv, body_for("hi"))
        wrong = post(srv, body_for("hi"), headers={"Authorization": "Bearer sk-wrong-key"})
        assert missing.status_code == wrong.status_code == 401
        assert missing.json()["error"]["code"] == "invalid_api_key"
        assert "sk-wrong-key" not in wrong.text
        with pytest.raises(openai.AuthenticationError):
            sdk(srv, api_key="sk-nope").models.list()
        msgs = [{"role": "user", "content": "x"}]
        ok = sdk(srv, api_key=key).chat.completions.create(model="m", messages=msgs)  # type: ignore[arg-type]
        assert ok.choices[0].message.content
        assert [e["status"] for e in srv.requests] == [401, 401, 200]
        assert key not in repr(srv.requests) and key not in ok.model_dump_json()


# ----------------------------------------------------------------------------- faults


def test_429_fault_with_retry_after_headers(server: MockServer) -> None:
    server.add_fault(Fault(status=429, retry_after=2, retry_after_ms=1500))
    resp = post(server, body_for("hi"))
    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "2" and resp.headers["retry-after-ms"] == "1500"
    assert "x-ratelimit-remaining-requests" in resp.headers
    assert resp.json()["error"]["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError):
        sdk(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    server.clear_faults()
    server.add_fault(Fault(status=429, code="insufficient_quota", retry_after=0.5))
    resp = post(server, body_for("hi"))
    assert resp.headers["retry-after"] == "0.5"
    assert resp.json()["error"]["code"] == resp.json()["error"]["type"] == "insufficient_quota"


def test_500_fault_and_first_matching_fault_wins(server: MockServer) -> None:
    server.add_fault(Fault(status=500))
    server.add_fault(Fault(status=503))
    resp = post(server, body_for("hi"))
    assert resp.status_code == 500 and resp.json()["error"]["type"] == "server_error"
    with pytest.raises(openai.InternalServerError):
        sdk(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def test_times_one_fails_first_attempt_only(server: MockServer) -> None:
    server.add_fault(Fault(status=500, times=1))
    assert [post(server, body_for("same")).status_code for _ in range(3)] == [500, 200, 200]
    assert post(server, body_for("different")).status_code == 500  # counted per distinct request


def _failing_subset(faults: list[Fault], prompts: list[str]) -> set[str]:
    with MockServer(faults=faults) as srv:
        return {p for p in prompts if post(srv, body_for(p)).status_code != 200}


def test_rate_fault_hits_deterministic_subset() -> None:
    prompts = [f"prompt number {i}" for i in range(100)]
    first = _failing_subset([Fault(status=500, rate=0.3, times=1)], prompts)
    assert 15 <= len(first) <= 45
    assert _failing_subset([Fault(status=500, rate=0.3, times=1)], list(reversed(prompts))) == first
    assert _failing_subset([Fault(status=500, rate=0.0)], prompts) == set()


def test_match_fault_only_hits_matching_text(server: MockServer) -> None:
    server.add_fault(Fault(status=500, match="explode"))
    assert post(server, body_for("please explode now")).status_code == 500
    assert post(server, body_for("stay calm")).status_code == 200


def test_slow_fault_still_answers(server: MockServer) -> None:
    server.add_fault(Fault(kind="slow", delay_s=0.05))
    server.latency_s = 0.01
    resp = post(server, body_for("Count to 2"))
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "1, 2"


def test_drop_fault_closes_connection(server: MockServer) -> None:
    server.add_fault(Fault(kind="drop", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        post(server, body_for("drop me"))
    assert post(server, body_for("drop me")).status_code == 200  # server keeps serving
    server.add_fault(Fault(kind="drop", match="sdk"))
    with pytest.raises(openai.APIConnectionError):
        sdk(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "sdk"}])
    assert server.requests[0]["status"] == 0


def test_malformed_fault_returns_invalid_json(server: MockServer) -> None:
    server.add_fault(Fault(kind="malformed"))
    resp = post(server, body_for("hi"))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    assert resp.text.startswith('{"id": "chatcmpl-')
    with pytest.raises(json.JSONDecodeError):
        json.loads(resp.text)


def test_rpm_limit_rejects_sixth_request() -> None:
    with MockServer(rpm_limit=5) as srv:
        remaining = [post(srv, body_for(f"q{i}")).headers["x-ratelimit-remaining-requests"] for i in range(5)]
        assert remaining == ["4", "3", "2", "1", "0"]
        resp = post(srv, body_for("q6"))
        assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(resp.headers["retry-after"]) <= 60 and float(resp.headers["retry-after-ms"]) > 0
        assert resp.headers["x-ratelimit-remaining-requests"] == "0"
        assert resp.headers["x-ratelimit-limit-requests"] == "5"


def test_tpm_limit_rejects_when_tokens_run_out() -> None:
    with MockServer(tpm_limit=100) as srv:
        statuses = [post(srv, body_for("Count to 3")).status_code for _ in range(20)]
        assert statuses[0] == 200 and 429 in statuses
        assert statuses.index(429) == statuses.count(200)  # once full, it stays full within the window


# ----------------------------------------------------------------------------- CLI


def test_cli_prints_url_and_serves() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "seeds_nb.mock", "--port", "0"], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)  # fmt: skip
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "mock server did not print its URL"
        line = proc.stdout.readline().strip()
        match = re.fullmatch(r"seeds_nb mock server on (http://127\.0\.0\.1:(\d+)/v1)", line)
        assert match and match.group(2) != "0", line
        resp = HTTP.post(f"{match.group(1)}/chat/completions", json=body_for("Count to 4"))
        assert resp.json()["choices"][0]["message"]["content"] == "1, 2, 3, 4"
    finally:
        proc.terminate()
        code = proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == 0  # SIGTERM is handled as a clean shutdown


def test_a_short_rate_window_scales_the_per_minute_limit() -> None:
    """400 rpm over a 3 s window: 20 requests pass, the 21st (well within the 3 s) gets a 429 saying
    how long until a slot frees (< 3 s), and the headers report what is left in the window."""
    with MockServer(rpm_limit=400, rate_window_s=3.0) as srv:
        answers = [post(srv, body_for(f"q{i}")) for i in range(21)]
        assert [r.status_code for r in answers[:20]] == [200] * 20
        assert answers[19].headers["x-ratelimit-limit-requests"] == "400"
        assert answers[19].headers["x-ratelimit-remaining-requests"] == "0"
        refused = answers[20]
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after-ms"]) <= 3000
    with pytest.raises(ValueError, match="rate_window_s"):
        MockServer(rate_window_s=0)


def test_reset_s_fault_reports_a_used_up_limit_in_each_protocol(server: MockServer) -> None:
    server.add_fault(Fault(status=429, reset_s=1.5))
    openai_style = post(server, body_for("hi"))
    assert openai_style.status_code == 429 and "retry-after" not in openai_style.headers
    assert openai_style.headers["x-ratelimit-remaining-requests"] == "0"
    assert openai_style.headers["x-ratelimit-reset-requests"] == "1.5s"
    anthropic_style = httpx.post(f"{server.anthropic_url}/v1/messages", headers={"anthropic-version": "2023-06-01"},
                                 json={"model": "claude-haiku-4-5", "max_tokens": 10,
                                       "messages": [{"role": "user", "content": "hi"}]})
    assert anthropic_style.status_code == 429
    assert anthropic_style.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = datetime.fromisoformat(anthropic_style.headers["anthropic-ratelimit-requests-reset"])
    assert 1.0 < reset.timestamp() - time.time() <= 1.5
