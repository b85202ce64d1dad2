"""120,000 prompts through the Batch APIs on the mock, without one chat request. OpenAI: split into
three input files, run on a fake clock (no sleeping), with a refused and an expired line; Anthropic:
two batches on a compressed real clock, waited for; results aligned by custom_id across the parts."""

from __future__ import annotations

import time
from pathlib import Path

from seeds_nb import AnthropicClient, BadRequestError, BatchExpired, MockServer, OpenAIClient
from seeds_nb.mock import Fault

from _support import TEST_KEY

N = 120_000


async def test_120k_prompts_split_across_files_and_aligned(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    with MockServer(batch_duration_s=86_400, clock=lambda: now[0]) as server:
        server.add_fault(Fault(status=400, match="abstract 60000"))
        server.add_fault(Fault(kind="expire", match="abstract 119999"))
        client = OpenAIClient("gpt-4.1-mini", base_url=server.url, api_key=TEST_KEY)
        prompts = [f"Summarise abstract {i}" for i in range(N)]
        timings = {}
        started = time.perf_counter()
        job = await client.submit_batch(prompts, jobs_dir=tmp_path)
        timings["submit"] = time.perf_counter() - started
        assert [b.count for b in job.batches] == [50_000, 50_000, 20_000]
        assert [b.ranges for b in job.batches] == [[[0, 50_000]], [[50_000, 100_000]], [[100_000, 120_000]]]

        now[0] += 2 * 86_400  # "a day" later
        await job.refresh()
        assert [b.status for b in job.batches] == ["completed", "completed", "expired"]
        assert job.status == "expired" and job.counts.expired == 1 and job.counts.failed == 1

        started = time.perf_counter()
        result = await job.results()
        timings["results"] = time.perf_counter() - started
        print(f"120k batch job: submit {timings['submit']:.1f} s, results {timings['results']:.1f} s")

        assert len(result) == N and result.successful_count == N - 2 and sorted(result.errors) == [60_000, 119_999]
        assert isinstance(result.errors[60_000], BadRequestError) and isinstance(result.errors[119_999], BatchExpired)
        for i in (0, 1, 49_999, 50_000, 99_999, 100_000, 119_998):  # file boundaries
            assert f"'Summarise abstract {i}'" in result.contents[i]
        assert all(f"abstract {i}'" in text for i, text in enumerate(result.contents) if text is not None)
        assert result.total_cost_usd > 0 and server.request_count == 0  # no chat request was sent
        await client.aclose()


async def test_120k_prompts_through_anthropic_on_a_time_scale(tmp_path: Path) -> None:
    """The same size through Anthropic's Message Batches (100,000 requests per batch), on the mock's
    real clock compressed so "up to 24 h" takes 1 s: waited for, ended cleanly, every line aligned."""
    with MockServer(batch_duration_s=1.0) as server:
        client = AnthropicClient("claude-haiku-4-5", base_url=server.anthropic_url, api_key=TEST_KEY)
        prompts = [f"Summarise abstract {i}" for i in range(N)]
        job = await client.submit_batch(prompts, jobs_dir=tmp_path, max_tokens=50)
        assert [b.count for b in job.batches] == [100_000, 20_000]
        await job.wait(poll_interval=0.2, timeout=120)
        assert job.status == "completed" and job.raw_status == "ended" and job.counts.succeeded == N
        result = await job.results()
        assert len(result) == N and result.successful_count == N and not result.errors
        for i in (0, 99_999, 100_000, N - 1):  # the batch boundary
            assert f"'Summarise abstract {i}'" in result.contents[i]
        assert all(f"abstract {i}'" in text for i, text in enumerate(result.contents))
        assert result.provider == "anthropic" and server.request_count == 0  # no Messages request was sent
        await client.aclose()
