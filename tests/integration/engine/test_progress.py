"""``sync --once`` on a terminal: progress bars per step, and log lines printed above them."""

from __future__ import annotations

import io
import logging
import sys
import threading
from pathlib import Path

import pytest
from rich.file_proxy import FileProxy

from connector.logs import configure_logging
from connector.service import sync_once
from td_emulator.config import EmulatorConfig
from td_emulator.testing import serve_in_thread
from tests.integration.engine.support import csv_text, drop, runtime_for


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_lines_go_through_the_progress_display_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    configure_logging(fmt="json", stream=terminal)
    streams: list[object] = []

    class Spy(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            streams.append(handler.stream)
            return True

    handler = next(h for h in logging.getLogger().handlers if getattr(h, "_tdc_handler", False))
    assert isinstance(handler, logging.StreamHandler)
    handler.addFilter(spy := Spy())
    try:
        with serve_in_thread(EmulatorConfig(admin_enabled=True)) as served:
            runtime = runtime_for(tmp_path, served.url)
            try:
                drop(tmp_path, "a.csv", csv_text())
                summary = sync_once(runtime, threading.Event(), progress=True)
            finally:
                runtime.close()
    finally:
        handler.removeFilter(spy)
        configure_logging(fmt="json", stream=sys.__stderr__)
    assert all(step["ok"] for step in summary["steps"])
    # Every line logged while the bars were drawn went through rich's proxy, none straight to the
    # terminal under them; the handler is given its stream back afterwards.
    assert len(streams) > 5
    assert all(isinstance(s, FileProxy) for s in streams), {type(s).__name__ for s in streams}
    assert handler.stream is terminal
    output = terminal.getvalue()
    assert "ingest" in output
    assert "writeback" in output
    assert '"event": "record_queued"' in output
