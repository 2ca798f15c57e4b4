"""Chaos ingredient: the state store deleted under a running daemon, then ``rebuild-state``.

Used by the lost-state end-to-end test and by the exactly-once chaos run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from connector.domain.demo_companies import DEMO_TOKEN
from tests.e2e.process import DaemonProcess, process_env, td_connector, wait_for

__all__ = ["delete_state_store", "refusals", "run_rebuild_state"]


def delete_state_store(workdir: Path, name: str = "state.db") -> list[Path]:
    """``rm var/state.db*`` as an operator would (the WAL and shared-memory files too)."""
    gone = sorted((workdir / "var").glob(f"{name}*"))
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def refusals(daemon: DaemonProcess) -> list[dict[str, object]]:
    """The daemon's ``state_store_not_trusted`` errors so far."""
    return [line for line in daemon.log_lines() if line.get("event") == "state_store_not_trusted"]


def wait_until_refusing(daemon: DaemonProcess, timeout: float = 60) -> dict[str, object]:
    found = wait_for(lambda: refusals(daemon), timeout, "the daemon refusing to create", daemon)
    return dict(found[0])


def run_rebuild_state(
    workdir: Path, config: Path, *extra: str, token: str = DEMO_TOKEN
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*td_connector(), "rebuild-state", "--config", str(config), *extra],
        cwd=workdir, env=process_env(token), capture_output=True, text=True, timeout=600, check=False,
    )
