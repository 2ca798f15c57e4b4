"""A local Trackdéchets: the official GraphQL contract (as a subset), lifecycles, limits and faults.

Entry points: ``create_app`` (ASGI), ``testing.serve_in_thread`` (tests), ``server.run`` (CLI).
"""

from __future__ import annotations

from .app import create_app
from .config import EmulatorConfig, FaultConfig, OutageWindow, WebhookConfig
from .instance import Emulator

__all__ = ["Emulator", "EmulatorConfig", "FaultConfig", "OutageWindow", "WebhookConfig", "create_app"]
