"""A tiny daemon with dummy steps, run as a real process by test_daemon_process.py.

Usage: python tiny_daemon.py MODE
  drain   a fast step, a failing step and a slow step that honours the stop event
  stuck   one step that ignores the stop event (sleeps 60 s): only a second signal ends it
  reload  fast step; SIGHUP alternates between an accepted and a rejected reload
Log lines (JSON) go to stdout so the test can follow what happened.
"""

from __future__ import annotations

import sys
import threading
import time

import structlog

from connector.daemon import Daemon
from connector.errors import ConfigError
from connector.logs import configure_logging


def fast(stop: threading.Event) -> dict[str, int]:
    return {"records": 1}


def failing(stop: threading.Event) -> None:
    raise RuntimeError("boom on purpose")


def slow(stop: threading.Event) -> None:
    for _ in range(200):  # "records"; checks the stop event between them
        if stop.wait(0.05):
            return


def stuck(stop: threading.Event) -> None:
    structlog.get_logger().info("stuck_step_started")
    time.sleep(60)


def main(mode: str) -> int:
    configure_logging("INFO", "json", stream=sys.stdout, secrets=["tiny-daemon-secret"])
    calls = {"n": 0}

    def on_reload() -> bool:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            raise ConfigError("bad", problems=["config.toml: trackdechets.url: must be an http(s) URL"])
        return True

    if mode == "drain":
        steps = {"fast": fast, "failing": failing, "slow": slow}
        intervals = {"fast": 0.2, "failing": 0.2, "slow": 0.2}
    elif mode == "stuck":
        steps, intervals = {"stuck": stuck}, {"stuck": 1.0}
    else:
        steps, intervals = {"fast": fast}, {"fast": 0.5}
    daemon = Daemon(steps, intervals, drain_timeout=20, on_reload=on_reload)
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
