"""The ``/metrics`` + ``/healthz`` server under a flood of idle connections (loopback only).

Opens N connections that never send a byte, then times ``/healthz`` several times and counts the
process's descriptors and threads during and after the flood. Run from the repo root:

    .venv/bin/python bench/bench_local_http.py --idle 1000 --probes 20
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.health import HealthCheck, StepStatus  # noqa: E402
from connector.logs import configure_logging  # noqa: E402
from connector.metrics import ConnectorMetrics, MetricsServer  # noqa: E402


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def probe(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=5) as answer:
        answer.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--idle", type=int, default=1000, help="idle connections to open")
    parser.add_argument("--probes", type=int, default=20, help="/healthz requests to time")
    args = parser.parse_args()
    configure_logging("WARNING", "console")

    status = StepStatus()
    status.register("push", 3600)  # healthy for the whole run: a 503 would mean a stale step, not load
    status.succeeded("push", 0.1)
    metrics = ConnectorMetrics(records_by_state=lambda: {"pending": 1}, rate_budget=lambda: 1, status=status)
    with MetricsServer("127.0.0.1", 0, metrics.registry, HealthCheck(status)) as server:
        url = f"{server.url}/healthz"
        quiet = [probe(url) for _ in range(args.probes)]
        base_fds, base_threads = fds(), threading.active_count()
        started = time.perf_counter()
        flood = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(args.idle)]
        connect_time = time.perf_counter() - started
        time.sleep(0.5)  # let the accept loop take what it will
        loud = [probe(url) for _ in range(args.probes)]
        during_fds, during_threads = fds(), threading.active_count()
        held = getattr(server._server, "open_connections", "not counted")
        for sock in flood:
            sock.close()
        deadline = time.monotonic() + 10
        while getattr(server._server, "open_connections", 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        after_fds = fds()
    print(f"/healthz quiet: median {statistics.median(quiet) * 1000:.1f} ms, max {max(quiet) * 1000:.1f} ms")
    print(f"opening the {args.idle} idle connections took {connect_time:.2f} s")
    print(f"/healthz under {args.idle} idle connections: median {statistics.median(loud) * 1000:.1f} ms, "
          f"max {max(loud) * 1000:.1f} ms")
    cap = getattr(server._server, "max_connections", "none")
    print(f"server-side connections held during the flood: {held} (cap {cap})")
    print(f"descriptors: baseline {base_fds}, during {during_fds} (of which {args.idle} are the client's), "
          f"after {after_fds}")
    print(f"threads: baseline {base_threads}, during {during_threads}")


if __name__ == "__main__":
    main()
