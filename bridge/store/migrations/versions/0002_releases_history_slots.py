"""Where each release is (the bridge's view), its time in each state, staged-rollout slots, and
the finished steps of a job (checkpoints).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("major_release", sa.String(100)),
        sa.Column("emergency", sa.Boolean, nullable=False),
        sa.Column("failed_target", sa.String(32)),
        sa.Column("last_transaction_id", sa.BigInteger),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_releases_major_state", "releases", ["major_release", "state"])
    op.create_table(
        "state_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("entered_at", sa.DateTime, nullable=False),
        sa.Column("left_at", sa.DateTime),
        sa.Column("transaction_id", sa.BigInteger),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_state_history_ticket", "state_history", ["ticket_id", "id"])
    op.create_index(
        "uq_state_history_one_open_per_ticket",
        "state_history",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text("left_at IS NULL"),
        postgresql_where=sa.text("left_at IS NULL"),
    )
    op.create_table(
        "stage_slots",
        sa.Column("major_release", sa.String(100), primary_key=True),
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("emergency", sa.Boolean, nullable=False),
        sa.Column("taken_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "uq_stage_slots_one_regular_holder",
        "stage_slots",
        ["major_release"],
        unique=True,
        sqlite_where=sa.text("NOT emergency"),
        postgresql_where=sa.text("NOT emergency"),
    )
    op.create_table(
        "job_steps",
        sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("action", sa.String(64), primary_key=True),
        sa.Column("done_at", sa.DateTime, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_steps")
    op.drop_table("stage_slots")
    op.drop_table("state_history")
    op.drop_table("releases")
