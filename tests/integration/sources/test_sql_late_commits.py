"""Late commits in cursor mode, with DEFAULT settings, on SQLite, PostgreSQL and MariaDB.

A transaction that stays open longer than ``lag_seconds`` can commit a row whose cursor value is
equal to (tie) or older than (back-dated) the safe point the cursor already moved to. The cursor
query (``updated_at > safe``) can never see it; the reconciliation (every ``reconcile_seconds``)
must, and must say so: one WARNING per row, a ``found_late`` count on the batch.

Time is driven explicitly (the source's clock is a fake, polls are called one by one); the
database side is real: the long transaction is a second connection left open across polls.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from erp_tables import Db, enlevements
from structlog.testing import capture_logs

from connector.sources import SqlSource, open_source
from connector.sources import sql_source as sql_source_module
from connector.sources.specs import SqlSourceSpec

T0 = datetime(2026, 3, 2, 8, 0, 0)
DEFAULTS = SqlSourceSpec(type="sql", url="sqlite://", table="t", key=["id"], cursor_column="c")


class FakeClock:
    def __init__(self) -> None:
        self.now = 50_000.0

    def __call__(self) -> float:
        return self.now


class Engine:
    """What the engine does with a source: commit each batch (checkpoint), then acknowledge."""

    def __init__(self, src: SqlSource) -> None:
        self.src = src
        self.checkpoint: dict[str, Any] | None = None
        self.received: list[str] = []
        self.found_late = 0

    def poll(self) -> list[str]:
        keys: list[str] = []
        for batch in self.src.read(self.checkpoint):
            self.checkpoint = batch.checkpoint
            keys += [r.key for r in batch.records]
            self.found_late += batch.found_late
            self.src.acknowledge(batch)
        self.received += keys
        return keys


def make(db: Db, state_dir: Path, clock: FakeClock, **spec: Any) -> Engine:
    """A cursor source with the DEFAULT lag and reconciliation interval unless overridden."""
    options: dict[str, Any] = {"type": "sql", "url": db.url, "table": "enlevements", "key": ["id"],
                               "cursor_column": "updated_at", **spec}
    src = open_source(SqlSourceSpec(**options), base_dir=state_dir, mapping_name="erp", state_dir=state_dir)
    assert isinstance(src, SqlSource)
    src._clock = clock
    return Engine(src)


def row(i: int, at: datetime) -> dict[str, Any]:
    return {"id": i, "producteur": f"P{i}", "poids": "1.500", "updated_at": at}


def move_safe_point_past(engine: Engine, clock: FakeClock) -> None:
    """Two polls more than the lag apart: the safe point reaches the highest value seen."""
    engine.poll()
    clock.now += DEFAULTS.lag_seconds + 1
    engine.poll()
    assert engine.checkpoint is not None
    assert engine.checkpoint["safe"] is not None


@pytest.mark.parametrize("offset", [pytest.param(0, id="tie"), pytest.param(-7, id="back-dated")])
def test_row_committed_at_or_below_the_safe_point_is_found_by_reconciliation(
        db: Db, state_dir: Path, offset: int) -> None:
    clock = FakeClock()
    engine = make(db, state_dir, clock)
    db.insert(enlevements, row(1, T0), row(2, T0 + timedelta(seconds=10)))
    move_safe_point_past(engine, clock)
    assert sorted(engine.received) == ["1", "2"]
    db.insert(enlevements, row(3, T0 + timedelta(seconds=10 + offset)))  # committed too late
    clock.now += 30
    assert engine.poll() == []  # the cursor cannot see it: cursor > safe point
    clock.now += DEFAULTS.reconcile_seconds
    with capture_logs() as logs:
        assert engine.poll() == ["3"]
    late = [entry for entry in logs if entry["event"] == "sql_row_found_late"]
    assert len(late) == 1
    assert late[0]["log_level"] == "warning"
    assert (late[0]["mapping"], late[0]["key"]) == ("erp", "3")
    assert late[0]["behind_safe_point"] == f"{-offset:g} s"
    assert late[0]["missed_for_at_most_s"] == DEFAULTS.reconcile_seconds + 30 + DEFAULTS.lag_seconds + 1
    assert engine.found_late == 1
    clock.now += DEFAULTS.reconcile_seconds
    assert engine.poll() == []  # known now: never handed over twice
    assert sorted(engine.received) == ["1", "2", "3"]


def test_reconciliation_off_loses_the_row(db: Db, state_dir: Path) -> None:
    """What the defaults protect against: without reconciliation the back-dated row is never read."""
    clock = FakeClock()
    engine = make(db, state_dir, clock, reconcile_seconds=0)
    db.insert(enlevements, row(1, T0), row(2, T0 + timedelta(seconds=10)))
    move_safe_point_past(engine, clock)
    db.insert(enlevements, row(3, T0 + timedelta(seconds=3)))
    for _ in range(3):
        clock.now += DEFAULTS.reconcile_seconds
        engine.poll()
    assert sorted(engine.received) == ["1", "2"]


def test_long_transaction_open_across_polls_commits_below_the_safe_point(db: Db, state_dir: Path) -> None:
    """The real race, 20 (simulated) seconds long: a second connection opens a transaction and
    inserts a row stamped with the transaction's start time; other rows commit with later stamps;
    the cursor polls and moves past the stamp while the transaction is still open; then it commits.
    """
    clock = FakeClock()
    engine = make(db, state_dir, clock)
    db.insert(enlevements, row(1, T0), row(2, T0 + timedelta(seconds=2)))  # committed before
    long_writer = sa.create_engine(db.url, poolclass=sa.NullPool)
    conn = long_writer.connect()
    try:
        transaction = conn.begin()
        conn.execute(enlevements.insert(), [row(10, T0 + timedelta(seconds=1))])  # stamped at its start
        if db.dialect != "sqlite":  # SQLite has one writer at a time; servers go on committing
            db.insert(enlevements, row(3, T0 + timedelta(seconds=5)), row(4, T0 + timedelta(seconds=9)))
        for _ in range(4):  # 4 polls, 24 s with the transaction open; the safe point moves past it
            engine.poll()
            clock.now += DEFAULTS.lag_seconds + 1
        assert engine.checkpoint is not None
        assert engine.checkpoint["safe"] is not None
        assert "10" not in engine.received
        transaction.commit()
    finally:
        conn.close()
        long_writer.dispose()
    assert engine.poll() == []  # committed below the safe point: the cursor cannot see it
    clock.now += DEFAULTS.reconcile_seconds
    assert engine.poll() == ["10"]
    assert engine.found_late == 1
    expected = ["1", "2", "10"] if db.dialect == "sqlite" else ["1", "2", "3", "4", "10"]
    assert sorted(engine.received, key=int) == sorted(expected, key=int)  # each exactly once


def test_reconciliation_is_paged_and_resumes_after_a_crash(
        db: Db, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_source_module, "_RECONCILE_PAGE", 3)
    clock = FakeClock()
    engine = make(db, state_dir, clock)
    db.insert(enlevements, *(row(i, T0 + timedelta(seconds=20)) for i in range(1, 9)))
    move_safe_point_past(engine, clock)
    db.insert(enlevements, row(2_000, T0), row(3_000, T0))  # late, in the 3rd and 4th page
    clock.now += DEFAULTS.reconcile_seconds
    reading = engine.src.read(engine.checkpoint)
    for batch in reading:  # crash after the engine committed the first late row
        engine.checkpoint = batch.checkpoint
        engine.src.acknowledge(batch)
        if batch.records:
            assert [r.key for r in batch.records] == ["2000"]
            break
    reading.close()
    assert engine.checkpoint is not None
    assert engine.checkpoint["rec"]["pos"] is not None
    assert engine.poll() == ["3000"]  # resumed at once, not after another interval
    assert engine.checkpoint["rec"]["pos"] is None


def test_composite_key_and_lost_hash_store(db: Db, state_dir: Path) -> None:
    """Two key columns; then the source's side file is deleted: the key map is rebuilt, rows are
    handed over again (a no-op for the engine) but not reported as late."""
    clock = FakeClock()
    engine = make(db, state_dir, clock, key=["producteur", "id"])
    db.insert(enlevements, row(1, T0), row(2, T0 + timedelta(seconds=10)))
    move_safe_point_past(engine, clock)
    db.insert(enlevements, row(3, T0 + timedelta(seconds=1)))
    clock.now += DEFAULTS.reconcile_seconds
    assert engine.poll() == ["P3|3"]
    assert engine.found_late == 1
    engine.src.close()
    for side in state_dir.glob("erp.cursor.sqlite*"):
        side.unlink()
    with capture_logs() as logs:
        assert sorted(engine.poll()) == ["P1|1", "P2|2", "P3|3"]
    assert engine.found_late == 1
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == []
    clock.now += DEFAULTS.reconcile_seconds
    assert engine.poll() == []


def test_reconciliation_turned_on_later_builds_its_key_map_without_false_alarms(
        db: Db, state_dir: Path) -> None:
    clock = FakeClock()
    engine = make(db, state_dir, clock, reconcile_seconds=0)
    db.insert(enlevements, row(1, T0), row(2, T0 + timedelta(seconds=10)))
    move_safe_point_past(engine, clock)
    assert engine.src._hash_store().cursors(["1", "2"]) == {}  # off: no key map kept
    engine.src.close()
    spec = engine.src.spec.model_copy(update={"reconcile_seconds": DEFAULTS.reconcile_seconds})
    turned_on = Engine(SqlSource(spec, mapping_name="erp", state_dir=state_dir, clock=clock))
    turned_on.checkpoint = engine.checkpoint
    db.insert(enlevements, row(3, T0 + timedelta(seconds=4)))  # late, but the map is being built
    assert sorted(turned_on.poll()) == ["1", "2", "3"]  # handed over again: a no-op for the engine
    assert turned_on.found_late == 0
    db.insert(enlevements, row(4, T0 + timedelta(seconds=5)))
    clock.now += DEFAULTS.reconcile_seconds
    assert turned_on.poll() == ["4"]
    assert turned_on.found_late == 1


def test_ingest_step_counts_rows_found_late(tmp_path: Path, official_schema: Any) -> None:
    """The demo ERP mapping through the real ingest step: a back-dated row committed after the
    cursor moved past it is ingested at the next reconciliation and counted as ``found_late``."""
    import sqlite3
    import threading

    from connector.engine.context import Binding, Pipeline
    from connector.engine.ingest import ingest
    from connector.mapping.loading import load_mapping
    from connector.state import open_state_store

    demo = Path(__file__).resolve().parents[3] / "connector" / "demo"
    with sqlite3.connect(tmp_path / "erp.db") as erp:
        erp.executescript((demo / "erp.sql").read_text("utf-8"))
    text = (demo / "bsdd_sqlite.toml").read_text("utf-8").replace("{workdir}", tmp_path.as_posix())
    (tmp_path / "mapping.toml").write_text(text.replace("lag_seconds = 0\n", ""), "utf-8")  # defaults
    mapping = load_mapping(tmp_path / "mapping.toml", official_schema)
    clock = FakeClock()
    source = SqlSource(mapping.source, mapping_name=mapping.name, state_dir=tmp_path / "var",  # type: ignore[arg-type]
                       clock=clock, base_dir=tmp_path)
    pipeline = Pipeline(store=open_state_store(f"sqlite:///{tmp_path}/var/state.db"),
                        bindings=[Binding(mapping, source)])
    assert ingest(pipeline, threading.Event())["read"] == 4
    clock.now += DEFAULTS.lag_seconds + 1
    ingest(pipeline, threading.Event())
    with sqlite3.connect(tmp_path / "erp.db") as erp:  # stamped before everything already read
        erp.execute("INSERT INTO enlevements (numero, date_enlevement, code_dechet, libelle, poids_kg, etat, "
                    "conditionnement, nb_colis, code_traitement, cap, updated_at) SELECT 'ENL-0999', "
                    "date_enlevement, code_dechet, libelle, poids_kg, etat, conditionnement, nb_colis, "
                    "code_traitement, cap, '2026-03-01 09:00:00' FROM enlevements WHERE numero = 'ENL-1001'")
    clock.now += 30
    assert "found_late" not in ingest(pipeline, threading.Event())
    clock.now += DEFAULTS.reconcile_seconds
    counts = ingest(pipeline, threading.Event())
    assert (counts["found_late"], counts["new"]) == (1, 1)
    assert "ENL-0999" in {r.record_key for r in pipeline.store.records()}


@pytest.mark.slow
def test_busy_erp_with_long_transactions_loses_nothing_with_defaults(db: Db, state_dir: Path) -> None:
    """Customer shape: 2,000 pickups committed in small transactions while long ones (10 to 30
    simulated seconds, stamped at their start) stay open across polls, on the default settings.
    Every row is handed over exactly once; the late ones are counted."""
    import random

    rnd = random.Random(9)
    clock = FakeClock()
    engine = make(db, state_dir, clock, batch_size=100)
    long_writer = sa.create_engine(db.url, poolclass=sa.NullPool)
    open_txns: list[tuple[int, Any, Any, list[dict[str, Any]]]] = []  # (commit at step, conn, txn, rows)
    next_id = 1
    try:
        for step in range(200):
            stamp = T0 + timedelta(seconds=step)
            for due, conn, txn, rows in [t for t in open_txns if t[0] == step]:
                if conn is None:  # SQLite: one writer at a time; the row appears now, back-dated
                    db.insert(enlevements, *rows)
                else:
                    txn.commit()
                    conn.close()
                open_txns.remove((due, conn, txn, rows))
            db.insert(enlevements, *(row(next_id + i, stamp) for i in range(10)))
            next_id += 10
            if rnd.random() < 0.12:
                rows = [row(next_id + i, stamp) for i in range(rnd.randint(1, 3))]
                next_id += len(rows)
                conn = txn = None
                if db.dialect != "sqlite":
                    conn = long_writer.connect()
                    txn = conn.begin()
                    conn.execute(enlevements.insert(), rows)
                open_txns.append((step + rnd.randint(5, 15), conn, txn, rows))
            engine.poll()
            clock.now += 2
        for _, conn, txn, rows in open_txns:
            if conn is None:
                db.insert(enlevements, *rows)
            else:
                txn.commit()
                conn.close()
    finally:
        long_writer.dispose()
    clock.now += DEFAULTS.reconcile_seconds
    engine.poll()
    clock.now += DEFAULTS.reconcile_seconds
    engine.poll()
    assert len(engine.received) == len(set(engine.received))  # nothing handed over twice
    assert sorted(map(int, engine.received)) == list(range(1, next_id))  # nothing lost
    assert next_id > 2_000
    assert engine.found_late > 0  # the long transactions did commit below the safe point
