"""Key reuse is a decision, not an accident: duplicates and identity changes are held at ingest.

- Two rows of one batch with the same key: which one is the record cannot be told, so the record is
  held (``conflict``) with both rows named, and nothing is sent.
- Two records of one mapping with the same customId (in one batch, or one new and one already in
  the state store): all that were not sent yet are held, each naming the others. When one of them
  changes its customId, the one left alone is released.
- A key that comes back with another emitter SIRET or waste code after its BSD was sealed (an
  ERP's slip number reused on a later day) is held too, unless the mapping allows it
  (``lifecycle.key_reuse = "update"``, before any signature only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.domain.kinds import WASTE_CODE_PATHS
from connector.engine.context import Binding
from connector.state.models import Record, RecordState
from connector.state.store import utcnow

if TYPE_CHECKING:
    from connector.engine.ingest import IngestEntry

__all__ = [
    "custom_id_of",
    "hold_custom_id_duplicates",
    "hold_key_duplicates",
    "key_reused",
    "release_freed",
]

_CUSTOM_ID_FIELDS = json.dumps(["customId"])


def custom_id_of(payload: Mapping[str, Any] | None) -> str | None:
    value = payload.get("customId") if payload else None
    return str(value)[:200] if value not in (None, "") else None


def hold_key_duplicates(entries: Sequence[IngestEntry]) -> dict[str, IngestEntry]:
    """One entry per key; a key found on several rows of the batch becomes a held conflict."""
    groups: dict[str, list[IngestEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.key, []).append(entry)
    out: dict[str, IngestEntry] = {}
    for key, group in groups.items():
        origins = list(dict.fromkeys(e.origin for e in group))
        if len(origins) < 2:
            out[key] = group[-1]
            continue
        error = (
            f"key {key!r} is on {len(origins)} rows of the source: {'; '.join(origins)}: all held, "
            "nothing sent; keep one row per key, or add a column to the mapping's key"
        )
        digest = hashlib.sha256("\n".join([error, *(e.hash for e in group)]).encode()).hexdigest()[:40]
        out[key] = replace(
            group[-1], payload=None, text=None, hash="conflict:" + digest, error=error, fields=("key",),
            conflict=True,
        )
    return out


def _names(rows: Sequence[tuple[str, str]]) -> str:
    return "; ".join(f"{key} ({origin})" for key, origin in rows)


def hold_custom_id_duplicates(
    session: Session, mapping: str, latest: Mapping[str, IngestEntry], log: Any
) -> dict[str, IngestEntry]:
    """Entries of ``latest`` to hold because their customId is another record's too."""
    by_id: dict[str, list[str]] = {}
    for key, entry in latest.items():
        custom_id = custom_id_of(entry.payload) if not entry.error else None
        if custom_id:
            by_id.setdefault(custom_id, []).append(key)
    held: dict[str, IngestEntry] = {}

    def hold(key: str, error: str) -> None:
        held[key] = replace(latest[key], error=error, fields=("customId",), conflict=True)

    for custom_id, keys in by_id.items():
        if len(keys) > 1:
            rows = [(k, latest[k].origin) for k in keys]
            for key in keys:
                hold(key, f"customId {custom_id!r} is produced by {len(keys)} rows of the source: "
                          f"{_names(rows)}: all held, nothing sent; give each its own customId")
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(Record).where(Record.mapping == mapping, Record.custom_id.in_(chunk))
        for holder in session.scalars(query):
            if holder.record_key in latest or holder.custom_id is None:
                continue  # in this batch: checked above with its new data
            keys = by_id[holder.custom_id]
            sent = f", BSD {holder.readable_id or holder.bsd_id}" if holder.bsd_id else ""
            for key in keys:
                hold(key, f"customId {holder.custom_id!r} is already used by record {holder.record_key} "
                          f"({holder.origin}{sent}): held, nothing sent; give this row its own customId")
            if holder.bsd_id is None and holder.intent_op is None and holder.state == RecordState.PENDING:
                holder.state, holder.next_op = RecordState.CONFLICT, None
                holder.last_error = (
                    f"customId {holder.custom_id!r} is also produced by "
                    f"{_names([(k, latest[k].origin) for k in keys])}: all held, nothing sent; "
                    "give each its own customId"
                )
                holder.error_fields = _CUSTOM_ID_FIELDS
                holder.writeback_due = True
                holder.updated_at = utcnow()
                log.warning("record_conflict", mapping=mapping, record_key=holder.record_key,
                            error=holder.last_error)
    return held


def release_freed(session: Session, mapping: str, freed: set[str], log: Any) -> int:
    """A record held for a shared customId that is now its own alone goes back in line."""
    released = 0
    for custom_id in sorted(freed):
        rows = list(session.scalars(
            select(Record).where(Record.mapping == mapping, Record.custom_id == custom_id).limit(2)
        ))
        if len(rows) != 1:
            continue
        row = rows[0]
        if row.state != RecordState.CONFLICT or row.error_fields != _CUSTOM_ID_FIELDS or not row.payload:
            continue
        row.state, row.next_op = RecordState.PENDING, ("update" if row.bsd_id else "create")
        row.last_error = row.error_fields = None
        row.writeback_due = True
        row.updated_at = utcnow()
        released += 1
        log.info("record_released", mapping=mapping, record_key=row.record_key, custom_id=custom_id,
                 next_op=row.next_op)
    return released


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def key_reused(binding: Binding, row: Record, payload: Mapping[str, Any] | None, log: Any) -> bool:
    """Hold ``row`` when its sealed BSD would get another emitter or waste; True when held.

    ``row.payload`` stays what was last sent, so the record is compared with its BSD until a
    person decides.
    """
    spec = getattr(binding.mapping, "spec", None)
    if getattr(getattr(spec, "lifecycle", None), "key_reuse", "conflict") != "conflict":
        return False
    if payload is None or row.bsd_id is None or row.remote_is_draft is not False or not row.payload:
        return False
    kind = binding.mapping.kind
    if row.remote_status and kind.is_signed(row.remote_status, False):
        return False  # after a signature every change is a conflict already
    sent = json.loads(row.payload)
    paths = {"emitter SIRET": "emitter.company.siret", "waste code": WASTE_CODE_PATHS[kind.name]}
    changed = {label: path for label, path in paths.items() if _dig(sent, path) != _dig(payload, path)}
    changes = [f"{label} {_dig(sent, path)!r} → {_dig(payload, path)!r}" for label, path in changed.items()]
    if not changes:
        return False
    row.state, row.next_op = RecordState.CONFLICT, None
    row.last_error = (
        f"key {row.record_key!r} came back with another {'; '.join(changes)} after its BSD "
        f"{row.readable_id or row.bsd_id} was sealed: nothing was sent. A new slip needs a new key; "
        "to correct this one, correct it on Trackdéchets, or allow updates before signature with "
        'lifecycle.key_reuse = "update"'
    )
    row.error_fields = json.dumps(list(changed.values()))
    log.warning("record_conflict", mapping=binding.mapping.name, record_key=row.record_key,
                bsd_id=row.bsd_id, readable_id=row.readable_id, error=row.last_error)
    return True
