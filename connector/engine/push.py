"""Push: due records → mutations, exactly once.

For each chunk of at most five operations: the intents are committed, the chunk travels as one
JSON-array request, then each outcome is recorded against its own record. Whatever happens in
between (crash, SIGKILL, timeout, dropped connection) leaves committed intents, which the next
pass reconciles (engine.reconcile) before anything is sent again.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update

from connector.domain.kinds import get_kind
from connector.engine.companies import reject_foreign_creates
from connector.engine.context import Pipeline
from connector.engine.operations import Op, create_op, seal_op, snapshot, update_op
from connector.engine.reconcile import reconcile
from connector.engine.trust import WHAT_TO_DO, before_creates, creates_refused
from connector.errors import StateNotTrusted, StepFailed
from connector.failures import token_failure
from connector.state.identity import read_identity, trusted_in
from connector.state.models import Record, RecordState
from connector.state.store import utcnow
from connector.trackdechets.client import Operation
from connector.trackdechets.errors import InDoubt, NotSent, Rejected, Unauthenticated

__all__ = ["push"]


def _backoff(pipeline: Pipeline, attempts: int) -> timedelta:
    options = pipeline.options
    base = min(options.max_backoff_seconds, options.initial_backoff_seconds * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * (0.5 + random.random() / 2))


def _due(pipeline: Pipeline, limit: int, exclude: set[int], *, creates: bool = True) -> list[Record]:
    """Due records; with ``creates`` False, not those waiting for their create (in doubt ones are)."""
    now = utcnow()
    names = [b.mapping.name for b in pipeline.bindings]
    with pipeline.store.session() as session:
        query = (
            select(Record)
            .where(Record.state.in_([RecordState.PENDING, RecordState.IN_FLIGHT]))
            .where(or_(Record.next_attempt_at.is_(None), Record.next_attempt_at <= now))
            .where(Record.mapping.in_(names))
            .order_by(Record.id)
            .limit(limit + len(exclude))
        )
        if not creates:
            query = query.where(or_(Record.next_op != "create", Record.intent_op.is_not(None)))
        return [r for r in session.scalars(query) if r.id not in exclude][:limit]


def _creates_waiting(pipeline: Pipeline) -> int:
    names = [b.mapping.name for b in pipeline.bindings]
    with pipeline.store.session() as session:
        query = select(func.count()).select_from(Record).where(
            Record.state == RecordState.PENDING, Record.next_op == "create", Record.mapping.in_(names)
        )
        return session.scalar(query) or 0


def _op_for(pipeline: Pipeline, record: Record) -> Op:
    kind = get_kind(record.kind)
    payload = json.loads(record.payload or "{}")
    if record.next_op == "create":
        return create_op(kind, payload)
    if record.next_op == "seal":
        assert record.bsd_id
        return seal_op(kind, record.bsd_id)
    assert record.bsd_id
    return update_op(kind, record.bsd_id, payload)


def _after_success(pipeline: Pipeline, row: Record, op: str, data: dict[str, Any]) -> str:
    kind = get_kind(row.kind)
    snap = snapshot(kind, data)
    row.bsd_id, row.readable_id = snap.id, snap.readable_id
    row.remote_status, row.remote_is_draft, row.remote_updated_at = (
        snap.status,
        snap.is_draft,
        snap.updated_at,
    )
    binding = pipeline.binding(row.mapping)
    wants_seal = bool(binding and binding.mapping.seal)
    if row.intent_hash and row.intent_hash != row.payload_hash and _invalid(row):
        # The record changed into invalid data while this mutation was in flight: the BSD is
        # linked (nothing is lost) and the record waits, rejected, for its data to be fixed.
        row.state, row.next_op = RecordState.REJECTED, "update"
        row.attempts = 0
        row.next_attempt_at = None
        return {"create": "created", "seal": "sealed", "update": "updated"}.get(op, op)
    if row.intent_hash and row.intent_hash != row.payload_hash:
        # The record changed while this mutation was in flight: send the newer data next.
        row.state, row.next_op = RecordState.PENDING, "update"
    elif snap.is_draft and wants_seal:
        row.state, row.next_op = RecordState.PENDING, "seal"
    else:
        row.state, row.next_op = RecordState.SYNCED, None
    if snap.status in kind.terminal_statuses:
        row.state, row.next_op = RecordState.DONE, None
    row.last_error = None
    row.error_fields = None
    row.attempts = 0
    row.next_attempt_at = None
    return {"create": "created", "seal": "sealed", "update": "updated"}.get(op, op)


def _invalid(row: Record) -> bool:
    """The record's current data could not be mapped or validated (see engine.ingest)."""
    return row.payload_hash.startswith(("error:", "invalid:"))


def _clear_intent(row: Record) -> None:
    row.intent_op = None
    row.intent_at = None
    row.intent_hash = None


def _apply_verdicts(pipeline: Pipeline, records: Sequence[Record], counts: Counter[str]) -> None:
    verdicts = reconcile(pipeline, records, keep_going=True)
    by_id = {v.record_id: v for v in verdicts}
    with pipeline.store.session() as session:
        for record in records:
            verdict = by_id.get(record.id)
            row = session.get(Record, record.id)
            if verdict is None or row is None:
                continue
            op = row.intent_op or "create"
            log = pipeline.log.bind(mapping=row.mapping, record_key=row.record_key, op=op)
            if verdict.blocked is not None:  # cannot be looked up: stays in doubt, not resent
                row.state, row.last_error = RecordState.REJECTED, verdict.blocked
                row.writeback_due = True
                row.updated_at = utcnow()
                counts["rejected"] += 1
                log.warning("in_doubt_blocked", error=verdict.blocked)
                continue
            if verdict.failed is not None:  # stays in doubt, looked up again after a backoff
                row.last_error = f"the outcome of its {op} could not be looked up: {verdict.failed}"
                row.attempts += 1  # the wait grows while the look-up keeps failing
                row.next_attempt_at = utcnow() + _backoff(pipeline, row.attempts)
                row.updated_at = utcnow()
                counts["in_doubt_lookup_failed"] += 1
                log.warning("in_doubt_lookup_failed", bsd_id=row.bsd_id, error=str(verdict.failed))
                continue
            if verdict.applied and verdict.found is not None:
                event = _after_success(pipeline, row, op, verdict.found.node)
                if verdict.ambiguous and row.state != RecordState.DONE:
                    # Records alike in every fingerprinted field were created together: which
                    # BSD is whose cannot be told, so each one is rewritten with its own data.
                    row.state, row.next_op = RecordState.PENDING, "update"
                counts[f"{event}_adopted"] += 1
                log.info(
                    "in_doubt_adopted",
                    bsd_id=row.bsd_id,
                    readable_id=row.readable_id,
                    status=row.remote_status,
                    note=verdict.note,
                )
            elif _invalid(row):
                # Not applied, and the record's data has since become invalid: nothing to resend.
                row.state = RecordState.REJECTED
                row.next_op = "update" if row.bsd_id else "create"
                counts["rejected"] += 1
                log.warning("in_doubt_not_applied", bsd_id=row.bsd_id, error=row.last_error)
            else:
                row.state = RecordState.PENDING
                row.next_op = op
                counts["in_doubt_resent"] += 1
                log.info("in_doubt_not_applied", bsd_id=row.bsd_id)
            _clear_intent(row)
            row.writeback_due = True
            row.updated_at = utcnow()


def _claim(pipeline: Pipeline, chunk: list[Record], now: datetime, held: set[int]) -> list[Record]:
    """Commit the intents of ``chunk``, each only if its row is still exactly as it was read.

    The conditional UPDATE is what keeps two processes on one state store (a daemon and an
    operator's ``sync --once``, say) from sending the same create twice: only one of them
    matches the row, the other sends nothing for it. A create is claimed only while the store's
    identity row says it is trusted, read in the same transaction: an ingest that has just found
    records carrying BSD ids marks the store in the transaction that stores them. The creates
    held for that reason are added to ``held``.
    """
    claimed: list[Record] = []
    with pipeline.store.session() as session:
        may_create = any(r.next_op == "create" for r in chunk) and trusted_in(session)
        for record in chunk:
            if record.next_op == "create" and not may_create:
                held.add(record.id)
                continue
            result = session.execute(
                update(Record)
                .where(
                    Record.id == record.id,
                    Record.intent_op.is_(None),
                    Record.state == RecordState.PENDING,
                    Record.next_op == record.next_op,
                    Record.payload_hash == record.payload_hash,
                )
                .values(
                    intent_op=record.next_op,
                    intent_at=now,
                    intent_hash=record.payload_hash,
                    state=RecordState.IN_FLIGHT,
                    attempts=Record.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                record.attempts += 1
                claimed.append(record)
    return claimed


def _send_chunk(
    pipeline: Pipeline, chunk: list[Record], counts: Counter[str], done: set[int], held: set[int]
) -> bool:
    """Intent, request, outcome for up to five records. False when pushing must pause.

    Records whose request failed (in doubt, not sent) are added to ``done``: they wait for a
    later pass, so a pass always ends, even against a server that answers nothing. Creates
    refused because the store is not trusted are added to ``done`` and ``held``.
    """
    refused: set[int] = set()
    chunk = _claim(pipeline, chunk, utcnow(), refused)
    done.update(refused)
    held.update(refused)
    if not chunk:
        return True
    ops = [_op_for(pipeline, r) for r in chunk]
    operations = [
        Operation(op.query, op.variables, op.operation_name, tag=r.id)
        for op, r in zip(ops, chunk, strict=True)
    ]
    outcomes = pipeline.client.execute_mutations(operations)
    keep_going = True
    with pipeline.store.session() as session:
        for record, op, outcome in zip(chunk, ops, outcomes, strict=True):
            row = session.get(Record, record.id)
            assert row is not None
            intent = row.intent_op or "create"
            log = pipeline.log.bind(
                mapping=row.mapping, record_key=row.record_key, op=intent, attempt=row.attempts
            )
            error = getattr(outcome, "error", None)
            row.updated_at = utcnow()
            data = (outcome.data or {}).get(op.root) if error is None else None
            if error is None and not (isinstance(data, dict) and data.get("id") and data.get("status")):
                # An answer without the BSD in it: what happened is unknown, so it is in doubt.
                error = InDoubt(
                    f"{op.operation_name}: the answer holds no BSD", operation_name=op.operation_name
                )
            if error is None:
                assert isinstance(data, dict)
                event = _after_success(pipeline, row, intent, data)
                _clear_intent(row)
                row.writeback_due = True
                counts[event] += 1
                log.info(
                    f"bsd_{event}", bsd_id=row.bsd_id, readable_id=row.readable_id, status=row.remote_status
                )
            elif isinstance(error, InDoubt):
                done.add(row.id)
                row.next_attempt_at = utcnow() + timedelta(seconds=pipeline.options.reconcile_grace_seconds)
                counts["in_doubt"] += 1
                log.warning("mutation_in_doubt", bsd_id=row.bsd_id, error=str(error))
            elif isinstance(error, Unauthenticated):
                _clear_intent(row)
                row.state = RecordState.PENDING
                keep_going = False
                pipeline.auth_failure = token_failure(error, pipeline.token_origin)
                counts["unauthenticated"] += 1
            elif isinstance(error, NotSent):
                done.add(row.id)
                _clear_intent(row)
                row.state = RecordState.PENDING
                row.next_attempt_at = utcnow() + _backoff(pipeline, row.attempts)
                counts["retry_later"] += 1
                log.info("mutation_not_sent", error=str(error))
            else:
                _clear_intent(row)
                row.state, row.next_op = RecordState.REJECTED, intent
                row.last_error = f"{intent} refused by Trackdéchets: {error}"
                fields = getattr(error, "field_paths", None)
                row.error_fields = json.dumps(list(fields)) if fields else None
                row.writeback_due = True
                counts["rejected"] += 1
                log.warning(
                    "record_rejected",
                    bsd_id=row.bsd_id,
                    error=str(error),
                    permanent=isinstance(error, Rejected),
                )
    pipeline.advance("push", len(chunk))
    if not keep_going:
        pipeline.paused_until = utcnow() + timedelta(seconds=pipeline.options.auth_pause_seconds)
        pipeline.log.error(
            "push_paused_unauthenticated",
            hint="the token is missing, revoked or wrong: fix it, pushing resumes by itself",
            pause_seconds=pipeline.options.auth_pause_seconds,
        )
    return keep_going


def push(pipeline: Pipeline, stop: threading.Event) -> dict[str, int]:
    """One push pass: reconcile what is in doubt, then send what is due, five per request."""
    counts: Counter[str] = Counter()
    if pipeline.paused_until and utcnow() < pipeline.paused_until:
        counts["paused"] += 1
        raise StepFailed("push", [pipeline.auth_failure or "pushing is paused"], dict(counts))
    options = pipeline.options
    creations = 0
    skipped: set[int] = set()
    refused = creates_refused(pipeline)
    held_by_claim: set[int] = set()
    generation_stamped = False
    while not stop.is_set():
        due = _due(pipeline, options.due_page, skipped, creates=refused is None)
        if not due:
            break
        doubtful = [r for r in due if r.intent_op is not None]
        fresh = [r for r in due if r.intent_op is None and r.next_op]
        if refused is not None:  # in doubt ones were looked up: their resend waits too
            fresh = _hold_creates(fresh, skipped)
        grace = timedelta(seconds=options.reconcile_grace_seconds)
        ready = [r for r in doubtful if r.intent_at is None or utcnow() - r.intent_at >= grace]
        for r in doubtful:
            if r not in ready:
                skipped.add(r.id)
        if ready and not options.dry_run:
            _apply_verdicts(pipeline, ready, counts)
            continue  # re-read: reconciled rows may now be due for their next step
        if options.dry_run:
            for r in fresh:
                pipeline.log.info(
                    "dry_run_would_send",
                    mapping=r.mapping,
                    record_key=r.record_key,
                    op=r.next_op,
                    bsd_id=r.bsd_id,
                )
                counts[f"would_{r.next_op}"] += 1
                skipped.add(r.id)
            for r in ready:
                pipeline.log.info(
                    "dry_run_would_reconcile",
                    mapping=r.mapping,
                    record_key=r.record_key,
                    op=r.intent_op,
                    bsd_id=r.bsd_id,
                )
                counts["would_reconcile"] += 1
                skipped.add(r.id)
            if not fresh and not ready:
                break
            continue
        if not fresh:
            break
        kept = reject_foreign_creates(pipeline, fresh)  # before anything is sent for them
        if len(kept) < len(fresh):
            counts["rejected"] += len(fresh) - len(kept)
            continue  # re-read: the rejected rows are no longer due
        room = options.max_creations_per_run - creations
        sendable = [r for r in fresh if r.next_op != "create" or room > 0]
        chosen: list[Record] = []
        for r in sendable:
            if r.next_op == "create":
                if room <= 0:
                    continue
                room -= 1
            chosen.append(r)
        if not chosen:
            pipeline.log.warning(
                "max_creations_per_run_reached",
                limit=options.max_creations_per_run,
                hint="the rest is sent on the next run; raise safety.max_creations_per_run for a backfill",
            )
            counts["creation_limit_reached"] += 1
            break
        for start in range(0, len(chosen), options.push_chunk):
            if stop.is_set():
                break
            chunk = chosen[start : start + options.push_chunk]
            if any(r.next_op == "create" for r in chunk):
                # The store file may have gone, or an ingest may have found records carrying BSD
                # ids, since the pass began: look again before each chunk holding a create (the
                # claim checks the trust mark once more, in its own transaction).
                refused = refused or creates_refused(pipeline)
                if refused is not None:
                    chunk = _hold_creates(chunk, skipped)
                elif not generation_stamped:
                    before_creates(pipeline)
                    generation_stamped = True
            creations += sum(1 for r in chunk if r.next_op == "create")
            if chunk and not _send_chunk(pipeline, chunk, counts, skipped, held_by_claim):
                raise StepFailed("push", [pipeline.auth_failure or "pushing is paused"], dict(counts))
    if refused is None and held_by_claim:
        identity = read_identity(pipeline.store)
        refused = (identity.reason if identity else None) or "the state store is marked as not trusted"
    if refused is not None:
        held = _creates_waiting(pipeline)
        raise StateNotTrusted(f"{held} create(s) held: {refused}; {WHAT_TO_DO}", held=held, **counts)
    return dict(counts)


def _hold_creates(records: list[Record], skipped: set[int]) -> list[Record]:
    """The records of ``records`` that are not creates; the creates wait for a trusted store."""
    skipped.update(r.id for r in records if r.next_op == "create")
    return [r for r in records if r.next_op != "create"]
