"""Every snippet of the batch-processing guide runs as written (import renamed) against the mock server.

The guide (tests/spec/batch-processing-guide.md, a verbatim copy of the contract) mixes
script-style blocks (``asyncio.run(...)``) and notebook-style blocks (top-level ``await`` with a
``client`` and ``prompts`` from earlier blocks). We run them in order in one namespace: script
blocks as plain code, notebook blocks on one persistent event loop, as a kernel would.
"""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest

from seeds_nb import MockServer

GUIDE = Path(__file__).parent / "spec" / "batch-processing-guide.md"


def guide_blocks() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    return [b.replace("seeds_clients", "seeds_nb") for b in re.findall(r"```python\n(.*?)```", text, re.S)]


def has_top_level_await(code: str) -> bool:
    try:
        compile(code, "<guide>", "exec")
    except SyntaxError:
        return True
    return False


def test_guide_has_the_expected_snippets() -> None:
    assert len(guide_blocks()) == 11


def test_every_guide_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # the guide caches to ./cache
    with MockServer(latency_s=0.0) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-guide-test-0000")
        from seeds_nb import Message, OpenAIClient

        ns: dict[str, object] = {"__name__": "__guide__"}
        with asyncio.Runner() as runner:
            # What a notebook has before the await-style blocks: a client and prompts.
            first_client = ns["client"] = OpenAIClient(model="gpt-4.1-mini")
            ns["prompts"] = [[Message(role="user", content=f"Explain {x} in one line")] for x in ("C", "D", "E")]
            for code in guide_blocks():
                if has_top_level_await(code):
                    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
                    coro = eval(compile(code, "<guide>", "exec", flags=flags), ns)
                    if coro is not None:
                        runner.run(coro)
                else:
                    exec(compile(code, "<guide>", "exec"), ns)
            # Block 9 defines process_large_batch over a global client; block 10 closed the last
            # one (its `async with`), so give it an open one, as a notebook user would.
            cached_client = ns["client"]
            ns["client"] = OpenAIClient(model="gpt-4.1-mini")
            responses = runner.run(ns["process_large_batch"]([f"p{i}" for i in range(250)], 100))  # type: ignore[operator]
            assert len(responses) == 250 and all(r is not None for r in responses)
            for c in (ns["client"], cached_client, first_client):
                runner.run(c.aclose())  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "Successful: 4" in out and "Failed: 0" in out
    assert "Progress: 3/3 (100%)" in out
    assert "Request 3: 1, 2, 3, 4" in out  # streaming "Count to 4"
    assert re.search(r"Total cost: \$0\.\d{4}", out)
    assert re.search(r"Total carbon: \d\.\d{6} kgCO2eq", out)
    assert "Summarizing: 3/3" in out
    assert ns["summaries"] and len(ns["summaries"]) == 3  # type: ignore[arg-type]
    result1, result2 = ns["result1"], ns["result2"]
    assert result2.cached_count == len(ns["prompts"]) and result2.total_cost_usd == 0  # type: ignore[attr-defined]
    assert result1.total_cost_usd > 0  # type: ignore[attr-defined]
