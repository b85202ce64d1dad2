"""Render the figures in docs/plots.md from real mock-server batches (needs kaleido and a Chromium).

Run from the repository root: ``.venv/bin/python scripts/render_plot_images.py``.
The batches meet injected 429s and 500s, a cache (a second pass over part of the prompts), and a
budget stop, so every panel has something to show.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from seeds_nb import MockServer, OpenAIClient, plots
from seeds_nb.mock import Fault

OUT = Path("docs/img")


async def batches() -> tuple[object, object, object]:
    with MockServer(latency_s=0.15, latency_jitter_s=0.25) as server, tempfile.TemporaryDirectory() as cache:
        server.add_fault(Fault(kind="status", status=429, rate=0.05, times=1, retry_after=0.3))
        server.add_fault(Fault(kind="status", status=500, match="topic 13"))
        client = OpenAIClient("gpt-4.1-mini", base_url=server.url, cache_dir=cache, electricity_mix_zone="FRA",
                              max_retries=2)
        prompts = [f"Write two sentences about topic {i}" + "!" * (i % 7) * 20 for i in range(400)]
        await client.batch_generate(prompts[:120], max_concurrent=16)  # warms the cache for a third
        main = await client.batch_generate(prompts, max_concurrent=16, max_cost_usd=0.08)
        big_client = OpenAIClient("gpt-4.1-mini", base_url=server.url, electricity_mix_zone="FRA")
        server.latency_s, server.latency_jitter_s = 0.0, 0.0
        big = await big_client.batch_generate((f"item {i}" for i in range(20_000)), max_concurrent=64)
        other = OpenAIClient("gpt-4.1", base_url=server.url, electricity_mix_zone="FRA")
        server.latency_s = 0.3
        compared = await other.batch_generate(prompts[:200], max_concurrent=16)
        for c in (client, big_client, other):
            await c.aclose()
    return main, big, compared


def main() -> None:
    result, big, other = asyncio.run(batches())
    figs = {
        "summary": plots.summary(result), "summary-large": plots.summary(big), "latency": plots.latency(result),
        "tokens": plots.tokens(result), "cost": plots.cost(result), "carbon": plots.carbon(result),
        "timeline": plots.timeline(result), "timeline-large": plots.timeline(big), "status": plots.status(result),
        "compare": plots.compare({"gpt-4.1-mini": result, "gpt-4.1": other}),
    }
    for name, fig in figs.items():
        width = 1200 if name in ("summary", "summary-large", "compare") else 1000
        fig.write_image(OUT / f"plots-{name}.png", width=width, height=fig.layout.height, scale=1)
        print("wrote", OUT / f"plots-{name}.png")


if __name__ == "__main__":
    main()
