"""``serve_in_thread``: a real uvicorn server on a free loopback port, for tests everywhere.

Real HTTP rather than an in-process transport, so the client code under test meets sockets,
headers, dropped connections and timeouts as it will in production.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from .app import create_app
from .config import EmulatorConfig
from .instance import Emulator

__all__ = ["ServedEmulator", "serve_in_thread"]


@dataclass(frozen=True)
class ServedEmulator:
    url: str
    """Base URL with a trailing slash, e.g. ``http://127.0.0.1:54321/`` (GraphQL is served there)."""
    emulator: Emulator
    """Direct access to the state, the journal and the fault controls."""


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        """The test process owns the signals, not this thread."""


@contextmanager
def serve_in_thread(config: EmulatorConfig | None = None) -> Iterator[ServedEmulator]:
    """Serve a fresh emulator until the block exits, then stop the server and its webhook thread."""
    app = create_app(config or EmulatorConfig(admin_enabled=True))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                    timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="emulator-http",
                              daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)
        yield ServedEmulator(f"http://127.0.0.1:{port}/", app.emulator)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
