"""Wire every resolver onto the (process-wide, cached) schema.

Resolvers read the emulator from the execution context, never from a closure, so several
emulators in one test process share one schema object safely.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLSchema

from .accounts import account_resolvers
from .resolvers_bsdd import bsdd_resolvers
from .resolvers_other import other_resolvers
from .schema import load_schema

__all__ = ["attach_resolvers"]


def attach_resolvers() -> GraphQLSchema:
    schema = load_schema()
    queries: dict[str, Any] = {}
    mutations: dict[str, Any] = {}
    for query_part, mutation_part in (account_resolvers(), bsdd_resolvers(), other_resolvers()):
        queries.update(query_part)
        mutations.update(mutation_part)
    assert schema.query_type is not None
    assert schema.mutation_type is not None
    for fields, resolvers in ((schema.query_type.fields, queries), (schema.mutation_type.fields, mutations)):
        missing = set(fields) - set(resolvers)
        if missing:
            raise RuntimeError(f"schema fields without resolver: {sorted(missing)}")
        for name, resolver in resolvers.items():
            fields[name].resolve = resolver
    return schema
