"""Exactly-once edge cases found in review, each reproduced against the emulator over HTTP."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.demo.run import _asset
from connector.engine.push import push
from connector.runtime import Runtime
from connector.service import run_step
from td_emulator.config import EmulatorConfig, FaultConfig
from td_emulator.testing import ServedEmulator, serve_in_thread
from tests.integration.engine.support import csv_text, drop, runtime_for

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


@pytest.fixture
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served


def bsda_mapping() -> str:
    """The BSDA example mapping, reading the work folder's inbox at once."""
    return (
        (MAPPINGS / "bsda_csv.toml")
        .read_text("utf-8")
        .replace('folder = "data"', 'folder = "inbox"')
        .replace('pattern = "bsda_*.csv"', 'pattern = "*.csv"\nstable_seconds = 0')
    )


def step(runtime: Runtime, name: str) -> dict[str, int]:
    return run_step(runtime.pipeline, name, threading.Event())


def bsds(emulator: ServedEmulator, kind: str) -> list[dict]:
    return list(emulator.emulator.store.newest_first(kind))


def test_an_in_doubt_create_is_looked_up_by_the_customid_sent_not_the_record_key(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    mapping = _asset("bsdd_csv.toml").decode().replace('key = ["n_bon"]', 'key = ["n_bon", "cap"]')
    runtime = runtime_for(tmp_path, emulator.url, mapping_text=mapping)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    try:
        drop(tmp_path, "a.csv", csv_text())
        step(runtime, "ingest")
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        step(runtime, "push")
        emulator.emulator.faults = FaultConfig()
        step(runtime, "push")
    finally:
        runtime.close()
    per_custom_id = Counter(f.get("customId") for f in bsds(emulator, "BSDD"))
    assert per_custom_id == Counter(
        {"BE-2026-0412": 1, "BE-2026-0413": 1, "BE-2026-0414": 1, "BE-2026-0416": 1}
    )


def test_records_alike_in_every_fingerprinted_field_each_get_their_own_bsd_with_their_own_data(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    mapping = bsda_mapping().replace('key = ["ref_chantier"]', 'key = ["ref_chantier", "cap"]')
    lines = (MAPPINGS / "data" / "bsda_chantiers.csv").read_text("utf-8").splitlines()
    twin = lines[1].replace("CAP-AMI-2026-12", "CAP-AMI-2026-99")
    runtime = runtime_for(tmp_path, emulator.url, mapping_text=mapping)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    try:
        drop(tmp_path, "a.csv", "\n".join([lines[0], lines[1], twin]) + "\n")
        step(runtime, "ingest")
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        step(runtime, "push")  # both creates committed, both answers lost
        emulator.emulator.faults = FaultConfig()
        step(runtime, "push")
        records = {r.record_key: r for r in runtime.store.records()}
    finally:
        runtime.close()
    on_server = {b["id"]: b for b in bsds(emulator, "BSDA")}
    assert len(on_server) == 2
    assert {r.bsd_id for r in records.values()} == set(on_server)  # one each, none orphaned
    for key, record in records.items():
        assert record.state == "synced"
        cap = key.split("|")[1]
        assert on_server[record.bsd_id or ""]["destination"]["cap"] == cap  # its own data


def test_a_record_made_invalid_while_its_create_is_in_doubt_keeps_its_bsd_and_shows_the_error(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    key = "BE-2026-0413"
    runtime = runtime_for(tmp_path, emulator.url)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    try:
        drop(tmp_path, "a.csv", csv_text())
        step(runtime, "ingest")
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        runtime.pipeline.options.max_creations_per_run = 4
        step(runtime, "push")
        emulator.emulator.faults = FaultConfig()
        drop(tmp_path, "b.csv", csv_text(**{"10:15;85243162000123": "10:15;85243162000124"}))
        step(runtime, "ingest")
        step(runtime, "push")
        record = next(r for r in runtime.store.records() if r.record_key == key)
        assert record.state == "rejected"
        assert record.bsd_id  # the BSD the in-doubt create made is linked, not lost
        assert "Luhn" in (record.last_error or "")
        assert record.intent_op is None
        drop(tmp_path, "c.csv", csv_text(**{";85;estimée": ";90;estimée"}))
        for name in ("ingest", "push", "track"):
            step(runtime, name)
        record = next(r for r in runtime.store.records() if r.record_key == key)
        assert record.state == "synced"
        assert record.last_error is None
    finally:
        runtime.close()
    assert [f.get("customId") for f in bsds(emulator, "BSDD")].count(key) == 1


def test_a_dry_run_push_returns_even_with_records_in_doubt(tmp_path: Path, emulator: ServedEmulator) -> None:
    runtime = runtime_for(tmp_path, emulator.url)
    runtime.pipeline.options.reconcile_grace_seconds = 0
    try:
        drop(tmp_path, "a.csv", csv_text())
        step(runtime, "ingest")
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        step(runtime, "push")
        runtime.pipeline.options.dry_run = True
        stop = threading.Event()
        timer = threading.Timer(10, stop.set)  # a safety net: the assertion is that it is not needed
        timer.start()
        started = time.monotonic()
        counts = push(runtime.pipeline, stop)
        timer.cancel()
        assert not stop.is_set()
        assert time.monotonic() - started < 5
        assert counts["would_reconcile"] == 4
    finally:
        runtime.close()


def test_two_processes_on_one_state_store_never_send_the_same_create(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    lines = csv_text().splitlines()
    body = [lines[2].replace("BE-2026-0413", f"BE-2026-{i:04d}") for i in range(1000, 1020)]
    first = runtime_for(tmp_path, emulator.url)
    second = runtime_for(tmp_path, emulator.url)
    try:
        drop(tmp_path, "a.csv", "\n".join([lines[0], *body]) + "\n")
        step(first, "ingest")
        emulator.emulator.faults = FaultConfig(latency_ms=100)
        worker = threading.Thread(target=push, args=(first.pipeline, threading.Event()))
        worker.start()
        time.sleep(0.05)
        push(second.pipeline, threading.Event())
        worker.join()
    finally:
        first.close()
        second.close()
    per_custom_id = Counter(f.get("customId") for f in bsds(emulator, "BSDD"))
    assert len(per_custom_id) == 20
    assert set(per_custom_id.values()) == {1}


def test_one_row_the_business_database_refuses_does_not_hold_back_the_others(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as connection:
        connection.executescript(_asset("erp.sql").decode())
        # The ERP's error column holds 60 characters (a VARCHAR(60) elsewhere).
        connection.executescript(
            "CREATE TRIGGER td_erreur_len BEFORE UPDATE OF td_erreur ON enlevements "
            "WHEN length(NEW.td_erreur) > 60 BEGIN SELECT RAISE(ABORT, 'value too long for td_erreur'); END;"
        )
    mapping = _asset("bsdd_sqlite.toml").decode().replace("{workdir}", tmp_path.as_posix())
    runtime = runtime_for(tmp_path, emulator.url, mapping_text=mapping)
    try:
        for name in ("ingest", "push", "track"):
            step(runtime, name)
        counts = step(runtime, "writeback")
        assert counts["written"] == 3
        assert counts["failed"] == 1
        records = {r.record_key: r for r in runtime.store.records()}
        assert "too long" in (records["ENL-1004"].writeback_error or "")
        assert records["ENL-1004"].writeback_due
    finally:
        runtime.close()
    with sqlite3.connect(database) as connection:
        statuses = dict(connection.execute("SELECT numero, td_statut FROM enlevements").fetchall())
    assert statuses == {"ENL-1001": "SEALED", "ENL-1002": "SEALED", "ENL-1003": "SEALED", "ENL-1004": None}


def test_a_host_clock_ahead_of_the_server_still_finds_an_in_doubt_bsda(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    mapping = bsda_mapping()
    runtime = runtime_for(tmp_path, emulator.url, mapping_text=mapping)
    try:
        drop(tmp_path, "a.csv", (MAPPINGS / "data" / "bsda_chantiers.csv").read_text("utf-8"))
        step(runtime, "ingest")
        emulator.emulator.faults = FaultConfig(drop_after_commit_probability=1.0)
        step(runtime, "push")
        emulator.emulator.faults = FaultConfig()
        # The host's clock runs 10 minutes ahead of the server's: the intents look recent to us,
        # while the BSDs were created "10 minutes before" them on the server's clock.
        from datetime import timedelta

        from connector.state.models import Record

        with runtime.store.session() as session:
            for row in session.query(Record):
                if row.intent_at is not None:
                    row.intent_at = row.intent_at + timedelta(minutes=10)
                    row.next_attempt_at = None
        runtime.pipeline.options.reconcile_grace_seconds = -3600
        counts = step(runtime, "push")
        assert counts["created_adopted"] == 2
        assert counts.get("created", 0) == 0  # nothing created a second time
    finally:
        runtime.close()
    assert len(bsds(emulator, "BSDA")) == 2
