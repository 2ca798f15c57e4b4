"""Alembic environment: run against the connection the state store hands over."""

from __future__ import annotations

from alembic import context

from connector.state.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the state store runs migrations
    raise RuntimeError("run migrations through connector.state.store.StateStore.upgrade()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
