"""A refused hook's HTTP status, reason and caller as columns of ``events``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

Nullable: events recorded before keep everything in ``detail``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("http_status", sa.Integer))
        batch.add_column(sa.Column("reason", sa.Text))
        batch.add_column(sa.Column("caller", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("caller")
        batch.drop_column("reason")
        batch.drop_column("http_status")
