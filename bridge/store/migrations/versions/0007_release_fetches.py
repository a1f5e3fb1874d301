"""The first fetch of each release by each person from a protected area.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

``release_fetches`` keeps, per release (ticket) and person, the first allowed fetch from
``unverified`` or ``stagerollout``: the person's RT name, their early-adopter teams then
(comma-separated), the area and the time. One row per release and person (the primary key),
so several access checks writing at once keep the first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_fetches",
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("person", sa.String(200), primary_key=True),
        sa.Column("teams", sa.String(1000), nullable=False),
        sa.Column("area", sa.String(1000), nullable=False),
        sa.Column("first_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_release_fetches_first_at", "release_fetches", ["first_at"])


def downgrade() -> None:
    op.drop_table("release_fetches")
