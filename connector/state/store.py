"""Opening the state store, migrating it, and the queries every step shares."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from connector.errors import StateError
from connector.state.models import Checkpoint, Record, RecordState, StepRun, StoreIdentity, TrackCursor

__all__ = ["StateStore", "StatusReport", "open_state_store", "sum_by_state", "utcnow"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def utcnow() -> datetime:
    return datetime.now(UTC)


def sum_by_state(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """``StateStore.counts()`` (mapping → state → n) summed over the mappings: state → n."""
    totals: dict[str, int] = {}
    for per_state in counts.values():
        for state, n in per_state.items():
            totals[state] = totals.get(state, 0) + n
    return totals


@dataclass
class StatusReport:
    counts: dict[str, dict[str, int]]
    """mapping → state → number of records."""
    rejected: list[dict[str, Any]]
    in_doubt: int
    writeback_backlog: int
    last_runs: list[dict[str, Any]]
    rate_budget: dict[str, Any] | None = None
    """Requests left in the API's rate window when the last push or track run ended, and when."""
    not_trusted: str | None = None
    """Why this store may not create BSDs (see ``connector.state.identity``), or None."""


class StateStore:
    """Thin owner of the engine and sessions; the steps keep their logic to themselves."""

    def __init__(self, engine: Engine, database_path: Path | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.database_path = database_path
        """The SQLite file (None for server databases): its identity is watched while running."""
        # What connector.state.identity saw when the store was opened, and a loss it found.
        self.opened_file: tuple[int, int] | None = None
        self.opened_identity: str | None = None
        self.lost: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Bring the schema to the newest revision (run at every start, idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        # Alembic narrates every step at INFO; an operator only needs to hear of failures.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        try:
            with self.engine.connect() as connection, _transactional_ddl(connection):
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except Exception as exc:
            raise StateError(f"cannot migrate the state store: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    # --- checkpoints -------------------------------------------------------------------------

    def get_checkpoint(self, mapping: str) -> dict[str, Any] | None:
        with self.session() as session:
            row = session.get(Checkpoint, mapping)
            return json.loads(row.data) if row else None

    @staticmethod
    def put_checkpoint(session: Session, mapping: str, data: dict[str, Any]) -> None:
        row = session.get(Checkpoint, mapping)
        text = json.dumps(data, sort_keys=True, default=str)
        if row is None:
            session.add(Checkpoint(mapping=mapping, data=text, updated_at=utcnow()))
        else:
            row.data = text
            row.updated_at = utcnow()

    # --- tracking cursors --------------------------------------------------------------------

    @staticmethod
    def get_cursor(session: Session, kind: str, siret: str) -> datetime | None:
        row = session.get(TrackCursor, (kind, siret))
        return row.since if row else None

    @staticmethod
    def put_cursor(session: Session, kind: str, siret: str, since: datetime) -> None:
        row = session.get(TrackCursor, (kind, siret))
        if row is None:
            session.add(TrackCursor(kind=kind, siret=siret, since=since))
        else:
            row.since = since

    # --- step runs ---------------------------------------------------------------------------

    def start_run(self, step: str) -> int:
        with self.session() as session:
            run = StepRun(step=step, started_at=utcnow(), ok=False)
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, ok: bool, summary: dict[str, Any]) -> None:
        with self.session() as session:
            run = session.get(StepRun, run_id)
            if run is not None:
                run.finished_at = utcnow()
                run.ok = ok
                run.summary = json.dumps(summary, default=str)

    # --- reports -----------------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        with self.session() as session:
            rows = session.execute(
                select(Record.mapping, Record.state, func.count()).group_by(Record.mapping, Record.state)
            ).all()
        out: dict[str, dict[str, int]] = {}
        for mapping, state, count in rows:
            out.setdefault(mapping, {})[state] = count
        return out

    def report(self, top: int = 10) -> StatusReport:
        counts = self.counts()  # its own session: one at a time on SQLite (BEGIN IMMEDIATE)
        with self.session() as session:
            rejected = session.scalars(
                select(Record)
                .where(Record.state.in_([RecordState.REJECTED, RecordState.CONFLICT]))
                .order_by(Record.updated_at.desc())
                .limit(top)
            ).all()
            in_doubt = (
                session.scalar(select(func.count()).select_from(Record).where(Record.intent_op.is_not(None)))
                or 0
            )
            backlog = (
                session.scalar(select(func.count()).select_from(Record).where(Record.writeback_due.is_(True)))
                or 0
            )
            runs = session.scalars(select(StepRun).order_by(StepRun.id.desc()).limit(12)).all()
            budget = None
            for run in runs:
                summary = json.loads(run.summary) if run.summary else {}
                if isinstance(summary, dict) and "rate_budget_remaining" in summary:
                    budget = {
                        "remaining": summary["rate_budget_remaining"],
                        "at": (run.finished_at or run.started_at).isoformat(),
                    }
                    break
            identity = session.get(StoreIdentity, "store")
            untrusted = identity is not None and identity.trusted is False
            return StatusReport(
                not_trusted=(identity.reason or "not trusted") if identity and untrusted else None,
                rate_budget=budget,
                counts=counts,
                rejected=[
                    {
                        "mapping": r.mapping,
                        "key": r.record_key,
                        "state": r.state,
                        "origin": r.origin,
                        "error": r.last_error,
                        "updated_at": r.updated_at.isoformat(),
                    }
                    for r in rejected
                ],
                in_doubt=in_doubt,
                writeback_backlog=backlog,
                last_runs=[
                    {
                        "step": r.step,
                        "started_at": r.started_at.isoformat(),
                        "ok": r.ok,
                        "summary": json.loads(r.summary) if r.summary else None,
                    }
                    for r in runs
                ],
            )

    def records(self, mapping: str | None = None) -> Sequence[Record]:
        with self.session() as session:
            query = select(Record).order_by(Record.id)
            if mapping:
                query = query.where(Record.mapping == mapping)
            return session.scalars(query).all()


@contextmanager
def _transactional_ddl(connection: Connection) -> Iterator[None]:
    """Commit a whole migration at once, or nothing of it.

    Python's sqlite3 opens a transaction only before INSERT/UPDATE/DELETE, so each CREATE TABLE
    commits on its own: a process killed in the middle of the first migration left tables without
    the Alembic stamp, and every later start failed on "table records already exists". Here the
    driver is put in autocommit mode and the transaction is opened by hand (IMMEDIATE: two
    processes starting together migrate one after the other). PostgreSQL already runs DDL inside
    the transaction; MariaDB cannot (each DDL statement commits), see docs/operations.md.
    """
    # On SQLite the driver runs in autocommit mode and every transaction starts with BEGIN
    # IMMEDIATE (see _sqlite_begin), DDL included.
    with connection.begin():
        yield


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling opens a transaction only before the first write, so a
    # session's reads ran outside it: with steps running side by side, a row read by one step could
    # be changed by another before the first one wrote it back. Transactions are opened here
    # instead (_sqlite_begin), as BEGIN IMMEDIATE: one writer at a time, reads included.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets `status` read while the daemon writes; a busy timeout instead of "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed intent survives a power cut too, not only a crash of the process; an
    # intent lost that way would let an in-doubt create be resent without being looked up.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def open_state_store(url: str, *, migrate: bool = True) -> StateStore:
    """Open (and by default migrate) the state store at ``url``; SQLite folders are created."""
    parsed = make_url(url)
    database_path: Path | None = None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
        if not (parsed.database or "").startswith("file:"):
            database_path = Path(parsed.database or "").absolute()
    engine = create_engine(url, future=True)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    store = StateStore(engine, database_path)
    if migrate:
        from connector.state.identity import ensure_identity, remember_opening

        store.upgrade()
        ensure_identity(store)
        remember_opening(store)
    return store
