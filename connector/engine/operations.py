"""The engine's view of the GraphQL documents: (document, variables) pairs and what comes back.

Documents themselves live in ``connector.trackdechets.documents``; this module fills their
variables and reads their results into snapshots and fingerprints.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from connector.domain.kinds import BsdKind, KindName
from connector.trackdechets import documents
from connector.trackdechets.documents import Read

__all__ = [
    "BsdSnapshot",
    "Op",
    "PlannedRead",
    "create_op",
    "fingerprint_of_node",
    "fingerprint_of_payload",
    "list_created_since_read",
    "lookup_custom_id_read",
    "nodes_of",
    "seal_op",
    "snapshot",
    "track_page_read",
    "update_op",
]


@dataclass(frozen=True)
class Op:
    query: str
    variables: dict[str, Any]
    root: str
    operation_name: str


def _op(document: documents.Document, variables: dict[str, Any]) -> Op:
    return Op(document.query, variables, document.root_field, document.operation_name)


def create_op(kind: BsdKind, payload: dict[str, Any]) -> Op:
    return _op(documents.create_document(kind), {"input": payload})


def update_op(kind: BsdKind, bsd_id: str, payload: dict[str, Any]) -> Op:
    if kind.name is KindName.BSDD:
        return _op(documents.update_document(kind), {"input": {**payload, "id": bsd_id}})
    return _op(documents.update_document(kind), {"id": bsd_id, "input": payload})


def seal_op(kind: BsdKind, bsd_id: str) -> Op:
    return _op(documents.seal_document(kind), {"id": bsd_id})


@dataclass(frozen=True)
class PlannedRead:
    """A read and its variables, ready to be merged with up to four others."""

    read: Read
    values: dict[str, Any]

    @property
    def connection(self) -> bool:
        return self.read.connection

    def as_field(self) -> tuple[str, dict[str, Any]]:
        """(one-field document, its variables): what ``TrackdechetsClient.query_many`` merges."""
        names = [name for name, _ in self.read.variable_types]
        return documents.one_field_document(self.read), {name: self.values.get(name) for name in names}


def lookup_custom_id_read(kind: BsdKind, siret: str, custom_id: str) -> PlannedRead:
    read = documents.lookup_by_custom_id(kind)
    if kind.name is KindName.BSDD:
        return PlannedRead(read, {"siret": siret, "customId": custom_id})
    return PlannedRead(read, {"where": {"customId": {"_eq": custom_id}}})


# Kinds whose list filters on the emitter's free-text reference (the platform's ``where``).
_CUSTOM_INFO_FILTER = frozenset({KindName.BSDA, KindName.BSPAOH})


def list_created_since_read(
    kind: BsdKind, siret: str, since: str, after: str | None, *, custom_info: str | None = None
) -> PlannedRead:
    emitter: dict[str, Any] = {"company": {"siret": {"_eq": siret}}}
    if custom_info and kind.name in _CUSTOM_INFO_FILTER:
        emitter["customInfo"] = {"_eq": custom_info}
    where = {"createdAt": {"_gte": since}, "emitter": emitter}
    return PlannedRead(documents.list_created_since(kind), {"where": where, "after": after})


def track_page_read(kind: BsdKind, siret: str, since: str, after: str | None) -> PlannedRead:
    read = documents.track_page(kind)
    if kind.name is KindName.BSDD:
        return PlannedRead(read, {"siret": siret, "updatedAfter": since, "cursorAfter": after})
    return PlannedRead(read, {"where": {"updatedAt": {"_gte": since}}, "after": after})


def merge(reads: list[PlannedRead]) -> tuple[str, dict[str, Any], list[str]]:
    return documents.merge_reads([(r.read, r.values) for r in reads])


# --- what comes back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BsdSnapshot:
    id: str
    readable_id: str
    status: str
    is_draft: bool
    updated_at: str | None
    created_at: str | None
    custom_id: str | None
    node: dict[str, Any]


def snapshot(kind: BsdKind, node: dict[str, Any]) -> BsdSnapshot:
    status = node["status"]
    return BsdSnapshot(
        id=node["id"],
        readable_id=node.get("readableId") or node["id"],
        status=status,
        is_draft=bool(node.get("isDraft")) or (status == "DRAFT"),
        updated_at=node.get("updatedAt"),
        created_at=node.get("createdAt"),
        custom_id=node.get("customId"),
        node=node,
    )


def nodes_of(result: Any, connection: bool) -> list[dict[str, Any]]:
    if result is None:
        return []
    if connection:
        return [edge["node"] for edge in result.get("edges", [])]
    return list(result) if isinstance(result, list) else [result]


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


_FINGERPRINT_PATHS: dict[KindName, tuple[str, ...]] = {
    KindName.BSDA: ("waste.code", "weight.value"),
    KindName.BSDASRI: ("waste.code", "emitter.emission.weight.value"),
    KindName.BSFF: ("waste.code", "weight.value"),
    KindName.BSVHU: ("wasteCode", "weight.value"),
    KindName.BSPAOH: ("waste.code", "emitter.emission.detail.weight.value"),
    KindName.BSDD: ("wasteDetails.code", "wasteDetails.quantity"),
}
"""Fields read back by every document (``documents.selection``) and present in the input alike."""


def _fingerprint(kind: BsdKind, data: dict[str, Any]) -> str:
    paths = ("emitter.company.siret", "emitter.customInfo", *_FINGERPRINT_PATHS[kind.name])
    values = [_dig(data, p) for p in paths]
    values = [
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) else (v or None) for v in values
    ]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:24]


def fingerprint_of_payload(kind: BsdKind, payload: dict[str, Any]) -> str:
    """Who emits, with which reference, which waste and weight: a BSD of a kind without client id.

    Ingest stamps the record key into ``emitter.customInfo`` when the mapping leaves it empty, so
    two records of one emitter only share a fingerprint when they are alike in every one of these.
    """
    return _fingerprint(kind, payload)


def fingerprint_of_node(kind: BsdKind, node: dict[str, Any]) -> str:
    return _fingerprint(kind, node)
