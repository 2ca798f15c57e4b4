"""Health, metrics and logs tell a failed step from a busy or an idle one."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
import structlog

from connector.daemon import Daemon
from connector.failures import source_failure, token_failure, token_origin
from connector.health import HealthCheck, StepStatus
from connector.logs import configure_logging, is_idle
from connector.metrics import ConnectorMetrics
from connector.trackdechets.errors import Unauthenticated


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_failed_step_degrades_health_until_it_succeeds_again() -> None:
    clock = Clock()
    status = StepStatus(clock=clock)
    for name in ("ingest", "push"):
        status.register(name, 10.0)
    status.started("ingest")
    assert HealthCheck(status)().steps["ingest"]["state"] == "running"
    status.failed("ingest", 0.1, "mapping m: drop folder /x does not exist: create it")
    clock.now += 1
    report = HealthCheck(status)()
    assert not report.ok
    cause = "mapping m: drop folder /x does not exist: create it"
    assert report.to_json()["failed_steps"] == {"ingest": cause}
    assert report.to_json()["stale_steps"] == []
    assert report.steps["ingest"]["state"] == "failed"
    assert report.steps["ingest"]["running"] is False
    assert report.steps["push"]["state"] == "ok"

    status.started("ingest")
    clock.now += 1
    status.succeeded("ingest", 0.1)
    report = HealthCheck(status)()
    assert report.ok
    assert report.to_json() == {"status": "ok", "steps": report.steps}


def test_the_failed_metric_follows_the_last_run() -> None:
    clock = Clock()
    status = StepStatus(clock=clock)
    status.register("writeback", 10.0)
    metrics = ConnectorMetrics(status=status)
    assert b'tdc_step_failed{step="writeback"} 0.0' in metrics.render()
    status.failed("writeback", 0.2, "the write-back failed for all 4 record(s)")
    assert b'tdc_step_failed{step="writeback"} 1.0' in metrics.render()
    assert b'tdc_step_running{step="writeback"} 0.0' in metrics.render()
    clock.now += 1
    status.succeeded("writeback", 0.2)
    assert b'tdc_step_failed{step="writeback"} 0.0' in metrics.render()


def test_idle_counts() -> None:
    assert is_idle({"read": 500, "unchanged": 500})
    assert is_idle({"pages": 3, "seen": 12})
    assert is_idle({})
    assert not is_idle({"read": 1, "new": 1})
    assert not is_idle({"written": 2})
    assert not is_idle({"status_changes": 1, "pages": 1})


def _captured(level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level, "json", stream=stream)
    return stream


def test_an_idle_pass_logs_at_debug_a_busy_one_at_info() -> None:
    stream = _captured()
    try:
        Daemon._log_success({"step": "ingest", "ok": True, "read": 500, "unchanged": 500}, 0.2)
        assert stream.getvalue() == ""
        Daemon._log_success({"step": "ingest", "ok": True, "read": 3, "new": 3}, 0.2)
        assert '"event": "step_done"' in stream.getvalue()
        assert '"new": 3' in stream.getvalue()
    finally:
        configure_logging("INFO", "json")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_no_color_turns_colours_off_in_log_lines(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    stream = _Tty()
    try:
        configure_logging("INFO", "auto", stream=stream)
        structlog.get_logger("connector").info("record_queued", record_key="A-1")
        logging.getLogger().handlers[-1].flush()
    finally:
        configure_logging("INFO", "json")
    assert "record_queued" in stream.getvalue()
    assert ("\x1b[" in stream.getvalue()) is coloured


def test_failure_messages_say_what_to_do() -> None:
    denied = PermissionError(13, "Permission denied", "/srv/inbox/../inbox")
    assert source_failure("m", "/etc/m.toml", denied) == (
        "mapping m: permission denied on /srv/inbox: let the connector's user read it (chown/chmod), "
        "or correct source.folder in /etc/m.toml"
    )
    moved: Any = PermissionError(13, "Permission denied", "/srv/inbox/processed")
    assert "let the connector's user write to it" in source_failure("m", "/etc/m.toml", moved, writing=True)
    assert token_origin(None, {"TDC_TRACKDECHETS__TOKEN": "x"}) == "the variable TDC_TRACKDECHETS__TOKEN"
    assert token_origin("/etc/tok", {}) == "the file /etc/tok (trackdechets.token_file)"
    assert token_origin(None, {"CREDENTIALS_DIRECTORY": "/run/c"}) == "the systemd credential td-token"
    origin = "the file /etc/tok (trackdechets.token_file)"
    refused = token_failure(Unauthenticated("Me: not logged in"), origin)
    assert refused.startswith(f"Trackdéchets refused the token from {origin}")


def test_a_repeated_cause_is_logged_once_a_minute_a_new_one_at_once() -> None:
    from connector.errors import StepFailed

    daemon = Daemon({"push": lambda stop: {}}, {"push": 5.0}, drain_timeout=1)
    stream = _captured()
    try:
        refused = StepFailed("push", ["Trackdéchets refused the token from the variable X"])
        daemon._log_failure("push", refused, 0.1)
        daemon._log_failure("push", refused, 0.1)
        missing = StepFailed("push", ["something else"])
        daemon._log_failure("push", missing, 0.1)
    finally:
        configure_logging("INFO", "json")
    lines = [line for line in stream.getvalue().splitlines() if '"step_failed"' in line]
    assert len(lines) == 2
    assert "refused the token" in lines[0]
    assert "something else" in lines[1]


def test_a_run_asked_for_while_the_step_runs_happens_right_after() -> None:
    """A webhook arriving while track walks: track walks again at once, not an interval later."""
    import threading

    entered = threading.Event()
    release = threading.Event()
    runs: list[int] = []
    second = threading.Event()

    def track(stop: threading.Event) -> dict[str, int]:
        runs.append(1)
        if len(runs) == 1:
            entered.set()
            release.wait(10)
        else:
            second.set()
        return {}

    daemon = Daemon({"track": track}, {"track": 600.0}, drain_timeout=1, exit_now=lambda code: None)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    try:
        assert entered.wait(10)
        daemon.run_soon("track")  # while the first walk is still running
        release.set()
        assert second.wait(10), "the second walk did not happen"
    finally:
        daemon.request_stop()
        thread.join(10)
