"""Mock Batch API jobs (OpenAI files + batches, Anthropic message batches, Gemini batches), driven by a clock.

A job that "takes up to 24 h" takes ``duration_s`` of the server's clock: OpenAI goes validating
(first 10 %) -> in_progress -> finalizing (last 10 %) -> completed, Anthropic in_progress -> ended,
Gemini BATCH_STATE_PENDING (first 10 %) -> RUNNING -> SUCCEEDED.
Each request line gets a deterministic finishing time inside the run, so a cancel part-way keeps
the lines done by then and cancels the rest. Nothing is computed per line until a result file is
fetched: creation only parses and classifies lines (ok / fault / expire), so 120,000 lines are
cheap, and the answers are built once, on first download, in shuffled order.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import secrets
from dataclasses import dataclass, field
from typing import Any

from . import _anthropic as anth
from . import _gemini as gem
from ._faults import Fault, status_error_body
from ._model import RequestError, build_completion, messages_text, request_identity, unit_hash, validate_request

__all__ = ["MockBatch", "StoredFile", "classify", "new_id", "parse_openai_input"]

CANCEL_FRACTION = 0.005  # cancelling takes 0.5 % of the run (~7 min of a 24 h window)
OPENAI_MAX_LINES = 50_000
OPENAI_MAX_BYTES = 200_000_000
ANTHROPIC_MAX_REQUESTS = 100_000
OK, FAULT, EXPIRE, INVALID = 0, 1, 2, 3


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class StoredFile:
    """An uploaded or generated file; generated ones get their content on first download."""

    id: str
    filename: str
    purpose: str
    created_at: float
    content: bytes | None = None
    batch: MockBatch | None = None
    kind: str = ""  # "output" / "error" for OpenAI's generated files, "gemini" for Gemini's Files API

    def info(self) -> dict[str, Any]:
        size = len(self.content) if self.content is not None else 0
        return {"id": self.id, "object": "file", "bytes": size, "created_at": int(self.created_at),
                "expires_at": None, "filename": self.filename, "purpose": self.purpose, "status": "processed",
                "status_details": None}


def classify(items: list[Any], flavor: str, faults: tuple[Fault, ...]) -> list[tuple[int, int]]:
    """(outcome, fault index) per parsed request: INVALID if its body would get a 400, else the first
    ``status`` or ``expire`` fault matching its text (placed by a hash of the body, like sync faults)."""
    usable = [(i, f) for i, f in enumerate(faults) if f.kind in ("status", "expire") and (f.times or 1) > 0]
    check = {"openai": validate_request, "gemini": gem.validate_generate_request}.get(
        flavor, anth.validate_messages_request)
    member = {"openai": "body", "gemini": "request"}.get(flavor, "params")
    out: list[tuple[int, int]] = []
    for item in items:
        body = item.get(member) if isinstance(item, dict) else None
        try:
            check(body)
        except RequestError:
            out.append((INVALID, -1))
            continue
        chosen = (OK, -1)
        if usable and body is not None:
            text = gem.contents_text(body) if flavor == "gemini" else messages_text(body["messages"])
            for index, fault in usable:
                if fault.match is not None and fault.match not in text:
                    continue
                if fault.rate < 1.0 and unit_hash(request_identity(body), index, 0) >= fault.rate:
                    continue
                chosen = (EXPIRE if fault.kind == "expire" else FAULT, index)
                break
        out.append(chosen)
    return out


def parse_openai_input(content: bytes, endpoint: str) -> tuple[list[bytes], list[str], list[Any], list[dict[str, Any]]]:
    """Lines, custom ids, parsed lines and validation errors (with 1-based line numbers, as OpenAI)."""
    errors: list[dict[str, Any]] = []
    lines = [line for line in content.split(b"\n") if line.strip()]
    ids: list[str] = []
    items: list[Any] = []
    seen: set[str] = set()

    def fail(code: str, message: str, line: int | None) -> None:
        if len(errors) < 20:
            errors.append({"code": code, "message": message, "param": None, "line": line})

    if len(lines) > OPENAI_MAX_LINES:
        fail("too_many_requests", f"The input file has {len(lines):,} requests; the limit is 50,000.", None)
    if len(content) > OPENAI_MAX_BYTES:
        fail("file_too_large", "The input file is larger than 200 MB.", None)
    for number, line in enumerate(lines, 1):
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        items.append(item)
        if not isinstance(item, dict):
            fail("invalid_json_line", "This line is not a JSON object.", number)
            ids.append("")
            continue
        custom_id = item.get("custom_id")
        ids.append(str(custom_id))
        if not isinstance(custom_id, str) or not custom_id:
            fail("missing_required_parameter", "custom_id is required.", number)
        elif custom_id in seen:
            fail("duplicate_custom_id", f"The custom_id {custom_id!r} is used more than once.", number)
        seen.add(str(custom_id))
        if item.get("method") != "POST":
            fail("invalid_method", "Only POST is supported.", number)
        if item.get("url") != endpoint:
            fail("mismatched_url", f"The url must match the batch endpoint {endpoint}.", number)
        if not isinstance(item.get("body"), dict):
            fail("missing_required_parameter", "body must be an object.", number)
    return lines, ids, items, errors


@dataclass
class MockBatch:
    """One batch and its clock-driven life."""

    id: str
    flavor: str  # "openai" | "anthropic" | "gemini"
    created_at: float
    duration_s: float
    lines: list[bytes]
    custom_ids: list[str]
    outcomes: list[tuple[int, int]]
    faults: tuple[Fault, ...]
    endpoint: str = "/v1/chat/completions"
    model: str | None = None
    input_file_id: str | None = None
    metadata: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    cancel_at: float | None = None
    output_file: StoredFile | None = None
    error_file: StoredFile | None = None
    _results: bytes | None = None
    _inlined: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        order = list(range(len(self.lines)))
        rng = random.Random(self.id)
        self.fraction = [rng.random() for _ in order]  # where in the run each line finishes
        ok: list[float] = []
        bad: list[float] = []
        for n, (outcome, _) in enumerate(self.outcomes):
            if outcome != EXPIRE:
                (ok if outcome == OK else bad).append(self.line_done(n))
        self._ok_times, self._bad_times = sorted(ok), sorted(bad)

    # -- the timeline ------------------------------------------------------------------------------
    @property
    def run_start(self) -> float:
        return self.created_at + (0.0 if self.flavor == "anthropic" else 0.1 * self.duration_s)

    @property
    def run_end(self) -> float:
        expiring = any(o == EXPIRE for o, _ in self.outcomes)
        if self.flavor != "openai" or expiring:
            return self.created_at + self.duration_s
        return self.created_at + 0.9 * self.duration_s

    @property
    def end(self) -> float:
        if self.cancel_at is not None:
            return self.cancel_at + CANCEL_FRACTION * self.duration_s
        if self.flavor == "openai" and self.errors:
            return self.run_start
        return self.created_at + self.duration_s

    def line_done(self, n: int) -> float:
        span = {"openai": 0.8, "gemini": 0.9}.get(self.flavor, 1.0) * self.duration_s
        return self.run_start + self.fraction[n] * span

    def final(self, n: int) -> int:
        """A line's outcome once the batch has ended (cancelled if it was not done at the cancel)."""
        outcome = self.outcomes[n][0]
        if self.cancel_at is not None and (outcome == EXPIRE or self.line_done(n) > self.cancel_at):
            return -1  # cancelled
        return outcome

    def can_cancel(self, now: float) -> bool:
        return self.cancel_at is None and now < self.end

    def ended(self, now: float) -> bool:
        return now >= self.end

    def counts_at(self, now: float) -> tuple[int, int]:
        upto = min(now, self.cancel_at) if self.cancel_at is not None else now
        return bisect.bisect_right(self._ok_times, upto), bisect.bisect_right(self._bad_times, upto)

    def openai_status(self, now: float) -> str:
        if self.cancel_at is not None:
            return "cancelled" if now >= self.end else "cancelling"
        if self.errors:
            return "failed" if now >= self.end else "validating"
        if now < self.run_start:
            return "validating"
        if now < self.run_end:
            return "in_progress"
        if any(o == EXPIRE for o, _ in self.outcomes):
            return "expired"
        return "finalizing" if now < self.end else "completed"

    def gemini_state(self, now: float) -> str:
        """The ``BATCH_STATE_*`` word without its prefix."""
        if self.cancel_at is not None:
            return "CANCELLED" if now >= self.end else "RUNNING"
        if now < self.run_start:
            return "PENDING"
        if now < self.end:
            return "RUNNING"
        return "EXPIRED" if any(o == EXPIRE for o, _ in self.outcomes) else "SUCCEEDED"

    # -- results (built on first download) -----------------------------------------------------------
    def openai_results(self) -> tuple[bytes, bytes]:
        """(output file, error file) contents, each in shuffled order."""
        out: list[str] = []
        err: list[str] = []
        created = int(self.created_at)
        for n, line in enumerate(self.lines):
            outcome, fault_index = self.final(n), self.outcomes[n][1]
            custom_id = self.custom_ids[n]
            req = f"batch_req_{self.id[-12:]}{n:012x}"
            if outcome in (-1, EXPIRE):
                code, message = (("batch_cancelled", "This request was not executed because the batch was cancelled.")
                                 if outcome == -1 else
                                 ("batch_expired", "This request could not be executed before the completion "
                                                   "window expired."))
                err.append(_dumps({"id": req, "custom_id": custom_id, "response": None,
                                   "error": {"code": code, "message": message}}))
                continue
            body = json.loads(line)["body"]
            if outcome == OK:
                identity = hashlib.blake2b(line, digest_size=16).hexdigest()  # cheaper than the canonical form
                completion = build_completion(body, identity, created)
                out.append(_dumps({"id": req, "custom_id": custom_id, "response": {
                    "status_code": 200, "request_id": req, "body": completion}, "error": None}))
                continue
            if outcome == INVALID:
                try:
                    validate_request(body)
                    message, param = "Invalid request.", None
                except RequestError as exc:
                    message, param = exc.message, exc.param
                status, payload = 400, {"error": {"message": message, "type": "invalid_request_error",
                                                  "param": param, "code": None}}
            else:
                fault = self.faults[fault_index]
                status, payload = fault.status, status_error_body(fault)
            err.append(_dumps({"id": req, "custom_id": custom_id, "response": {
                "status_code": status, "request_id": req, "body": payload}, "error": None}))
        rng = random.Random(self.id + "/order")
        rng.shuffle(out)
        rng.shuffle(err)
        return "".join(s + "\n" for s in out).encode(), "".join(s + "\n" for s in err).encode()

    def anthropic_results(self, cache: anth.PromptCache) -> bytes:
        if self._results is not None:
            return self._results
        out: list[str] = []
        for n, line in enumerate(self.lines):
            outcome, fault_index = self.final(n), self.outcomes[n][1]
            request = json.loads(line)
            custom_id, params = request["custom_id"], request["params"]
            request_id = f"req_{self.id[-12:]}{n:012x}"
            if outcome == -1:
                result: dict[str, Any] = {"type": "canceled"}
            elif outcome == EXPIRE:
                result = {"type": "expired"}
            elif outcome == FAULT:
                result = {"type": "errored", "error": anth.status_error_body(self.faults[fault_index], request_id)}
            elif outcome == INVALID:
                try:
                    anth.validate_messages_request(params)
                    invalid = "Invalid request."
                except RequestError as exc:
                    invalid = exc.message
                result = {"type": "errored", "error": anth.error_body(invalid, "invalid_request_error", request_id)}
            else:
                identity = hashlib.blake2b(line, digest_size=16).hexdigest()
                result = {"type": "succeeded",
                          "message": anth.build_message(params, identity, cache, service_tier="batch")}
            out.append(_dumps({"custom_id": custom_id, "result": result}))
        random.Random(self.id + "/order").shuffle(out)
        self._results = "".join(s + "\n" for s in out).encode()
        return self._results

    def anthropic_counts(self, now: float) -> dict[str, int]:
        if not self.ended(now):
            return {"processing": len(self.lines), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        tally = {OK: 0, FAULT: 0, EXPIRE: 0, INVALID: 0, -1: 0}
        for n in range(len(self.lines)):
            tally[self.final(n)] += 1
        return {"processing": 0, "succeeded": tally[OK], "errored": tally[FAULT] + tally[INVALID],
                "canceled": tally[-1], "expired": tally[EXPIRE]}

    def gemini_results(self) -> list[dict[str, Any]]:
        """The inlined responses of an ended Gemini batch, in request order (lines a cancel stopped are
        left out; each carries its request's ``metadata`` back)."""
        if self._inlined is not None:
            return self._inlined
        out: list[dict[str, Any]] = []
        for n, line in enumerate(self.lines):
            outcome, fault_index = self.final(n), self.outcomes[n][1]
            if outcome in (-1, EXPIRE):
                continue
            item = json.loads(line)
            request = item.get("request")
            entry: dict[str, Any] = {"metadata": item["metadata"]} if item.get("metadata") is not None else {}
            if item.get("key") is not None:  # a line of an input file: its result line carries the key
                entry["key"] = item["key"]
            if outcome == OK:
                identity = hashlib.blake2b(line, digest_size=16).hexdigest()
                entry["response"] = gem.build_response(request, self.model or "mock-model", identity)
            else:
                if outcome == INVALID:
                    try:
                        gem.validate_generate_request(request)
                        message = "Invalid request."
                    except RequestError as exc:
                        message = exc.message
                    error = gem.error_body(400, message)["error"]
                else:
                    error = gem.status_error_body(self.faults[fault_index])["error"]
                error["code"] = gem.GRPC_CODES.get(error["status"], 2)  # a google.rpc.Status, not HTTP
                del error["status"]
                entry["error"] = error
            out.append(entry)
        self._inlined = out
        return out
