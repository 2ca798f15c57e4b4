"""Every document the engine sends validates against the official schema, with its variables."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema

from connector.domain.kinds import KINDS, KindName
from connector.engine.operations import (
    fingerprint_of_node,
    fingerprint_of_payload,
    list_created_since_read,
    lookup_custom_id_read,
    merge,
    seal_op,
    snapshot,
    track_page_read,
    update_op,
)
from connector.trackdechets.documents import selection
from connector.trackdechets.schema import validate_operation


@pytest.mark.parametrize("kind", list(KINDS.values()), ids=lambda k: k.name.value)
def test_seal_update_and_tracking_documents_validate(kind, official_schema: GraphQLSchema) -> None:
    op = seal_op(kind, "some-id")
    assert validate_operation(official_schema, op.query, op.variables) == []
    update = update_op(kind, "some-id", {})
    assert validate_operation(official_schema, update.query, update.variables) == []
    reads = [track_page_read(kind, "85243162000123", "2026-03-01T00:00:00Z", None)]
    if kind.has_custom_id:
        reads.append(lookup_custom_id_read(kind, "85243162000123", "BE-1"))
    else:
        reads.append(list_created_since_read(kind, "85243162000123", "2026-03-01T00:00:00Z", "cursor"))
    query, variables, aliases = merge(reads)
    assert aliases == ["r0", "r1"]
    assert validate_operation(official_schema, query, variables) == []
    field = "form" if kind.name is KindName.BSDD else kind.one_query
    one = f"query ReadOne($id: ID!) {{ {field}(id: $id) {{ {selection(kind)} }} }}"
    assert validate_operation(official_schema, one, {"id": "x"}) == []


def test_an_invalid_variable_is_named(official_schema: GraphQLSchema) -> None:
    kind = KINDS[KindName.BSDA]
    op = update_op(kind, "BSDA-1", {"weight": {"value": "heavy"}})
    problems = validate_operation(official_schema, op.query, op.variables)
    assert problems
    assert any("weight" in p for p in problems)


def test_fingerprints_match_between_payload_and_returned_node() -> None:
    payload = {
        "emitter": {"company": {"siret": "85243162000123"}, "customInfo": "K-1"},
        "waste": {"code": "16 01 11*"},
        "weight": {"value": 2.3},
    }
    node = {
        "id": "BSDA-1",
        "status": "INITIAL",
        "isDraft": True,
        "emitter": {"company": {"siret": "85243162000123"}, "customInfo": "K-1"},
        "waste": {"code": "16 01 11*"},
    }
    bsda = KINDS[KindName.BSDA]
    node["weight"] = {"value": 2.3}
    assert fingerprint_of_payload(bsda, payload) == fingerprint_of_node(bsda, node)
    other = {**node, "emitter": {"company": {"siret": "85243162000123"}, "customInfo": "K-2"}}
    assert fingerprint_of_payload(bsda, payload) != fingerprint_of_node(bsda, other)
    heavier = {**node, "weight": {"value": 2.4}}
    assert fingerprint_of_payload(bsda, payload) != fingerprint_of_node(bsda, heavier)
    integral = {**payload, "weight": {"value": 2}}
    assert fingerprint_of_payload(bsda, integral) == fingerprint_of_node(
        bsda, {**node, "weight": {"value": 2.0}}
    )


def test_snapshot_reads_drafts_of_both_models() -> None:
    form = snapshot(KINDS[KindName.BSDD], {"id": "c1", "readableId": "BSD-1", "status": "DRAFT"})
    assert form.is_draft
    assert form.readable_id == "BSD-1"
    bsda = snapshot(KINDS[KindName.BSDA], {"id": "BSDA-1", "status": "INITIAL", "isDraft": False})
    assert not bsda.is_draft
    assert bsda.readable_id == "BSDA-1"
