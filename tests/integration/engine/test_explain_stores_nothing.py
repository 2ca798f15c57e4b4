"""``td-connector explain`` reads the source the way ingest does, and stores nothing of it."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from connector.cli import main
from connector.explain import explain
from connector.logs import MASK, register_secret
from connector.service import sync_once
from connector.settings import load_settings
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import runtime_for
from tests.integration.engine.test_lookups_refresh import MAPPING, _erp

TOKEN = "demo-token-destination"
SECRET = "explain-secret-5f0c9a2e71"


def _side_files(tmp_path: Path) -> dict[str, tuple[int, object]]:
    out: dict[str, tuple[int, object]] = {}
    for path in sorted((tmp_path / "var" / "sources").glob("*.sqlite")):
        with sqlite3.connect(path) as db:
            count = db.execute("select count(*) from hashes").fetchone()[0]
            epoch = db.execute("select value from meta where name='epoch'").fetchone()
        out[path.name] = (count, epoch)
    return out


def test_explain_leaves_the_sql_sources_hashes_alone_and_masks_what_it_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _erp(tmp_path / "erp.sqlite")
    with sqlite3.connect(tmp_path / "erp.sqlite") as db:
        db.execute("INSERT INTO bons VALUES (900, ?, 'C1', 'S1', '130205*', 300, 'FUT', 2, "
                   "'2026-11-20 10:00:00')", (SECRET,))
    register_secret(SECRET)
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime = runtime_for(tmp_path, served.url, token=TOKEN, mapping_text=MAPPING)
        try:
            sync_once(runtime, threading.Event())
        finally:
            runtime.close()
        before = _side_files(tmp_path)
        assert before
        assert all(count > 0 for count, _ in before.values())
        capsys.readouterr()
        settings = load_settings(tmp_path / "config.toml", env={"TDC_TRACKDECHETS__TOKEN": TOKEN})
        assert explain(settings, tmp_path, key="900") == 0
        printed = capsys.readouterr().out
        assert _side_files(tmp_path) == before  # before: hashes wiped, a new epoch (full re-read)
        assert SECRET not in printed
        assert MASK in printed


def test_explain_with_its_source_unreachable_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _erp(tmp_path / "erp.sqlite")
    down = "postgresql://erp:pw@127.0.0.1:1/erp"  # the business database is down
    mapping = MAPPING.replace('url = "sqlite:///erp.sqlite"\ntable', f'url = "{down}"\ntable')
    assert down in mapping
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        runtime_for(tmp_path, served.url, token=TOKEN, mapping_text=mapping).close()
        capsys.readouterr()
        status = main(["explain", "-c", str(tmp_path / "config.toml"), "--key", "100"])
    err = capsys.readouterr().err
    assert status == 69
    assert "td-connector explain: " in err
    assert "Traceback" not in err
