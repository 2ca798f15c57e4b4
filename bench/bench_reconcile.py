"""What cursor-mode completeness costs: the key map kept while ingesting, and one reconciliation.

For each database, a table of ``--rows`` rows is read from scratch twice, in fresh processes: with
the reconciliation off (``reconcile_seconds = 0``, no key map) and on (the default); then, with it
on, the safe point is moved past every row and reconciliations are timed: with nothing missed,
and with ``--late`` rows committed below the safe point (back-dated). Run from the repo root:

    .venv/bin/python bench/bench_reconcile.py                       # sqlite, postgresql, mariadb
    .venv/bin/python bench/bench_reconcile.py --rows 20000 --only sqlite
"""

from __future__ import annotations

import argparse
import json
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

from connector.sources import SqlSource  # noqa: E402
from connector.sources.specs import SqlSourceSpec  # noqa: E402

T0 = datetime(2025, 1, 1, 8, 0, 0)


def generate(url: str, rows: int) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table("enlevements", meta,
                     sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
                     sa.Column("producteur", sa.String(100)), sa.Column("siret", sa.String(14)),
                     sa.Column("dechet", sa.String(20)), sa.Column("poids", sa.Numeric(10, 3)),
                     sa.Column("updated_at", sa.DateTime),
                     sa.Index("ix_enlevements_updated_at", "updated_at", "id"))
    meta.create_all(engine)
    chunk = 20_000
    for start in range(1, rows + 1, chunk):
        with engine.begin() as conn:
            conn.execute(table.insert(), [
                {"id": i, "producteur": f"Société {i % 5}", "siret": "35600000000048", "dechet": "16 01 04*",
                 "poids": i % 1000 / 100, "updated_at": T0 + timedelta(seconds=i // 10)}
                for i in range(start, min(start + chunk, rows + 1))])
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _drain(source: SqlSource, checkpoint: dict[str, Any] | None) -> tuple[int, int, dict[str, Any] | None]:
    records = late = 0
    for batch in source.read(checkpoint):
        records += len(batch.records)
        late += batch.found_late
        if batch.checkpoint is not None:
            checkpoint = json.loads(json.dumps(batch.checkpoint))
        source.acknowledge(batch)
    return records, late, checkpoint


def child(url: str, state_dir: Path, reconcile: float, late: int, batch_size: int) -> dict[str, Any]:
    clock = Clock()
    spec = SqlSourceSpec(type="sql", url=url, table="enlevements", key=["id"], cursor_column="updated_at",
                         batch_size=batch_size, reconcile_seconds=reconcile)
    source = SqlSource(spec, mapping_name="bench", state_dir=state_dir, clock=clock)
    started = time.perf_counter()
    records, _, checkpoint = _drain(source, None)
    out: dict[str, Any] = {"reconcile_seconds": reconcile, "records": records,
                           "first_read_s": round(time.perf_counter() - started, 1)}
    side = state_dir / "bench.cursor.sqlite"
    if reconcile <= 0:
        source.close()
        out["side_file_mb"] = round(side.stat().st_size / 1e6, 1)
        return out
    clock.now += spec.lag_seconds + 1
    _drain(source, checkpoint)  # the safe point moves past every row
    _, _, checkpoint = _drain(source, checkpoint)
    timings = []
    for _ in range(3):
        clock.now += reconcile
        started = time.perf_counter()
        again, found, checkpoint = _drain(source, checkpoint)
        timings.append(time.perf_counter() - started)
        assert again == found == 0, (again, found)
    out["reconcile_nothing_missed_s"] = round(sorted(timings)[1], 2)
    with source.engine.begin() as conn:  # committed below the safe point: only reconciliation sees them
        conn.execute(sa.text("INSERT INTO enlevements (id, producteur, siret, dechet, poids, updated_at) "
                             "VALUES (:id, 'Late', '35600000000048', '16 01 04*', 1, :at)"),
                     [{"id": records + i, "at": T0 + timedelta(seconds=i)} for i in range(1, late + 1)])
    clock.now += reconcile
    started = time.perf_counter()
    again, found, checkpoint = _drain(source, checkpoint)
    out[f"reconcile_{late}_late_s"] = round(time.perf_counter() - started, 2)
    out["found_late"] = found
    source.close()
    out["side_file_mb"] = round(side.stat().st_size / 1e6, 1)
    return out


def run_child(url: str, state_dir: Path, reconcile: float, late: int, batch_size: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", url, str(state_dir), str(reconcile), str(late),
               str(batch_size)]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--late", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--only", nargs="*", default=["sqlite", "postgresql", "mariadb"])
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
        url, state_dir, reconcile, late, batch_size = args.child
        print(json.dumps(child(url, Path(state_dir), float(reconcile), int(late), int(batch_size))))
        return
    from tests.db_urls import temporary_database

    print(f"# bench_reconcile {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.rows:,} rows, {args.late} late")
    for dialect in args.only:
        with temporary_database(dialect) as url, tempfile.TemporaryDirectory(prefix="tdc-bench-") as tmp:
            started = time.perf_counter()
            generate(url, args.rows)
            print(f"{dialect}: generated in {time.perf_counter() - started:.1f}s", flush=True)
            for reconcile in (0.0, 300.0):
                state = Path(tmp) / f"state-{reconcile:g}"
                result = run_child(url, state, reconcile, args.late, args.batch_size)
                print(json.dumps({"dialect": dialect, **result}), flush=True)


if __name__ == "__main__":
    main()
