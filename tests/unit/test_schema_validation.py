"""Schema loading (SDL, introspection cache with max age) and operation validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import graphql_sync

from connector.trackdechets.schema import (
    SchemaUnavailableError,
    introspect_schema,
    load_schema_from_sdl,
    load_target_schema,
    validate_operation,
)

SDL = """
type Query { form(id: ID!): Form! }
type Form { id: ID! status: String }
input WasteInput { quantity: Float, code: String! }
type Mutation { create(input: WasteInput!): Form! }
"""


def served(schema_sdl: str = SDL):
    schema = load_schema_from_sdl(schema_sdl)
    calls: list[str] = []

    def post(query: str, variables: dict) -> dict:
        calls.append(query)
        result = graphql_sync(schema, query, variable_values=variables)
        return {"data": result.data}

    return post, calls


def test_introspection_is_cached_and_reused_while_fresh(tmp_path: Path):
    post, calls = served()
    first = introspect_schema(post, cache_dir=tmp_path, max_age_seconds=60)
    second = introspect_schema(post, cache_dir=tmp_path, max_age_seconds=60)
    assert len(calls) == 1
    assert first.get_type("WasteInput") is not None
    assert second.get_type("WasteInput") is not None
    cache = tmp_path / "introspection.json"
    old = cache.stat().st_mtime - 120
    os.utime(cache, (old, old))
    introspect_schema(post, cache_dir=tmp_path, max_age_seconds=60)
    assert len(calls) == 2


def test_target_down_falls_back_to_the_stale_cache(tmp_path: Path):
    post, _ = served()
    introspect_schema(post, cache_dir=tmp_path, max_age_seconds=0)

    def down(query: str, variables: dict) -> dict:
        raise ConnectionError("refused")

    schema = load_target_schema(down, cache_dir=tmp_path, max_age_hours=0)
    assert schema.get_type("WasteInput") is not None


def test_introspection_answer_without_schema_is_refused(tmp_path: Path):
    with pytest.raises(SchemaUnavailableError, match="no __schema"):
        introspect_schema(lambda q, v: {"data": None}, cache_dir=tmp_path)
    assert not (tmp_path / "introspection.json").exists()


def test_validate_operation_reports_document_and_variable_problems():
    schema = load_schema_from_sdl(SDL)
    query = "mutation C($input: WasteInput!) { create(input: $input) { id } }"
    assert validate_operation(schema, query, {"input": {"code": "16 01 04*", "quantity": 1.5}}) == []
    assert validate_operation(schema, query, {"input": {"quantity": "lourd"}}) == [
        "$input.quantity: Float cannot represent non numeric value: 'lourd'",
        "$input: Expected value of type 'WasteInput' to include required field 'code', "
        "found: {'quantity': 'lourd'}.",
    ]
    assert validate_operation(schema, query, {}) == ["$input: a value is required (WasteInput!)"]
    assert validate_operation(schema, "{ form(id: 1) { nope } }") == [
        "Cannot query field 'nope' on type 'Form'."
    ]
    assert validate_operation(schema, "{ form(")[0].startswith("syntax: ")
