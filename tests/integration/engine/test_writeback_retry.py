"""A failed write-back is retried on its own: nothing is sent to Trackdéchets again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from connector.demo.run import _asset
from connector.service import run_step, sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import runtime_for

MAPPING_TAIL = (
    "\n[source.writeback]\n"
    'statement = "INSERT INTO td_statuts (numero, bsd, statut) '
    'VALUES (:key, :readable_id, COALESCE(:remote_status, :status))"\n'
)


def test_failed_writeback_stays_due_and_is_retried_alone(tmp_path: Path) -> None:
    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as connection:
        connection.executescript(_asset("erp.sql").decode("utf-8"))
    mapping = _asset("bsdd_sqlite.toml").decode("utf-8").replace("{workdir}", tmp_path.as_posix())
    head, _, rest = mapping.partition("[source.writeback]")
    rest = rest.split('"""', 2)[2]  # drop the demo's UPDATE statement
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url, mapping_text=head + MAPPING_TAIL + rest)
        try:
            # The status table does not exist yet: the write-back fails, everything else goes on.
            summary = sync_once(runtime, threading.Event())
            writeback = next(s for s in summary["steps"] if s["step"] == "writeback")
            assert writeback.get("failed", 0) == 4
            rows = runtime.store.records()
            assert all(r.writeback_due and r.writeback_error for r in rows)
            sent = len(served.emulator.journal)

            with sqlite3.connect(database) as connection:
                connection.execute("CREATE TABLE td_statuts (numero TEXT, bsd TEXT, statut TEXT)")
            counts = run_step(runtime.pipeline, "writeback", threading.Event())
            assert counts["written"] == 4
            assert len(served.emulator.journal) == sent  # nothing sent again to Trackdéchets
            assert not any(r.writeback_due for r in runtime.store.records())
        finally:
            runtime.close()
    with sqlite3.connect(database) as connection:
        statuses = dict(connection.execute("SELECT numero, statut FROM td_statuts").fetchall())
    assert statuses == {
        "ENL-1001": "SEALED",
        "ENL-1002": "SEALED",
        "ENL-1003": "SEALED",
        "ENL-1004": "rejected",
    }
