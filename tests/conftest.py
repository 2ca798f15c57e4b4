"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / "shared").resolve()
"""The read-only reference material beside the clone (never copied into the project)."""


@pytest.fixture(autouse=True)
def _clean_connector_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TDC_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TDC_") or name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "CREDENTIALS_DIRECTORY"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "trackdechets" / "schema.graphql").exists():
        pytest.skip(f"reference material not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def official_schema(shared_dir: Path) -> GraphQLSchema:
    return build_schema((shared_dir / "trackdechets" / "schema.graphql").read_text("utf-8"))
