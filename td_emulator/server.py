"""Run the emulator as a standalone server (``td-connector emulator``)."""

from __future__ import annotations

import uvicorn

from .app import create_app
from .config import EmulatorConfig

__all__ = ["run"]


def run(host: str = "127.0.0.1", port: int = 7300, config: EmulatorConfig | None = None) -> None:
    """Serve until interrupted; uvicorn handles SIGINT/SIGTERM and the webhook thread stops with it."""
    app = create_app(config or EmulatorConfig())
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
