"""Initial state store: records with durable intents, checkpoints, tracking cursors, step runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from connector.state.ddl import create_index, create_table
from connector.state.models import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("mapping", sa.String(200), nullable=False),
        sa.Column("record_key", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(500)),
        sa.Column("origin", sa.String(1000), nullable=False),
        sa.Column("emitter_siret", sa.String(32)),
        sa.Column("payload", sa.Text),
        sa.Column("payload_hash", sa.String(80), nullable=False),
        sa.Column("source_values", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("next_op", sa.String(16)),
        sa.Column("bsd_id", sa.String(100)),
        sa.Column("readable_id", sa.String(100)),
        sa.Column("remote_status", sa.String(40)),
        sa.Column("remote_is_draft", sa.Boolean),
        sa.Column("remote_updated_at", sa.String(40)),
        sa.Column("last_error", sa.Text),
        sa.Column("error_fields", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime()),
        sa.Column("intent_op", sa.String(16)),
        sa.Column("intent_at", UtcDateTime()),
        sa.Column("intent_hash", sa.String(80)),
        sa.Column("writeback_due", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("writeback_error", sa.Text),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("mapping", "record_key", name="uq_records_mapping_key"),
    )
    create_index("ix_records_due", "records", ["state", "next_attempt_at"])
    create_index("ix_records_bsd", "records", ["bsd_id"])
    create_index("ix_records_writeback", "records", ["writeback_due"])
    create_table(
        "checkpoints",
        sa.Column("mapping", sa.String(200), primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    create_table(
        "track_cursors",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("siret", sa.String(32), primary_key=True),
        sa.Column("since", UtcDateTime(), nullable=False),
    )
    create_table(
        "step_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("finished_at", UtcDateTime()),
        sa.Column("ok", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("summary", sa.Text),
    )
    create_index("ix_step_runs_step", "step_runs", ["step", "started_at"])


def downgrade() -> None:
    op.drop_table("step_runs")
    op.drop_table("track_cursors")
    op.drop_table("checkpoints")
    op.drop_table("records")
