"""Fixtures for mapping tests: the official schema (read from ../shared, never copied)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema

REPO = Path(__file__).resolve().parents[3]
SHARED = REPO.parent / "shared" / "trackdechets"


@cache
def official_schema() -> GraphQLSchema:
    return build_schema((SHARED / "schema.graphql").read_text("utf-8"))


@pytest.fixture(scope="session")
def schema() -> GraphQLSchema:
    return official_schema()
