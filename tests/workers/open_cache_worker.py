"""Wait for a start file, then open a (new) cache_dir and write one entry: many of these at once
race to create the same cache file, as kernels started together on one cache_dir do."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from seeds_nb.core.cache import ResponseCache


def main() -> int:
    cache_dir, start, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    deadline = time.monotonic() + 60
    while not start.exists():  # a start line for every process: the opens overlap as much as they can
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.001)
    cache = ResponseCache(cache_dir)
    cache.set(name, {"content": name})
    cache.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
