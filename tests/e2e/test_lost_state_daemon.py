"""The state store deleted while the daemon runs: it notices before its next push and stops
creating; ``rebuild-state`` adopts what was made, and the restarted daemon finishes without a
single duplicate."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from connector.demo.run import _asset
from td_emulator.testing import ServedEmulator
from tests.e2e.process import FAST_SCHEDULE, start_daemon, wait_for
from tests.e2e.state_loss import delete_state_store, run_rebuild_state, wait_until_refusing

ROWS = 400

CONFIG = """
[trackdechets]
url = "{url}"
rate_limit_per_minute = 100000

[state]
dir = "var"

[mappings]
paths = ["mapping.toml"]
"""


def _customs(emulator: ServedEmulator) -> Counter[str]:
    return Counter(f.get("customId") for f in emulator.emulator.store.newest_first("BSDD"))


def _push_failures(lines: list[dict[str, object]]) -> int:
    return sum(1 for line in lines if line.get("event") == "step_failed" and line.get("step") == "push")


@pytest.mark.slow
def test_a_state_store_deleted_under_the_daemon_stops_creation_until_rebuilt(
    tmp_path: Path, emulator: ServedEmulator
) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "mapping.toml").write_text(_asset("bsdd_csv.toml").decode("utf-8"), "utf-8")
    template = _asset("enlevements_mars.csv").decode("utf-8").splitlines()
    lines = [template[0]] + [template[2].replace("BE-2026-0413", f"LOST-{i:05d}") for i in range(ROWS)]
    (tmp_path / "inbox" / "orders.csv").write_text("\n".join(lines) + "\n", "utf-8")
    config = tmp_path / "config.toml"
    # Slow pushes of one chunk each: the deletion lands while most creates are still to send.
    schedule = FAST_SCHEDULE.replace("push_seconds = 0.5", "push_seconds = 0.3")
    config.write_text(CONFIG.format(url=emulator.url) + schedule + "\n[safety]\nmax_creations_per_run = 10\n",
                      "utf-8")
    daemon = start_daemon(tmp_path, config, name="before")
    try:
        wait_for(lambda: sum(_customs(emulator).values()) >= 20, 60, "20 BSDs created", daemon)
        delete_state_store(tmp_path)
        refusal = wait_until_refusing(daemon)
        assert "deleted while the connector was running" in str(refusal["detected"])
        assert "rebuild-state" in str(refusal["what_to_do"])
        created = sum(_customs(emulator).values())
        assert _push_failures(daemon.log_lines()) >= 1
        # Ten more push intervals (a repeated cause is logged once a minute, so they are timed, not
        # counted in the log): not one more BSD.
        time.sleep(10 * 0.3)
        assert sum(_customs(emulator).values()) == created
        assert created < ROWS
    finally:
        assert daemon.stop() == 0

    # Restarted on the new, empty store: still refusing (the markers name the lost one).
    daemon = start_daemon(tmp_path, config, name="restarted")
    try:
        wait_until_refusing(daemon)
    finally:
        assert daemon.stop() == 0
    assert sum(_customs(emulator).values()) == created

    dry = run_rebuild_state(tmp_path, config, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{created} record(s) would adopt their BSD" in dry.stdout
    done = run_rebuild_state(tmp_path, config)
    assert done.returncode == 0, done.stderr
    assert "rebuilt and trusted" in done.stdout

    unlimited = config.read_text("utf-8").replace("run = 10\n", "run = 1000\n")
    config.write_text(unlimited, "utf-8")
    daemon = start_daemon(tmp_path, config, name="after")
    try:
        wait_for(lambda: len(_customs(emulator)) == ROWS, 120, f"{ROWS} BSDs", daemon)
    finally:
        assert daemon.stop() == 0
    assert set(_customs(emulator).values()) == {1}
