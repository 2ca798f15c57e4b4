"""The four steps run side by side: an API stall never stops the ERP side, a locked ERP table never
stops the API side. The daemon runs as its own process; the stall and the lock are real (the
emulator holds its answers for 30 s; PostgreSQL holds an ACCESS EXCLUSIVE lock on the ERP table).
"""

from __future__ import annotations

import contextlib
import re
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connector.demo.run import _asset, _prepare
from connector.state.store import open_state_store
from td_emulator.config import FaultConfig
from td_emulator.testing import ServedEmulator
from tests.db_urls import _reachable, temporary_database
from tests.e2e.process import DaemonProcess, start_daemon, wait_for

SCHEDULE = """
[schedule]
ingest_seconds = 0.3
push_seconds = 0.3
track_seconds = {track}
writeback_seconds = 0.3
track_overlap_seconds = 5

[retry]
max_attempts = 1

[daemon]
drain_timeout_seconds = 1

[metrics]
enabled = true
port = 0

[logging]
format = "json"
level = "INFO"
"""

ROW = (
    "INSERT INTO enlevements (numero, date_enlevement, code_dechet, libelle, poids_kg, etat, "
    "conditionnement, nb_colis, code_traitement, cap, updated_at) VALUES "
    "(:numero, '2026-03-05', '13 02 05*', 'Huiles de vidange', 500.0, 'liquide', 'FUT', 2, 'R 9', "
    ":cap, :updated_at)"
)


def _endpoint(daemon: DaemonProcess) -> str | None:
    for line in daemon.log_lines():
        if line.get("event") == "metrics_serving":
            return str(line["url"]).rstrip("/")
    return None


def _running(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(r'^tdc_step_running\{step="(\w+)"\} (\S+)$', text, re.M)}


def _records(workdir: Path) -> dict[str, Any]:
    path = workdir / "var" / "state.db"
    if not path.exists():
        return {}
    store = open_state_store(f"sqlite:///{path}", migrate=False)
    try:
        return {r.record_key: r for r in store.records()}
    finally:
        store.close()


@pytest.mark.slow
def test_an_api_stall_never_stops_ingest_and_writeback(tmp_path: Path, emulator: ServedEmulator) -> None:
    config = _prepare(tmp_path, emulator.url)
    config.write_text(config.read_text("utf-8") + SCHEDULE.format(track=60), "utf-8")
    erp = tmp_path / "erp.db"

    def erp_status(numero: str) -> str | None:
        with sqlite3.connect(erp) as connection:
            query = "SELECT td_statut FROM enlevements WHERE numero = ?"
            row = connection.execute(query, (numero,)).fetchone()
        return row[0] if row else None

    def insert(numero: str, updated_at: str) -> None:
        with sqlite3.connect(erp) as connection:
            connection.execute(ROW.replace(":numero", f"'{numero}'").replace(":cap", "'CAP-2026-0200'")
                               .replace(":updated_at", f"'{updated_at}'"))

    daemon = start_daemon(tmp_path, config)
    try:
        base = wait_for(lambda: _endpoint(daemon), 30, "the metrics endpoint", daemon)
        wait_for(lambda: erp_status("ENL-1003") == "SEALED", 40, "the ERP rows sealed, written back", daemon)

        # The API stalls: every answer comes 30 s late. A first new row sets push waiting on it.
        emulator.emulator.faults = FaultConfig(latency_ms=30_000)
        insert("ENL-2001", "2026-03-05 10:00:00")
        wait_for(lambda: _running(base).get("push") == 1.0, 10, "push to be waiting on the API", daemon)

        # While push waits, a second row is read and its status written back into the ERP.
        insert("ENL-2002", "2026-03-05 10:00:01")
        wait_for(lambda: erp_status("ENL-2002") == "pending", 10, "ENL-2002 ingested and written back",
                 daemon)
        assert _running(base)["push"] == 1.0  # still waiting on the stalled API
        health = httpx.get(f"{base}/healthz", timeout=5).json()
        assert health["steps"]["push"]["running"] is True
        assert health["steps"]["ingest"]["lag_seconds"] < 5
        assert health["steps"]["writeback"]["lag_seconds"] < 5
    finally:
        emulator.emulator.faults = FaultConfig()
        daemon.stop()


@pytest.fixture
def pg_erp() -> Iterator[str]:
    if not _reachable("postgresql"):
        pytest.skip("PostgreSQL server not reachable")
    with temporary_database("postgresql") as url:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        script = _asset("erp.sql").decode("utf-8").replace("id INTEGER PRIMARY KEY", "id SERIAL PRIMARY KEY")
        with engine.begin() as conn:
            for statement in script.split(";"):
                if statement.strip():
                    conn.exec_driver_sql(statement)
        engine.dispose()
        yield url


class _Gate:
    """A TCP door to the emulator: bound but closed (connections refused), then opened."""

    def __init__(self, target: str) -> None:
        self.target = ("127.0.0.1", int(target.rstrip("/").rsplit(":", 1)[1]))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: a connect is refused at once
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"

    def open(self) -> None:
        self.sock.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)


@pytest.mark.slow
def test_a_locked_erp_table_never_stops_push_and_track(
    tmp_path: Path, emulator: ServedEmulator, pg_erp: str
) -> None:
    gate = _Gate(emulator.url)
    config = _prepare(tmp_path, gate.url)
    schedule = SCHEDULE.format(track=0.5).replace(
        "max_attempts = 1", "max_attempts = 1\ninitial_backoff_seconds = 0.2\nmax_backoff_seconds = 1"
    )
    config.write_text(config.read_text("utf-8") + schedule, "utf-8")
    mapping = tmp_path / "mappings" / "bsdd_sqlite.toml"
    mapping.write_text(re.sub(r'(?m)^url = .*$', f'url = "{pg_erp}"', mapping.read_text("utf-8")), "utf-8")
    engine = sa.create_engine(pg_erp, poolclass=sa.NullPool)
    valid = {"BE-2026-0412", "BE-2026-0413", "BE-2026-0414", "BE-2026-0416"}
    valid |= {"ENL-1001", "ENL-1002", "ENL-1003"}

    def in_state(state: str) -> set[str]:
        return {k for k, r in _records(tmp_path).items() if r.state == state}

    # The API cannot be reached at first: every record is read and waits, pending.
    daemon = start_daemon(tmp_path, config)
    try:
        base = wait_for(lambda: _endpoint(daemon), 30, "the metrics endpoint", daemon)
        wait_for(lambda: valid <= in_state("pending"), 40, "every valid record read and pending", daemon)

        with engine.connect() as lock:
            lock.execute(sa.text("LOCK TABLE enlevements IN ACCESS EXCLUSIVE MODE"))  # held until rollback

            def ingest_blocked() -> bool:
                ingest = httpx.get(f"{base}/healthz", timeout=5).json()["steps"]["ingest"]
                return bool(ingest["running"] and ingest["lag_seconds"] > 2)

            wait_for(ingest_blocked, 20, "ingest to be waiting on the locked table", daemon)
            gate.open()

            # Push goes on: every record is created and sealed while the ERP table is locked.
            wait_for(lambda: valid <= in_state("synced"), 30, "every record sealed during the lock", daemon)
            running = _running(base)
            assert running["ingest"] == 1.0 or running["writeback"] == 1.0  # waiting on the lock

            # Track goes on: signatures made on the platform come back during the lock.
            for key in ("BE-2026-0412", "ENL-1001"):
                readable = _records(tmp_path)[key].readable_id
                httpx.post(f"{emulator.url}_emulator/bsds/{readable}/sign-emission", json={"author": "Test"},
                           timeout=10).raise_for_status()
            wait_for(lambda: {_records(tmp_path)[k].remote_status for k in ("BE-2026-0412", "ENL-1001")}
                     == {"SIGNED_BY_PRODUCER"}, 20, "the new statuses tracked during the lock", daemon)
            with sa.create_engine(pg_erp, poolclass=sa.NullPool).connect() as probe:
                probe.execute(sa.text("SET lock_timeout = '100ms'"))
                with pytest.raises(sa.exc.OperationalError):  # the lock is real, and still held
                    probe.execute(sa.text("SELECT td_numero FROM enlevements")).all()
            lock.rollback()

        # The lock released, the ERP side catches up by itself.
        def written() -> bool:
            with engine.connect() as conn:
                query = sa.text("SELECT numero, td_statut FROM enlevements")
                rows: dict[str, str] = {str(k): str(v) for k, v in conn.execute(query).all()}
            return rows["ENL-1001"] == "SIGNED_BY_PRODUCER" and rows["ENL-1002"] == "SEALED"

        wait_for(written, 30, "the new status written into the ERP once the lock is released", daemon)
    finally:
        daemon.stop()
        gate.close()
        engine.dispose()
