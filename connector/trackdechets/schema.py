"""The GraphQL schema documents are checked against: introspected from the target, cached on disk.

Validating locally means a mapping that cannot produce a valid document is refused at start, and
a document is never sent only to learn it is malformed. The target's own schema wins over the
packaged copy, since the sandbox and production can be a release apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from graphql import (
    GraphQLError,
    GraphQLNonNull,
    GraphQLSchema,
    OperationDefinitionNode,
    build_client_schema,
    build_schema,
    get_introspection_query,
    get_operation_ast,
    parse,
    validate,
)
from graphql.utilities import coerce_input_value, type_from_ast

try:
    from graphql.utilities import validate_input_value as _validate_input_value
except ImportError:  # pragma: no cover - graphql-core 3.2
    _validate_input_value = None  # type: ignore[assignment]

from connector.errors import ConfigError

__all__ = [
    "SchemaUnavailableError",
    "introspect_schema",
    "load_schema_from_sdl",
    "load_target_schema",
    "packaged_schema",
    "validate_operation",
]

log = structlog.get_logger("connector.schema")

PostFn = Callable[[str, dict[str, Any]], Mapping[str, Any]]
"""Sends ``(query, variables)`` and returns the response's ``data`` (or the whole body)."""

_CACHE_FILE = "introspection.json"


class SchemaUnavailableError(ConfigError):
    """No schema could be obtained: the target did not answer and nothing is cached or packaged."""


def load_schema_from_sdl(text: str) -> GraphQLSchema:
    return build_schema(text)


def packaged_schema() -> GraphQLSchema:
    """The SDL shipped with the connector: the subset of the API it uses (the emulator has its own)."""
    try:
        text = resources.files("connector.trackdechets").joinpath("schema.graphql").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        message = "the packaged schema connector/trackdechets/schema.graphql is missing"
        raise SchemaUnavailableError(message) from exc
    return load_schema_from_sdl(text)


def introspect_schema(post: PostFn, *, cache_dir: str | Path | None = None,
                      max_age_seconds: float = 86_400.0) -> GraphQLSchema:
    """The target's schema, from a fresh enough cache or by one introspection request."""
    cache = Path(cache_dir) / _CACHE_FILE if cache_dir is not None else None
    if cache is not None and cache.exists() and time.time() - cache.stat().st_mtime < max_age_seconds:
        try:
            return build_client_schema(json.loads(cache.read_text("utf-8")))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("schema_cache_unreadable", path=str(cache), error=str(exc))
    response = dict(post(get_introspection_query(descriptions=False), {}))
    result = response.get("data", response)
    if not isinstance(result, Mapping) or "__schema" not in result:
        raise SchemaUnavailableError("the target's introspection answer has no __schema")
    schema = build_client_schema(result)  # type: ignore[arg-type]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".tmp")
        partial.write_text(json.dumps(result), "utf-8")
        partial.replace(cache)
    return schema


def _stale_cache(cache_dir: Path) -> GraphQLSchema | None:
    cache = cache_dir / _CACHE_FILE
    try:
        return build_client_schema(json.loads(cache.read_text("utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def load_target_schema(client: Any, *, cache_dir: str | Path, max_age_hours: float = 24.0,
                       url: str = "") -> GraphQLSchema:
    """Introspected (cached) when a client is given; else, or when the target is down, the last
    cached copy, then the packaged one. ``client`` is a ``PostFn`` or has ``execute(query, vars)``.
    """
    cache_path = Path(cache_dir)
    if client is not None:
        post: PostFn = client if callable(client) else client.execute
        try:
            return introspect_schema(post, cache_dir=cache_path, max_age_seconds=max_age_hours * 3600)
        except Exception as exc:  # the target being down must not stop an offline check
            log.warning("schema_introspection_failed", url=url, error=str(exc))
    cached = _stale_cache(cache_path)
    if cached is not None:
        return cached
    return packaged_schema()


@lru_cache(maxsize=256)
def _document_errors(schema: GraphQLSchema, query: str) -> tuple[str, ...]:
    try:
        document = parse(query)
    except GraphQLError as exc:
        return (f"syntax: {exc.message}",)
    return tuple(error.message for error in validate(schema, document))


@lru_cache(maxsize=256)
def _operation(query: str) -> OperationDefinitionNode | None:
    """Parsed once per document text: ingest validates thousands of variables against few documents."""
    return get_operation_ast(parse(query))


def validate_operation(schema: GraphQLSchema, query: str,
                       variables: Mapping[str, Any] | None = None) -> list[str]:
    """Every problem of (query, variables) against ``schema``; empty when the server would accept it.

    Document validation is cached by text; variables are coerced each time, and errors name the
    input path (``$input.wasteDetails.quantity``).
    """
    problems = list(_document_errors(schema, query))
    if problems:
        return problems
    operation = _operation(query)
    if operation is None:
        return ["the document must hold exactly one operation"]
    values = dict(variables or {})
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        var_type = type_from_ast(schema, definition.type)
        if var_type is None:  # pragma: no cover - validate() already refused it
            continue
        if name not in values:
            if definition.default_value is None and isinstance(var_type, GraphQLNonNull):
                problems.append(f"${name}: a value is required ({var_type})")
            continue

        problems += [f"${name}{where}: {message}" for where, message in _input_errors(values[name], var_type)]
    return problems


def _input_errors(value: Any, var_type: Any) -> list[tuple[str, str]]:
    """(input path, message) for each problem; graphql-core 3.3 and 3.2 spell this differently."""
    found: list[tuple[str, str]] = []

    def where(path: Any) -> str:
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path or [])

    def add(first: Any, second: Any) -> None:
        # graphql-core 3.3 calls back with (error, path); 3.2's coerce_input_value with (path, error).
        error, path = (first, second) if isinstance(first, GraphQLError) else (second, first)
        found.append((where(path), error.message))

    if _validate_input_value is not None:
        _validate_input_value(value, var_type, add)
    else:  # pragma: no cover - graphql-core 3.2
        coerce_input_value(value, var_type, lambda path, _v, error: add(path, error))
    return found
