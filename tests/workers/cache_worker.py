"""A separate process using a cache that cannot be written, for the disk-full and read-only tests.

Usage: cache_worker.py MODE BASE_URL CACHE_DIR
  full:     a cached batch, then the same process is limited to its files' current sizes
            (RLIMIT_FSIZE, as a full disk): a second batch must still return every (paid) answer, count
            the failed writes and warn once; with the limit lifted, a third batch is stored again
            (a failed write was rolled back).
  readonly: the cache (made read-only by the test) serves the cached prompts and answers the new ones.
Prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import warnings
from pathlib import Path

from seeds_nb import CacheWarning, OpenAIClient


def counts(result: object) -> dict[str, int]:
    return {"ok": result.successful_count, "failed": result.failed_count,  # type: ignore[attr-defined]
            "cached": result.cached_count, "write_failures": result.cache_write_failures}  # type: ignore[attr-defined]


def main() -> int:
    mode, base_url, cache_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    out: dict[str, object] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = OpenAIClient("gpt-4.1-mini", base_url=base_url, api_key="sk-worker-000000000", cache_dir=cache_dir)
        if mode == "full":
            out["first"] = counts(client.batch_generate_sync([f"stored {i}" for i in range(5)]))
            sizes = [p.stat().st_size for p in Path(cache_dir).iterdir() if p.is_file()]
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes), hard))
            second = client.batch_generate_sync([f"lost {i}" for i in range(10)], max_concurrent=4)
            out["second"] = counts(second)
            out["second_contents"] = sum(1 for c in second.contents if c)
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            out["third"] = counts(client.batch_generate_sync([f"kept {i}" for i in range(10)], max_concurrent=4))
            client.close()
            again = OpenAIClient("gpt-4.1-mini", base_url=base_url, api_key="sk-worker-000000000",
                                 cache_dir=cache_dir)
            every = [f"stored {i}" for i in range(5)] + [f"kept {i}" for i in range(10)]
            out["reread"] = counts(again.batch_generate_sync(every + [f"lost {i}" for i in range(10)]))
            again.close()
        else:
            result = client.batch_generate_sync([f"stored {i}" for i in range(5)] + [f"new {i}" for i in range(5)])
            out["batch"] = counts(result)
            out["read_only"] = client.cache.read_only if client.cache is not None else None
            client.close()
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
