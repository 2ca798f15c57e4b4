"""Records per second through ingest + map + validate + state store (no network), and peak RSS.

Generates a CSV of N rows (default 100,000) from the demo's sample export, then runs one ingest
pass in a fresh subprocess: CSV drop-folder source → compiled BSDD mapping → local checks →
validation of every create document against the packaged schema → SQLite state store.

    .venv/bin/python bench/bench_ingest.py --rows 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path


def generate(folder: Path, rows: int) -> None:
    template = (
        resources.files("connector.demo").joinpath("enlevements_mars.csv").read_text("utf-8").splitlines()
    )
    header, samples = template[0], [t for t in template[1:] if "85243162000124" not in t]
    (folder / "inbox").mkdir(parents=True)
    with (folder / "inbox" / "big.csv").open("w", encoding="utf-8") as out:
        out.write(header + "\n")
        for i in range(rows):
            row = samples[i % len(samples)]
            out.write(row.replace(row.split(";", 1)[0], f"BENCH-{i:07d}", 1) + "\n")
    mapping = resources.files("connector.demo").joinpath("bsdd_csv.toml").read_text("utf-8")
    (folder / "mapping.toml").write_text(mapping, "utf-8")


def run_child(folder: Path) -> dict[str, float]:
    from connector.engine.context import Binding, Pipeline
    from connector.engine.ingest import ingest
    from connector.mapping.loading import load_mapping
    from connector.sources import open_source
    from connector.state import open_state_store
    from connector.trackdechets.schema import packaged_schema

    schema = packaged_schema()
    mapping = load_mapping(folder / "mapping.toml", schema)
    source = open_source(mapping.source, base_dir=folder, mapping_name=mapping.name, state_dir=folder / "var")
    store = open_state_store(f"sqlite:///{folder}/var/state.db")
    pipeline = Pipeline(store=store, bindings=[Binding(mapping, source)], schema=schema)
    started = time.perf_counter()
    counts = ingest(pipeline, threading.Event())
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "records": counts.get("read", 0),
        "new": counts.get("new", 0),
        "seconds": elapsed,
        "records_per_second": counts.get("read", 0) / elapsed,
        "peak_rss_mb": peak_kb / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import os

        from connector.logs import configure_logging

        # JSON log lines as the daemon writes them (one per state change), sent to /dev/null: their
        # cost is part of the figure, their text is not wanted here.
        with open(os.devnull, "w") as devnull:
            configure_logging("INFO", "json", stream=devnull)
            result = run_child(args.child)
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        generate(folder, args.rows)
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(folder)], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"rows": args.rows, **{k: round(v, 1) for k, v in result.items()}}, indent=2))


if __name__ == "__main__":
    main()
