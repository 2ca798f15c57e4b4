"""A local Trackdéchets: the official GraphQL contract (as a subset), lifecycles, limits and faults.

Entry points: ``create_app`` (ASGI), ``testing.serve_in_thread`` (tests), ``server.run`` and
``cli.main`` (the ``td-emulator`` command). The server stack (starlette, uvicorn) is the
``emulator`` extra: it is imported on first use of ``create_app``, so ``td_emulator.cli``,
``config`` and ``validators`` import without it and can say what is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import EmulatorConfig, FaultConfig, OutageWindow, WebhookConfig

if TYPE_CHECKING:
    from .app import create_app
    from .instance import Emulator

__all__ = ["Emulator", "EmulatorConfig", "FaultConfig", "OutageWindow", "WebhookConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Emulator":
        from .instance import Emulator

        return Emulator
    raise AttributeError(f"module 'td_emulator' has no attribute {name!r}")
