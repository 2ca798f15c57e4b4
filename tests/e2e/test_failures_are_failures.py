"""A failure of a whole source or target is a failure: exit code, /healthz, metrics, status, message.

Each case is what a new user meets: a drop folder that is not there, a folder the connector cannot
write to, a write-back statement that fails on every row, a wrong token. Row-level problems (the
demo's two invalid records) stay row-level: they never fail a step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.cli import main
from connector.demo.run import _prepare
from connector.domain.demo_companies import DEMO_TOKEN
from td_emulator.testing import ServedEmulator
from tests.e2e.process import FAST_SCHEDULE, DaemonProcess, start_daemon, wait_for
from tests.e2e.test_cli import cli

METRICS = '\n[metrics]\nenabled = true\nport = 0\n'


def _break_folder(work: Path) -> None:
    shutil.rmtree(work / "inbox")


def _break_processed(work: Path) -> None:
    (work / "inbox" / "processed").write_text("a file where the processed/ folder should be", "utf-8")


def _break_writeback(work: Path) -> None:
    mapping = work / "mappings" / "bsdd_sqlite.toml"
    text = mapping.read_text("utf-8")
    mapping.write_text(text.replace("td_statut = COALESCE", "td_status = COALESCE"), "utf-8")


def _break_database(work: Path) -> None:
    mapping = work / "mappings" / "bsdd_sqlite.toml"
    down = 'url = "postgresql+psycopg://postgres@127.0.0.1:1/erp"'  # nothing listens on port 1
    text = re.sub(r"(?m)^url = .*$", down, mapping.read_text("utf-8"))
    mapping.write_text(text, "utf-8")


CASES: dict[str, tuple[Callable[[Path], None], str | None, str, str]] = {
    # case: (break it, token, failed step, the one-line cause on stderr, as a regular expression)
    "missing folder": (
        _break_folder, None, "ingest",
        r"sync failed: ingest: mapping demo-bsdd-csv: drop folder \S+/inbox does not exist: create it, "
        r"or correct source\.folder in \S+/bsdd_csv\.toml$",
    ),
    "unwritable processed folder": (
        _break_processed, None, "ingest",
        r"sync failed: ingest: mapping demo-bsdd-csv: \S+/inbox/processed: File exists: fix the folder "
        r"or its disk, then run again$",
    ),
    "write-back failing on every row": (
        _break_writeback, None, "writeback",
        r"sync failed: writeback: mapping demo-bsdd-erp: the write-back failed for all 4 record\(s\) "
        r"\(.*no such column: td_status\): fix source\.writeback\.statement in \S+/bsdd_sqlite\.toml "
        r"\(`td-connector check` runs it\); the records stay due and are written back on the next pass$",
    ),
    "database unreachable": (
        _break_database, None, "ingest",
        r"sync failed: ingest: mapping demo-bsdd-erp: demo-bsdd-erp: cannot read the source's columns "
        r"\(postgresql\+psycopg://postgres@127\.0\.0\.1:1/erp\): .*Connection refused: check that the "
        r"database is up and reachable and that source\.url in \S+/bsdd_sqlite\.toml is right$",
    ),
    "wrong token": (  # tracking (it reads the token's companies) fails with the same cause
        lambda work: None, "not-the-token", "push,track",
        r"sync failed: push: Trackdéchets refused the token from the variable TDC_TRACKDECHETS__TOKEN "
        r"\(CreateBsdd: .*\): put a valid token there and run again; nothing was sent meanwhile$",
    ),
}


def _main(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, token: str, *args: str
) -> tuple[int, str, str]:
    """``td-connector ARGS`` in this process (a process per case costs seconds on a busy machine)."""
    for name in [k for k in os.environ if k.startswith("TDC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TDC_TRACKDECHETS__TOKEN", token)
    monkeypatch.setenv("COLUMNS", "200")
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", list(CASES))
def test_sync_once_exits_69_with_one_line_cause(
    tmp_path: Path,
    emulator: ServedEmulator,
    case: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    breaker, token, step, cause = CASES[case]
    config = _prepare(tmp_path, emulator.url)
    breaker(tmp_path)
    monkeypatch.chdir(tmp_path)
    token = token or DEMO_TOKEN
    code, out, err = _main(capsys, monkeypatch, token, "sync", "--once", "--config", str(config))
    assert code == 69, out + err
    steps = step.split(",")
    lines = [line for line in err.splitlines() if line.startswith("td-connector: sync failed")]
    assert len(lines) == len(steps), err
    assert re.search(cause, lines[0]), lines[0]
    assert "sync: FAILED" in out
    _, out, _ = _main(capsys, monkeypatch, token, "status", "--config", str(config), "--json")
    failing = json.loads(out)["failing_steps"]
    assert sorted(failing) == sorted(steps)
    assert re.search(cause.split(f"sync failed: {steps[0]}: ", 1)[1], failing[steps[0]])
    for name in steps[1:]:  # the same cause, met by another request
        assert re.sub(r"\(\w+: ", "(", failing[name]) == re.sub(r"\(\w+: ", "(", failing[steps[0]])


def test_row_level_problems_stay_row_level(tmp_path: Path, emulator: ServedEmulator) -> None:
    """As a separate process, as the operator runs it."""
    config = _prepare(tmp_path, emulator.url)
    result = cli("sync", "--once", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr  # two records rejected, no step failed
    assert "sync failed" not in result.stderr
    assert "sync: 2 record(s) rejected" in result.stdout


def _endpoint(daemon: DaemonProcess) -> str | None:
    for line in daemon.log_lines():
        if line.get("event") == "metrics_serving":
            return str(line["url"]).rstrip("/")
    return None


def _health(base: str) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{base}/healthz", timeout=5)
    return response.status_code, response.json()


def _failed_metric(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {m[0]: float(m[1]) for m in re.findall(r'^tdc_step_failed\{step="(\w+)"\} (\S+)$', text, re.M)}


@pytest.mark.slow
def test_daemon_health_and_metrics_name_each_failed_step(tmp_path: Path, emulator: ServedEmulator) -> None:
    config = _prepare(tmp_path, emulator.url)
    config.write_text(config.read_text("utf-8") + FAST_SCHEDULE + METRICS, "utf-8")
    _break_folder(tmp_path)
    _break_writeback(tmp_path)
    daemon = start_daemon(tmp_path, config, extra_env={"TDC_TRACKDECHETS__TOKEN": "not-the-token"})
    try:
        base = wait_for(lambda: _endpoint(daemon), 30, "the metrics endpoint", daemon)

        def all_failed() -> tuple[int, dict[str, Any]] | None:
            code, body = _health(base)
            failed = set(body.get("failed_steps", {}))
            return (code, body) if {"ingest", "push", "writeback"} <= failed else None

        code, body = wait_for(all_failed, 60, "ingest, push and write-back to be failed", daemon)
        assert code == 503
        assert body["status"] == "degraded"
        failed = body["failed_steps"]
        assert "drop folder" in failed["ingest"]
        assert "does not exist: create it" in failed["ingest"]
        assert "refused the token from the variable TDC_TRACKDECHETS__TOKEN" in failed["push"]
        assert "no such column: td_status" in failed["writeback"]
        assert "fix source.writeback.statement" in failed["writeback"]
        assert body["steps"]["ingest"]["last_error"] == failed["ingest"]
        # Tracking reads the token's companies: the refused token fails it too, with the same cause.
        assert "refused the token from the variable TDC_TRACKDECHETS__TOKEN" in failed["track"]
        metric = _failed_metric(base)
        assert metric["ingest"] == metric["push"] == metric["writeback"] == metric["track"] == 1.0

        # The operator creates the folder: ingest recovers by itself, the others stay failed.
        (tmp_path / "inbox").mkdir()
        wait_for(lambda: "ingest" not in _health(base)[1].get("failed_steps", {}), 20, "ingest to recover",
                 daemon)
        code, body = _health(base)
        assert code == 503
        assert set(body["failed_steps"]) == {"push", "track", "writeback"}
        assert _failed_metric(base)["ingest"] == 0.0
        errors = [line for line in daemon.log_lines() if line.get("event") == "step_failed"]
        assert {line["step"] for line in errors} >= {"ingest", "push", "writeback"}
        assert all("Traceback" not in json.dumps(line) for line in errors)
    finally:
        code = daemon.stop()
    assert code == 0
