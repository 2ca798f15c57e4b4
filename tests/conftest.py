"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest
from graphql import GraphQLSchema

from connector.trackdechets.schema import packaged_schema


@pytest.fixture(autouse=True)
def _clean_connector_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TDC_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TDC_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "CREDENTIALS_DIRECTORY"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def official_schema() -> GraphQLSchema:
    """The public API's structure, from the project's copy (pinned to the reference by a test)."""
    return packaged_schema()
