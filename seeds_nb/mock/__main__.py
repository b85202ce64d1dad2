"""``python -m seeds_nb.mock``: run the mock server in the foreground, for people without an API key.

The first stdout line (flushed) is ``seeds_nb mock server on <url>`` so a parent process can read the
port when ``--port 0`` picked a free one.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

from ._server import MockServer


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m seeds_nb.mock",
        description="Run the seeds_nb mock LLM server (OpenAI and Anthropic APIs, chat and Batch).",
    )
    parser.add_argument("--port", type=int, default=8000, help="port to bind (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--latency-jitter", type=float, default=0.0, help="extra deterministic jitter (s)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--rpm", type=int, default=None, help="requests-per-minute limit (429 beyond)")
    parser.add_argument("--tpm", type=int, default=None, help="tokens-per-minute limit (429 beyond)")
    parser.add_argument("--rate-window", type=float, default=60.0,
                        help="seconds the --rpm/--tpm limits are enforced over, scaled (1: per second)")
    parser.add_argument("--batch-duration", type=float, default=2.0,
                        help="seconds a Batch API job takes (the providers' 24 h window, compressed)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = MockServer(
        latency_s=args.latency,
        api_key=args.api_key,
        rpm_limit=args.rpm,
        host=args.host,
        port=args.port,
        latency_jitter_s=args.latency_jitter,
        tpm_limit=args.tpm,
        batch_duration_s=args.batch_duration,
        rate_window_s=args.rate_window,
    ).start()
    print(f"seeds_nb mock server on {server.url}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
