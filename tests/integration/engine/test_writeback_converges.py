"""Write-back converges: an ERP row whose status columns were lost, or that was re-inserted, gets
them back at the next refresh; between refreshes nothing is rewritten."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from connector.demo.run import _asset
from connector.service import run_step, sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import runtime_for


def _erp(database: Path) -> dict[str, tuple[str | None, str | None]]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT numero, td_numero, td_statut FROM enlevements").fetchall()
    return {numero: (readable, status) for numero, readable, status in rows}


def test_lost_and_reinserted_rows_get_their_statuses_back(tmp_path: Path) -> None:
    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as connection:
        connection.executescript(_asset("erp.sql").decode("utf-8"))
    mapping = _asset("bsdd_sqlite.toml").decode("utf-8").replace("{workdir}", tmp_path.as_posix())
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url, mapping_text=mapping)
        try:
            sync_once(runtime, threading.Event())
            sync_once(runtime, threading.Event())  # the seal's status written back too
            before = _erp(database)
            assert before["ENL-1001"][1] == "SEALED"
            assert before["ENL-1001"][0] is not None
            assert before["ENL-1004"] == (None, "rejected")

            with sqlite3.connect(database) as connection:
                # Someone clears a row's status columns; another row is deleted and imported again.
                connection.execute("UPDATE enlevements SET td_numero = NULL, td_statut = NULL "
                                   "WHERE numero = 'ENL-1001'")
                row = connection.execute("SELECT * FROM enlevements WHERE numero = 'ENL-1002'").fetchone()
                connection.execute("DELETE FROM enlevements WHERE numero = 'ENL-1002'")
                blanks = ", ".join("?" * (len(row) - 4))
                connection.execute(f"INSERT INTO enlevements VALUES ({blanks}, NULL, NULL, NULL, NULL)",
                                   (None, *row[1:-4]))
            assert _erp(database)["ENL-1002"] == (None, None)

            # Within the refresh interval nothing is written again.
            counts = run_step(runtime.pipeline, "writeback", threading.Event())
            assert counts.get("written", 0) == 0
            assert _erp(database)["ENL-1001"] == (None, None)

            # At the refresh, every record with a BSD is written back again: the ERP converges. (The
            # rejected one has none: rewriting it could put empty ids over a lost store's.)
            runtime.pipeline.options.writeback_refresh_seconds = 0.001
            counts = run_step(runtime.pipeline, "writeback", threading.Event())
            assert counts["written"] == 3
            assert _erp(database) == before
            sent = len(served.emulator.journal)
            run_step(runtime.pipeline, "writeback", threading.Event())
            assert len(served.emulator.journal) == sent  # nothing sent to Trackdéchets for it
        finally:
            runtime.close()
