"""Every area the bridge published a release into (``release_areas``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

Removal reads this record instead of re-parsing the release's frozen release.xml (which may be
the very reason the release failed). Releases published before keep their current area
(``releases.repository_path``); an earlier ``unverified/`` copy of a release now in staged
rollout is found from release.xml at removal, when it can still be read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "release_areas",
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("area", sa.String(1000), primary_key=True),
        sa.Column("published_at", sa.DateTime, nullable=False),
    )
    op.execute(
        "INSERT INTO release_areas (ticket_id, area, published_at) "
        "SELECT ticket_id, repository_path, updated_at FROM releases "
        "WHERE repository_path IS NOT NULL AND repository_path <> ''"
    )


def downgrade() -> None:
    op.drop_table("release_areas")
