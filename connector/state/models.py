"""Tables of the state store.

One row per source record (``records``), one checkpoint per mapping, one tracking cursor per
(kind, SIRET), and a short history of step runs for ``status``. The columns ``intent_*`` hold the
durable intent: written and committed *before* a mutation leaves the process, cleared when its
outcome is known. A row with an intent and no outcome is, by definition, in doubt.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, TypeEngine

from connector.logs import mask_secrets, redact

__all__ = [
    "Base",
    "Checkpoint",
    "Record",
    "RecordState",
    "StepRun",
    "StoreIdentity",
    "TrackCursor",
    "TrackHint",
]


class RecordState(StrEnum):
    """Where a record stands on the connector's side."""

    PENDING = "pending"
    """Mapped, valid, waiting for its next mutation (create, seal or update)."""
    IN_FLIGHT = "in_flight"
    """An intent is committed; its outcome is not recorded yet (or is in doubt)."""
    SYNCED = "synced"
    """The BSD exists and matches the record; only tracking remains."""
    DONE = "done"
    """The BSD reached a terminal status (processed, refused, canceled...)."""
    REJECTED = "rejected"
    """Permanent error for this data: fix the data or the mapping, or replay with ``retry``."""
    CONFLICT = "conflict"
    """Nothing is sent, a person must act: the record changed after a signature, its key came back
    with another emitter or waste after sealing, or another row shares its key or customId."""


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite and MariaDB keep no offset)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            # DATETIME keeps whole seconds there; the write-back compares stamps to the microsecond.
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RedactedText(TypeDecorator[str]):
    """Text that is masked (registered secrets) and bounded on its way into the database.

    For messages (errors, summaries): whichever code path writes them, ORM attribute or bulk
    ``UPDATE``, a token a server echoed or an 8 MB header line never reach the state store whole.
    """

    impl = Text
    cache_ok = True

    def __init__(self, limit: int | None = 4000) -> None:
        super().__init__()
        self.limit = limit
        """None: masked only, never cut (for JSON, which a cut would break)."""

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return mask_secrets(value) if self.limit is None else redact(value, self.limit)


class Base(DeclarativeBase):
    pass


class Record(Base):
    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("mapping", "record_key", name="uq_records_mapping_key"),
        Index("ix_records_due", "state", "next_attempt_at"),
        Index("ix_records_bsd", "bsd_id"),
        Index("ix_records_writeback", "writeback_due"),
        Index("ix_records_custom_id", "mapping", "custom_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    mapping: Mapped[str] = mapped_column(String(200))
    record_key: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(500))
    origin: Mapped[str] = mapped_column(String(1000))
    emitter_siret: Mapped[str | None] = mapped_column(String(32))
    custom_id: Mapped[str | None] = mapped_column(String(200))
    """The customId the payload carries (BSDD, BSVHU): unique per mapping, checked at ingest."""
    payload: Mapped[str | None] = mapped_column(Text)
    """JSON of the mapped input, kept so that a rejected record can be replayed and inspected."""
    payload_hash: Mapped[str] = mapped_column(String(80))
    source_values: Mapped[str | None] = mapped_column(Text)
    """JSON of the raw record (values and child rows): ``retry`` re-maps it with the current mapping."""
    state: Mapped[str] = mapped_column(String(16))
    next_op: Mapped[str | None] = mapped_column(String(16))
    """The mutation this record waits for: ``create``, ``seal``, ``update`` (None when synced)."""
    bsd_id: Mapped[str | None] = mapped_column(String(100))
    readable_id: Mapped[str | None] = mapped_column(String(100))
    remote_status: Mapped[str | None] = mapped_column(String(40))
    remote_is_draft: Mapped[bool | None] = mapped_column(Boolean)
    remote_updated_at: Mapped[str | None] = mapped_column(String(40))
    last_error: Mapped[str | None] = mapped_column(RedactedText())
    error_fields: Mapped[str | None] = mapped_column(RedactedText(limit=None))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    intent_op: Mapped[str | None] = mapped_column(String(16))
    intent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    intent_hash: Mapped[str | None] = mapped_column(String(80))
    writeback_due: Mapped[bool] = mapped_column(Boolean, default=False)
    writeback_error: Mapped[str | None] = mapped_column(RedactedText())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    mapping: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class TrackCursor(Base):
    """Where tracking resumes for one kind and one company: the start of the last full walk."""

    __tablename__ = "track_cursors"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    siret: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime())


class TrackHint(Base):
    """A BSD a webhook said changed (its readable id); the next track run reads it back."""

    __tablename__ = "track_hints"

    bsd_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())


class StoreIdentity(Base):
    """The state store's own identity, one row created with the store (``connector.state.identity``).

    The same identity is written in marker files beside the store and beside the CSV receipts: a
    store that does not find its own identity there was deleted, replaced or is foreign, and must
    not create BSDs until ``td-connector rebuild-state`` adopted the existing ones.
    """

    __tablename__ = "store_identity"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    """Always ``store``: one row."""
    identity: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    trusted: Mapped[bool | None] = mapped_column(Boolean)
    """None until first checked against the markers; False until ``rebuild-state`` ran."""
    reason: Mapped[str | None] = mapped_column(Text)
    """Why the store may not create (what was detected)."""
    generation: Mapped[int] = mapped_column(Integer, default=0)
    """Bumped before each push pass that creates; copied to the markers (an older copy is behind)."""
    rebuilt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class StepRun(Base):
    __tablename__ = "step_runs"
    __table_args__ = (Index("ix_step_runs_step", "step", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    step: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[str | None] = mapped_column(RedactedText())
