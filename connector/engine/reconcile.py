"""In-doubt reconciliation: find out what the server did before anything is sent again.

A create whose outcome is unknown (crash, timeout, dropped connection) is looked up: BSDD by
``forms(siret, customId)``, BSVHU by ``bsvhus(where: {customId})``, the other kinds by listing the
emitter's BSDs created since the intent and matching a fingerprint of the payload that was sent.
Found → adopted; not found → sent again. A seal is reconciled by reading the BSD's status; an
update is simply sent again (it is idempotent).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from connector.domain.kinds import KindName, get_kind
from connector.engine.context import Pipeline
from connector.engine.operations import (
    BsdSnapshot,
    PlannedRead,
    fingerprint_of_node,
    fingerprint_of_payload,
    list_created_since_read,
    lookup_custom_id_read,
    merge,
    nodes_of,
    snapshot,
)
from connector.engine.track import my_sirets, read_one_document
from connector.state.models import Record

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


_FINGERPRINT_WINDOW = timedelta(hours=24)


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def _run_reads(pipeline: Pipeline, reads: Sequence[PlannedRead]) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(reads), 5):
        chunk = list(reads[start : start + 5])
        query, variables, aliases = merge(chunk)
        data = pipeline.client.query(query, variables, operation_name="MergedRead")
        results.extend(data.get(alias) for alias in aliases)
    return results


def _adopted_ids(pipeline: Pipeline, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    with pipeline.store.session() as session:
        return set(session.scalars(select(Record.bsd_id).where(Record.bsd_id.in_(list(ids)))))


def _lookup_siret(pipeline: Pipeline, record: Record, payload: dict[str, Any]) -> str | None:
    """A SIRET of the token's companies that appears on the BSD (``forms`` needs one)."""
    mine = set(pipeline.my_sirets or [])
    candidates = [record.emitter_siret]
    for role in ("recipient", "destination", "transporter", "trader", "broker"):
        company = (payload.get(role) or {}).get("company") if isinstance(payload.get(role), dict) else None
        if isinstance(company, dict):
            candidates.append(company.get("siret"))
    for siret in candidates:
        if siret and (not mine or siret in mine):
            return siret
    # None of the BSD's companies is the token's (should not happen: the platform refuses such a
    # create); any of the token's SIRETs still lists the BSDs its user can see.
    return next(iter(sorted(mine)), record.emitter_siret)


def reconcile(pipeline: Pipeline, records: Sequence[Record]) -> list[Verdict]:
    """Look up every in-doubt record of ``records``; reads are merged five to a document."""
    verdicts: list[Verdict] = []
    if any(r.intent_op == "create" and get_kind(r.kind).name.value == "BSDD" for r in records):
        my_sirets(pipeline)  # forms() takes one of the token's SIRETs: know them before looking up
    creates_by_id: list[tuple[Record, PlannedRead]] = []
    listings: list[Record] = []
    seals: list[Record] = []
    for record in records:
        kind = get_kind(record.kind)
        payload = json.loads(record.payload) if record.payload else {}
        if record.intent_op == "create":
            if kind.has_custom_id:
                siret = _lookup_siret(pipeline, record, payload) or ""
                creates_by_id.append((record, lookup_custom_id_read(kind, siret, _sent_custom_id(record))))
            else:
                listings.append(record)
        elif record.intent_op == "seal" and record.bsd_id:
            seals.append(record)
        else:  # update: resending is harmless
            verdicts.append(Verdict(record.id, None, applied=False))

    if creates_by_id:
        results = _run_reads(pipeline, [read for _, read in creates_by_id])
        found_ids = {
            n["id"]
            for (rec, read), res in zip(creates_by_id, results, strict=True)
            for n in nodes_of(res, read.connection)
        }
        taken = _adopted_ids(pipeline, found_ids)
        for (record, read), result in zip(creates_by_id, results, strict=True):
            kind = get_kind(record.kind)
            nodes = [
                n
                for n in nodes_of(result, read.connection)
                if n.get("customId") == _sent_custom_id(record) and n["id"] not in taken
            ]
            note = f"{len(nodes)} BSDs carry customId {_sent_custom_id(record)!r}" if len(nodes) > 1 else None
            # The oldest one is the one this record created first; later ones are duplicates
            # made by someone else and are reported, never deleted.
            nodes.sort(key=lambda n: n.get("createdAt") or "")
            verdicts.append(
                Verdict(
                    record.id, snapshot(kind, nodes[0]) if nodes else None, applied=bool(nodes), note=note
                )
            )
            if nodes:
                taken.add(nodes[0]["id"])

    adopted_now: set[str] = set()  # ids given to earlier records of this same pass
    for record in listings:
        verdict = _reconcile_by_fingerprint(pipeline, record, adopted_now)
        if verdict.found is not None:
            adopted_now.add(verdict.found.id)
        verdicts.append(verdict)

    for record in seals:
        verdicts.append(_reconcile_seal(pipeline, record))
    return verdicts


def _sent_custom_id(record: Record) -> str:
    """The customId the create carried: the mapping may set it from a column, not the key."""
    payload = json.loads(record.payload) if record.payload else {}
    custom_id = payload.get("customId")
    return str(custom_id) if custom_id else record.record_key


def _reconcile_by_fingerprint(pipeline: Pipeline, record: Record, adopted_now: set[str]) -> Verdict:
    kind = get_kind(record.kind)
    payload = json.loads(record.payload) if record.payload else {}
    wanted = fingerprint_of_payload(kind, payload)
    assert record.intent_at is not None
    # A wide window: the host's clock may be off from the server's by minutes, and the fingerprint
    # (emitter, its reference, waste, weight) already singles the BSD out.
    since = _iso(record.intent_at - _FINGERPRINT_WINDOW)
    siret = record.emitter_siret or ""
    custom_info = (payload.get("emitter") or {}).get("customInfo")
    after: str | None = None
    matches: list[dict[str, Any]] = []
    for _page in range(50):
        read = list_created_since_read(kind, siret, since, after, custom_info=custom_info)
        (result,) = _run_reads(pipeline, [read])
        for node in nodes_of(result, True):
            if fingerprint_of_node(kind, node) == wanted:
                matches.append(node)
        info = (result or {}).get("pageInfo") or {}
        if not info.get("hasNextPage"):
            break
        after = info.get("endCursor")
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


def _reconcile_seal(pipeline: Pipeline, record: Record) -> Verdict:
    """Read the BSD (a targeted read, not polling): sealed already, or still a draft?"""
    kind = get_kind(record.kind)
    field = "form" if kind.name is KindName.BSDD else kind.one_query
    query = read_one_document(record.kind)
    data = pipeline.client.query(query, {"id": record.bsd_id}, operation_name="ReadOne")
    node = data.get(field)
    snap = snapshot(kind, node) if node else None
    return Verdict(record.id, snap, applied=snap is not None and not snap.is_draft)
