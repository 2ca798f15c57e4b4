"""Track hints: BSD ids announced by Trackdéchets webhooks, read back by the next track run.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from connector.state.ddl import create_table
from connector.state.models import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "track_hints",
        sa.Column("bsd_id", sa.String(100), primary_key=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("track_hints")
