"""120,000 prompts through the OpenAI Batch API on the mock: split into three input files, run on
a fake clock (no chat request, no sleeping), results aligned by custom_id across the files."""

from __future__ import annotations

import time
from pathlib import Path

from seeds_nb import BadRequestError, BatchExpired, Fault, MockServer, OpenAIClient

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
