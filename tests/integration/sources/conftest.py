"""A throw-away database per test, on each dialect, with the tables an ERP would have."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from erp_tables import Db, metadata

from tests.db_urls import dialect_params, temporary_database


@pytest.fixture(params=dialect_params())
def db(request: pytest.FixtureRequest) -> Iterator[Db]:
    with temporary_database(request.param) as url:
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        yield Db(request.param, url, engine)
        engine.dispose()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
