"""How much of the rate-limit ceiling the client sustains flat out, and how many 429s it meets.

Runs the emulator over real HTTP with its window scaled down, drives one shared client from
several threads as fast as the pacer lets them, and counts what the server accepted and refused.

    .venv/bin/python bench/bench_pacing.py --limit 100 --window 5 --windows 8 --threads 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import threading
import time

import structlog

from connector.domain.demo_companies import DEMO_TOKEN
from connector.trackdechets import Pacer, ResponseInfo, RetryPolicy, TrackdechetsClient
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread

READ = "query Me { me { id } }"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    statuses: dict[int | None, int] = {}
    lock = threading.Lock()

    def on_response(info: ResponseInfo) -> None:
        with lock:
            statuses[info.status] = statuses.get(info.status, 0) + 1

    config = EmulatorConfig(rate_limit=args.limit, rate_window_seconds=args.window)
    with serve_in_thread(config) as served:
        pacer = Pacer(limit=args.limit, window=args.window)
        client = TrackdechetsClient(served.url, DEMO_TOKEN, pacer=pacer, on_response=on_response,
                                    retry=RetryPolicy(max_attempts=3, initial_backoff=0.05))
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                client.query(READ)

        started = time.monotonic()
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
        for t in threads:
            t.start()
        time.sleep(args.windows * args.window)
        stop.set()
        elapsed = time.monotonic() - started
        for t in threads:
            t.join(timeout=args.window + 5)
        client.close()

    accepted = statuses.get(200, 0)
    refused = statuses.get(429, 0)
    total = sum(statuses.values())
    ceiling = args.limit * elapsed / args.window
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    print(f"limit {args.limit}/{args.window:g}s, {args.threads} threads, {elapsed:.1f} s "
          f"(~{elapsed / args.window:.1f} windows)")
    print(f"requests: {total}  accepted: {accepted}  429: {refused}  other: {total - accepted - refused}")
    print(f"share of ceiling sustained: {accepted / ceiling:.1%} (goal >= 95%)")
    print(f"share answered 429: {refused / max(total, 1):.2%} (goal <= 1%)")


if __name__ == "__main__":
    main()
