"""A SQLite source path is resolved beside the mapping file, and a missing file is named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.sources import open_source
from connector.sources.specs import SqlSourceSpec


def spec(url: str) -> SqlSourceSpec:
    return SqlSourceSpec(type="sql", url=url, table="t", key=["id"], mode="scan")


def test_a_relative_sqlite_file_lives_beside_the_mapping(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "erp.sqlite") as connection:
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    source = open_source(spec("sqlite:///data/erp.sqlite"), base_dir=tmp_path, mapping_name="m",
                         state_dir=tmp_path / "state")
    try:
        assert source.columns() == ["id", "name"]
    finally:
        source.close()


def test_a_missing_sqlite_file_is_a_configuration_error_not_an_empty_database(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"erp\.sqlite does not exist"):
        open_source(spec("sqlite:///erp.sqlite"), base_dir=tmp_path, mapping_name="m", state_dir=tmp_path)
    assert not (tmp_path / "erp.sqlite").exists()
