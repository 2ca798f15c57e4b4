"""Track: follow what happens to the BSDs after they are sent, with ``updatedAfter`` pages.

Never one query per BSD. One walk per kind over everything updated since the last walk started
(minus an overlap: lists are ordered by creation, and a BSD updated during a walk could otherwise
be missed), except BSDD, whose ``forms`` list takes one company: there, one walk per company that
has live BSDs, through the company the record names that the token holds (its emitter first), so
a token of hundreds of companies walks only those with something to follow.

Walks advance together: each request carries the next page of up to 25 walks (five aliased root
fields per document, five documents per JSON array); a walk with more pages continues in a later
request, and its cursor is stored only once its last page is read.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select

from connector.domain.kinds import KindName, get_kind
from connector.engine.companies import known_companies, record_companies
from connector.engine.context import Pipeline
from connector.engine.operations import PlannedRead, nodes_of, snapshot, track_page_read
from connector.errors import StepFailed
from connector.state.models import Record, RecordState, TrackHint
from connector.state.store import utcnow
from connector.trackdechets.batching import MAX_OPERATIONS
from connector.trackdechets.documents import selection
from connector.trackdechets.errors import Rejected, TrackdechetsError, Unauthenticated

__all__ = ["track", "track_targets"]

READS_PER_REQUEST = MAX_OPERATIONS * MAX_OPERATIONS
"""Five aliased root fields per document, five documents per JSON-array request."""
_BSDD_PAGE = 100
"""``first`` of the BSDD track page: a shorter page is the last one."""
_MAX_PAGES = 10_000


def _live(pipeline: Pipeline) -> Any:
    names = [b.mapping.name for b in pipeline.bindings]
    return (Record.bsd_id.is_not(None), Record.state != RecordState.DONE, Record.mapping.in_(names))


def track_targets(pipeline: Pipeline, counts: Counter[str] | None = None) -> list[tuple[str, str]]:
    """(kind, company) pairs to walk: one per kind, and for BSDD one per company with live BSDs.

    A BSDD record is followed through the first company it names that the token holds: its
    emitter when the token holds it (read from the indexed column), else the first other one
    (read from its payload). A record naming none is counted ``untracked`` and logged.
    """
    counts = counts if counts is not None else Counter()
    with pipeline.store.session() as session:
        query = select(Record.kind, Record.emitter_siret).where(*_live(pipeline)).distinct()
        rows = session.execute(query).all()
    kinds = sorted({kind for kind, _ in rows})
    targets = [(kind, "") for kind in kinds if kind != KindName.BSDD.value]
    if KindName.BSDD.value not in kinds:
        return targets
    mine = known_companies(pipeline)
    emitters = {siret for kind, siret in rows if kind == KindName.BSDD.value}
    sirets = {s for s in emitters if s and s in mine}
    others = sorted(s for s in emitters if s and s not in mine)
    condition = [Record.emitter_siret.is_(None)]
    condition += [Record.emitter_siret.in_(others[i : i + 500]) for i in range(0, len(others), 500)]
    with pipeline.store.session() as session:
        records = session.scalars(
            select(Record).where(*_live(pipeline), Record.kind == KindName.BSDD.value, or_(*condition))
        ).all()
    # Judged with the session closed: the list may be read again (HTTP) and requeue records (its
    # own transaction), neither of which may happen while holding the store's write lock.
    untracked: list[str] = []
    for record in records:
        ours = record_companies(pipeline, record)
        if ours:
            sirets.add(ours[0])
        else:
            untracked.append(record.record_key)
    if untracked:
        counts["untracked"] += len(untracked)
        pipeline.log.warning(
            "bsds_not_trackable",
            count=len(untracked),
            record_keys=untracked[:20],
            reason="none of their companies belongs to the token any more",
        )
    return [(KindName.BSDD.value, s) for s in sorted(sirets)] + targets


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


@dataclass
class _Walk:
    """One (kind, company) walk over the pages updated since its cursor."""

    kind: str
    siret: str
    since: str
    started: datetime
    after: str | None = None
    pages: int = 0

    def read(self) -> PlannedRead:
        return track_page_read(get_kind(self.kind), self.siret, self.since, self.after)

    def advance(self, result: Any) -> bool:
        """Take the page's paging; True when another page follows."""
        self.pages += 1
        read = self.read()
        if read.connection:
            info = (result or {}).get("pageInfo") or {}
            more, after = bool(info.get("hasNextPage")), info.get("endCursor")
        else:
            nodes = nodes_of(result, False)
            more, after = len(nodes) >= _BSDD_PAGE, (nodes[-1]["id"] if nodes else None)
        if not more or not after or after == self.after or self.pages >= _MAX_PAGES:
            return False
        self.after = after
        return True


def _walks(pipeline: Pipeline, targets: list[tuple[str, str]]) -> list[_Walk]:
    overlap = timedelta(seconds=pipeline.options.track_overlap_seconds)
    started = utcnow()
    walks = []
    with pipeline.store.session() as session:
        for kind, siret in targets:
            cursor = pipeline.store.get_cursor(session, kind, siret)
            since = (cursor or started - timedelta(days=30)) - overlap
            walks.append(_Walk(kind, siret, since.isoformat().replace("+00:00", "Z"), started))
    return walks


def _run_walks(pipeline: Pipeline, walks: list[_Walk], stop: threading.Event, counts: Counter[str]) -> None:
    """Every walk to its last page, 25 pages to a request; cursors stored as walks complete.

    A page that fails ends its walk without moving its cursor (the next cycle reads it again); the
    others go on. Failures other than a refusal are raised at the end, after everything read has
    been applied, so that the step is reported failed.
    """
    queue = list(walks)
    failure: TrackdechetsError | None = None
    failed_kinds: set[str] = set()
    while queue and not stop.is_set():
        batch, queue = queue[:READS_PER_REQUEST], queue[READS_PER_REQUEST:]
        reads = [walk.read() for walk in batch]
        outcomes = pipeline.client.query_many([read.as_field() for read in reads])
        counts["requests"] += 1
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        finished: list[_Walk] = []
        for walk, read, outcome in zip(batch, reads, outcomes, strict=True):
            if outcome.error is not None:
                counts["walks_failed"] += 1
                pipeline.log.warning("track_page_failed", kind=walk.kind, siret=walk.siret or None,
                                     page=walk.pages + 1, error=str(outcome.error))
                if isinstance(outcome.error, Rejected):
                    pipeline.companies.read_at = None  # a company may have left the token
                else:
                    failure = failure or outcome.error
                    failed_kinds.add(walk.kind)
                continue
            nodes = nodes_of(outcome.data, read.connection)
            counts["pages"] += 1
            counts["seen"] += len(nodes)
            by_kind[walk.kind].extend(nodes)
            if walk.advance(outcome.data):
                queue.append(walk)  # its next page travels with the next request
            else:
                finished.append(walk)
        for kind_name, nodes in by_kind.items():
            _apply_nodes(pipeline, kind_name, nodes, counts)
        if finished:
            with pipeline.store.session() as session:
                for walk in finished:
                    pipeline.store.put_cursor(session, walk.kind, walk.siret, walk.started)
            counts["walks"] += len(finished)
    if isinstance(failure, Unauthenticated):
        raise failure  # the token: every walk fails the same way, and the failure says so
    if failure is not None:
        kinds = ", ".join(sorted(failed_kinds))
        cause = f"tracking {kinds} failed: {failure}: the other kinds go on; see the log"
        raise StepFailed("track", [cause], dict(counts))


def read_one_document(kind_name: str) -> str:
    """A targeted read of one BSD by its id (for webhook hints and seal reconciliation)."""
    kind = get_kind(kind_name)
    field = "form" if kind.name is KindName.BSDD else kind.one_query
    id_type = "ID" if kind.name is KindName.BSDD else "ID!"
    return f"query ReadOne($id: {id_type}) {{ {field}(id: $id) {{ {selection(kind)} }} }}"


def _read_hints(pipeline: Pipeline, stop: threading.Event, counts: Counter[str]) -> None:
    """Read back the BSDs webhooks announced, 25 to a request; forget the hints read."""
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
    for start in range(0, len(ours), READS_PER_REQUEST):
        if stop.is_set():
            return
        chunk = ours[start : start + READS_PER_REQUEST]
        outcomes = pipeline.client.query_many([(read_one_document(k), {"id": i}) for k, i in chunk])
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
    # The token's companies on their schedule, whatever is live: a record rejected for naming
    # none of them goes on when a read finds one.
    known_companies(pipeline)
    _read_hints(pipeline, stop, counts)
    targets = track_targets(pipeline, counts)
    if targets:
        _run_walks(pipeline, _walks(pipeline, targets), stop, counts)
    return dict(counts)

