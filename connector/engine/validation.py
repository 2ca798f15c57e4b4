"""Schema validation of create documents, paid once per payload *shape*, not once per record.

Validating variables against the GraphQL schema depends only on the payload's structure, the
Python types of its leaves (and whether an integer fits GraphQL's 32-bit ``Int``) and the values
of its enum fields: any string is a valid ``String``, any number a valid ``Float``. A bulk load
repeats a handful of shapes, so the verdict for a shape is computed once and reused.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
)

from connector.domain.kinds import BsdKind
from connector.engine.operations import create_op
from connector.trackdechets.schema import validate_operation

__all__ = ["ShapeValidator", "validator_for"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


@lru_cache(maxsize=64)
def _enum_paths(schema: GraphQLSchema, input_type: str) -> frozenset[str]:
    """Dotted paths (``[]`` for list items) of every enum-typed input field under ``input_type``."""
    found: set[str] = set()

    def walk(type_: Any, path: str, depth: int) -> None:
        while isinstance(type_, GraphQLNonNull | GraphQLList):
            if isinstance(type_, GraphQLList):
                path += "[]"
            type_ = type_.of_type
        if isinstance(type_, GraphQLEnumType):
            found.add(path)
        elif isinstance(type_, GraphQLInputObjectType) and depth < 12:
            for name, field in type_.fields.items():
                walk(field.type, f"{path}.{name}" if path else name, depth + 1)

    root = schema.get_type(input_type)
    if root is not None:
        walk(root, "", 0)
    return frozenset(found)


def _shape(value: Any, path: str, enums: frozenset[str]) -> Any:
    if type(value) is dict:
        return {k: _shape(v, f"{path}.{k}" if path else k, enums) for k, v in value.items()}
    if type(value) is list:
        return [_shape(v, path + "[]", enums) for v in value]
    if path in enums:
        return ["enum", value]
    if value is None or isinstance(value, str):
        return None if value is None else "s"
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int):
        return "i" if _INT_MIN <= value <= _INT_MAX else "I"
    if isinstance(value, float):
        return "f"
    return type(value).__name__


class ShapeValidator:
    """``problems(kind, payload)``: the schema's verdict on a create document, cached by shape."""

    def __init__(self, schema: GraphQLSchema, max_shapes: int = 10_000) -> None:
        self.schema = schema
        self.max_shapes = max_shapes
        self._valid: set[str] = set()

    def problems(self, kind: BsdKind, payload: dict[str, Any]) -> list[str]:
        enums = _enum_paths(self.schema, kind.input_type)
        key = kind.input_type + json.dumps(_shape(payload, "", enums), sort_keys=True)
        if key in self._valid:
            return []
        op = create_op(kind, payload)
        problems = validate_operation(self.schema, op.query, op.variables)
        if not problems:
            if len(self._valid) >= self.max_shapes:
                self._valid.clear()
            self._valid.add(key)
        return problems


@lru_cache(maxsize=8)
def validator_for(schema: GraphQLSchema) -> ShapeValidator:
    """One validator (and its verdicts) per schema: a reload with a new schema starts afresh."""
    return ShapeValidator(schema)
