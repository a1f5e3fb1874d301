"""The queue of changes, the event log and the bridge's small state values.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("transaction_id", sa.BigInteger, nullable=False),
        sa.Column("current", sa.String(32), nullable=False),
        sa.Column("previous", sa.String(32), nullable=False),
        sa.Column("emergency", sa.Boolean, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("scheduled_at", sa.DateTime, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("locked_by", sa.String(200)),
        sa.Column("locked_until", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("transaction_id", name="uq_jobs_transaction_id"),
    )
    op.create_index("ix_jobs_status_scheduled", "jobs", ["status", "scheduled_at"])
    op.create_index("ix_jobs_ticket_transaction", "jobs", ["ticket_id", "transaction_id"])
    op.create_index(
        "uq_jobs_one_running_per_ticket",
        "jobs",
        ["ticket_id"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("transaction_id", sa.BigInteger),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("needs_comment", sa.Boolean, nullable=False),
        sa.Column("commented_at", sa.DateTime),
    )
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])
    op.create_index("ix_events_ticket", "events", ["ticket_id"])
    op.create_table(
        "bridge_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bridge_state")
    op.drop_table("events")
    op.drop_table("jobs")
