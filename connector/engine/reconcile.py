"""In-doubt reconciliation: find out what the server did before anything is sent again.

A create whose outcome is unknown (crash, timeout, dropped connection) is looked up: BSDD by
``forms(siret, customId)`` under each company the record names that the token holds (never an
unrelated one: the list would not show the BSD), BSVHU by ``bsvhus(where: {customId})``, the other
kinds by listing the emitter's BSDs created since the intent and matching a fingerprint of the
payload that was sent. Reads travel 25 to a request (see ``TrackdechetsClient.query_many``).
Found → adopted; not found → sent again. A seal is reconciled by reading the BSD's status (those
reads merged 25 to a request too); an update is simply sent again (it is idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connector.domain.kinds import KindName, get_kind
from connector.engine.companies import foreign_reason, record_companies, record_org_ids
from connector.engine.context import Pipeline
from connector.engine.operations import (
    BsdSnapshot,
    PlannedRead,
    fingerprint_of_node,
    fingerprint_of_payload,
    list_created_since_read,
    lookup_custom_id_read,
    nodes_of,
    snapshot,
)
from connector.engine.track import READS_PER_REQUEST, read_one_document
from connector.state.models import Record
from connector.trackdechets.errors import Rejected, TrackdechetsError, Unauthenticated

__all__ = ["Verdict", "reconcile"]


@dataclass(frozen=True)
class Verdict:
    record_id: int
    found: BsdSnapshot | None
    """The BSD the in-doubt mutation produced (create) or its current state (seal)."""
    applied: bool
    """Whether the in-doubt mutation took effect on the server."""
    note: str | None = None
    ambiguous: bool = False
    """Several BSDs matched: the one adopted may hold another record's data, so it is rewritten."""
    blocked: str | None = None
    """Why it cannot be looked up (no company of the token on it): it may not be sent again."""
    failed: TrackdechetsError | None = None
    """Its look-up failed (after the client's retries): nothing is known, it stays in doubt."""


_FINGERPRINT_WINDOW = timedelta(hours=24)


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def _run_reads(pipeline: Pipeline, fields: Sequence[tuple[str, Mapping[str, Any]]]) -> list[Any]:
    """Each read's result, or its error (after the client's retries), 25 to a request.

    A failed read fails only the record it is for (see ``reconcile``'s ``keep_going``); only a
    token problem raises at once.
    """
    results: list[Any] = []
    for start in range(0, len(fields), READS_PER_REQUEST):
        for outcome in pipeline.client.query_many(list(fields[start : start + READS_PER_REQUEST])):
            if isinstance(outcome.error, Unauthenticated):
                raise outcome.error
            if isinstance(outcome.error, Rejected):
                pipeline.companies.read_at = None  # a company may have left the token
            results.append(outcome.data if outcome.error is None else outcome.error)
    return results


def _failed(record: Record, error: TrackdechetsError) -> Verdict:
    return Verdict(record.id, None, applied=False, failed=error)


def _adopted_ids(pipeline: Pipeline, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    with pipeline.store.session() as session:
        return set(session.scalars(select(Record.bsd_id).where(Record.bsd_id.in_(list(ids)))))


def reconcile(pipeline: Pipeline, records: Sequence[Record], *, keep_going: bool = False) -> list[Verdict]:
    """Look up every in-doubt record of ``records``; reads are merged 25 to a request.

    A look-up that fails raises its error, unless ``keep_going``: then that record's verdict
    carries it (``failed``) and the others' verdicts still count (push: the rest goes on). A
    caller that would take "not found" for "create it" (rebuild-state) must let it raise.
    """
    verdicts: list[Verdict] = []
    lookups: list[tuple[Record, list[PlannedRead]]] = []
    listings: list[Record] = []
    seals: list[Record] = []
    for record in records:
        kind = get_kind(record.kind)
        if record.intent_op == "create":
            if kind.name is KindName.BSDD:
                custom_id = _sent_custom_id(record)
                try:
                    sirets = record_companies(pipeline, record)
                except TrackdechetsError as exc:
                    if not keep_going:
                        raise
                    # The token's companies could not be read: this record waits, the rest goes on.
                    verdicts.append(_failed(record, exc))
                    continue
                if not sirets:
                    # No company of the token can list it: it stays in doubt, and is not resent.
                    count = len(pipeline.companies.org_ids or ())
                    reason = foreign_reason(record, record_org_ids(record), count, in_doubt=True)
                    verdicts.append(Verdict(record.id, None, applied=False, blocked=reason))
                    continue
                lookups.append((record, [lookup_custom_id_read(kind, s, custom_id) for s in sirets]))
            elif kind.has_custom_id:
                lookups.append((record, [lookup_custom_id_read(kind, "", _sent_custom_id(record))]))
            else:
                listings.append(record)
        elif record.intent_op == "seal" and record.bsd_id:
            seals.append(record)
        else:  # update: resending is harmless
            verdicts.append(Verdict(record.id, None, applied=False))

    if lookups:
        fields = [read.as_field() for _, reads in lookups for read in reads]
        results = iter(_run_reads(pipeline, fields))
        found: list[tuple[Record, list[dict[str, Any]]]] = []
        for record, reads in lookups:
            nodes: dict[str, dict[str, Any]] = {}
            answers = [next(results) for _ in reads]
            error = next((a for a in answers if isinstance(a, TrackdechetsError)), None)
            if error is not None:
                verdicts.append(_failed(record, error))
                continue
            for read, answer in zip(reads, answers, strict=True):
                # One BSD may show under several of the record's companies.
                for node in nodes_of(answer, read.connection):
                    if node.get("customId") == _sent_custom_id(record):
                        nodes.setdefault(node["id"], node)
            found.append((record, list(nodes.values())))
        taken = _adopted_ids(pipeline, {n["id"] for _, ns in found for n in ns})
        for record, candidates in found:
            kind = get_kind(record.kind)
            free = [n for n in candidates if n["id"] not in taken]
            note = f"{len(free)} BSDs carry customId {_sent_custom_id(record)!r}" if len(free) > 1 else None
            # The oldest one is the one this record created first; later ones are duplicates
            # made by someone else and are reported, never deleted.
            free.sort(key=lambda n: n.get("createdAt") or "")
            verdicts.append(
                Verdict(record.id, snapshot(kind, free[0]) if free else None, applied=bool(free), note=note)
            )
            if free:
                taken.add(free[0]["id"])

    adopted_now: set[str] = set()  # ids given to earlier records of this same pass
    for record, matches in zip(listings, _fingerprint_matches(pipeline, listings), strict=True):
        if isinstance(matches, TrackdechetsError):
            verdicts.append(_failed(record, matches))
            continue
        verdict = _fingerprint_verdict(pipeline, record, matches, adopted_now)
        if verdict.found is not None:
            adopted_now.add(verdict.found.id)
        verdicts.append(verdict)

    verdicts.extend(_reconcile_seals(pipeline, seals))
    failure = next((v.failed for v in verdicts if v.failed is not None), None)
    if failure is not None and not keep_going:
        raise failure
    return verdicts


def _sent_custom_id(record: Record) -> str:
    """The customId the create carried: the mapping may set it from a column, not the key."""
    payload = json.loads(record.payload) if record.payload else {}
    custom_id = payload.get("customId")
    return str(custom_id) if custom_id else record.record_key


def _listing_read(record: Record, after: str | None) -> PlannedRead:
    kind = get_kind(record.kind)
    payload = json.loads(record.payload) if record.payload else {}
    assert record.intent_at is not None
    # A wide window: the host's clock may be off from the server's by minutes, and the fingerprint
    # (emitter, its reference, waste, weight) already singles the BSD out.
    since = _iso(record.intent_at - _FINGERPRINT_WINDOW)
    custom_info = (payload.get("emitter") or {}).get("customInfo")
    return list_created_since_read(kind, record.emitter_siret or "", since, after, custom_info=custom_info)


def _fingerprint_matches(
    pipeline: Pipeline, records: Sequence[Record]
) -> list[list[dict[str, Any]] | TrackdechetsError]:
    """For each record, the BSDs created since its intent whose fingerprint is its payload's.

    The first pages of all records travel 25 to a request (the emitter's reference filters them
    down to a BSD or two); a record whose listing goes on is walked alone, 50 pages at most.
    """
    matches: list[list[dict[str, Any]] | TrackdechetsError] = []
    firsts = _run_reads(pipeline, [_listing_read(record, None).as_field() for record in records])
    for record, first in zip(records, firsts, strict=True):
        kind = get_kind(record.kind)
        wanted = fingerprint_of_payload(kind, json.loads(record.payload) if record.payload else {})
        found: list[dict[str, Any]] = []
        result = first
        for _page in range(50):
            if isinstance(result, TrackdechetsError):
                break
            found.extend(n for n in nodes_of(result, True) if fingerprint_of_node(kind, n) == wanted)
            info = (result or {}).get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            (result,) = _run_reads(pipeline, [_listing_read(record, info.get("endCursor")).as_field()])
        matches.append(result if isinstance(result, TrackdechetsError) else found)
    return matches


def _fingerprint_verdict(
    pipeline: Pipeline, record: Record, matches: list[dict[str, Any]], adopted_now: set[str]
) -> Verdict:
    kind = get_kind(record.kind)
    committed = _adopted_ids(pipeline, {n["id"] for n in matches})
    candidates = [n for n in matches if n["id"] not in committed]
    free = sorted(
        (n for n in candidates if n["id"] not in adopted_now), key=lambda n: n.get("createdAt") or ""
    )
    if not free:
        return Verdict(record.id, None, applied=False)
    # Alike records adopted in this same pass count too: the last of two twins finds one BSD left,
    # but which twin's data it holds is still unknown.
    ambiguous = len(candidates) > 1
    note = f"{len(candidates)} BSDs match the fingerprint" if ambiguous else None
    return Verdict(record.id, snapshot(kind, free[0]), applied=True, note=note, ambiguous=ambiguous)


def _reconcile_seals(pipeline: Pipeline, records: Sequence[Record]) -> list[Verdict]:
    """Read each BSD (targeted reads, 25 to a request, not polling): sealed already, or a draft?

    Merged because a pass may hold hundreds of in-doubt seals (a proxy answering 5xx to whole
    chunks): read one by one, each with its own retries, they made that pass last minutes.
    """
    verdicts: list[Verdict] = []
    fields = [(read_one_document(r.kind), {"id": r.bsd_id}) for r in records]
    for record, node in zip(records, _run_reads(pipeline, fields), strict=True):
        if isinstance(node, TrackdechetsError):
            verdicts.append(_failed(record, node))
            continue
        snap = snapshot(get_kind(record.kind), node) if isinstance(node, dict) else None  # None: gone
        verdicts.append(Verdict(record.id, snap, applied=snap is not None and not snap.is_draft))
    return verdicts
