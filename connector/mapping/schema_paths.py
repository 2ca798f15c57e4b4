"""Dotted field paths checked against the kind's GraphQL input type, and leaf value coercion.

The schema is the contract: a mapping path that the input type does not have, or a constant the
type cannot hold, is refused when the mapping is loaded rather than when the server answers.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    get_nullable_type,
)

from connector.mapping.parsing import (
    DATE_FORMATS,
    format_utc,
    parse_bool,
    parse_datetime,
    parse_decimal,
    parse_int,
    strptime_pattern,
)

__all__ = ["LeafType", "PathError", "coerce_leaf", "leaf_paths", "resolve_path"]

_MAX_DEPTH = 8


@dataclass(frozen=True)
class LeafType:
    """What a path ends on: a scalar or enum, possibly in a list, or a list of input objects."""

    name: str
    """Named type: ``String``, ``Float``, ``EmitterType``, ``PackagingInfoInput``..."""
    is_list: bool
    enum_values: tuple[str, ...] | None = None
    item_object: GraphQLInputObjectType | None = None
    """Set when the path is a list of input objects (built with ``children`` or ``items``)."""

    def describe(self) -> str:
        return f"[{self.name}]" if self.is_list else self.name


class PathError(ValueError):
    """A path the input type does not accept; the message says why and what would work."""


def _unwrap(gql_type: GraphQLInputType) -> tuple[Any, bool]:
    inner: Any = get_nullable_type(gql_type)  # type: ignore[arg-type]
    is_list = isinstance(inner, GraphQLList)
    if is_list:
        inner = get_nullable_type(inner.of_type)
    return inner, is_list


def resolve_path(root: GraphQLInputObjectType, path: str) -> LeafType:
    """The leaf at ``path`` (``emitter.company.siret``) or a PathError with a suggestion."""
    current: GraphQLInputObjectType = root
    parts = path.split(".")
    for index, part in enumerate(parts):
        field = current.fields.get(part)
        prefix = ".".join(parts[: index + 1])
        if field is None:
            raise PathError(_unknown(root, path, prefix, current))
        inner, is_list = _unwrap(field.type)
        last = index == len(parts) - 1
        if isinstance(inner, GraphQLInputObjectType):
            if is_list:
                if last:
                    return LeafType(inner.name, True, item_object=inner)
                raise PathError(
                    f"{prefix!r} is a list of {inner.name}: map it as a whole with "
                    f"{{children=...}} or {{items=[...]}}, not field by field"
                )
            if last:
                example = next(iter(leaf_paths(inner)), "")
                raise PathError(
                    f"{path!r} is an object ({inner.name}), not a value: map its fields, "
                    f"e.g. \"{path}.{example}\""
                )
            current = inner
            continue
        if not last:
            raise PathError(f"{prefix!r} is a value ({inner.name}) and has no field {parts[index + 1]!r}")
        if isinstance(inner, GraphQLEnumType):
            return LeafType(inner.name, is_list, enum_values=tuple(inner.values))
        return LeafType(inner.name, is_list)
    raise PathError("empty field path")  # pragma: no cover - split never returns []


def _unknown(root: GraphQLInputObjectType, path: str, prefix: str,
             parent: GraphQLInputObjectType) -> str:
    message = f"unknown field {prefix!r} in {root.name}" if prefix == path else (
        f"unknown field {prefix!r} in {root.name} (in {path!r})"
    )
    guess = difflib.get_close_matches(path, leaf_paths(root), n=1, cutoff=0.6)
    if guess:
        return f"{message} (did you mean \"{guess[0]}\"?)"
    valid = ", ".join(sorted(parent.fields))
    return f"{message} (valid here: {valid})"


@cache
def leaf_paths(root: GraphQLInputObjectType) -> tuple[str, ...]:
    """Every path a mapping may name under ``root``, for suggestions."""
    out: list[str] = []

    def walk(obj: GraphQLInputObjectType, prefix: str, depth: int) -> None:
        for name, field in obj.fields.items():
            inner, is_list = _unwrap(field.type)
            if isinstance(inner, GraphQLInputObjectType) and not is_list and depth < _MAX_DEPTH:
                walk(inner, f"{prefix}{name}.", depth + 1)
            else:
                out.append(prefix + name)

    walk(root, "", 0)
    return tuple(out)


_PARIS = ZoneInfo("Europe/Paris")
_DATE_PATTERNS = tuple(strptime_pattern(f) for f in DATE_FORMATS)


def coerce_leaf(value: Any, leaf: LeafType) -> Any:
    """The JSON value the API expects for ``leaf``, or ValueError saying why it cannot be."""
    if leaf.is_list:
        items = value if isinstance(value, list | tuple) else [value]
        return [_coerce_scalar(item, leaf) for item in items]
    if isinstance(value, list | tuple):
        raise ValueError(f"a list is not a {leaf.name}")
    return _coerce_scalar(value, leaf)


def _coerce_scalar(value: Any, leaf: LeafType) -> Any:
    if leaf.enum_values is not None:
        text = str(value).strip()
        if text not in leaf.enum_values:
            valid = ", ".join(leaf.enum_values)
            raise ValueError(f'"{text}" is not a {leaf.name} (valid: {valid})')
        return text
    name = leaf.name
    if name == "Float":
        return _float(value)
    if name == "Int":
        return parse_int(value)
    if name == "Boolean":
        return parse_bool(value)
    if name == "DateTime":
        return format_utc(parse_datetime(value, _DATE_PATTERNS, _PARIS))
    if isinstance(value, bool):
        raise ValueError(f'"{value}" is a yes/no value, not a {name}')
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def _float(value: Any) -> float:
    number = parse_decimal(value)
    # Round away binary noise from unit conversions (1234 kg → 1.234 t, not 1.2340000000000002).
    return float(round(number, 9))

