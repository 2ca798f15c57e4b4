"""Throughput and memory of the sources on 1,000,000 rows, and the cost of an idle cursor poll.

Each measurement runs in its own subprocess so that ``ru_maxrss`` is the peak RSS of reading that
source alone (generation happens in the parent). Run from the repo root:

    .venv/bin/python bench/bench_sources.py                 # csv, sqlite, postgresql; 1,000,000 rows
    .venv/bin/python bench/bench_sources.py --rows 100000 --only csv sqlite

Goals (issue 5): >= 5,000 rows/s, <= 200 MB peak RSS, idle poll served by an index.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from connector.sources import open_source  # noqa: E402
from connector.sources.specs import CsvSourceSpec, SqlSourceSpec  # noqa: E402
from connector.sources.sql_query import cursor_page, null_cursor_page  # noqa: E402

T0 = datetime(2025, 1, 1, 8, 0, 0)
NAMES = ["Dupont Frères", "Société Générale des Déchets", "Hélène Müller", "Garage de l'Étoile", "Ça & Là"]


def generate_csv(path: Path, rows: int) -> None:
    rnd = random.Random(1)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["id", "producteur", "siret", "dechet", "poids", "date_enlevement", "commentaire"])
        for i in range(1, rows + 1):
            writer.writerow([i, rnd.choice(NAMES), "35600000000048", "16 01 04*", f"{rnd.random() * 9:.3f}"
                             .replace(".", ","), f"{1 + i % 28:02d}/03/2026", "prix 12 € HT; « urgent »"])


def generate_sqlite(path: Path, rows: int) -> str:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE enlevements (id INTEGER PRIMARY KEY, producteur TEXT, siret TEXT, dechet TEXT, "
               "poids NUMERIC, updated_at TEXT)")
    chunk = 50_000
    for start in range(1, rows + 1, chunk):
        db.executemany("INSERT INTO enlevements VALUES (?, ?, ?, ?, ?, ?)", (
            (i, NAMES[i % 5], "35600000000048", "16 01 04*", i % 1000 / 100,
             (T0 + timedelta(seconds=i // 10)).isoformat(sep=" "))
            for i in range(start, min(start + chunk, rows + 1))))
    db.execute("CREATE INDEX ix_enlevements_updated_at ON enlevements (updated_at, id)")
    db.commit()
    db.close()
    return f"sqlite:///{path}"


def generate_postgresql(url: str, rows: int) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE enlevements (id INTEGER PRIMARY KEY, producteur TEXT, siret TEXT, "
                             "dechet TEXT, poids NUMERIC(10,3), updated_at TIMESTAMP)"))
        conn.execute(sa.text(
            "INSERT INTO enlevements SELECT g, 'Société ' || (g % 5), '35600000000048', '16 01 04*', "
            "(g % 1000) / 100.0, TIMESTAMP '2025-01-01 08:00' + (g / 10) * INTERVAL '1 second' "
            "FROM generate_series(1, :n) g"), {"n": rows})
        conn.execute(sa.text("CREATE INDEX ix_enlevements_updated_at ON enlevements (updated_at, id)"))
        conn.execute(sa.text("ANALYZE enlevements"))
    engine.dispose()


def _drain(source: Any, checkpoint: dict[str, Any] | None) -> tuple[int, int, dict[str, Any] | None]:
    """What the engine does: keep each batch's checkpoint (serialised), then acknowledge."""
    records = problems = 0
    for batch in source.read(checkpoint):
        records += len(batch.records)
        problems += len(batch.problems)
        if batch.checkpoint is not None:
            checkpoint = json.loads(json.dumps(batch.checkpoint))
        source.acknowledge(batch)
    return records, problems, checkpoint


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, target: str, workdir: Path, batch_size: int) -> dict[str, Any]:
    state = workdir / "state"
    if kind == "csv":
        spec: Any = CsvSourceSpec(type="csv", folder=target, key=["id"], stable_seconds=0,
                                  batch_size=batch_size)
    else:
        spec = SqlSourceSpec(type="sql", url=target, table="enlevements", key=["id"],
                             cursor_column="updated_at", lag_seconds=1, batch_size=batch_size)
    source = open_source(spec, base_dir=workdir, mapping_name="bench", state_dir=state)
    started = time.perf_counter()
    records, problems, checkpoint = _drain(source, None)
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"source": kind, "records": records, "problems": problems,
                           "seconds": round(seconds, 1), "rows_per_s": round(records / seconds),
                           "peak_rss_mb": round(_peak_mb(), 1),
                           "checkpoint_bytes": len(json.dumps(checkpoint))}
    if kind != "csv":
        time.sleep(1.1)  # past the lag: this poll re-reads above the safe point, then moves it
        started = time.perf_counter()
        again, _, checkpoint = _drain(source, checkpoint)
        out["settle_poll_s"] = round(time.perf_counter() - started, 1)
        out["settle_poll_handed_again"] = again
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            idle, _, checkpoint = _drain(source, checkpoint)
            timings.append((time.perf_counter() - started) * 1000)
            assert idle == 0, idle
        out["idle_poll_ms_median"] = round(sorted(timings)[2], 2)
        out["explain"] = _explain(source, checkpoint)
        out["peak_rss_mb_after_polls"] = round(_peak_mb(), 1)
    source.close()
    return out


def _explain(source: Any, checkpoint: dict[str, Any] | None) -> list[str]:
    from connector.sources.sql_cursor import CursorState

    state = CursorState.from_checkpoint(checkpoint)
    rel, size = source.relation(), source.spec.batch_size
    # An idle poll runs two queries: rows above the safe point, and rows whose cursor is NULL.
    queries = [cursor_page(rel, "updated_at", ["id"], state.safe, None, size),
               null_cursor_page(rel, "updated_at", ["id"], None, size)]
    prefix = "EXPLAIN QUERY PLAN " if source.engine.dialect.name == "sqlite" else "EXPLAIN "
    plans = []
    with source.engine.connect() as conn:
        for query in queries:
            compiled = query.compile(dialect=source.engine.dialect, compile_kwargs={"literal_binds": True})
            plans += [" ".join(str(c) for c in row) for row in conn.exec_driver_sql(prefix + str(compiled))]
    return plans


def run_child(kind: str, target: str, workdir: Path, batch_size: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", kind, target, str(workdir), str(batch_size)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{kind} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--only", nargs="*", default=["csv", "sqlite", "postgresql"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
        kind, target, workdir, batch_size = args.child
        print(json.dumps(child(kind, target, Path(workdir), int(batch_size))))
        return
    print(f"# bench_sources {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.rows:,} rows, "
          f"batch {args.batch_size}")
    with tempfile.TemporaryDirectory(prefix="tdc-bench-") as tmp:
        work = Path(tmp)
        results = []
        if "csv" in args.only:
            (work / "inbox").mkdir()
            started = time.perf_counter()
            generate_csv(work / "inbox" / "export.csv", args.rows)
            print(f"generated CSV ({(work / 'inbox' / 'export.csv').stat().st_size / 1e6:.0f} MB) "
                  f"in {time.perf_counter() - started:.1f}s", flush=True)
            results.append(run_child("csv", str(work / "inbox"), work, args.batch_size))
            print(json.dumps(results[-1]), flush=True)
        if "sqlite" in args.only:
            url = generate_sqlite(work / "erp.sqlite", args.rows)
            results.append(run_child("sqlite", url, work, args.batch_size))
            print(json.dumps(results[-1]), flush=True)
        if "postgresql" in args.only:
            from tests.db_urls import temporary_database

            with temporary_database("postgresql") as url:
                generate_postgresql(url, args.rows)
                results.append(run_child("postgresql", url, work, args.batch_size))
                print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main()
