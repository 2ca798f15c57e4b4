"""The shared database helpers work on every reachable dialect and clean up after themselves."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.db_urls import database_urls, dialect_params, temporary_database


@pytest.mark.parametrize("dialect", dialect_params())
def test_temporary_database_is_empty_usable_and_dropped(dialect: str) -> None:
    assert dialect in database_urls()
    with temporary_database(dialect) as url:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        assert sa.inspect(engine).get_table_names() == ["t"]
        engine.dispose()
    if dialect == "sqlite":
        return
    server = sa.create_engine(database_urls()[dialect])
    name = sa.make_url(url).database if dialect == "mariadb" else url.rsplit("search_path%3D", 1)[-1]
    with server.connect() as conn:
        names = (sa.inspect(conn).get_schema_names())
    server.dispose()
    assert name not in names
