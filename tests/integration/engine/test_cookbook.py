"""Every recipe of docs/cookbook.md, extracted from the page and run end to end against the emulator.

A block is ```` ```toml recipe=NAME ````, ```` ```sql recipe=NAME ```` (run on a fresh database)
or ```` ```csv recipe=NAME file=PATH ```` (written beside the mapping).
"""

from __future__ import annotations

import re
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connector.runtime import build_runtime
from connector.service import sync_once
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.db_urls import dialect_params, temporary_database

COOKBOOK = Path(__file__).resolve().parents[3] / "docs" / "cookbook.md"
_BLOCK = re.compile(r"^```(\w+) recipe=(\S+)(?: file=(\S+))?\n(.*?)^```$", re.S | re.M)
TOKEN = "demo-token-destination"


def recipes() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for language, name, file, body in _BLOCK.findall(COOKBOOK.read_text("utf-8")):
        recipe = out.setdefault(name, {"toml": None, "sql": [], "files": {}})
        if language == "toml":
            recipe["toml"] = body
        elif language == "sql":
            recipe["sql"].append(body)
        else:
            recipe["files"][file] = body
    return out


def test_every_toml_sql_csv_block_is_a_tested_recipe() -> None:
    text = COOKBOOK.read_text("utf-8")
    fences = re.findall(r"^```(toml|sql|csv)\b", text, re.M)
    assert len(fences) == len(_BLOCK.findall(text)) > 0
    assert all(r["toml"] for r in recipes().values())


def _sync(workdir: Path, toml: str, served: Any, passes: int = 1) -> list[Any]:
    (workdir / "recipe.toml").write_text(toml, "utf-8")
    (workdir / "config.toml").write_text(
        f'[trackdechets]\nurl = "{served.url}"\n[state]\ndir = "var"\n[mappings]\npaths = ["recipe.toml"]\n',
        "utf-8")
    settings = load_settings(workdir / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": TOKEN})
    runtime = build_runtime(settings, workdir)
    try:
        for _ in range(passes):
            sync_once(runtime, threading.Event())
        return list(runtime.store.records())
    finally:
        runtime.close()


@pytest.mark.parametrize("name", sorted(n for n, r in recipes().items() if not r["sql"]))
def test_csv_recipe_runs_end_to_end(name: str, tmp_path: Path) -> None:
    recipe = recipes()[name]
    # Sample dates become yesterday's, so that "not in the future, at most N days ago" rules hold
    # whatever day the test runs.
    yesterday = (date.today() - timedelta(days=1)).strftime("%d/%m/%Y")
    for file, body in recipe["files"].items():
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text(re.sub(r"\b\d\d/\d\d/\d{4}\b", yesterday, body), "utf-8")
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        records = _sync(tmp_path, recipe["toml"], served)
    assert records
    assert {r.record_key: (r.state, r.last_error) for r in records} == {
        r.record_key: ("synced", None) for r in records}
    bsds = {r.record_key: served.emulator.store.get("BSDD", r.bsd_id) for r in records}
    if name == "conditions":
        first, second = bsds["1"], bsds["2"]
        assert first is not None
        assert second is not None
        assert [p.get("other") for p in first["wasteDetails"]["packagingInfos"]] == [None]
        assert [p.get("other") for p in second["wasteDetails"]["packagingInfos"]] == ["Caisse-palette"]
        assert first["wasteDetails"]["onuCode"] == "UN 1202 Gazole, 3, III"
        assert not second["wasteDetails"].get("onuCode")


@pytest.mark.parametrize("dialect", [p for p in dialect_params() if p.id == "postgresql"])
def test_postgres_recipe_runs_end_to_end_with_its_write_back(dialect: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = recipes()["postgres-erp"]
    with temporary_database(dialect) as url, serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        monkeypatch.setenv("ERP_URL", url)
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            for script in recipe["sql"]:
                conn.exec_driver_sql(script)
        records = _sync(tmp_path, recipe["toml"], served)
        assert {r.record_key: (r.state, r.remote_status) for r in records} == {
            "1": ("synced", "DRAFT"), "2": ("synced", "DRAFT")}
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id_bon, td_id, td_numero, td_statut, td_statut_plateforme, td_erreur, td_ok, td_maj "
                "FROM bons ORDER BY id_bon")).all()
        ids = {r.record_key: r.bsd_id for r in records}
        for row in rows:
            assert row.td_id == ids[str(row.id_bon)]
            assert row.td_numero.startswith("BSD-")
            assert (row.td_statut, row.td_statut_plateforme, row.td_erreur, row.td_ok) == (
                "synced", "DRAFT", None, True)
            assert row.td_maj is not None
        # A correction in the joined table moves GREATEST(...): the BSDs get the new address.
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE clients SET mail = 'compta@garage.example', "
                                 "updated_at = now() + interval '1 second'"))
        before = len(served.emulator.journal)
        records = _sync(tmp_path, recipe["toml"], served, passes=2)
        journal = list(served.emulator.journal)[before:]
        sent = [f for e in journal for op in e["operations"] for f in op["fields"]]
        assert sent.count("updateForm") == 2
        for record in records:
            bsd = served.emulator.store.get("BSDD", record.bsd_id)
            assert bsd is not None
            assert bsd["emitter"]["company"]["mail"] == "compta@garage.example"
        engine.dispose()
