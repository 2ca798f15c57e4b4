"""Start the daemon as its own process and wait for what it should do.

The process is the ``td-connector`` of the built wheel (``wheel.py``), installed once per session
by the autouse fixture of ``conftest.py``: what is tested is what ships.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.domain.demo_companies import DEMO_TOKEN
from tests.e2e.wheel import InstalledWheel, clean_env

FAST_SCHEDULE = """
[schedule]
ingest_seconds = 0.5
push_seconds = 0.5
track_seconds = 0.7
writeback_seconds = 0.5
track_overlap_seconds = 5

[daemon]
drain_timeout_seconds = 10

[logging]
format = "json"
level = "INFO"
"""


_installed: list[InstalledWheel] = []


def use_installed_wheel(installed: InstalledWheel) -> None:
    _installed[:] = [installed]


def td_connector() -> list[str]:
    """The command that runs the installed wheel's ``td-connector``."""
    if not _installed:
        raise RuntimeError("the wheel is not installed: tests/e2e/conftest.py's session fixture does it")
    return [str(_installed[0].td_connector)]


def process_env(token: str | None = DEMO_TOKEN) -> dict[str, str]:
    """The user's environment minus PYTHONPATH and TDC_* settings, plus the token when given."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("TDC_")}
    if token is not None:
        env["TDC_TRACKDECHETS__TOKEN"] = token
    return env


@dataclass
class DaemonProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text("utf-8", errors="replace").splitlines():
            if raw.startswith("{"):
                lines.append(json.loads(raw))
        return lines

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def start_daemon(
    workdir: Path, config: Path, *, extra_env: dict[str, str] | None = None, name: str = "daemon"
) -> DaemonProcess:
    env = process_env()
    env.update({"PYTHONUNBUFFERED": "1", **(extra_env or {})})
    log_path = workdir / f"{name}.log"
    handle = log_path.open("ab")
    process = subprocess.Popen(
        [*td_connector(), "run", "--config", str(config)],
        cwd=workdir,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    handle.close()
    return DaemonProcess(process, log_path, workdir)


def wait_for(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    process: DaemonProcess | None = None,
    poll: float = 0.2,
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        if process is not None and process.process.poll() is not None:
            raise AssertionError(
                f"daemon exited ({process.process.returncode}) while waiting for {what}:\n"
                + process.log_path.read_text("utf-8", errors="replace")[-4000:]
            )
        time.sleep(poll)
    tail = process.log_path.read_text("utf-8", errors="replace")[-4000:] if process else ""
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}\n{tail}")
