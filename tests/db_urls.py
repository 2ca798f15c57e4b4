"""Database servers for tests: which dialects are reachable, and a throw-away database on each.

Shared by every test package (``from tests.db_urls import database_urls, temporary_database``).
PostgreSQL gets a unique schema (selected through ``search_path`` in the URL), MariaDB a unique
database, SQLite a file in a temporary folder; each is dropped afterwards. On CI (``CI`` set) a
server that cannot be reached is an error, not a silent skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import sqlalchemy as sa

__all__ = ["DIALECTS", "SERVER_URLS", "database_urls", "dialect_params", "temporary_database"]

SERVER_URLS = {
    "postgresql": os.environ.get("TDC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mariadb": os.environ.get("TDC_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}
DIALECTS = ("sqlite", "postgresql", "mariadb")


@cache
def _reachable(dialect: str) -> bool:
    url = sa.make_url(SERVER_URLS[dialect])
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 0), timeout=1):
            return True
    except OSError:
        if os.environ.get("CI"):
            where = f"{url.host}:{url.port}"
            raise RuntimeError(f"{dialect} test server {where} is not reachable on CI") from None
        return False


def database_urls() -> dict[str, str]:
    """Dialect → server URL for every dialect available here (SQLite always)."""
    urls = {"sqlite": "sqlite://"}
    urls.update({d: u for d, u in SERVER_URLS.items() if _reachable(d)})
    return urls


def dialect_params() -> list[object]:
    """``pytest.param`` per dialect, marked, skipped (off CI) when the server is not running."""
    import pytest

    params = []
    for dialect in DIALECTS:
        marks = {"postgresql": [pytest.mark.postgres], "mariadb": [pytest.mark.mariadb]}.get(dialect, [])
        if dialect != "sqlite" and not _reachable(dialect):
            marks = [*marks, pytest.mark.skip(reason=f"{dialect} server not reachable")]
        params.append(pytest.param(dialect, marks=marks, id=dialect))
    return params


@contextmanager
def temporary_database(dialect: str) -> Iterator[str]:
    """Yield the URL of an empty database of this dialect, dropped on exit."""
    name = f"tdc_{uuid.uuid4().hex[:12]}"
    if dialect == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="tdc-"))
        try:
            yield f"sqlite:///{folder / (name + '.sqlite')}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    admin = sa.create_engine(SERVER_URLS[dialect], isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    server = sa.make_url(SERVER_URLS[dialect])
    if dialect == "postgresql":
        create, drop = f'CREATE SCHEMA "{name}"', f'DROP SCHEMA IF EXISTS "{name}" CASCADE'
        url = server.update_query_dict({"options": f"-csearch_path={name}"})
    elif dialect == "mariadb":
        create, drop = f"CREATE DATABASE `{name}`", f"DROP DATABASE IF EXISTS `{name}`"
        url = server.set(database=name)
    else:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    with admin.connect() as conn:
        conn.execute(sa.text(create))
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(drop))
        admin.dispose()
