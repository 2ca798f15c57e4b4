"""Bulk load through the real pipeline against the emulator over loopback HTTP.

Reports (a) HTTP requests per BSDD created and sealed (goal ≤ 0.41; one mutation per request
needs 2.0, the server's cap of five operations per request makes 0.40 the floor) and (b) with the
emulator's rate window scaled down, the share of the ceiling sustained and the share answered 429.

    .venv/bin/python bench/bench_push.py --records 1000 --limit 50 --window 5
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
from collections import Counter
from importlib import resources
from pathlib import Path

import structlog

from connector.domain.demo_companies import DEMO_TOKEN
from connector.runtime import build_runtime
from connector.service import run_step
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread


def write_inputs(folder: Path, records: int) -> None:
    demo = resources.files("connector.demo")
    lines = demo.joinpath("enlevements_mars.csv").read_text("utf-8").splitlines()
    header, row = lines[0], lines[2]
    (folder / "inbox").mkdir()
    body = [row.replace("BE-2026-0413", f"BULK-{i:06d}") for i in range(records)]
    (folder / "inbox" / "bulk.csv").write_text("\n".join([header, *body]) + "\n", "utf-8")
    (folder / "mapping.toml").write_text(demo.joinpath("bsdd_csv.toml").read_text("utf-8"), "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=50, help="emulator requests per window")
    parser.add_argument("--window", type=float, default=5.0, help="emulator window, seconds")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    config = EmulatorConfig(admin_enabled=True, rate_limit=args.limit, rate_window_seconds=args.window)
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp, serve_in_thread(config) as served:
        folder = Path(tmp)
        write_inputs(folder, args.records)
        (folder / "config.toml").write_text(
            '[mappings]\npaths = ["mapping.toml"]\n[state]\ndir = "var"\n'
            f'[trackdechets]\nurl = "{served.url}"\n'
            f"rate_limit_per_minute = {args.limit}\nrate_window_seconds = {args.window}\n"
            f"[safety]\nmax_creations_per_run = {args.records}\n",
            "utf-8",
        )
        settings = load_settings(folder / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": DEMO_TOKEN})
        runtime = build_runtime(settings, folder)
        stop = threading.Event()
        run_step(runtime.pipeline, "ingest", stop)
        # Keep the journal: its first entry opened the emulator's first rate window.
        before = len(served.emulator.journal)
        started = time.monotonic()
        while True:
            run_step(runtime.pipeline, "push", stop)
            states = Counter(r.state for r in runtime.store.records())
            if states.get("synced", 0) == args.records:
                break
            if time.monotonic() - started > 600:
                raise SystemExit(f"not done after 600 s: {states}")
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        runtime.close()
        journal = list(served.emulator.journal)
    pushed = journal[before:]
    statuses = Counter(e.get("status") for e in pushed)
    mutation_requests = [
        e
        for e in journal
        if any({"createForm", "markAsSealed"} & set(op["fields"]) for op in e["operations"])
    ]
    # Sustained share: answered requests per window of the emulator (the first request opens the first
    # window, like the platform's store); the first window (start-up, ingest) and the last (the
    # tail of the load) are partial and left out.
    t0 = min(e["at"] for e in journal)
    per_window = Counter(int((e["at"] - t0) // args.window) for e in journal if e.get("status") != 429)
    full = sorted(per_window)[1:-1] or sorted(per_window)
    answered = sum(per_window[w] for w in full)
    ceiling = args.limit * len(full)
    print(
        json.dumps(
            {
                "records": args.records,
                "http_requests": len(pushed),
                "http_requests_with_mutations": len(mutation_requests),
                "requests_per_bsd_created_and_sealed": round(len(pushed) / args.records, 3),
                "seconds": round(elapsed, 2),
                "full_windows": len(full),
                "answered_in_full_windows": answered,
                "ceiling_requests": ceiling,
                "share_of_ceiling_sustained": round(answered / ceiling, 3),
                "http_429": statuses.get(429, 0),
                "share_429": round(statuses.get(429, 0) / max(1, len(pushed)), 4),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
