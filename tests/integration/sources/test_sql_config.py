"""Config mistakes named precisely, write-back atomicity, driver values made plain."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from erp_tables import Db, enlevements
from structlog.testing import capture_logs

from connector.errors import ConfigError, SourceError
from connector.sources import SqlSource, WriteBack
from connector.sources.specs import SqlSourceSpec


def make(db: Db, state_dir: Path, **spec: Any) -> SqlSource:
    options: dict[str, Any] = {"type": "sql", "url": db.url, "table": "enlevements", "key": ["id"],
                               "cursor_column": "updated_at", **spec}
    return SqlSource(SqlSourceSpec(**options), mapping_name="m", state_dir=state_dir)


def wb(key: str, bsd_id: str | None) -> WriteBack:
    return WriteBack(key, None, bsd_id, None, "SEALED", None, None, "2026-03-02T09:00:00+01:00")


def test_failed_write_back_writes_nothing_and_raises_source_error(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, {"id": 1, "bsd_id": ""}, {"id": 2, "bsd_id": ""})
    src = make(db, state_dir, writeback={
        "statement": "UPDATE enlevements SET bsd_id = :bsd_id, statut = :status WHERE id = :key_id"})
    with pytest.raises(SourceError, match=r"m: write-back of 2 status\(es\) failed, nothing was written"):
        src.write_back([wb("1", "bsd-1"), wb("2", None)])  # bsd_id is NOT NULL
    assert db.rows("SELECT id, bsd_id, statut FROM enlevements ORDER BY id") == [(1, "", None), (2, "", None)]
    src.write_back([wb("1", "bsd-1"), wb("2", "bsd-2")])  # retried alone, it succeeds
    assert db.rows("SELECT id, bsd_id FROM enlevements ORDER BY id") == [(1, "bsd-1"), (2, "bsd-2")]


def test_write_back_into_a_status_table(db: Db, state_dir: Path) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE td_statuts (cle VARCHAR(20), bsd VARCHAR(40), etat VARCHAR(20), "
                             "maj VARCHAR(40))"))
    src = make(db, state_dir, writeback={"statement": "INSERT INTO td_statuts VALUES (:key, :bsd_id, "
                                         ":remote_status, :updated_at)"})
    src.write_back([WriteBack("7", None, "b7", "BSD-7", "sent", "SEALED", None, "2026-03-02T09:00:00Z")])
    assert db.rows("SELECT * FROM td_statuts") == [("7", "b7", "SEALED", "2026-03-02T09:00:00Z")]


def test_unknown_column_suggests_the_closest(db: Db, state_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"source.cursor_column: unknown column 'update_at' in table "
                                          r"enlevements \(did you mean 'updated_at'\?\); columns: id, "):
        make(db, state_dir, cursor_column="update_at").columns()


def test_unknown_table_lists_the_tables(db: Db, state_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"no table 'enlevement' in .*; tables: emballages, enlevements"):
        make(db, state_dir, table="enlevement").columns()


def test_unknown_write_back_parameter_is_refused_at_start(db: Db, state_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"source.writeback.statement: unknown parameter\(s\) :numero; "
                                          r"available: :key, :bsd_id, .*:key_id"):
        make(db, state_dir, writeback={"statement": "UPDATE enlevements SET bsd_id = :numero"})


def test_cursor_without_index_is_reported(db: Db, state_dir: Path) -> None:
    with capture_logs() as logs:
        make(db, state_dir, cursor_column="statut").columns()
    warning = next(e for e in logs if e["event"] == "sql_poll_column_not_indexed")
    assert warning["advice"] == "CREATE INDEX ix_enlevements_statut ON enlevements (statut, id)"
    with capture_logs() as logs:
        make(db, state_dir).columns()
    assert [e for e in logs if e["event"] == "sql_poll_column_not_indexed"] == []


def test_driver_values_are_plain_python(db: Db, state_dir: Path) -> None:
    db.insert(enlevements, {"id": 1, "producteur": "Société Générale des Eaux €", "poids": "1.250",
                            "updated_at": None, "bsd_id": ""})
    src = make(db, state_dir, mode="scan", cursor_column=None)
    (record,) = [r for b in src.read(None) for r in b.records]
    assert record.values["producteur"] == "Société Générale des Eaux €"
    expected = Decimal("1.250") if db.dialect != "sqlite" else 1.25
    assert record.values["poids"] == expected
    assert record.origin == "table enlevements, id=1"


def test_env_variables_expand_in_url_and_missing_one_is_named(db: Db, state_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TDC_TEST_SOURCE_URL", db.url)
    assert make(db, state_dir, url="${TDC_TEST_SOURCE_URL}").columns()[:2] == ["id", "producteur"]
    monkeypatch.delenv("TDC_TEST_SOURCE_URL")
    with pytest.raises(ConfigError, match="environment variable\\(s\\) TDC_TEST_SOURCE_URL not set"):
        make(db, state_dir, url="${TDC_TEST_SOURCE_URL}")


def test_mode_without_its_column_is_refused(db: Db, state_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make(db, state_dir, mode="flag", cursor_column=None, table=None)
    assert info.value.problems == ["source: give exactly one of `table` or `query`",
                                   'source.flag_column: required when mode = "flag"']


def test_unreachable_database_is_a_source_error_without_password(state_dir: Path) -> None:
    spec = SqlSourceSpec(type="sql", url="postgresql+psycopg://u:s3cret@127.0.0.1:1/x", table="t",
                         key=["id"], cursor_column="c")
    src = SqlSource(spec, mapping_name="m", state_dir=state_dir)
    with pytest.raises(SourceError) as info:
        src.columns()
    assert "s3cret" not in str(info.value)
    assert "u:***@127.0.0.1:1/x" in str(info.value)
