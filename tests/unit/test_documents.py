"""Every document of every kind validates against the official schema (the project's pinned copy)."""

from __future__ import annotations

import pytest
from graphql import GraphQLSchema

from connector.domain.kinds import KINDS, KindName
from connector.trackdechets.documents import (
    create_document,
    list_created_since,
    lookup_by_custom_id,
    merge_reads,
    seal_document,
    track_page,
    update_document,
)
from connector.trackdechets.schema import packaged_schema, validate_operation

ALL = list(KINDS.values())
OTHERS = [k for k in ALL if k.name is not KindName.BSDD]


def official() -> GraphQLSchema:
    return packaged_schema()


@pytest.mark.parametrize("kind", ALL, ids=lambda k: k.name.value)
def test_mutation_documents_validate(kind):
    update_vars = ({"input": {"id": "x"}} if kind.name is KindName.BSDD else {"id": "x", "input": {}})
    cases = [(create_document(kind), {"input": {}}), (update_document(kind), update_vars),
             (seal_document(kind), {"id": "x"})]
    for document, variables in cases:
        assert validate_operation(official(), document.query, variables) == []
        assert f"mutation {document.operation_name}(" in document.query
        assert f"{document.root_field}(" in document.query


@pytest.mark.parametrize("kind", OTHERS, ids=lambda k: k.name.value)
def test_created_since_and_tracking_reads_validate(kind):
    where = {"createdAt": {"_gte": "2026-03-01T00:00:00Z"},
             "emitter": {"company": {"siret": {"_eq": "85243162000123"}}}}
    query, variables, aliases = merge_reads([
        (list_created_since(kind), {"where": where, "after": None}),
        (track_page(kind), {"where": {"updatedAt": {"_gte": "2026-03-01T00:00:00Z"}}, "after": "c1"}),
    ])
    assert aliases == ["r0", "r1"]
    assert validate_operation(official(), query, variables) == []


def test_bsdd_reads_validate_and_merge_up_to_five():
    reads = [(lookup_by_custom_id(KINDS[KindName.BSDD]), {"siret": "85243162000123", "customId": f"K{i}"})
             for i in range(4)]
    reads.append((track_page(KINDS[KindName.BSDD]),
                  {"siret": "85243162000123", "updatedAfter": "2026-03-01T00:00:00Z", "cursorAfter": None}))
    query, variables, aliases = merge_reads(reads)
    assert validate_operation(official(), query, variables) == []
    assert variables["r3_customId"] == "K3"
    assert len(aliases) == 5
    with pytest.raises(ValueError, match="1 to 5 root fields"):
        merge_reads(reads + reads[:1])


def test_bsvhu_lookup_by_custom_id_validates():
    query, variables, _ = merge_reads([(lookup_by_custom_id(KINDS[KindName.BSVHU]),
                                        {"where": {"customId": {"_eq": "VHU-2026-044"}}})])
    assert validate_operation(official(), query, variables) == []


def test_kinds_without_custom_id_refuse_a_lookup():
    with pytest.raises(ValueError, match="BSDA has no customId"):
        lookup_by_custom_id(KINDS[KindName.BSDA])


def test_a_bad_variable_is_reported_with_its_input_path():
    query, variables, _ = merge_reads([(track_page(KINDS[KindName.BSDA]),
                                        {"where": {"updatedAt": {"_since": "x"}}, "after": None})])
    problems = validate_operation(official(), query, variables)
    assert len(problems) == 1
    assert problems[0].startswith("$r0_where.updatedAt: Expected value of type 'DateFilter' not to include")


def test_unknown_variable_is_refused():
    with pytest.raises(ValueError, match="has no variable"):
        merge_reads([(track_page(KINDS[KindName.BSDD]), {"siret": "1", "since": "x"})])
