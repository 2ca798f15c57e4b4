"""The companies the token can act for: read to the end, kept fresh, asked about per record.

A group's token holds hundreds of establishments. ``myCompanies`` is paged to its end (Relay
``first``/``after``, the platform's page cap), never trusted to fit in one page. The list is read
at first use, again every ``companies_refresh_seconds``, and at once when a record names no company
of the list (at most every ``companies_recheck_seconds``: a company just given to the token is
found, a truly foreign record does not cost a read each time).

A record is acted on only through the companies it names itself (emitter, transporter,
destination, trader, broker, eco-organisme, intermediaries...): a create none of whose companies
the token holds is rejected before it is sent, and comes back by itself when a later read of the
list finds one of them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from connector.state.models import Record, RecordState
from connector.state.store import utcnow
from connector.trackdechets.errors import TrackdechetsError

if TYPE_CHECKING:
    from connector.engine.context import Pipeline

__all__ = [
    "NOT_OURS",
    "CompanyDirectory",
    "acting_for",
    "foreign_reason",
    "known_companies",
    "named_org_ids",
    "record_companies",
    "record_org_ids",
    "refresh_companies",
    "reject_foreign_creates",
]

MY_COMPANIES = (
    "query MyCompanies($first: Int, $after: ID) { myCompanies(first: $first, after: $after) "
    "{ pageInfo { endCursor hasNextPage } edges { node { orgId siret vatNumber } } } }"
)
NOT_OURS = "none of the companies this record names belongs to the token"
"""The start of the rejection reason; a later read of the list finding one requeues the record."""


@dataclass
class CompanyDirectory:
    """The token's companies (SIRETs and VAT numbers) and when they were read."""

    org_ids: frozenset[str] | None = None
    read_at: float | None = None
    clock: Callable[[], float] = time.monotonic
    lock: threading.Lock = field(default_factory=threading.Lock)

    def age(self) -> float:
        return float("inf") if self.read_at is None else self.clock() - self.read_at


def named_org_ids(payload: Any) -> list[str]:
    """Every SIRET or VAT number a payload names, the emitter's first, then in the payload's order."""
    found: dict[str, None] = {}

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for key, value in item.items():
                if key in ("siret", "vatNumber", "orgId") and isinstance(value, str) and value.strip():
                    found.setdefault(value.strip())
                else:
                    walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    if isinstance(payload, dict):
        walk(payload.get("emitter"))
    walk(payload)
    return list(found)


def record_org_ids(record: Record) -> list[str]:
    """Every company ``record`` names (its payload's, and the indexed emitter), the emitter's first."""
    try:
        payload = json.loads(record.payload) if record.payload else {}
    except ValueError:
        payload = {}
    named = named_org_ids(payload)
    if record.emitter_siret and record.emitter_siret not in named:
        named.insert(0, record.emitter_siret)
    return named


def refresh_companies(pipeline: Pipeline) -> frozenset[str]:
    """Read ``myCompanies`` to its last page; the list is replaced only by a complete read."""
    directory = pipeline.companies
    with directory.lock:
        found: set[str] = set()
        after: str | None = None
        pages = 0
        while True:
            data = pipeline.client.query(
                MY_COMPANIES, {"first": pipeline.options.companies_page_size, "after": after},
                operation_name="MyCompanies",
            )
            connection = (data or {}).get("myCompanies") or {}
            pages += 1
            for edge in connection.get("edges") or []:
                node = edge.get("node") or {}
                found.update(v for v in (node.get("orgId"), node.get("siret"), node.get("vatNumber")) if v)
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor") or info.get("endCursor") == after:
                break
            after = info["endCursor"]
        previous = directory.org_ids
    added = sorted(found - previous) if previous is not None else []
    removed = sorted(previous - found) if previous is not None else []
    pipeline.log.info("companies_read", companies=len(found), pages=pages, added=len(added),
                      removed=len(removed))
    if added:
        # Before the new list is kept: should this transaction fail, the list stays the old one,
        # so the next read finds the same new companies and requeues their records then.
        _requeue(pipeline, frozenset(added))
    with directory.lock:
        directory.org_ids = frozenset(found)
        directory.read_at = directory.clock()
    return directory.org_ids


def _refresh_or_keep(pipeline: Pipeline) -> frozenset[str]:
    """Read the list again; on failure keep the previous one (tried again after the recheck gap).

    With no list at all the error is raised: nothing may be decided without it.
    """
    directory = pipeline.companies
    try:
        return refresh_companies(pipeline)
    except TrackdechetsError as exc:
        if directory.org_ids is None:
            raise
        pipeline.log.warning("companies_read_failed", error=str(exc), kept=len(directory.org_ids))
        options = pipeline.options
        directory.read_at = directory.clock() - max(
            0.0, options.companies_refresh_seconds - options.companies_recheck_seconds
        )
        return directory.org_ids


def known_companies(pipeline: Pipeline) -> frozenset[str]:
    """The token's companies, read at first use and again once ``companies_refresh_seconds`` old."""
    directory = pipeline.companies
    if directory.org_ids is not None and directory.age() < pipeline.options.companies_refresh_seconds:
        return directory.org_ids
    return _refresh_or_keep(pipeline)


def acting_for(pipeline: Pipeline, org_ids: Iterable[str]) -> list[str]:
    """Of ``org_ids`` (in their order), those the token holds; the list is read again first when
    none is in it and it is older than ``companies_recheck_seconds``."""
    wanted = [o for o in dict.fromkeys(org_ids) if o]
    mine = known_companies(pipeline)
    ours = [o for o in wanted if o in mine]
    if ours or not wanted:
        return ours
    if pipeline.companies.age() >= pipeline.options.companies_recheck_seconds:
        mine = _refresh_or_keep(pipeline)
    return [o for o in wanted if o in mine]


def record_companies(pipeline: Pipeline, record: Record) -> list[str]:
    """The companies ``record`` names that the token holds, the emitter's first."""
    return acting_for(pipeline, record_org_ids(record))


def foreign_reason(record: Record, named: Sequence[str], count: int, *, in_doubt: bool = False) -> str:
    """Why nothing is sent for ``record``: it names no company of the token's ``count``."""
    what = (
        "its create is in doubt and cannot be looked up, so it is not sent again"
        if in_doubt else "nothing was sent"
    )
    return (
        f"{record.origin}: {NOT_OURS} ({', '.join(named) or 'no SIRET nor VAT number'}; the token "
        f"acts for {count} companies): {what}. Give the token's account access to one of these "
        "companies on Trackdéchets (the record then goes on by itself), or correct the SIRETs"
    )


def reject_foreign_creates(pipeline: Pipeline, records: Sequence[Record]) -> list[Record]:
    """``records`` minus the creates none of whose companies the token holds, which are rejected.

    Sent, such a create would be refused by the platform at best; at worst (its in-doubt outcome
    then looked up under a company that cannot see it) sent twice. The rejection names the record,
    the SIRETs it names and what to do; nothing is sent for it.
    """
    if not any(r.next_op == "create" and r.intent_op is None for r in records):
        return list(records)
    try:
        known_companies(pipeline)
    except TrackdechetsError as exc:
        # Unreadable (a revoked token, an outage): the creates go, and the platform itself refuses
        # those of other companies. Nothing is looked up under a wrong company meanwhile: an
        # in-doubt lookup needs the list and waits for it.
        pipeline.log.warning("companies_unknown", error=str(exc))
        return list(records)
    keep: list[Record] = []
    foreign: list[tuple[Record, list[str]]] = []
    for record in records:
        if record.next_op != "create" or record.intent_op is not None:
            keep.append(record)
            continue
        named = record_org_ids(record)
        if acting_for(pipeline, named):
            keep.append(record)
        else:
            foreign.append((record, named))
    if not foreign:
        return keep
    count = len(pipeline.companies.org_ids or ())
    with pipeline.store.session() as session:
        for record, named in foreign:
            row = session.get(Record, record.id)
            if (row is None or row.state != RecordState.PENDING or row.intent_op is not None
                    or row.payload_hash != record.payload_hash):
                continue  # changed meanwhile: judged again at its next turn
            row.state = RecordState.REJECTED
            row.last_error = foreign_reason(row, named, count)
            row.error_fields = json.dumps(["emitter.company.siret"])
            row.writeback_due = True
            row.updated_at = utcnow()
            pipeline.log.warning("record_rejected", mapping=row.mapping, record_key=row.record_key,
                                 sirets=named, error=row.last_error)
    return keep


def _requeue(pipeline: Pipeline, added: frozenset[str]) -> None:
    """Creates rejected for naming no company of the token go on when one appears: pending, or
    in doubt again when their create's outcome was never looked up (push reconciles it first)."""
    with pipeline.store.session() as session:
        rows = session.scalars(
            select(Record).where(
                Record.state == RecordState.REJECTED,
                Record.bsd_id.is_(None),
                Record.last_error.contains(NOT_OURS),
            )
        )
        for row in rows:
            if not added & set(record_org_ids(row)):
                continue
            row.state = RecordState.IN_FLIGHT if row.intent_op else RecordState.PENDING
            row.next_op = "create"
            row.last_error = None
            row.error_fields = None
            row.attempts = 0
            row.next_attempt_at = None
            row.writeback_due = True
            row.updated_at = utcnow()
            pipeline.log.info("record_requeued", mapping=row.mapping, record_key=row.record_key,
                              reason="one of its companies now belongs to the token")
