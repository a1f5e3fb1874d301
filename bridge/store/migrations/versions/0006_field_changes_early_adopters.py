"""Changes of other fields than RolloutProgress in the queue, early adopters' acceptances, and
the time of the staged-rollout report.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

``jobs`` learns which field a change is of (``field``; every change queued before is a
RolloutProgress move), RT's raw values (``old_value``, ``new_value``) and RT's time of the
transaction (``changed_at``). ``early_adopter_acceptances`` records which early-adopter team
accepted which release, who added it and when (RT's actor and time), and a withdrawal; one
standing acceptance per team and release (a partial unique index). ``releases.stage_report_at``
is when the StageRollout Report was first filled in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("field", sa.String(64), nullable=False, server_default="RolloutProgress"),
    )
    op.add_column("jobs", sa.Column("old_value", sa.Text))
    op.add_column("jobs", sa.Column("new_value", sa.Text))
    op.add_column("jobs", sa.Column("changed_at", sa.DateTime))
    op.add_column("releases", sa.Column("stage_report_at", sa.DateTime))
    op.create_table(
        "early_adopter_acceptances",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.BigInteger, nullable=False),
        sa.Column("team", sa.String(100), nullable=False),
        sa.Column("ngi", sa.String(100), nullable=False),
        sa.Column("major_release", sa.String(100)),
        sa.Column("accepted_by", sa.String(200), nullable=False),
        sa.Column("accepted_at", sa.DateTime, nullable=False),
        sa.Column("transaction_id", sa.BigInteger, nullable=False),
        sa.Column("withdrawn_by", sa.String(200)),
        sa.Column("withdrawn_at", sa.DateTime),
        sa.Column("withdrawn_transaction_id", sa.BigInteger),
        sa.UniqueConstraint("transaction_id", name="uq_early_adopter_acceptances_transaction"),
    )
    op.create_index(
        "uq_early_adopter_acceptances_one_standing",
        "early_adopter_acceptances",
        ["ticket_id", "team"],
        unique=True,
        sqlite_where=sa.text("withdrawn_at IS NULL"),
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    )
    op.create_index(
        "ix_early_adopter_acceptances_accepted_at", "early_adopter_acceptances", ["accepted_at"]
    )


def downgrade() -> None:
    op.drop_table("early_adopter_acceptances")
    op.drop_column("releases", "stage_report_at")
    for column in ("changed_at", "new_value", "old_value", "field"):
        op.drop_column("jobs", column)
