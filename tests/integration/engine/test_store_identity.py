"""The state store's identity on SQLite, PostgreSQL and MariaDB: lost while running, an older copy
put back, a store from before identity stamps."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete

from connector.engine.context import Pipeline
from connector.engine.trust import before_creates, creates_refused
from connector.state import open_state_store
from connector.state.identity import ensure_identity, lost_while_running, read_identity
from connector.state.models import Record, StoreIdentity
from tests.db_urls import dialect_params, temporary_database


@pytest.mark.parametrize("dialect", dialect_params())
def test_a_store_emptied_under_a_running_process_is_noticed(dialect: str) -> None:
    with temporary_database(dialect) as url:
        store = open_state_store(url)
        other = open_state_store(url)  # an operator's tool on the same database
        try:
            assert lost_while_running(store) is None
            with other.session() as session:
                session.execute(delete(StoreIdentity))
            assert "emptied or replaced" in (lost_while_running(store) or "")
            ensure_identity(other)  # a new identity does not make it the same store again
            assert lost_while_running(store) is not None
        finally:
            store.close()
            other.close()


def test_a_sqlite_file_deleted_or_replaced_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "var" / "state.db"
    store = open_state_store(f"sqlite:///{path}")
    try:
        shutil.copy(path, tmp_path / "copy.db")
        (tmp_path / "copy.db").replace(path)  # same content, another file
        assert "replaced while the connector was running" in (lost_while_running(store) or "")
    finally:
        store.close()
    store = open_state_store(f"sqlite:///{path}")
    try:
        for side in path.parent.glob("state.db*"):
            side.unlink()
        assert "deleted while the connector was running" in (lost_while_running(store) or "")
    finally:
        store.close()


def test_an_older_copy_of_the_store_put_back_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "var" / "state.db"
    store = open_state_store(f"sqlite:///{path}")
    pipeline = Pipeline(store=store, bindings=[])
    assert creates_refused(pipeline) is None
    before_creates(pipeline)
    store.close()
    shutil.copy(path, tmp_path / "backup.db")  # the nightly backup
    store = open_state_store(f"sqlite:///{path}")
    pipeline = Pipeline(store=store, bindings=[])
    assert creates_refused(pipeline) is None
    before_creates(pipeline)  # creates made after the backup
    store.close()
    shutil.copy(tmp_path / "backup.db", path)
    store = open_state_store(f"sqlite:///{path}")
    try:
        reason = creates_refused(Pipeline(store=store, bindings=[]))
        assert "older copy" in (reason or "")
        assert store.report().not_trusted == reason
    finally:
        store.close()


def test_a_store_from_before_identity_stamps_is_trusted_when_it_holds_records(tmp_path: Path) -> None:
    store = open_state_store(f"sqlite:///{tmp_path}/state.db")
    try:
        now = datetime.now(UTC)
        with store.session() as session:
            session.execute(delete(StoreIdentity))
            session.add(Record(mapping="m", record_key="k", kind="BSDD", origin="o", payload_hash="h",
                               state="synced", attempts=0, writeback_due=False, created_at=now,
                               updated_at=now))
        assert read_identity(store) is None
        assert ensure_identity(store).trusted is True
    finally:
        store.close()
