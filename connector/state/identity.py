"""The state store's identity: one stamp row, marker files, and the store file's own identity.

A state store that disappears (``state.db`` deleted, a server database dropped, an old backup put
back, another install's store pointed at) silently starts empty, and every record would be created
again. So the store gets an identity when it is created (``store_identity``), the same identity is
written in *markers* beside it and beside the source's write-back, and each side checks the other:
a store that does not find its own identity in the markers is not the one that sent the records.
While running, the store file itself (SQLite: device and inode) and the stamp row (server
databases) are checked again before each push pass.

This module only reads and writes those facts; ``connector.engine.trust`` decides.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from connector.atomic_files import replace_text_file
from connector.state.models import Record, StoreIdentity
from connector.state.store import StateStore, utcnow

__all__ = [
    "SOURCE_MARKER",
    "Identity",
    "Marker",
    "bump_generation",
    "ensure_identity",
    "lost_while_running",
    "mark_trusted",
    "mark_untrusted",
    "mark_untrusted_in",
    "read_identity",
    "read_marker",
    "store_marker_path",
    "trusted_in",
    "write_marker",
]

SOURCE_MARKER = ".td-connector-state.json"
"""Marker file name in a CSV source's receipts folder."""
_ROW = "store"


@dataclass(frozen=True)
class Identity:
    identity: str
    created_at: datetime
    trusted: bool | None
    reason: str | None
    generation: int
    rebuilt_at: datetime | None


def _of(row: StoreIdentity) -> Identity:
    return Identity(
        row.identity, row.created_at, row.trusted, row.reason, row.generation or 0, row.rebuilt_at
    )


def read_identity(store: StateStore) -> Identity | None:
    with store.session() as session:
        row = session.get(StoreIdentity, _ROW)
        return _of(row) if row else None


def ensure_identity(store: StateStore) -> Identity:
    """The store's identity, created on first call.

    A store from before identity stamps that already holds records did the work itself: it is
    trusted. An empty one is undecided until checked against the markers.
    """
    found = read_identity(store)
    if found is not None:
        return found
    try:
        with store.session() as session:
            legacy = (session.scalar(select(func.count()).select_from(Record)) or 0) > 0
            session.add(
                StoreIdentity(
                    name=_ROW,
                    identity=uuid.uuid4().hex,
                    created_at=utcnow(),
                    trusted=True if legacy else None,
                    reason=None,
                    generation=0,
                )
            )
    except IntegrityError:  # another process created it at the same instant
        pass
    found = read_identity(store)
    assert found is not None
    return found


def mark_untrusted(store: StateStore, reason: str) -> Identity:
    """No create from this store until ``rebuild-state``; the first reason found is kept."""
    with store.session() as session:
        row = session.get(StoreIdentity, _ROW)
        assert row is not None, "ensure_identity() first"
        if row.trusted is not False:
            row.trusted, row.reason = False, reason
        return _of(row)


def mark_untrusted_in(session: Session, reason: str) -> None:
    """:func:`mark_untrusted` inside the caller's transaction (the identity row exists already).

    Ingest uses it to mark the store in the same transaction that stores the records carrying
    BSD ids: no push can claim them in between.
    """
    session.execute(
        update(StoreIdentity)
        .where(
            StoreIdentity.name == _ROW,
            or_(StoreIdentity.trusted.is_(None), StoreIdentity.trusted.is_(True)),
        )
        .values(trusted=False, reason=reason)
        .execution_options(synchronize_session=False)
    )


def trusted_in(session: Session) -> bool:
    """Whether the store may create, read inside the caller's transaction."""
    return session.scalar(select(StoreIdentity.trusted).where(StoreIdentity.name == _ROW)) is True


def mark_trusted(store: StateStore, *, rebuilt: bool) -> Identity:
    """Trusted again after ``rebuild-state`` (``rebuilt``), or a new install trusted at once.

    The new-install case only turns an undecided store trusted, in one conditional UPDATE: a
    concurrent ingest that has just marked it untrusted wins.
    """
    with store.session() as session:
        if rebuilt:
            row = session.get(StoreIdentity, _ROW)
            assert row is not None, "ensure_identity() first"
            row.trusted, row.reason = True, None
            row.rebuilt_at = utcnow()
            return _of(row)
        session.execute(
            update(StoreIdentity)
            .where(StoreIdentity.name == _ROW, StoreIdentity.trusted.is_(None))
            .values(trusted=True, reason=None)
            .execution_options(synchronize_session=False)
        )
        row = session.get(StoreIdentity, _ROW, populate_existing=True)
        assert row is not None, "ensure_identity() first"
        return _of(row)


def bump_generation(store: StateStore) -> Identity:
    with store.session() as session:
        row = session.get(StoreIdentity, _ROW)
        assert row is not None, "ensure_identity() first"
        row.generation = (row.generation or 0) + 1
        return _of(row)


# --- the store file while running ------------------------------------------------------------


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_dev, stat.st_ino)


def remember_opening(store: StateStore) -> None:
    """Note what the store is right now, for :func:`lost_while_running` to compare."""
    if store.database_path is not None:
        store.opened_file = _file_identity(store.database_path)
    found = read_identity(store)
    store.opened_identity = found.identity if found else None


def lost_while_running(store: StateStore) -> str | None:
    """Why the store this process opened is no longer there (sticky), or None."""
    if store.lost is not None:
        return store.lost
    reason: str | None = None
    path = store.database_path
    if path is not None and store.opened_file is not None:
        now = _file_identity(path)
        if now is None:
            reason = f"the state store file {path} was deleted while the connector was running"
        elif now != store.opened_file:
            reason = f"the state store file {path} was replaced while the connector was running"
    if reason is None and store.opened_identity is not None:
        try:
            found = read_identity(store)
        except SQLAlchemyError as exc:
            found = None
            reason = f"the state store's identity cannot be read any more ({type(exc).__name__})"
        if reason is None and (found is None or found.identity != store.opened_identity):
            reason = "the state store was emptied or replaced while the connector was running"
    store.lost = reason
    return reason


# --- markers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    path: Path
    identity: str
    """Empty when the file cannot be read as a marker."""
    generation: int


def store_marker_path(store: StateStore) -> Path | None:
    """``state-identity.json`` beside a SQLite ``state.db`` (so ``rm state.db*`` leaves it)."""
    path = store.database_path
    if path is None:
        return None
    return path.with_name(f"{path.stem}-identity.json")


def read_marker(path: Path) -> Marker | None:
    try:
        data = json.loads(path.read_text("utf-8"))
        return Marker(path, str(data["identity"]), int(data.get("generation", 0)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return Marker(path, "", 0)


def write_marker(path: Path, identity: Identity, *, state_url: str) -> None:
    """Replace the marker atomically (a reader never sees half of it)."""
    text = json.dumps(
        {
            "identity": identity.identity,
            "generation": identity.generation,
            "state_store": state_url,
            "written_at": utcnow().isoformat(),
            "note": "written by td-connector: which state store sent this source's records; "
            "do not edit (see docs/operations.md, 'Losing the state store')",
        },
        indent=2,
    )
    # Its own folder only (receipts/ inside a drop folder): never a missing drop folder, whose
    # absence is the ingest step's failure to report, not something to paper over.
    path.parent.mkdir(exist_ok=True)
    replace_text_file(path, lambda fh: fh.write(text + "\n"))
