"""The emulator as an ASGI application: GraphQL on ``/``, the admin API under ``/_emulator/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from .admin import admin_routes
from .config import EmulatorConfig
from .http_graphql import GraphQLHttpApp
from .instance import Emulator

__all__ = ["EmulatorApp", "create_app"]


class EmulatorApp(Starlette):
    """Starlette with the emulator attached, and the server's raw ``send`` kept in the scope.

    Starlette's middlewares wrap ``send``; the in-doubt fault needs the server's own to reach the
    socket and close it without an answer.
    """

    emulator: Emulator

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["emulator.raw_send"] = send
        await super().__call__(scope, receive, send)


def create_app(config: EmulatorConfig | None = None, emulator: Emulator | None = None) -> EmulatorApp:
    """Build the app; the emulator's webhook thread starts and stops with the ASGI lifespan."""
    emulator = emulator or Emulator(config)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        emulator.start()
        try:
            yield
        finally:
            emulator.stop()

    graphql_app = GraphQLHttpApp(emulator)
    routes: list[Any] = [Route("/", graphql_app, methods=["GET", "POST"])]
    if emulator.config.admin_enabled:
        routes.extend(admin_routes(emulator))
    app = EmulatorApp(routes=routes, lifespan=lifespan)
    app.emulator = emulator
    return app
