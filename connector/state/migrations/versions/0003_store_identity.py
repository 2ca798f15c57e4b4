"""Store identity (lost or replaced state stores refuse to create) and records.custom_id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

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


def downgrade() -> None:
    op.drop_index("ix_records_custom_id", "records")
    op.drop_column("records", "custom_id")
    op.drop_table("store_identity")
