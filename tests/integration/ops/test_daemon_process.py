"""The daemon as a real process: sd_notify to a socket we listen on, real signals, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty, Queue

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("tiny_daemon.py")


class Proc:
    """The daemon process, its log lines (parsed) and the notifications it sent."""

    def __init__(self, mode: str, tmp_path: Path, watchdog_usec: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(tmp_path / "notify.sock"))
        self.sock.settimeout(0.1)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TDC_", "WATCHDOG_", "NOTIFY_"))}
        env["NOTIFY_SOCKET"] = str(tmp_path / "notify.sock")
        env["PYTHONPATH"] = str(ROOT)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), mode], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: Queue[dict[str, object]] = Queue()
        self.seen: list[dict[str, object]] = []
        self.notes: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"event": "non_json", "text": line})

    def wait_note(self, prefix: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                note = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.notes.append(note)
            if note.startswith(prefix):
                return note
        raise AssertionError(f"no {prefix!r} notification; got {self.notes}")

    def wait_event(self, event: str, timeout: float = 10) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except Empty:
                continue
            self.seen.append(line)
            if line.get("event") == event:
                return line
        raise AssertionError(f"no {event!r} log line; saw {[s.get('event') for s in self.seen]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.sock.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def _start(mode: str, watchdog_usec: int | None = None) -> Proc:
        procs.append(Proc(mode, tmp_path, watchdog_usec))
        return procs[-1]

    yield _start
    for p in procs:
        p.close()


def test_ready_watchdog_drain_and_clean_exit(start: Callable[..., Proc]) -> None:
    d = start("drain", watchdog_usec=400_000)
    assert d.wait_note("READY=1").startswith("READY=1")
    assert d.wait_note("WATCHDOG=1") == "WATCHDOG=1"
    d.wait_event("step_done")
    failed = d.wait_event("step_failed")
    assert failed["error"] == "boom on purpose"
    assert "RuntimeError" in str(failed["exception"])
    # The daemon survives the failing step: it runs again at its next interval.
    d.wait_event("step_failed")
    d.wait_note("WATCHDOG=1")
    d.proc.send_signal(signal.SIGTERM)
    assert d.wait_note("STOPPING=1").startswith("STOPPING=1")
    d.wait_event("daemon_stopped")
    assert d.proc.wait(10) == 0


def test_second_sigterm_forces_exit_during_long_step(start: Callable[..., Proc]) -> None:
    d = start("stuck")
    d.wait_note("READY=1")
    d.wait_event("stuck_step_started")
    d.proc.send_signal(signal.SIGTERM)
    d.wait_note("STOPPING=1")
    d.wait_event("daemon_draining")
    time.sleep(0.3)
    assert d.proc.poll() is None, "a running step must be waited for after the first signal"
    d.proc.send_signal(signal.SIGTERM)
    forced = d.wait_event("daemon_forced_exit")
    assert forced["running"] == ["stuck"]
    assert d.proc.wait(10) == 128 + signal.SIGTERM


def test_sighup_reloads_or_keeps_running_config(start: Callable[..., Proc]) -> None:
    d = start("reload")
    d.wait_note("READY=1")
    d.wait_event("step_done")
    d.proc.send_signal(signal.SIGHUP)
    assert d.wait_note("RELOADING=1").startswith("RELOADING=1\nMONOTONIC_USEC=")
    d.wait_event("reload_applied")
    d.proc.send_signal(signal.SIGHUP)
    rejected = d.wait_event("reload_rejected")
    assert rejected["problems"] == ["config.toml: trackdechets.url: must be an http(s) URL"]
    d.wait_event("step_done")  # still running on the old config
    d.proc.send_signal(signal.SIGINT)
    d.wait_event("daemon_stopped")
    assert d.proc.wait(10) == 0
