"""Run the emulator as a standalone server (``td-connector emulator``)."""

from __future__ import annotations

import ipaddress
import logging

import uvicorn

from .app import create_app
from .config import EmulatorConfig

__all__ = ["SERVER_LIMITS", "run"]

SERVER_LIMITS = {
    "timeout_keep_alive": 5,  # an idle keep-alive connection is closed after 5 s
    "limit_concurrency": 200,  # beyond it uvicorn answers 503 instead of piling up connections
    "h11_max_incomplete_event_size": 16_384,  # a request head larger than 16 KB is refused
    "server_header": False,
}
"""uvicorn settings that keep a reachable emulator from being exhausted by idle or slow clients."""


def run(host: str = "127.0.0.1", port: int = 7300, config: EmulatorConfig | None = None) -> None:
    """Serve until interrupted; uvicorn handles SIGINT/SIGTERM and the webhook thread stops with it."""
    if not _is_loopback(host):
        logging.getLogger("td_emulator").warning(
            "emulator bound to %s beyond loopback: anyone reaching port %s can use its admin routes "
            "(if enabled) and any token it accepts", host, port)
    app = create_app(config or EmulatorConfig())
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False, **SERVER_LIMITS)  # type: ignore[arg-type]


def _is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (the emulator keeps its own check: it never imports the
    connector)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
