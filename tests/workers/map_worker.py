"""A separate process running ``client.map`` into a sink, for the kill-and-resume test.

Usage: map_worker.py BASE_URL CACHE_DIR SINK N
Prints "ack <done>" as rows finish (each one is in the cache by then) and "done <path>" at the end.
"""

from __future__ import annotations

import sys

from seeds_nb import OpenAIClient


def main() -> None:
    base_url, cache_dir, sink, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = OpenAIClient("gpt-4.1-mini", base_url=base_url, api_key="sk-worker-000000000", cache_dir=cache_dir)

    def ack(done: int, total: int | None, response: object) -> None:
        print("ack", done, flush=True)

    rows = ({"n": i, "word": f"w{i % 7}"} for i in range(n))
    path = client.map_sync(rows, "Say {word} for row {n}", sink=sink, max_concurrent=8, on_progress=ack)
    print("done", path, flush=True)
    client.close()


if __name__ == "__main__":
    main()
