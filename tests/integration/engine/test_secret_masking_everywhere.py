"""What is stored or shown passes the logs' masking: the state store, /healthz, log values.

A server that echoes the token in its error message, or an 8.9 MB header line quoted in a
rejection, must reach the database, the health endpoint and the logs only masked and bounded.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import update

from connector.health import HealthCheck, StepStatus
from connector.logs import MASK, configure_logging, redact, register_secret
from connector.state.models import Record, RecordState, StepRun
from connector.state.store import open_state_store, utcnow

TOKEN = "tok-echoed-by-a-careless-server-4f2a9c"
HUGE = ";".join(f"colonne_{i}" for i in range(700_000))  # an 8.9 MB header line


@pytest.fixture(autouse=True)
def _secret() -> None:
    register_secret(TOKEN)


def raw_rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        return list(db.execute(sql))


def test_echoed_token_and_runaway_text_are_masked_and_bounded_in_the_state_store(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    store = open_state_store(f"sqlite:///{database}")
    now = utcnow()
    with store.session() as session:
        session.add(Record(
            mapping="m", record_key="k1", kind="BSDD", unit="e.csv", origin="inbox/e.csv:line 2",
            payload_hash="h", state=RecordState.REJECTED,
            last_error=f"create refused by Trackdéchets: invalid token {TOKEN} (Bearer {TOKEN})",
            error_fields=json.dumps([f"emitter {TOKEN}"]), attempts=0, writeback_due=True,
            created_at=now, updated_at=now))
        session.add(StepRun(step="push", started_at=now, summary=f"failed: {TOKEN} " + HUGE))
    with store.session() as session:  # a bulk UPDATE bypasses the ORM's attributes: masked all the same
        session.execute(update(Record).values(writeback_error=f"ERP said {TOKEN}: " + HUGE))
    store.close()

    (last_error, error_fields, writeback_error), = raw_rows(
        database, "SELECT last_error, error_fields, writeback_error FROM records")
    (summary,), = raw_rows(database, "SELECT summary FROM step_runs")
    for text in (last_error, error_fields, writeback_error, summary):
        assert isinstance(text, str)
        assert TOKEN not in text
        assert len(text) < 4200
    assert last_error.count(MASK) == 2
    assert json.loads(str(error_fields)) == [f"emitter {MASK}"]  # masked, still valid JSON
    assert "excerpt: first 4,000 of" in str(writeback_error)


def test_healthz_shows_a_step_error_masked_and_bounded() -> None:
    status = StepStatus(clock=lambda: 100.0)
    status.register("push", 5)
    status.failed("push", 1.0, f"AuthError: token {TOKEN} refused " + HUGE)
    shown = HealthCheck(status)().to_json()["steps"]["push"]["last_error"]
    assert TOKEN not in shown
    assert len(shown) < 1100


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_logging")
def test_log_values_are_bounded_excerpts() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "json", stream=buf)
    structlog.get_logger("t").warning("csv_file_rejected", reason="columns found: " + HUGE)
    line = buf.getvalue()
    assert len(line) < 5000
    assert f"excerpt: first 4,000 of {len(HUGE) + len('columns found: '):,} characters" in line


def test_a_secret_straddling_the_cut_is_masked_whole() -> None:
    text = "x" * 1990 + TOKEN + "y" * 5000
    shown = redact(text, 2000)
    assert TOKEN[:10] not in shown
    assert shown.startswith("x" * 1990 + MASK)
