"""Logs: JSON lines with level and ISO timestamp, console on request, secrets masked everywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog
from pydantic import SecretStr

from connector.logs import configure_logging, mask_secrets, register_secret

TOKEN = "tok-9f8e7d6c5b4a-secret"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_masked_everywhere() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "json", stream=buf, secrets=[SecretStr(TOKEN)])
    log = structlog.get_logger("connector.test")
    log.debug("hidden_below_level")
    log.info(
        "record_created",
        mapping="bsdd_csv",
        record_key="K1",
        bsd_id="abc",
        url=f"http://x/?t={TOKEN}",
        Authorization="Bearer whatever",
        headers={"authorization": "Bearer other", "accept": "json"},
        nested=[{"deep": f"x{TOKEN}y"}, (TOKEN,)],
        error=ValueError(f"bad token {TOKEN}"),
        attempt=2,
    )
    try:
        raise RuntimeError(f"server said {TOKEN}")
    except RuntimeError:
        log.exception("step_failed", step="push")
    logging.getLogger("some.library").warning("header was %s", TOKEN)

    out = buf.getvalue()
    assert TOKEN not in out
    records = lines(buf)
    assert [r["event"] for r in records] == ["record_created", "step_failed", "header was ***"]
    first = records[0]
    assert first["level"] == "info"
    datetime.fromisoformat(str(first["timestamp"]))
    assert first["url"] == "http://x/?t=***"
    assert first["Authorization"] == "***"
    assert first["headers"] == {"authorization": "***", "accept": "json"}
    assert first["nested"] == [{"deep": "x***y"}, ["***"]]
    assert first["error"] == "ValueError: bad token ***"
    assert (first["mapping"], first["record_key"], first["bsd_id"], first["attempt"]) == ("bsdd_csv", "K1",
                                                                                          "abc", 2)
    assert "server said ***" in str(records[1]["exception"])
    assert records[2]["level"] == "warning"


@pytest.mark.usefixtures("restore_logging")
def test_console_renderer_and_reconfigure_does_not_stack_handlers() -> None:
    configure_logging("INFO", "json", stream=io.StringIO())
    buf = io.StringIO()
    configure_logging("DEBUG", "console", stream=buf, secrets=[TOKEN])
    structlog.get_logger().debug("hello_console", token=TOKEN, text=f"a {TOKEN}")
    out = buf.getvalue()
    assert "hello_console" in out
    assert TOKEN not in out
    assert not out.lstrip().startswith("{")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_tdc_handler", False)]
    assert len(ours) == 1


@pytest.mark.usefixtures("restore_logging")
def test_auto_is_json_off_tty() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "auto", stream=buf)
    structlog.get_logger().info("plain", n=1)
    assert lines(buf)[0]["n"] == 1


def test_mask_secrets_ignores_tiny_values_and_prefers_longest() -> None:
    register_secret("ab")
    register_secret("longsecret")
    register_secret("longsecret-plus")
    assert mask_secrets("ab longsecret-plus longsecret") == "ab *** ***"


def test_capture_logs_still_works_for_other_tests() -> None:
    with structlog.testing.capture_logs() as captured:
        structlog.get_logger().info("captured_event", mapping="m")
    assert captured == [{"event": "captured_event", "mapping": "m", "log_level": "info"}]
