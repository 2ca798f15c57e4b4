"""Track: follow what happens to the BSDs after they are sent, with ``updatedAfter`` pages.

Never one query per BSD: one walk per kind (and per company for BSDD, whose list takes a SIRET)
over everything updated since the last walk started, minus an overlap, because lists are ordered
by creation and a BSD updated during the walk could otherwise be missed.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, select

from connector.domain.kinds import KindName, get_kind
from connector.engine.context import Pipeline
from connector.engine.operations import merge, nodes_of, snapshot, track_page_read
from connector.errors import StepFailed
from connector.state.models import Record, RecordState, TrackHint
from connector.state.store import utcnow
from connector.trackdechets.documents import selection
from connector.trackdechets.errors import Unauthenticated

__all__ = ["my_sirets", "track"]


def my_sirets(pipeline: Pipeline) -> list[str]:
    """SIRETs of the token's companies (asked once per process; empty when unknown)."""
    if pipeline.my_sirets is None:
        data = pipeline.client.query(
            "query MyCompanies { myCompanies(first: 50) { edges { node { siret } } } }",
            operation_name="MyCompanies",
        )
        edges = ((data or {}).get("myCompanies") or {}).get("edges") or []
        pipeline.my_sirets = [e["node"]["siret"] for e in edges if e.get("node", {}).get("siret")]
    return pipeline.my_sirets


def _targets(pipeline: Pipeline) -> dict[str, set[str]]:
    """Kinds with BSDs still moving, and the SIRETs they were emitted for."""
    names = [b.mapping.name for b in pipeline.bindings]
    with pipeline.store.session() as session:
        rows = session.execute(
            select(Record.kind, Record.emitter_siret)
            .where(Record.bsd_id.is_not(None), Record.state != RecordState.DONE, Record.mapping.in_(names))
            .distinct()
        ).all()
    out: dict[str, set[str]] = {}
    for kind, siret in rows:
        out.setdefault(kind, set()).add(siret or "")
    return out


def _apply_nodes(
    pipeline: Pipeline, kind_name: str, nodes: list[dict[str, Any]], counts: Counter[str]
) -> None:
    if not nodes:
        return
    kind = get_kind(kind_name)
    by_id = {n["id"]: n for n in nodes}
    with pipeline.store.session() as session:
        for row in session.scalars(select(Record).where(Record.bsd_id.in_(list(by_id)))):
            snap = snapshot(kind, by_id[row.bsd_id or ""])
            if row.remote_status == snap.status and row.remote_updated_at == snap.updated_at:
                continue
            previous = row.remote_status
            row.remote_status, row.remote_is_draft = snap.status, snap.is_draft
            row.remote_updated_at = snap.updated_at
            row.readable_id = row.readable_id or snap.readable_id
            if snap.status in kind.terminal_statuses and row.state in (RecordState.SYNCED, RecordState.DONE):
                row.state = RecordState.DONE
            row.writeback_due = True
            row.updated_at = utcnow()
            counts["status_changes"] += int(previous != snap.status)
            if previous != snap.status:
                pipeline.log.info(
                    "bsd_status_changed",
                    mapping=row.mapping,
                    record_key=row.record_key,
                    bsd_id=row.bsd_id,
                    readable_id=row.readable_id,
                    previous=previous,
                    status=snap.status,
                )


def _walk(
    pipeline: Pipeline, kind_name: str, siret: str, since: str, stop: threading.Event, counts: Counter[str]
) -> bool:
    kind = get_kind(kind_name)
    after: str | None = None
    for _ in range(10_000):
        if stop.is_set():
            return False
        read = track_page_read(kind, siret, since, after)
        query, variables, aliases = merge([read])
        data = pipeline.client.query(query, variables, operation_name="MergedRead")
        result = data.get(aliases[0])
        nodes = nodes_of(result, read.connection)
        counts["pages"] += 1
        counts["seen"] += len(nodes)
        _apply_nodes(pipeline, kind_name, nodes, counts)
        if read.connection:
            info = (result or {}).get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return True
            after = info.get("endCursor")
        else:
            if len(nodes) < 100:
                return True
            after = nodes[-1]["id"]
    return True


def read_one_document(kind_name: str) -> str:
    """A targeted read of one BSD by its id (for webhook hints and seal reconciliation)."""
    kind = get_kind(kind_name)
    field = "form" if kind.name is KindName.BSDD else kind.one_query
    id_type = "ID" if kind.name is KindName.BSDD else "ID!"
    return f"query ReadOne($id: {id_type}) {{ {field}(id: $id) {{ {selection(kind)} }} }}"


def _read_hints(pipeline: Pipeline, stop: threading.Event, counts: Counter[str]) -> None:
    """Read back the BSDs webhooks announced, five to a request; forget the hints read."""
    with pipeline.store.session() as session:
        hints = [
            h.bsd_id for h in session.scalars(select(TrackHint).order_by(TrackHint.received_at).limit(500))
        ]
    if not hints:
        return
    names = [b.mapping.name for b in pipeline.bindings]
    with pipeline.store.session() as session:
        rows = session.execute(
            select(Record.kind, Record.bsd_id, Record.readable_id).where(
                or_(Record.readable_id.in_(hints), Record.bsd_id.in_(hints)), Record.mapping.in_(names)
            )
        ).all()
    ours = sorted({(kind, bsd_id) for kind, bsd_id, _ in rows if bsd_id})
    for start in range(0, len(ours), 5):
        if stop.is_set():
            return
        chunk = ours[start : start + 5]
        outcomes = pipeline.client.query_merged([(read_one_document(k), {"id": i}) for k, i in chunk])
        for (kind_name, _bsd_id), outcome in zip(chunk, outcomes, strict=True):
            node = outcome.data if outcome.error is None else None  # the field's own value
            if isinstance(node, dict):
                _apply_nodes(pipeline, kind_name, [node], counts)
            counts["hints_read"] += 1
    with pipeline.store.session() as session:
        session.execute(delete(TrackHint).where(TrackHint.bsd_id.in_(hints)))
    counts["hints"] += len(hints)


def track(pipeline: Pipeline, stop: threading.Event) -> dict[str, int]:
    counts: Counter[str] = Counter()
    _read_hints(pipeline, stop, counts)
    targets = _targets(pipeline)
    if not targets:
        return dict(counts)
    overlap = timedelta(seconds=pipeline.options.track_overlap_seconds)
    causes: list[str] = []
    for kind_name, emitter_sirets in sorted(targets.items()):
        try:
            _track_kind(pipeline, kind_name, emitter_sirets, overlap, stop, counts)
        except Unauthenticated:
            raise  # the token: every kind would fail the same way
        except Exception as exc:  # one kind failing (a refused query...) never stops the others
            causes.append(f"tracking {kind_name} failed: {exc}: the other kinds go on; see the log")
            pipeline.log.error("track_kind_failed", kind=kind_name, error=str(exc))
    if causes:
        raise StepFailed("track", causes, dict(counts))
    return dict(counts)


def _track_kind(
    pipeline: Pipeline,
    kind_name: str,
    emitter_sirets: set[str],
    overlap: timedelta,
    stop: threading.Event,
    counts: Counter[str],
) -> None:
    if kind_name == KindName.BSDD.value:
        # forms() lists one company's BSDs: walk every company of the token, since a record's
        # BSD may concern any of them (as emitter, destination, transporter...).
        mine = my_sirets(pipeline)
        sirets = sorted(set(mine)) or sorted(s for s in emitter_sirets if s)
    else:
        sirets = [""]  # the other lists cover every company of the token at once
    for siret in sirets:
        started = utcnow()
        with pipeline.store.session() as session:
            cursor = pipeline.store.get_cursor(session, kind_name, siret)
        since_dt = (cursor or started - timedelta(days=30)) - overlap
        since = since_dt.isoformat().replace("+00:00", "Z")
        if _walk(pipeline, kind_name, siret, since, stop, counts):
            with pipeline.store.session() as session:
                pipeline.store.put_cursor(session, kind_name, siret, started)
