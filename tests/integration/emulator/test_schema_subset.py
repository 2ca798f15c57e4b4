"""The emulator's schema is a strict subset of the official one, field by field."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
)

from td_emulator.schema import SCHEMA_PATH, load_schema

FULL_INPUTS = ["CreateFormInput", "UpdateFormInput", "SignEmissionFormInput", "SignTransportFormInput",
               "ReceivedFormInput", "AcceptedFormInput", "ProcessedFormInput", "BsdaInput", "BsvhuInput",
               "BsdasriInput", "BsffInput", "BspaohInput"]


@pytest.fixture(scope="module")
def official(official_schema: GraphQLSchema) -> GraphQLSchema:
    return official_schema


def subset_problems(ours: GraphQLSchema, official: GraphQLSchema) -> list[str]:
    problems: list[str] = []
    for name, ours_type in ours.type_map.items():
        if name.startswith("__"):
            continue
        theirs = official.type_map.get(name)
        if theirs is None or type(theirs) is not type(ours_type):
            problems.append(f"{name}: missing or of another kind in the official schema")
            continue
        if isinstance(ours_type, GraphQLEnumType):
            extra = set(ours_type.values) - set(theirs.values)  # type: ignore[attr-defined]
            problems += [f"{name}.{value}: enum value not official" for value in sorted(extra)]
        elif isinstance(ours_type, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in ours_type.fields.items():
                official_field = theirs.fields.get(field_name)  # type: ignore[attr-defined]
                where = f"{name}.{field_name}"
                if official_field is None:
                    problems.append(f"{where}: field not official")
                    continue
                if str(field.type) != str(official_field.type):
                    problems.append(f"{where}: type {field.type} != official {official_field.type}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    official_arg = official_field.args.get(arg_name)
                    if official_arg is None or str(arg.type) != str(official_arg.type):
                        problems.append(f"{where}({arg_name}): argument missing or of another type")
        elif not isinstance(ours_type, GraphQLScalarType):
            problems.append(f"{name}: unexpected kind")
    return problems


def test_every_declared_name_exists_officially_with_the_same_type(official: GraphQLSchema) -> None:
    assert subset_problems(load_schema(), official) == []


def test_the_checker_catches_a_divergence(official: GraphQLSchema) -> None:
    """A subset test that cannot fail proves nothing: feed it a schema with three lies."""
    bad = build_schema("""
        type Query { form(id: ID!, readableId: String): Form! }
        type Form { id: ID readableId: String! }
        enum FormStatus { DRAFT TELEPORTED }
    """)
    problems = subset_problems(bad, official)
    assert any("Query.form(id)" in p for p in problems)
    assert any("Form.id: type ID != official ID!" in p for p in problems)
    assert any("FormStatus.TELEPORTED" in p for p in problems)


@pytest.mark.parametrize("name", FULL_INPUTS)
def test_mapping_inputs_are_complete(official: GraphQLSchema, name: str) -> None:
    """Every input field reachable from the mapping inputs is declared, recursively."""
    ours = load_schema()
    stack, seen = [name], set()
    while stack:
        type_name = stack.pop()
        if type_name in seen:
            continue
        seen.add(type_name)
        theirs = official.type_map[type_name]
        if not isinstance(theirs, GraphQLInputObjectType):
            continue
        mine = ours.type_map.get(type_name)
        assert isinstance(mine, GraphQLInputObjectType), type_name
        assert set(mine.fields) == set(theirs.fields), type_name
        for field in theirs.fields.values():
            named = field.type
            while hasattr(named, "of_type"):
                named = named.of_type
            stack.append(named.name)


def test_the_sdl_carries_no_descriptions() -> None:
    text = Path(SCHEMA_PATH).read_text(encoding="utf-8")
    assert '"' not in text
