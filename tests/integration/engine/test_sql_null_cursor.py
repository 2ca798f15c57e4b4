"""An ERP that leaves its cursor column NULL: the row is rejected where the ERP sees it, not lost."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

from connector.service import sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import runtime_for

MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


def test_a_row_with_a_null_cursor_is_rejected_visibly_then_sent_once_it_has_one(tmp_path: Path) -> None:
    shutil.copytree(MAPPINGS / "data", tmp_path / "data")
    database = tmp_path / "data" / "erp.sqlite"
    script = (tmp_path / "data" / "erp.sql").read_text("utf-8")
    script = script.replace("updated_at TEXT NOT NULL", "updated_at TEXT")  # an ERP that allows NULL
    with sqlite3.connect(database) as connection:
        connection.executescript(script)
        late = connection.execute("SELECT n_bon FROM enlevements ORDER BY id LIMIT 1").fetchone()[0]
        connection.execute("UPDATE enlevements SET updated_at = NULL WHERE n_bon = ?", (late,))
        total = connection.execute("SELECT count(*) FROM enlevements").fetchone()[0]
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        mapping = (MAPPINGS / "bsdd_sqlite.toml").read_text("utf-8")

        def sync() -> dict[str, tuple[str, str | None]]:
            runtime = runtime_for(tmp_path, served.url, mapping_text=mapping)
            try:
                sync_once(runtime, threading.Event())
                return {r.record_key: (r.state, r.last_error) for r in runtime.store.records()}
            finally:
                runtime.close()

        first = sync()
        assert len(first) == total
        state, error = first[late]
        assert state == "rejected"
        assert error is not None
        assert f"table enlevements, n_bon={late}, column 'updated_at'" in error
        assert "cursor column 'updated_at' is NULL" in error
        assert all(s == "synced" for k, (s, _) in first.items() if k != late)
        with sqlite3.connect(database) as connection:
            statut, erreur, td_id = connection.execute(
                "SELECT td_statut, td_erreur, td_id FROM enlevements WHERE n_bon = ?", (late,)
            ).fetchone()
        assert (statut, td_id) == ("rejected", None)
        assert "is NULL" in erreur

        with sqlite3.connect(database) as connection:
            connection.execute(
                "UPDATE enlevements SET updated_at = '2099-01-01 00:00:00' WHERE n_bon = ?", (late,)
            )
        second = sync()
        assert second[late] == ("synced", None)
        sent = [f for f in served.emulator.store.newest_first("BSDD") if f.get("customId") == late]
        assert len(sent) == 1
