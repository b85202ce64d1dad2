"""A separate process running a cached batch, for kill / interrupt / two-kernel tests.

Usage: batch_worker.py BASE_URL CACHE_DIR PREFIX N [--sync]
Prints "ack <index>" after each completed prompt (a response is reported only once its cache
entry is committed), and on Ctrl-C prints the partial result's counts.
"""

from __future__ import annotations

import asyncio
import sys

from seeds_nb import OpenAIClient


def main() -> None:
    base_url, cache_dir, prefix, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = OpenAIClient("gpt-4.1-mini", base_url=base_url, api_key="sk-worker-000000000",
                          cache_dir=cache_dir if cache_dir != "-" else None)
    prompts = [f"{prefix} {i}" for i in range(n)]

    def ack(done: int, total: int | None, response: object) -> None:
        print("ack", done, flush=True)

    if "--sync" in sys.argv:
        try:
            result = client.batch_generate_sync(prompts, max_concurrent=4, on_progress=ack)
        except KeyboardInterrupt:
            partial = client.last_run.result
            print("interrupted", partial.successful_count, partial.failed_count, partial.cancelled_count,
                  partial.stop_reason, flush=True)
            return
    else:
        result = asyncio.run(client.batch_generate(prompts, max_concurrent=8, on_progress=ack))
    print("done", result.successful_count, result.failed_count, result.cached_count, flush=True)


if __name__ == "__main__":
    main()
