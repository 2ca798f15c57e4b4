"""GraphQL documents per BSD kind and operation, built from the kinds table, never by hand per kind.

Every document here is validated against the official schema in the tests. Selections hold what
the steps read back: ids, statuses, times, and the waste code and weight a fingerprint compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from connector.domain.kinds import BsdKind, KindName
from connector.trackdechets import batching

__all__ = [
    "MAX_ROOT_FIELDS",
    "Document",
    "Read",
    "create_document",
    "list_created_since",
    "lookup_by_custom_id",
    "merge_reads",
    "one_field_document",
    "seal_document",
    "selection",
    "track_page",
    "update_document",
]

MAX_ROOT_FIELDS = 5
"""The server counts root fields over a whole document, aliases included, and refuses more."""

_BSDD_SELECTION = (
    "id readableId customId status createdAt updatedAt emitter { company { siret } } "
    "wasteDetails { code quantity }"
)
_WASTE_SELECTION = {
    KindName.BSDA: "waste { code } weight { value }",
    KindName.BSDASRI: "waste { code } emitter { emission { weight { value } } }",
    KindName.BSFF: "waste { code } weight { value }",
    KindName.BSVHU: "wasteCode weight { value }",
    KindName.BSPAOH: "waste { code } emitter { emission { detail { weight { value } } } }",
}


@dataclass(frozen=True)
class Document:
    """One operation: its text, its name, and the root field whose result the caller reads."""

    query: str
    operation_name: str
    root_field: str


@dataclass(frozen=True)
class Read:
    """A root field of a query with ``$`` variables, mergeable with others under aliases."""

    field: str
    """``forms(siret: $siret, customId: $customId) { ... }``"""
    variable_types: tuple[tuple[str, str], ...]
    root_field: str
    connection: bool
    """True when results are ``edges { node }`` with ``pageInfo`` (every kind but BSDD)."""


@cache
def selection(kind: BsdKind) -> str:
    """The fields read back from every mutation and query of ``kind``."""
    if kind.name is KindName.BSDD:
        return _BSDD_SELECTION
    custom_id = " customId" if kind.has_custom_id else ""
    custom_info = "" if kind.name is KindName.BSVHU else " customInfo"
    return (f"id status isDraft createdAt updatedAt{custom_id} "
            f"emitter {{ company {{ siret }}{custom_info} }} {_WASTE_SELECTION[kind.name]}")


def _title(kind: BsdKind) -> str:
    return kind.name.value.title()


@cache
def create_document(kind: BsdKind) -> Document:
    """Variables: ``{"input": <kind.input_type>}`` (the mapping's output)."""
    name = f"Create{_title(kind)}"
    query = (f"mutation {name}($input: {kind.input_type}!) {{ {kind.create_mutation}"
             f"({kind.create_argument}: $input) {{ {selection(kind)} }} }}")
    return Document(query, name, kind.create_mutation)


@cache
def update_document(kind: BsdKind) -> Document:
    """BSDD: ``{"input": {..., "id": id}}`` (UpdateFormInput); others: ``{"id": id, "input": {...}}``."""
    name = f"Update{_title(kind)}"
    if kind.name is KindName.BSDD:
        query = (f"mutation {name}($input: UpdateFormInput!) {{ {kind.update_mutation}"
                 f"(updateFormInput: $input) {{ {selection(kind)} }} }}")
    else:
        query = (f"mutation {name}($id: ID!, $input: {kind.input_type}!) {{ {kind.update_mutation}"
                 f"(id: $id, input: $input) {{ {selection(kind)} }} }}")
    return Document(query, name, kind.update_mutation)


@cache
def seal_document(kind: BsdKind) -> Document:
    """``markAsSealed`` / ``publishX``; variables ``{"id": id}``."""
    name = f"Seal{_title(kind)}"
    query = f"mutation {name}($id: ID!) {{ {kind.seal_mutation}(id: $id) {{ {selection(kind)} }} }}"
    return Document(query, name, kind.seal_mutation)


def _page(kind: BsdKind) -> str:
    return f"pageInfo {{ endCursor hasNextPage }} edges {{ node {{ {selection(kind)} }} }}"


@cache
def lookup_by_custom_id(kind: BsdKind) -> Read:
    """BSDD: variables ``siret``, ``customId``; BSVHU: ``where`` = ``{"customId": {"_eq": ...}}``."""
    if kind.name is KindName.BSDD:
        return Read(f"forms(siret: $siret, customId: $customId, first: 100) {{ {selection(kind)} }}",
                    (("siret", "String"), ("customId", "String")), "forms", False)
    if not kind.has_custom_id:
        raise ValueError(f"{kind.name} has no customId to look up; use list_created_since")
    return Read(f"{kind.list_query}(where: $where, first: 100) {{ {_page(kind)} }}",
                (("where", f"{kind.object_type}Where"),), kind.list_query, True)


@cache
def list_created_since(kind: BsdKind) -> Read:
    """Variables ``where`` = ``{"createdAt": {"_gte": t}, "emitter": {"company": {"siret":
    {"_eq": s}}}}`` and ``after`` (cursor or None): the in-doubt window of a kind without customId."""
    if kind.name is KindName.BSDD:
        raise ValueError("BSDD is looked up by customId (lookup_by_custom_id)")
    return Read(f"{kind.list_query}(where: $where, first: 100, after: $after) {{ {_page(kind)} }}",
                (("where", f"{kind.object_type}Where"), ("after", "ID")), kind.list_query, True)


@cache
def track_page(kind: BsdKind) -> Read:
    """BSDD: ``siret``, ``updatedAfter`` (ISO with offset), ``cursorAfter``; others: ``where`` =
    ``{"updatedAt": {"_gte": t}}`` and ``after``. Walk every page: BSDD pages are newest-created first."""
    if kind.name is KindName.BSDD:
        return Read(
            "forms(siret: $siret, updatedAfter: $updatedAfter, first: 100, cursorAfter: $cursorAfter) "
            f"{{ {selection(kind)} }}",
            (("siret", "String"), ("updatedAfter", "String"), ("cursorAfter", "ID")), "forms", False,
        )
    return Read(f"{kind.list_query}(where: $where, first: 500, after: $after) {{ {_page(kind)} }}",
                (("where", f"{kind.object_type}Where"), ("after", "ID")), kind.list_query, True)


def one_field_document(read: Read) -> str:
    """``read`` as a query document of its own (its variables declared), as ``batching`` takes it."""
    definitions = ", ".join(f"${name}: {type_}" for name, type_ in read.variable_types)
    head = f"query Read({definitions})" if definitions else "query Read"
    return f"{head} {{ {read.field} }}"


def merge_reads(reads: Sequence[tuple[Read, dict[str, Any]]]) -> tuple[str, dict[str, Any], list[str]]:
    """Up to five reads in one document, aliased ``r0``..``r4`` with their variables prefixed.

    Returns (query, variables, aliases); ``data[alias]`` holds each read's result. The merging
    itself is ``connector.trackdechets.batching.merge_reads``, the client's own.
    """
    if not 1 <= len(reads) <= MAX_ROOT_FIELDS:
        raise ValueError(f"one document holds 1 to {MAX_ROOT_FIELDS} root fields, not {len(reads)}")
    fields = []
    for read, values in reads:
        names = [name for name, _ in read.variable_types]
        unknown = set(values) - set(names)
        if unknown:
            raise ValueError(f"{read.root_field} has no variable {sorted(unknown)}")
        fields.append((one_field_document(read), {name: values.get(name) for name in names}))
    merged = batching.merge_reads(fields)
    return merged.document, merged.variables, list(merged.aliases)
