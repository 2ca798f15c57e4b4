"""Resolvers of the five zod kinds: one query, the Relay list with ``where``, the mutations."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from . import bsd_other
from .gql_errors import bad_user_input
from .instance import Emulator, org_ids_on
from .rules_other import KIND_SPECS

__all__ = ["matches_where", "other_resolvers"]

_MAX_PAGE = 500


def _emu(info: GraphQLResolveInfo[Any]) -> Emulator:
    return info.context["emulator"]  # type: ignore[no-any-return]


def _compare(value: Any, operator: str, expected: Any) -> bool:
    if operator == "_eq":
        return bool(value == expected)
    if operator == "_in":
        return value in expected
    if operator == "_contains":
        return isinstance(value, str) and expected.lower() in value.lower()
    if operator in ("_has", "_itemContains"):
        return isinstance(value, list) and any(expected == v or (operator == "_itemContains" and
                                                                 expected in str(v)) for v in value)
    if operator == "_hasSome":
        return isinstance(value, list) and bool(set(value) & set(expected))
    if operator == "_hasEvery":
        return isinstance(value, list) and set(expected) <= set(value)
    if value is None:
        return False
    return bool({"_gte": value >= expected, "_gt": value > expected, "_lte": value <= expected,
                 "_lt": value < expected}.get(operator, True))


def matches_where(node: Any, where: dict[str, Any] | None) -> bool:
    """Generic ``BsdXWhere`` matcher: nested keys follow the BSD, ``_op`` keys compare values."""
    if not where:
        return True
    for key, condition in where.items():
        if condition is None:
            continue
        if key == "_and":
            if not all(matches_where(node, c) for c in condition):
                return False
        elif key == "_or":
            if not any(matches_where(node, c) for c in condition):
                return False
        elif key == "_not":
            if matches_where(node, condition):
                return False
        elif key.startswith("_"):
            if not _compare(node, key, condition):
                return False
        else:
            value = node.get(key) if isinstance(node, dict) else None
            if isinstance(condition, dict):
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    if not any(matches_where(item, condition) for item in value):
                        return False
                elif not matches_where(value, condition):
                    return False
            elif value != condition:
                return False
    return True


def _visible(bsd: dict[str, Any], mine: set[str]) -> bool:
    if bsd.get("isDraft"):
        return bool(mine & set(bsd.get("_draftOwners") or []))
    return bool(mine & org_ids_on(bsd))


def _list(kind: str):  # type: ignore[no-untyped-def]
    def resolve(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
        user = Emulator.require_user(info.context)
        mine = set(user.roles)
        where = args.get("where")
        nodes = [b for b in _emu(info).store.newest_first(kind)
                 if _visible(b, mine) and matches_where(b, where)]
        total = len(nodes)
        backwards = args.get("last") is not None or args.get("before") is not None
        size = args.get("last" if backwards else "first")
        size = 50 if size is None else size
        if not 1 <= size <= _MAX_PAGE:
            raise bad_user_input(f"Le paramètre de pagination doit être compris entre 1 et {_MAX_PAGE}")
        cursor = args.get("before" if backwards else "after")
        has_previous = False
        if cursor is not None:
            index = next((i for i, b in enumerate(nodes) if b["id"] == cursor), None)
            if index is None:
                raise bad_user_input(f"Le curseur \"{cursor}\" ne correspond à aucun bordereau")
            nodes = nodes[:index] if backwards else nodes[index + 1:]
            has_previous = not backwards
        page = nodes[-size:] if backwards else nodes[:size]
        return {"totalCount": total, "edges": [{"cursor": b["id"], "node": b} for b in page],
                "pageInfo": {"startCursor": page[0]["id"] if page else None,
                             "endCursor": page[-1]["id"] if page else None,
                             "hasNextPage": (not backwards) and len(nodes) > size,
                             "hasPreviousPage": has_previous or (backwards and len(nodes) > size)}}
    return resolve


def _one(kind: str):  # type: ignore[no-untyped-def]
    def resolve(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
        user = Emulator.require_user(info.context)
        return _emu(info).load(kind, args["id"], user)
    return resolve


def _mutation(kind: str, action: str):  # type: ignore[no-untyped-def]
    def resolve(_: Any, info: GraphQLResolveInfo[Any], **args: Any) -> dict[str, Any]:
        emu = _emu(info)
        user = Emulator.require_user(info.context)
        if action in ("create", "createDraft"):
            return bsd_other.create(emu, kind, user, args["input"], draft=action == "createDraft")
        bsd = emu.load(kind, args["id"], user)
        if action == "update":
            return bsd_other.update(emu, kind, user, bsd, args["input"])
        if action == "publish":
            return bsd_other.publish(emu, kind, bsd)
        if action == "sign":
            return bsd_other.sign(emu, kind, bsd, args["input"], user)
        if action == "delete":
            return bsd_other.delete(emu, bsd, user)
        return bsd_other.duplicate(emu, kind, bsd, user)
    return resolve


def other_resolvers() -> tuple[dict[str, Any], dict[str, Any]]:
    queries: dict[str, Any] = {}
    mutations: dict[str, Any] = {}
    for kind, spec in KIND_SPECS.items():
        name = spec.object_type
        lower = name[0].lower() + name[1:]
        queries[lower] = _one(kind)
        queries[lower + "s"] = _list(kind)
        for action in ("createDraft", "create", "update", "publish", "sign", "delete", "duplicate"):
            mutations[f"{action}{name}"] = _mutation(kind, action)
    return queries, mutations
