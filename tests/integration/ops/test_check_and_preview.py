"""``check`` opens every source and tries the API once; ``preview`` shows rejections and skips.

Run in this process through ``connector.cli.main``, as a new user would type them, on the demo's
work folder (a CSV drop folder and a SQLite ERP table) served by the emulator.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.cli import main
from connector.demo.run import _prepare
from connector.domain.demo_companies import DEMO_TOKEN
from td_emulator.config import EmulatorConfig
from td_emulator.testing import ServedEmulator, serve_in_thread


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServedEmulator]:
    with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
        yield served


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str, token: str = DEMO_TOKEN
) -> tuple[int, str, str]:
    for name in [k for k in os.environ if k.startswith("TDC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TDC_TRACKDECHETS__TOKEN", token)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _fails(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL")]


@pytest.fixture
def work(tmp_path: Path, emulator: ServedEmulator) -> Path:
    return _prepare(tmp_path, emulator.url)


def test_check_passes_on_the_demo(work: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert code == 0, out
    assert _fails(out) == []
    assert "every column the mapping reads is in the header of enlevements_mars.csv" in out
    assert re.search(r"write-back statement runs against sqlite:///\S+ for key 'ENL-1001', rolled back", out)
    assert "token of marie.dupont@garage-dupont.example (from the variable TDC_TRACKDECHETS__TOKEN)" in out


def test_check_names_a_misspelled_column_with_the_closest_header(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = work.parent / "mappings" / "bsdd_csv.toml"
    mapping.write_text(mapping.read_text("utf-8").replace('"siret_producteur"', '"siret_prodcteur"'), "utf-8")
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert code == 1
    (fail,) = _fails(out)
    assert 'unknown column "siret_prodcteur" (did you mean "siret_producteur"?)' in fail
    assert fail.endswith("(header of enlevements_mars.csv)")


def test_check_opens_the_folders(work: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = work.parent / "inbox"
    (inbox / "receipts").write_text("not a folder", "utf-8")
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert code == 1
    assert _fails(out) == [
        f"FAIL  mapping demo-bsdd-csv (BSDD, bsdd_csv.toml): receipts folder {inbox}/receipts is a file, not "
        "a folder: remove it or change source.receipts_folder"
    ]
    (inbox / "receipts").unlink()
    for path in inbox.iterdir():
        path.unlink()
    inbox.rmdir()
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert _fails(out) == [
        f"FAIL  mapping demo-bsdd-csv (BSDD, bsdd_csv.toml): drop folder {inbox} does not exist: create it, "
        "or correct source.folder"
    ]


def test_check_runs_the_write_back_statement_without_writing(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = work.parent / "mappings" / "bsdd_sqlite.toml"
    text = mapping.read_text("utf-8")
    mapping.write_text(text.replace("td_statut = COALESCE", "td_status = COALESCE"), "utf-8")
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert code == 1
    (fail,) = _fails(out)
    assert "the write-back statement fails against sqlite:///" in fail
    assert fail.endswith(
        "no such column: td_status: fix source.writeback.statement (every parameter is sent as text)"
    )


def test_check_tries_the_api_once_and_names_the_cause(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator: ServedEmulator
) -> None:
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work), token="  wrong-token  ")
    assert code == 1
    assert _fails(out) == [
        f"FAIL  trackdechets {emulator.url}: the token from the variable TDC_TRACKDECHETS__TOKEN was refused "
        "(UNAUTHENTICATED): put a valid token there"
    ]
    # Stray spaces and a line end around a good token are not part of it.
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work), token=f" {DEMO_TOKEN}\n")
    assert code == 0, out

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        work.write_text(work.read_text("utf-8").replace(emulator.url, f"http://127.0.0.1:{port}/"), "utf-8")
        started = time.monotonic()
        code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert time.monotonic() - started < 10  # one attempt, not the daemon's retries
    assert _fails(out) == [
        f"FAIL  trackdechets http://127.0.0.1:{port}/: connection refused by 127.0.0.1:{port}: nothing "
        "listens there; check the URL's port, or start the server"
    ]
    # Plain http beyond loopback is refused at load unless allowed: allowed here to reach the DNS.
    text = work.read_text("utf-8").replace(f"http://127.0.0.1:{port}/", "http://no-such-host.invalid/")
    work.write_text(text.replace("[trackdechets]", "[trackdechets]\nallow_insecure_http = true", 1), "utf-8")
    code, out, _ = run(capsys, monkeypatch, "check", "--config", str(work))
    assert _fails(out) == [
        "FAIL  trackdechets http://no-such-host.invalid/: DNS: the name no-such-host.invalid cannot be "
        "resolved: check the URL's host and the DNS"
    ]


def test_preview_shows_rejected_rows_and_files_with_the_pipeline_messages(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = work.parent / "inbox"
    (inbox / "autre_export.csv").write_text("a;b\n1;2\n", "utf-8")
    (inbox / "autre_export.csv.done").write_text("", "utf-8")
    code, out, _ = run(capsys, monkeypatch, "preview", "--config", str(work), "--json", "--limit", "10",
                         "--mapping", "demo-bsdd-csv")
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    errors = {line["key"]: line["error"] for line in lines if "error" in line}
    assert errors == {
        "!inbox/autre_export.csv": "inbox/autre_export.csv: key column(s) 'n_bon' missing from the header; "
        "columns found: a, b",
        "BE-2026-0415": 'inbox/enlevements_mars.csv:line 5: field "emitter.company.siret" (column '
        '"siret_producteur"): "85243162000124" is not a valid SIRET: invalid SIRET checksum (Luhn)',
    }
    assert len([line for line in lines if "query" in line]) == 4
    assert not (inbox / "processed").exists()  # nothing moved


def test_preview_refuses_an_unknown_mapping_or_key(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(capsys, monkeypatch, "preview", "--config", str(work), "--mapping", "demo-bsdd-cvs")
    assert code == 2
    assert err.strip() == (
        "td-connector preview: --mapping: no mapping named 'demo-bsdd-cvs' (did you mean 'demo-bsdd-csv'?); "
        "mappings: demo-bsdd-csv, demo-bsdd-erp"
    )
    code, out, err = run(capsys, monkeypatch, "preview", "--config", str(work), "--key", "ENL-1003",
                         "--key", "ENL-103")
    assert code == 2
    assert "no record 'ENL-103'; closest: ENL-1003" in err
    code, out, _ = run(capsys, monkeypatch, "preview", "--config", str(work), "--key", "ENL-1004")
    assert code == 1
    assert "# demo-bsdd-erp / ENL-1004 (table enlevements, numero=ENL-1004): REJECTED" in out
