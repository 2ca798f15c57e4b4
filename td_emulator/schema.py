"""The emulator's GraphQL schema and a cache of parsed, validated documents.

Clients send the same few documents over and over; parsing and validating one costs more than
executing it, so each query text is checked once (syntax, schema, depth, root-field count) and the
outcome reused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    build_schema,
    parse,
    validate,
)

__all__ = ["CheckedDocument", "DocumentCache", "load_schema", "parse_datetime"]

SCHEMA_PATH = Path(__file__).with_name("schema.graphql")
_PARIS = ZoneInfo("Europe/Paris")


def parse_datetime(value: Any) -> str:
    """ISO 8601 in, ISO UTC with milliseconds out, like the platform's DateTime scalar.

    A time without offset is read as Europe/Paris time, as the platform's server does.
    """
    if not isinstance(value, str):
        raise GraphQLError(f"DateTime attend une chaîne ISO 8601, reçu {value!r}")
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise GraphQLError(f"Date invalide (ISO 8601 attendu) : {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if len(text) == 10 else _PARIS)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_datetime_literal(node: ValueNode, _variables: Any = None) -> str:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("DateTime attend une chaîne ISO 8601")
    return parse_datetime(node.value)


@lru_cache(maxsize=1)
def load_schema() -> GraphQLSchema:
    """Build the schema once per process; resolvers are attached by the app, not here."""
    schema = build_schema(SCHEMA_PATH.read_text(encoding="utf-8"))
    date_time = schema.type_map["DateTime"]
    date_time.parse_value = parse_datetime  # type: ignore[attr-defined]
    date_time.coerce_input_value = parse_datetime  # type: ignore[attr-defined]  # graphql-core 3.3 name
    date_time.parse_literal = _parse_datetime_literal  # type: ignore[attr-defined]
    return schema


@dataclass(frozen=True)
class CheckedDocument:
    """Outcome of checking one query text: a document to execute, or the errors and their code."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...] = ()
    code: str | None = None
    root_fields: int = 0
    root_names: tuple[str, ...] = ()
    mutation: bool = False


def _depth(selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode],
           seen: frozenset[str] = frozenset()) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                # graphql-depth-limit, which the platform uses, does not count introspection
                # fields: a client's full introspection query (≈ 13 levels) is accepted.
                continue
            below = 1 + _depth(selection.selection_set, fragments, seen) if selection.selection_set else 0
            deepest = max(deepest, below)
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                deepest = max(deepest, _depth(fragments[name].selection_set, fragments, seen | {name}))
    return deepest


class DocumentCache:
    """Thread-safe map from query text to its checked document, bounded in size."""

    def __init__(self, schema: GraphQLSchema, *, max_depth: int = 10, max_root_fields: int = 5,
                 size: int = 512) -> None:
        self.schema = schema
        self.max_depth = max_depth
        self.max_root_fields = max_root_fields
        self.size = size
        self._items: dict[str, CheckedDocument] = {}
        self._lock = threading.Lock()

    def get(self, query: str) -> CheckedDocument:
        found = self._items.get(query)
        if found is None:
            found = self._check(query)
            with self._lock:
                if len(self._items) >= self.size:
                    self._items.pop(next(iter(self._items)))
                self._items[query] = found
        return found

    def _check(self, query: str) -> CheckedDocument:
        try:
            document = parse(query)
        except GraphQLError as parse_error:
            return CheckedDocument(None, (parse_error,), "GRAPHQL_PARSE_FAILED")
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        # Counted over every operation of the document, used or not, like the platform's plugin.
        root_fields = sum(len(op.selection_set.selections) for op in operations)
        if root_fields > self.max_root_fields:
            error = GraphQLError(
                f"Batching by query merging is limited to {self.max_root_fields} operations per query."
            )
            return CheckedDocument(None, (error,), "GRAPHQL_MAX_OPERATIONS_ERROR", root_fields)
        errors = validate(self.schema, document)
        if errors:
            return CheckedDocument(None, tuple(errors), "GRAPHQL_VALIDATION_FAILED", root_fields)
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        for op in operations:
            depth = _depth(op.selection_set, fragments)
            if depth > self.max_depth:
                name = op.name.value if op.name else "anonymous"
                error = GraphQLError(f"'{name}' exceeds maximum operation depth of {self.max_depth}")
                return CheckedDocument(None, (error,), "GRAPHQL_VALIDATION_FAILED", root_fields)
        names = tuple(
            sel.name.value for op in operations for sel in op.selection_set.selections
            if isinstance(sel, FieldNode)
        )
        mutation = any(op.operation.value == "mutation" for op in operations)
        return CheckedDocument(document, (), None, root_fields, names, mutation)
