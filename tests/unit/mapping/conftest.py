"""Fixtures for mapping tests: the public API's structure (the project's pinned copy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLSchema

from connector.trackdechets.schema import packaged_schema

REPO = Path(__file__).resolve().parents[3]


def official_schema() -> GraphQLSchema:
    return packaged_schema()


@pytest.fixture(scope="session")
def schema() -> GraphQLSchema:
    return packaged_schema()
