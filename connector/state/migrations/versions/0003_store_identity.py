"""Store identity (lost or replaced state stores refuse to create) and records.custom_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import json

import sqlalchemy as sa
from alembic import op

from connector.state.ddl import add_column, create_index, create_table
from connector.state.models import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "store_identity",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("trusted", sa.Boolean),
        sa.Column("reason", sa.Text),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rebuilt_at", UtcDateTime()),
    )
    add_column("records", sa.Column("custom_id", sa.String(200)))
    create_index("ix_records_custom_id", "records", ["mapping", "custom_id"])
    _fill_custom_ids()


_KINDS_KEYED = ("BSDD", "BSVHU")
"""Kinds whose ``customId`` ingest sets to the record key when the mapping sets none."""


def _custom_id(kind: str, key: str, payload: str) -> str | None:
    """What ingest stores in ``custom_id`` for this row (see engine.uniqueness.custom_id_of)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    value = data.get("customId") if isinstance(data, dict) else None
    if value in (None, "") and kind in _KINDS_KEYED:
        value = key  # ingest stamps the record key as customId on these kinds
    return str(value)[:200] if value not in (None, "") else None


def _fill_custom_ids() -> None:
    """Existing rows get their customId, so duplicates of older records are seen after an upgrade.

    Read and written in Python, 1,000 rows at a time (the same on SQLite, PostgreSQL and MariaDB);
    rows already filled are skipped, so a migration cut short and run again is harmless.
    """
    bind = op.get_bind()
    records = sa.table(
        "records",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("record_key", sa.String),
        sa.column("payload", sa.Text),
        sa.column("custom_id", sa.String),
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(records.c.id, records.c.kind, records.c.record_key, records.c.payload)
            .where(records.c.id > last, records.c.custom_id.is_(None), records.c.payload.is_not(None))
            .order_by(records.c.id)
            .limit(1000)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        values = [
            {"row_id": row.id, "custom_id": custom_id}
            for row in rows
            if (custom_id := _custom_id(row.kind, row.record_key, row.payload)) is not None
        ]
        if values:
            bind.execute(
                records.update()
                .where(records.c.id == sa.bindparam("row_id"))
                .values(custom_id=sa.bindparam("custom_id")),
                values,
            )


def downgrade() -> None:
    op.drop_index("ix_records_custom_id", "records")
    op.drop_column("records", "custom_id")
    op.drop_table("store_identity")
