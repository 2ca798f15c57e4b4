"""Migration steps that may run twice.

MariaDB commits each DDL statement on its own, so a migration cut short there (power cut,
``kill -9``) leaves some tables without the Alembic stamp. With these steps the next start
finishes the migration instead of failing on "table already exists". SQLite and PostgreSQL run a
whole migration in one transaction and never see a half-done one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

__all__ = ["add_column", "create_index", "create_table"]


def create_table(name: str, *elements: Any) -> None:
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *elements)


def create_index(name: str, table: str, columns: Sequence[str]) -> None:
    existing = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}
    if name not in existing:
        op.create_index(name, table, list(columns))


def add_column(table: str, column: sa.Column[Any]) -> None:
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}
    if column.name not in existing:
        op.add_column(table, column)
