"""The three change-detection modes on SQLite, PostgreSQL and MariaDB: nothing skipped, nothing twice."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from erp_tables import Db, emballages, enlevements

from connector.sources import SourceBatch, SqlSource, open_source
from connector.sources.specs import SqlSourceSpec

T0 = datetime(2026, 3, 2, 8, 0, 0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def source(db: Db, state_dir: Path, clock: Any = None, **spec: Any) -> SqlSource:
    options: dict[str, Any] = {"type": "sql", "url": db.url, "table": "enlevements", "key": ["id"],
                               "cursor_column": "updated_at", "lag_seconds": 5, **spec}
    src = open_source(SqlSourceSpec(**options), base_dir=state_dir, mapping_name="m", state_dir=state_dir)
    assert isinstance(src, SqlSource)
    if clock is not None:
        src._clock = clock
    return src


class Engine:
    """What the real engine does with a source: store each batch's checkpoint, then acknowledge."""

    def __init__(self, src: SqlSource) -> None:
        self.src = src
        self.checkpoint: dict[str, Any] | None = None
        self.received: list[tuple[str, Any]] = []

    def poll(self) -> list[str]:
        keys = []
        for batch in self.src.read(self.checkpoint):
            self.checkpoint = batch.checkpoint
            keys += [r.key for r in batch.records]
            self.received += [(r.key, r.values.get("producteur")) for r in batch.records]
            self.src.acknowledge(batch)
        return keys


def row(i: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"id": i, "producteur": f"P{i}", "poids": "1.500", "updated_at": at, "a_envoyer": None,
            "statut": None, **extra}


# --- cursor mode ---------------------------------------------------------------------------------


def test_cursor_equal_timestamps_across_pages(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, *(row(i, T0) for i in range(1, 8)))
    engine = Engine(source(db, state_dir, FakeClock(), batch_size=3))
    assert engine.poll() == ["1", "2", "3", "4", "5", "6", "7"]
    assert engine.poll() == []
    db.insert(enlevements, row(8, T0))  # same timestamp as everything already read
    assert engine.poll() == ["8"]


def test_cursor_row_committed_late_with_older_timestamp_is_found(db: Db, state_dir: Path) -> None:
    clock = FakeClock()
    engine = Engine(source(db, state_dir, clock, batch_size=2))
    db.insert(enlevements, row(1, T0), row(2, T0 + timedelta(seconds=10)))
    assert engine.poll() == ["1", "2"]
    clock.now += 3
    db.insert(enlevements, row(3, T0 + timedelta(seconds=5)))  # its transaction began earlier
    assert engine.poll() == ["3"]
    clock.now += 10
    assert engine.poll() == []  # the safe point moves now, after a full re-read above it
    assert engine.checkpoint is not None
    assert engine.checkpoint["safe"] is not None
    assert engine.src._hash_store().count() == 1  # rows 1 and 2 forgotten, 3 (read later) kept
    db.insert(enlevements, row(4, T0 + timedelta(seconds=10)))  # equal to the safe point: too late
    db.insert(enlevements, row(5, T0 + timedelta(seconds=11)))  # for the cursor...
    assert engine.poll() == ["5"]
    clock.now += 300
    assert engine.poll() == ["4"]  # ...but not for the reconciliation (test_sql_late_commits.py)


def test_cursor_updated_row_is_read_again_unchanged_one_is_not(db: Db, state_dir: Path) -> None:
    clock = FakeClock()
    engine = Engine(source(db, state_dir, clock))
    db.insert(enlevements, row(1, T0), row(2, T0))
    assert engine.poll() == ["1", "2"]
    with db.engine.begin() as conn:  # updated without touching the cursor, inside the lag window
        conn.execute(enlevements.update().where(enlevements.c.id == 2).values(producteur="Dupont"))
    assert engine.poll() == ["2"]
    clock.now += 60
    with db.engine.begin() as conn:
        conn.execute(enlevements.update().where(enlevements.c.id == 1)
                     .values(producteur="Durand", updated_at=T0 + timedelta(minutes=1)))
    assert engine.poll() == ["1"]
    assert engine.poll() == []


def test_cursor_crash_mid_poll_resumes_without_moving_safe_point(db: Db, state_dir: Path) -> None:
    clock = FakeClock()
    db.insert(enlevements, *(row(i, T0 + timedelta(seconds=i)) for i in range(1, 7)))
    src = source(db, state_dir, clock, batch_size=2)
    reading = src.read(None)
    first = next(reading)
    reading.close()  # crash after the engine committed the first batch
    assert first.checkpoint is not None
    assert first.checkpoint["pos"] is not None
    engine = Engine(src)
    engine.checkpoint = first.checkpoint
    assert engine.poll() == ["3", "4", "5", "6"]
    assert engine.checkpoint is not None
    assert engine.checkpoint["safe"] is None


def _concurrent(db: Db, engine: Engine, write: Any, expected: int) -> None:
    done = threading.Event()

    def writer() -> None:
        try:
            write()
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        engine.poll()
    thread.join()
    time.sleep(0.6)
    engine.poll()
    engine.poll()
    keys = [k for k, _ in engine.received]
    assert sorted(set(keys), key=int) == [str(i) for i in range(1, expected + 1)]


def test_cursor_inserts_concurrent_with_polls_out_of_order(db: Db, state_dir: Path) -> None:
    # Timestamps never grow: once the lag has passed, every new row is back-dated below the safe
    # point, which only the reconciliation (here every 0.5 s) can find.
    engine = Engine(source(db, state_dir, lag_seconds=0.5, batch_size=7, reconcile_seconds=0.5))

    def write() -> None:
        # Ids in commit order, timestamps jumping back and forth and often equal.
        for i in range(1, 121):
            db.insert(enlevements, row(i, T0 + timedelta(seconds=(i * 7) % 13)))

    _concurrent(db, engine, write, 120)
    keys = [k for k, _ in engine.received]
    assert len(keys) == len(set(keys))  # each row handed over once


def test_cursor_rows_with_a_null_cursor_are_rejected_visibly_until_they_get_one(
        db: Db, state_dir: Path) -> None:
    """A business system that leaves ``updated_at`` NULL until the first update: those rows are
    reported (key, column, reason), once, instead of never being read; given a value, they are read."""
    clock = FakeClock()
    db.insert(enlevements, row(1, T0), *(row(i, None) for i in range(2, 6)))
    src = source(db, state_dir, clock, batch_size=2)
    engine = Engine(src)
    problems = []
    for batch in src.read(None):
        engine.checkpoint = batch.checkpoint
        problems += batch.problems
        engine.received += [(r.key, None) for r in batch.records]
        src.acknowledge(batch)
    assert [k for k, _ in engine.received] == ["1"]
    assert [(p.key, p.column) for p in problems] == [(str(i), "updated_at") for i in range(2, 6)]
    assert problems[0].origin == "table enlevements, id=2"
    assert "cursor column 'updated_at' is NULL" in problems[0].reason
    assert "COALESCE(updated_at" in problems[0].reason
    clock.now += 60
    assert [b.problems for b in src.read(engine.checkpoint) if b.problems] == []  # reported once
    with db.engine.begin() as conn:
        conn.execute(enlevements.update().where(enlevements.c.id == 3)
                     .values(updated_at=T0 + timedelta(hours=1)))
    assert engine.poll() == ["3"]


# --- flag mode -----------------------------------------------------------------------------------


WRITEBACK = ("UPDATE enlevements SET a_envoyer = NULL, bsd_id = :bsd_id, statut = :status "
             "WHERE id = :key_id")


def flagged(db: Db, state_dir: Path, **spec: Any) -> SqlSource:
    return source(db, state_dir, mode="flag", cursor_column=None, flag_column="a_envoyer", flag_value="1",
                  writeback={"statement": WRITEBACK}, **spec)


def test_flag_rows_read_until_write_back_clears_them(db: Db, state_dir: Path) -> None:
    from connector.sources import WriteBack

    db.insert(enlevements, row(1, T0, a_envoyer="1"), row(2, T0), row(3, T0, a_envoyer="1"))
    src = flagged(db, state_dir, batch_size=1)
    engine = Engine(src)
    assert engine.poll() == ["1", "3"]
    assert engine.poll() == []  # still flagged, unchanged: not handed over twice
    src.write_back([WriteBack("1", None, "bsd-1", "BSD-1", "SEALED", "SEALED", None, "2026-03-02T09:00:00Z")])
    assert db.rows("SELECT id, a_envoyer, bsd_id, statut FROM enlevements ORDER BY id") == [
        (1, None, "bsd-1", "SEALED"), (2, None, "", None), (3, "1", "", None)]
    with db.engine.begin() as conn:
        conn.execute(enlevements.update().where(enlevements.c.id.in_([1, 2])).values(a_envoyer="1"))
    assert engine.poll() == ["1", "2"]


def test_flag_inserts_concurrent_with_polls(db: Db, state_dir: Path) -> None:
    engine = Engine(flagged(db, state_dir, batch_size=5))

    def write() -> None:
        for i in range(1, 81):
            db.insert(enlevements, row(i, T0, a_envoyer="1"))

    _concurrent(db, engine, write, 80)


# --- scan mode -----------------------------------------------------------------------------------


def test_scan_hands_over_new_and_changed_rows_only(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, *(row(i, T0) for i in range(1, 6)))
    engine = Engine(source(db, state_dir, mode="scan", cursor_column=None, batch_size=2))
    assert engine.poll() == ["1", "2", "3", "4", "5"]
    assert engine.poll() == []
    with db.engine.begin() as conn:
        conn.execute(enlevements.update().where(enlevements.c.id == 4).values(poids="2"))
    db.insert(enlevements, row(0, T0))
    assert engine.poll() == ["0", "4"]
    assert engine.poll() == []
    assert len(str(engine.checkpoint)) < 100  # hashes live in the side file, not the checkpoint


def test_scan_without_acknowledge_hands_over_again(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, row(1, T0))
    src = source(db, state_dir, mode="scan", cursor_column=None)
    batches: list[SourceBatch] = list(src.read(None))
    assert [r.key for r in batches[0].records] == ["1"]
    again = list(src.read(batches[-1].checkpoint))  # the engine crashed before acknowledging
    assert [r.key for b in again for r in b.records] == ["1"]
    src.acknowledge(again[0])
    assert list(src.read(again[-1].checkpoint)) == []
    fresh = list(src.read(None))  # a state store rebuilt from nothing: everything again
    assert [r.key for b in fresh for r in b.records] == ["1"]


def test_scan_inserts_concurrent_with_polls(db: Db, state_dir: Path) -> None:
    engine = Engine(source(db, state_dir, mode="scan", cursor_column=None, batch_size=9))

    def write() -> None:
        for i in range(80, 0, -1):  # keys arrive in descending order, behind the scan's position
            db.insert(enlevements, row(i, T0))

    _concurrent(db, engine, write, 80)


def test_scan_detects_child_row_changes(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, row(1, T0), row(2, T0))
    db.insert(emballages, {"id": 10, "enlevement_id": 1, "type": "FUT", "quantite": 2},
              {"id": 11, "enlevement_id": 1, "type": "GRV", "quantite": 1})
    src = source(db, state_dir, mode="scan", cursor_column=None, children={
        "packagings": "SELECT type, quantite FROM emballages WHERE enlevement_id = :key_id ORDER BY id"})
    engine = Engine(src)
    batches = list(src.read(None))
    records = {r.key: r for b in batches for r in b.records}
    assert records["1"].children == {"packagings": [{"type": "FUT", "quantite": 2},
                                                    {"type": "GRV", "quantite": 1}]}
    assert records["2"].children == {"packagings": []}
    for batch in batches:
        src.acknowledge(batch)
    engine.checkpoint = batches[-1].checkpoint
    db.insert(emballages, {"id": 12, "enlevement_id": 2, "type": "BENNE", "quantite": 1})
    assert engine.poll() == ["2"]


def test_query_source_with_null_key_reports_problem(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, row(1, T0), row(2, T0, statut="x"))
    query = ("SELECT CASE WHEN statut IS NULL THEN id END AS code, producteur, updated_at "
             "FROM enlevements")
    src = source(db, state_dir, table=None, query=query, key=["code"])
    batches = list(src.read(None))
    assert [r.key for b in batches for r in b.records] == ["1"]
    problems = [p for b in batches for p in b.problems]
    assert [(p.origin, p.column, p.reason) for p in problems] == [
        ("query of m, code=None", "code", "key column 'code' is NULL")]
    assert sa.__version__  # SQLAlchemy 2 Core only
