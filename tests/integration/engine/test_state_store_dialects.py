"""The state store itself on SQLite, PostgreSQL and MariaDB: migrations, a whole sync, the claim
and microsecond timestamps."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect

from connector.errors import StateError
from connector.service import sync_once
from connector.state import open_state_store
from connector.state.models import Record
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.db_urls import dialect_params, temporary_database
from tests.integration.engine.support import csv_text, drop, runtime_for


@pytest.mark.parametrize("dialect", dialect_params())
def test_a_whole_sync_on_each_state_store_dialect(dialect: str, tmp_path: Path) -> None:
    with temporary_database(dialect) as url, serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url, state=f'dir = "var"\nurl = "{url}"')
        assert runtime.settings.state.url == url
        try:
            drop(tmp_path, "a.csv", csv_text())
            summary = sync_once(runtime, threading.Event())
            assert Counter(r.state for r in runtime.store.records()) == Counter({"synced": 4, "rejected": 1})
            assert [s["step"] for s in summary["steps"]] == ["ingest", "push", "track", "writeback"]
            report = runtime.store.report()
            assert report.in_doubt == 0
        finally:
            runtime.close()
        # Reopening migrates nothing and finds everything.
        store = open_state_store(url)
        try:
            assert len(store.records()) == 5
            stamp = datetime(2026, 3, 3, 8, 30, 15, 123456, tzinfo=UTC)
            with store.session() as session:
                row = session.query(Record).first()
                assert row is not None
                row.updated_at = stamp
            with store.session() as session:
                again = session.get(Record, row.id)
                assert again is not None
                assert again.updated_at == stamp  # microseconds kept, offset-aware
        finally:
            store.close()


@pytest.mark.parametrize("dialect", dialect_params())
def test_a_migration_cut_short_is_finished_by_the_next_start(dialect: str) -> None:
    """A daemon killed in the middle of its first migration must start cleanly the next time.

    The cut is simulated by failing the migration's second CREATE TABLE. SQLite and PostgreSQL
    roll the whole migration back (on SQLite the first table used to stay, and every later start
    failed on "table records already exists"); MariaDB commits each DDL statement, so the first
    table stays there and the next start creates only what is missing.
    """
    with temporary_database(dialect) as url:
        store = open_state_store(url, migrate=False)
        creates: list[str] = []

        def cut_on_second_table(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            head = statement.lstrip().split("(")[0]
            if head.upper().startswith("CREATE TABLE") and "alembic_version" not in head:
                creates.append(head)
                if len(creates) == 2:  # records (and its indexes) done, checkpoints next
                    raise RuntimeError("killed")

        event.listen(store.engine, "before_cursor_execute", cut_on_second_table)
        try:
            with pytest.raises(StateError, match="killed"):
                store.upgrade()
            event.remove(store.engine, "before_cursor_execute", cut_on_second_table)
            assert len(creates) == 2
            with store.engine.connect() as connection:
                left = set(inspect(connection).get_table_names())
            assert "alembic_version" not in left or dialect == "mariadb"
            assert ("records" in left) == (dialect == "mariadb")
            store.upgrade()  # the next start
            with store.engine.connect() as connection:
                inspector = inspect(connection)
                assert {"records", "checkpoints", "track_cursors", "step_runs", "track_hints",
                        "store_identity", "alembic_version"} <= set(inspector.get_table_names())
                assert {"ix_records_due", "ix_records_bsd", "ix_records_writeback",
                        "ix_records_custom_id"} <= {i["name"] for i in inspector.get_indexes("records")}
                version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            assert version == "0003"
        finally:
            store.close()
