"""The GraphQL operations the engine sends, as (document, variables) pairs per BSD kind.

Selections are kept to what the steps read back: ids, statuses, times and the few fields a
fingerprint compares. Every document here is validated against the official schema in the tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from connector.domain.kinds import BsdKind, KindName

__all__ = [
    "BsdSnapshot",
    "Op",
    "create_op",
    "fingerprint_of_node",
    "fingerprint_of_payload",
    "list_created_since_op",
    "lookup_custom_id_op",
    "read_ids_op",
    "seal_op",
    "snapshot",
    "track_page_op",
    "update_op",
]

_FORM_FIELDS = "id readableId customId status createdAt updatedAt emitter { company { siret } }"


def _fields(kind: BsdKind) -> str:
    if kind.name is KindName.BSDD:
        return _FORM_FIELDS
    custom = " customId" if kind.has_custom_id else ""
    info = "" if kind.name in (KindName.BSVHU,) else " customInfo"
    dest = "destination { company { siret } }"
    return (f"id status isDraft createdAt updatedAt{custom} "
            f"emitter {{ company {{ siret }}{info} }} {dest}")


@dataclass(frozen=True)
class Op:
    query: str
    variables: dict[str, Any]
    root: str
    operation_name: str


def create_op(kind: BsdKind, payload: dict[str, Any]) -> Op:
    name = f"Create{kind.name.value.title()}"
    var_type = kind.input_type
    query = (f"mutation {name}($input: {var_type}!) {{ {kind.create_mutation}"
             f"({kind.create_argument}: $input) {{ {_fields(kind)} }} }}")
    return Op(query, {"input": payload}, kind.create_mutation, name)


def update_op(kind: BsdKind, bsd_id: str, payload: dict[str, Any]) -> Op:
    name = f"Update{kind.name.value.title()}"
    if kind.name is KindName.BSDD:
        query = (f"mutation {name}($input: UpdateFormInput!) {{ updateForm(updateFormInput: $input)"
                 f" {{ {_fields(kind)} }} }}")
        return Op(query, {"input": {**payload, "id": bsd_id}}, "updateForm", name)
    query = (f"mutation {name}($id: ID!, $input: {kind.input_type}!) {{ {kind.update_mutation}"
             f"(id: $id, input: $input) {{ {_fields(kind)} }} }}")
    return Op(query, {"id": bsd_id, "input": payload}, kind.update_mutation, name)


def seal_op(kind: BsdKind, bsd_id: str) -> Op:
    name = f"Seal{kind.name.value.title()}"
    query = f"mutation {name}($id: ID!) {{ {kind.seal_mutation}(id: $id) {{ {_fields(kind)} }} }}"
    return Op(query, {"id": bsd_id}, kind.seal_mutation, name)


# --- reads (may be merged by alias, up to 5 per document) -------------------------------------


@dataclass(frozen=True)
class Read:
    """One root field of a read: its text with ``$``-variables and their types."""

    field: str
    variables: dict[str, Any]
    types: dict[str, str]
    connection: bool


def lookup_custom_id_op(kind: BsdKind, siret: str, custom_id: str) -> Read:
    if kind.name is KindName.BSDD:
        return Read(f"forms(siret: $siret, customId: $cid, first: 10) {{ {_fields(kind)} }}",
                    {"siret": siret, "cid": custom_id}, {"siret": "String", "cid": "String"}, False)
    where = "BsvhuWhere"
    return Read(f"bsvhus(where: $where, first: 10) {{ edges {{ node {{ {_fields(kind)} }} }} }}",
                {"where": {"customId": {"_eq": custom_id}}}, {"where": where}, True)


def list_created_since_op(kind: BsdKind, siret: str, since: str, after: str | None) -> Read:
    where = {"createdAt": {"_gte": since}, "emitter": {"company": {"siret": {"_eq": siret}}}}
    return Read(
        f"{kind.list_query}(where: $where, first: 100, after: $after) "
        f"{{ pageInfo {{ endCursor hasNextPage }} edges {{ node {{ {_fields(kind)} }} }} }}",
        {"where": where, "after": after}, {"where": f"{kind.object_type}Where", "after": "ID"}, True,
    )


def read_ids_op(kind: BsdKind, bsd_id: str) -> Read:
    if kind.name is KindName.BSDD:
        return Read(f"form(id: $id) {{ {_fields(kind)} }}", {"id": bsd_id}, {"id": "ID"}, False)
    return Read(f"{kind.one_query}(id: $id) {{ {_fields(kind)} }}", {"id": bsd_id}, {"id": "ID!"}, False)


def track_page_op(kind: BsdKind, siret: str, since: str, after: str | None) -> Read:
    if kind.name is KindName.BSDD:
        return Read(
            f"forms(siret: $siret, updatedAfter: $since, first: 100, cursorAfter: $after) "
            f"{{ {_fields(kind)} }}",
            {"siret": siret, "since": since, "after": after},
            {"siret": "String", "since": "String", "after": "ID"}, False,
        )
    where = {"updatedAt": {"_gte": since}}
    return Read(
        f"{kind.list_query}(where: $where, first: 500, after: $after) "
        f"{{ pageInfo {{ endCursor hasNextPage }} edges {{ node {{ {_fields(kind)} }} }} }}",
        {"where": where, "after": after}, {"where": f"{kind.object_type}Where", "after": "ID"}, True,
    )


def merge_reads(reads: list[Read]) -> tuple[str, dict[str, Any], list[str]]:
    """Up to five reads in one document, each under alias ``rN`` with its variables renamed."""
    if not 1 <= len(reads) <= 5:
        raise ValueError("one document holds 1 to 5 root fields")
    definitions: list[str] = []
    fields: list[str] = []
    variables: dict[str, Any] = {}
    aliases: list[str] = []
    for index, read in enumerate(reads):
        alias = f"r{index}"
        text = read.field
        for name in sorted(read.types, key=len, reverse=True):
            text = text.replace(f"${name}", f"${alias}_{name}")
            definitions.append(f"${alias}_{name}: {read.types[name]}")
            variables[f"{alias}_{name}"] = read.variables[name]
        fields.append(f"{alias}: {text}")
        aliases.append(alias)
    query = f"query Reads({', '.join(definitions)}) {{ {' '.join(fields)} }}"
    return query, variables, aliases


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
    readable = node.get("readableId") or node["id"]
    return BsdSnapshot(
        id=node["id"], readable_id=readable, status=node["status"],
        is_draft=bool(node.get("isDraft")) or node["status"] == kind.draft_status == "DRAFT",
        updated_at=node.get("updatedAt"), created_at=node.get("createdAt"),
        custom_id=node.get("customId"), node=node,
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


_FINGERPRINT_PATHS = ("emitter.company.siret", "emitter.customInfo", "destination.company.siret")


def fingerprint_of_payload(payload: dict[str, Any]) -> str:
    """What identifies a created BSD without a client id: who emits, for whom, with which note."""
    values = [_dig(payload, p) or None for p in _FINGERPRINT_PATHS]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:24]


def fingerprint_of_node(node: dict[str, Any]) -> str:
    values = [_dig(node, p) or None for p in _FINGERPRINT_PATHS]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:24]
