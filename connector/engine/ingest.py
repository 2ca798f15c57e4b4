"""Ingest: source records → mapped payloads → state store rows ("this record wants this").

Ingest never talks to Trackdéchets. It decides, per record, what the next mutation is (create,
update) or why none may be sent (rejected, conflict after signature), and commits each batch with
the source's checkpoint in one transaction before the source is told to acknowledge it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.engine.context import Binding, Pipeline
from connector.engine.lookup_refresh import refresh_lookups
from connector.engine.trust import note_carried_bsd_ids
from connector.engine.uniqueness import (
    custom_id_of,
    hold_custom_id_duplicates,
    hold_key_duplicates,
    key_reused,
    release_freed,
)
from connector.engine.validation import validator_for
from connector.errors import RecordError, StepFailed
from connector.failures import source_failure
from connector.logs import is_idle
from connector.mapping.hashing import canonical_json
from connector.sources.base import RowProblem, SourceBatch, SourceRecord
from connector.state.identity import ensure_identity
from connector.state.models import Record, RecordState
from connector.state.store import StateStore, utcnow

__all__ = ["IngestEntry", "ingest", "ingest_binding"]


class _NotAcknowledged(Exception):
    """The batch is stored but the source could not act on it (a file not moved aside)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


@dataclass(frozen=True)
class IngestEntry:
    key: str
    unit: str | None
    origin: str
    payload: dict[str, Any] | None
    hash: str
    error: str | None = None
    fields: tuple[str, ...] = ()
    raw: str | None = None
    text: str | None = None
    """Canonical JSON of ``payload`` (what is hashed, and what the state store keeps)."""
    conflict: bool = False
    """Held for a person (``error`` says why): another row shares its key or customId."""


def _emitter_siret(payload: dict[str, Any] | None) -> str | None:
    try:
        value = payload["emitter"]["company"]["siret"] if payload else None
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _error_hash(values: Any, version: str) -> str:
    """Identity of a failed mapping: the same raw data under the same mapping fails the same way."""
    text = json.dumps(values, sort_keys=True, default=str)
    return "error:" + hashlib.sha256(f"{version}\n{text}".encode()).hexdigest()[:40]


def raw_json(record: SourceRecord) -> str:
    return json.dumps(
        {
            "values": dict(record.values),
            "children": {k: [dict(r) for r in v] for k, v in record.children.items()},
        },
        ensure_ascii=False,
        default=str,
    )


def map_record(binding: Binding, record: SourceRecord) -> IngestEntry:
    raw = raw_json(record)
    try:
        if not binding.columns <= record.values.keys():
            # A file without a column the mapping reads (a renamed header, another export): say
            # so, rather than "the column is empty" for every field it feeds.
            problems = "; ".join(binding.mapping.check_columns(list(record.values)))
            raise RecordError(f"{record.origin}: {problems}")
        payload = binding.mapping.apply(record)
    except RecordError as exc:
        fields = tuple(getattr(exc, "fields", ()) or ((exc.field,) if exc.field else ()))
        # Only the columns the mapping reads: the write-back's own columns must not make an
        # unchanged bad row look new at every pass.
        used = binding.columns
        relevant = {k: v for k, v in record.values.items() if k in used}
        identity = {"values": relevant, "children": {k: list(v) for k, v in record.children.items()}}
        return IngestEntry(
            record.key,
            record.unit,
            record.origin,
            None,
            _error_hash(identity, binding.version),
            str(exc),
            fields,
            raw,
        )
    _stamp_reference(binding, record, payload)
    text = canonical_json(payload)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return IngestEntry(record.key, record.unit, record.origin, payload, digest, raw=raw, text=text)


def _stamp_reference(binding: Binding, record: SourceRecord, payload: dict[str, Any]) -> None:
    """The record key as the BSD's own reference, unless the mapping sets one.

    BSDD and BSVHU get it as ``customId``, the others in ``emitter.customInfo`` (the platform's
    place for the emitter's reference). With it, an in-doubt create, or every record when the
    state is rebuilt, is matched to exactly one BSD (see engine.reconcile, engine.rebuild).
    """
    if binding.mapping.kind.has_custom_id:
        if not payload.get("customId"):
            payload["customId"] = record.key
        return
    emitter = payload.setdefault("emitter", {})
    if isinstance(emitter, dict) and not emitter.get("customInfo"):
        emitter["customInfo"] = record.key


def problem_entry(binding: Binding, problem: RowProblem) -> IngestEntry:
    where = problem.origin + (f", column {problem.column!r}" if problem.column else "")
    key = problem.key or f"!{problem.origin}"
    return IngestEntry(
        key,
        problem.unit,
        problem.origin,
        None,
        _error_hash({"reason": problem.reason, "raw": problem.raw}, binding.version),
        f"{where}: {problem.reason}",
        (problem.column,) if problem.column else (),
    )


def _data_identity(raw: str | None, used: set[str]) -> str | None:
    """The record's own data as the mapping reads it (write-back columns and the rest left out)."""
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    values = {k: v for k, v in (parsed.get("values") or {}).items() if k in used}
    return json.dumps(
        {"values": values, "children": parsed.get("children") or {}}, sort_keys=True, default=str
    )


def _apply(
    session: Session,
    binding: Binding,
    entries: Sequence[IngestEntry],
    counts: Counter[str],
    log: Any,
    created: list[IngestEntry] | None = None,
) -> None:
    """Store ``entries``; the ones new to the store are appended to ``created``."""
    mapping = binding.mapping
    kind = mapping.kind
    latest = hold_key_duplicates(entries)
    latest.update(hold_custom_id_duplicates(session, mapping.name, latest, log))
    freed: set[str] = set()
    keys = list(latest)
    existing: dict[str, Record] = {}
    row: Record | None
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for row in session.scalars(
            select(Record).where(Record.mapping == mapping.name, Record.record_key.in_(chunk))
        ):
            existing[row.record_key] = row
    now = utcnow()
    for key, entry in latest.items():
        row = existing.get(key)
        payload_text = entry.text if entry.payload is not None else None
        failed = RecordState.CONFLICT if entry.conflict else RecordState.REJECTED
        if row is None:
            if created is not None:
                created.append(entry)
            session.add(
                Record(
                    mapping=mapping.name,
                    record_key=key,
                    kind=kind.name.value,
                    unit=entry.unit,
                    origin=entry.origin,
                    emitter_siret=_emitter_siret(entry.payload),
                    custom_id=custom_id_of(entry.payload),
                    payload=payload_text,
                    payload_hash=entry.hash,
                    source_values=entry.raw,
                    state=failed if entry.error else RecordState.PENDING,
                    next_op=None if entry.error else "create",
                    last_error=entry.error,
                    error_fields=json.dumps(entry.fields) if entry.fields else None,
                    attempts=0,
                    writeback_due=True,
                    created_at=now,
                    updated_at=now,
                )
            )
            counts[failed.value if entry.error else "new"] += 1
            if entry.error:
                log.warning(f"record_{failed.value}", mapping=mapping.name, record_key=key, error=entry.error)
            else:
                log.info("record_queued", mapping=mapping.name, record_key=key, next_op="create")
            continue
        if row.payload_hash == entry.hash and not (entry.conflict and row.last_error != entry.error):
            counts["unchanged"] += 1
            continue
        signed = bool(
            row.bsd_id and row.remote_status and kind.is_signed(row.remote_status, bool(row.remote_is_draft))
        )
        if (
            signed
            and entry.payload is not None
            and row.state != RecordState.CONFLICT
            and _data_identity(row.source_values, mapping.required_columns())
            == _data_identity(entry.raw, mapping.required_columns())
        ):
            # Same data, new mapping: a signed BSD cannot follow the mapping's change, and the
            # record itself did not change, so there is nothing for a person to fix.
            row.payload_hash = entry.hash
            row.payload = payload_text
            counts["mapping_changed_after_signature"] += 1
            log.info(
                "mapping_change_not_applied",
                mapping=mapping.name,
                record_key=key,
                bsd_id=row.bsd_id,
                readable_id=row.readable_id,
                reason=f"BSD already signed (status {row.remote_status})",
            )
            continue
        row.payload_hash = entry.hash
        row.source_values = entry.raw or row.source_values
        row.unit = entry.unit
        row.origin = entry.origin
        row.updated_at = now
        row.writeback_due = True
        row.attempts = 0
        row.next_attempt_at = None
        if entry.error:
            # With a mutation in flight or in doubt, the state stays: push resolves it first (it may
            # have created the BSD), then sees that the newer data is invalid and rejects the record.
            if row.intent_op is None:
                row.state, row.next_op = failed, None
            if entry.conflict and entry.payload is not None:
                if row.custom_id != custom_id_of(entry.payload) and row.custom_id:
                    freed.add(row.custom_id)
                row.custom_id = custom_id_of(entry.payload)
                if row.bsd_id is None:
                    row.payload = payload_text
            row.last_error = entry.error
            row.error_fields = json.dumps(entry.fields) if entry.fields else None
            counts[failed.value] += 1
            log.warning(
                f"record_{failed.value}",
                mapping=mapping.name,
                record_key=key,
                bsd_id=row.bsd_id,
                error=entry.error,
                in_flight=row.intent_op,
            )
            continue
        if row.intent_op is None and key_reused(binding, row, entry.payload, log):
            counts["conflict"] += 1
            continue
        if row.custom_id and row.custom_id != custom_id_of(entry.payload):
            freed.add(row.custom_id)
        row.custom_id = custom_id_of(entry.payload)
        row.payload = payload_text
        row.emitter_siret = _emitter_siret(entry.payload) or row.emitter_siret
        row.last_error = None
        row.error_fields = None
        if row.intent_op is not None:
            # A mutation is in flight or in doubt: push resolves it first, then sees the new hash.
            counts["changed"] += 1
            continue
        if row.bsd_id is None:
            row.state, row.next_op = RecordState.PENDING, "create"
        elif signed:
            row.state, row.next_op = RecordState.CONFLICT, None
            row.last_error = (
                f"record changed after the BSD {row.readable_id or row.bsd_id} was signed "
                f"(status {row.remote_status}): nothing was sent; correct it on Trackdéchets "
                "with a revision request"
            )
            counts["conflict"] += 1
            log.warning(
                "record_conflict",
                mapping=mapping.name,
                record_key=key,
                bsd_id=row.bsd_id,
                readable_id=row.readable_id,
                error=row.last_error,
            )
            continue
        else:
            row.state, row.next_op = RecordState.PENDING, "update"
        counts["changed"] += 1
        log.info(
            "record_changed", mapping=mapping.name, record_key=key, bsd_id=row.bsd_id, next_op=row.next_op
        )
    if freed:
        session.flush()
        counts["released"] += release_freed(session, mapping.name, freed, log)


def validate_entry(schema: Any, binding: Binding, entry: IngestEntry) -> IngestEntry:
    """The create document with this payload, checked against the schema before it costs a request."""
    if schema is None or entry.payload is None:
        return entry
    problems = validator_for(schema).problems(binding.mapping.kind, entry.payload)
    if not problems:
        return entry
    error = f"{entry.origin}: the document does not match the Trackdéchets schema: " + "; ".join(problems)
    return IngestEntry(
        entry.key, entry.unit, entry.origin, None, "invalid:" + entry.hash, error, (), entry.raw
    )


def store_batch(
    store: StateStore, binding: Binding, batch: SourceBatch, schema: Any, log: Any
) -> Counter[str]:
    entries = [validate_entry(schema, binding, map_record(binding, r)) for r in batch.records]
    entries += [problem_entry(binding, p) for p in batch.problems]
    counts: Counter[str] = Counter()
    created: list[IngestEntry] = []
    bound = log.bind()  # once per batch: a lazy proxy would resolve its configuration at every line
    if entries:
        # Before the batch's transaction: it may mark the identity row, which must exist (and a
        # nested session would wait on SQLite's write lock).
        ensure_identity(store)
    with store.session() as session:
        _apply(session, binding, entries, counts, bound, created)
        if created:  # in the same transaction: no push may claim them before the mark is there
            found = note_carried_bsd_ids(
                session, binding, [(e.key, e.unit, e.raw) for e in created], bound, store
            )
            if found:
                counts["already_sent_elsewhere"] += found
        if batch.checkpoint is not None:
            store.put_checkpoint(session, binding.mapping.name, batch.checkpoint)
    counts["read"] += len(batch.records) + len(batch.problems)
    if batch.found_late:  # missed by the source's fast path, found by its completeness check
        counts["found_late"] += batch.found_late
    return counts


def ingest_binding(pipeline: Pipeline, binding: Binding, stop: threading.Event) -> Counter[str]:
    counts: Counter[str] = refresh_lookups(pipeline, binding)
    name = binding.mapping.name
    checkpoint = pipeline.store.get_checkpoint(name)
    for batch in binding.source.read(checkpoint):
        batch_counts = store_batch(pipeline.store, binding, batch, pipeline.schema, pipeline.log)
        if not pipeline.options.dry_run:  # a dry run moves no file: the next real run reads them
            try:
                binding.source.acknowledge(batch)
            except Exception as exc:
                raise _NotAcknowledged(exc) from exc
        counts.update(batch_counts)
        pipeline.advance("ingest", len(batch.records) + len(batch.problems))
        if stop.is_set():
            break
    return counts


def ingest(pipeline: Pipeline, stop: threading.Event) -> dict[str, int]:
    """One ingest pass over every mapping; a failing source does not stop the others, and makes
    the step fail (:class:`StepFailed`) once the others are done."""
    total: Counter[str] = Counter()
    causes: list[str] = []
    for binding in pipeline.bindings:
        if stop.is_set():
            break
        name = binding.mapping.name
        try:
            counts = ingest_binding(pipeline, binding, stop)
        except _NotAcknowledged as exc:
            causes.append(source_failure(name, binding.mapping.path, exc.cause, writing=True))
        except Exception as exc:  # a source outage must not stop the other mappings
            causes.append(source_failure(name, binding.mapping.path, exc))
        else:
            if counts:
                level = pipeline.log.debug if is_idle(counts) else pipeline.log.info
                level("ingested", mapping=name, **dict(counts))
            total.update(counts)
            continue
        pipeline.log.error("ingest_failed", mapping=name, error=causes[-1])
        total["source_errors"] += 1
    if causes:
        raise StepFailed("ingest", causes, dict(total))
    return dict(total)
