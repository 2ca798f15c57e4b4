"""``td-connector rebuild-state``: a lost state store rebuilt from the sources and Trackdéchets.

Every record of the sources is read into the store (for a CSV drop folder, the files already
moved to ``processed/`` too, oldest first, without moving anything), then each record the store
would create is looked up on Trackdéchets exactly as an in-doubt create is (``engine.reconcile``:
BSDD and BSVHU by customId, the other kinds by fingerprint): found → adopted (its BSD id, status,
and a seal or an update when the BSD is behind the record); not found → left to be created. Only
when every look-up succeeded is the store stamped as trusted, and its markers rewritten: creating
resumes with the next push.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import make_transient

from connector.domain.kinds import get_kind
from connector.engine.context import Binding, Pipeline
from connector.engine.ingest import ingest_binding, store_batch
from connector.engine.operations import fingerprint_of_node, fingerprint_of_payload, snapshot
from connector.engine.push import _after_success
from connector.engine.reconcile import Verdict, reconcile
from connector.engine.track import READS_PER_REQUEST, read_one_document
from connector.engine.trust import before_creates, carried_bsd_ids
from connector.sources.csv_folder import CsvFolderSource
from connector.sources.specs import CsvSourceSpec
from connector.state.identity import ensure_identity, mark_trusted
from connector.state.models import Record, RecordState
from connector.state.store import utcnow
from connector.trackdechets.errors import TrackdechetsError

__all__ = ["RebuildReport", "print_rebuild_report", "rebuild_state"]

_CHUNK = 50


@dataclass
class RebuildReport:
    dry_run: bool
    read: int = 0
    adopted: list[tuple[str, str, str]] = field(default_factory=list)
    """(mapping, key, readable id) of each record given its existing BSD."""
    to_create: list[tuple[str, str]] = field(default_factory=list)
    """(mapping, key) of records with no BSD on Trackdéchets: created by the next push."""
    rewritten: int = 0
    """Adopted BSDs behind their record (or alike records): an update follows."""
    held: list[tuple[str, str, str]] = field(default_factory=list)
    """(mapping, key, reason): adopted, but signed with other data: a person decides."""
    trusted: bool = False


def _archive(binding: Binding) -> CsvFolderSource | None:
    """The CSV files already ingested (``processed/``), read in place."""
    source, spec = binding.source, getattr(binding.mapping, "source", None)
    if not isinstance(source, CsvFolderSource) or not isinstance(spec, CsvSourceSpec):
        return None
    folder = Path(spec.processed_folder)
    folder = folder if folder.is_absolute() else source.folder / folder
    if not folder.is_dir():
        return None
    update = {"folder": str(folder), "stable_seconds": 0.0, "require_done_file": False}
    archived = spec.model_copy(update=update)
    return CsvFolderSource(archived, base_dir=folder, mapping_name=binding.mapping.name)


def _read_sources(pipeline: Pipeline, dry_run: bool, stop: threading.Event) -> int:
    read = 0
    for binding in pipeline.bindings:
        archive = _archive(binding)
        if archive is not None:
            try:
                for batch in archive.read(None):
                    # Never this batch's checkpoint or acknowledgement: they belong to the live folder.
                    counts = store_batch(pipeline.store, binding, replace(batch, checkpoint=None),
                                         pipeline.schema, pipeline.log)
                    read += counts["read"]
            finally:
                archive.close()
        if dry_run:
            checkpoint = pipeline.store.get_checkpoint(binding.mapping.name)
            for batch in binding.source.read(checkpoint):
                read += store_batch(pipeline.store, binding, batch, pipeline.schema, pipeline.log)["read"]
        else:
            read += ingest_binding(pipeline, binding, stop)["read"]
    return read


def _candidates(pipeline: Pipeline) -> Iterator[list[Record]]:
    """Records the store would create, in pages, as detached copies."""
    names = [b.mapping.name for b in pipeline.bindings]
    last = 0
    while True:
        with pipeline.store.session() as session:
            rows = list(session.scalars(
                select(Record)
                .where(Record.mapping.in_(names), Record.id > last, Record.bsd_id.is_(None),
                       Record.intent_op.is_(None), Record.state == RecordState.PENDING,
                       Record.next_op == "create")
                .order_by(Record.id)
                .limit(_CHUNK)
            ))
            for row in rows:
                session.expunge(row)
                make_transient(row)
        if not rows:
            return
        last = rows[-1].id
        yield rows


def _adopt(pipeline: Pipeline, verdicts: list[Verdict], report: RebuildReport) -> None:
    """Give each record its found BSD (one transaction per page)."""
    with pipeline.store.session() as session:
        for verdict in verdicts:
            assert verdict.found is not None
            row = session.get(Record, verdict.record_id)
            if row is None or row.bsd_id is not None:
                continue
            kind = get_kind(row.kind)
            node = verdict.found.node
            behind = fingerprint_of_node(kind, node) != fingerprint_of_payload(kind, _payload(row))
            _after_success(pipeline, row, "create", node)
            if (behind or verdict.ambiguous) and row.state != RecordState.DONE:
                if kind.is_signed(verdict.found.status, verdict.found.is_draft):
                    row.state, row.next_op = RecordState.CONFLICT, None
                    row.last_error = (
                        f"BSD {row.readable_id} was found for this record, signed, with other data "
                        "than the record's: nothing was sent; correct it on Trackdéchets with a "
                        "revision request"
                    )
                    report.held.append((row.mapping, row.record_key, row.last_error))
                else:
                    row.state, row.next_op = RecordState.PENDING, "update"
                    report.rewritten += 1
            row.writeback_due = True
            row.updated_at = utcnow()
            report.adopted.append((row.mapping, row.record_key, row.readable_id or row.bsd_id or ""))
            pipeline.log.info("state_rebuilt_adopted", mapping=row.mapping, record_key=row.record_key,
                              bsd_id=row.bsd_id, readable_id=row.readable_id, status=row.remote_status,
                              next_op=row.next_op, note=verdict.note)


def _by_carried_ids(
    pipeline: Pipeline, missed: list[Record], report: RebuildReport, dry_run: bool
) -> list[Verdict]:
    """Records the look-up missed: created by the next push, unless their source holds a BSD id.

    Such a record was sent by the lost store (the look-up misses it when it is older than
    ``--since`` or the mapping changed since): its BSD is read by that id, 25 to a request, and
    adopted. When that read fails or finds no BSD, the record is held as a conflict: a person
    decides; it is never created again.
    """
    bindings = {b.mapping.name: b for b in pipeline.bindings}
    carried: list[tuple[Record, str]] = []
    for record in missed:
        source = [(record.record_key, record.unit, record.source_values)]
        ids = carried_bsd_ids(bindings[record.mapping], source)
        if record.record_key in ids:
            carried.append((record, ids[record.record_key]))
        else:
            report.to_create.append((record.mapping, record.record_key))
    verdicts: list[Verdict] = []
    held: list[tuple[Record, str]] = []
    for start in range(0, len(carried), READS_PER_REQUEST):
        chunk = carried[start : start + READS_PER_REQUEST]
        try:
            outcomes = pipeline.client.query_many([(read_one_document(r.kind), {"id": i}) for r, i in chunk])
        except TrackdechetsError as exc:
            held += [(r, f"its source holds BSD {i}, which cannot be read ({exc})") for r, i in chunk]
            continue
        for (record, bsd_id), outcome in zip(chunk, outcomes, strict=True):
            node = outcome.data if outcome.error is None else None
            if isinstance(node, dict) and node.get("id") and node.get("status"):
                snap = snapshot(get_kind(record.kind), node)
                if dry_run:
                    report.adopted.append((record.mapping, record.record_key, snap.readable_id))
                else:
                    note = f"BSD id {bsd_id} held by the source"
                    verdicts.append(Verdict(record.id, snap, applied=True, note=note))
                continue
            why = f"no such BSD ({outcome.error})" if outcome.error is not None else "no such BSD"
            held.append((record, f"its source holds BSD {bsd_id}, which cannot be read: {why}"))
    for record, reason in held:
        reason += (
            ": held, never created again; check that BSD on Trackdéchets, then correct the "
            "source's BSD id column (or receipt) and run rebuild-state again"
        )
        report.held.append((record.mapping, record.record_key, reason))
        pipeline.log.error("state_rebuild_held", mapping=record.mapping, record_key=record.record_key,
                           error=reason)
    if held and not dry_run:
        with pipeline.store.session() as session:
            for record, reason in held:
                row = session.get(Record, record.id)
                if row is not None and row.bsd_id is None and row.state == RecordState.PENDING:
                    row.state, row.next_op, row.last_error = RecordState.CONFLICT, None, reason
                    row.updated_at = utcnow()
    return verdicts


def _payload(row: Record) -> dict[str, object]:
    value = json.loads(row.payload) if row.payload else {}
    return value if isinstance(value, dict) else {}


def rebuild_state(
    pipeline: Pipeline, *, since: datetime, dry_run: bool, stop: threading.Event | None = None
) -> RebuildReport:
    """Read every record, adopt the BSDs that exist (created on or after ``since`` for kinds found
    by fingerprint), then trust the store (unless ``dry_run``, which adopts nothing)."""
    stop = stop or threading.Event()
    report = RebuildReport(dry_run=dry_run)
    ensure_identity(pipeline.store)
    report.read = _read_sources(pipeline, dry_run, stop)
    for page in _candidates(pipeline):
        if stop.is_set():
            return report
        for record in page:
            record.intent_op, record.intent_at, record.intent_hash = "create", since, record.payload_hash
        by_id = {r.id: r for r in page}
        found: list[Verdict] = []
        missed: list[Record] = []
        for verdict in reconcile(pipeline, page):
            record = by_id[verdict.record_id]
            if verdict.found is None or not verdict.applied:
                missed.append(record)
                continue
            if dry_run:
                report.adopted.append((record.mapping, record.record_key, verdict.found.readable_id))
            else:
                found.append(verdict)
        found += _by_carried_ids(pipeline, missed, report, dry_run)
        if found:
            _adopt(pipeline, found, report)
    if not dry_run and not stop.is_set():
        identity = mark_trusted(pipeline.store, rebuilt=True)
        before_creates(pipeline)
        report.trusted = True
        pipeline.log.warning("state_store_rebuilt", identity=identity.identity[:12],
                             adopted=len(report.adopted), to_create=len(report.to_create),
                             rewritten=report.rewritten, held=len(report.held))
    return report


def print_rebuild_report(report: RebuildReport, *, limit: int = 20) -> None:
    verb = "would adopt" if report.dry_run else "adopted"
    for mapping, key, readable in report.adopted[:limit]:
        print(f"{mapping} / {key}: {verb} {readable}")
    if len(report.adopted) > limit:
        print(f"... and {len(report.adopted) - limit} more")
    future = "would be" if report.dry_run else "will be"
    for mapping, key in report.to_create[:limit]:
        print(f"{mapping} / {key}: no BSD on Trackdéchets, {future} created")
    if len(report.to_create) > limit:
        print(f"... and {len(report.to_create) - limit} more to create")
    for mapping, key, reason in report.held:
        print(f"{mapping} / {key}: held: {reason}")
    print(
        f"{report.read} source row(s) read; {len(report.adopted)} record(s) {verb} their BSD "
        f"({report.rewritten} to update), {len(report.to_create)} to create, {len(report.held)} held"
    )
    if report.dry_run:
        print("dry run: nothing adopted; the state store is still not allowed to create")
    elif report.trusted:
        print("the state store is rebuilt and trusted: creating resumes with the next push")
