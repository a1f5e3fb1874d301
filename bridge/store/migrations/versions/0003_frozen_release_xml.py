"""The release.xml a release was accepted with: its SHA-256 and RT attachment id.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("release_sha256", sa.String(64)))
        batch.add_column(sa.Column("release_attachment_id", sa.BigInteger))
        batch.add_column(sa.Column("repository_path", sa.String(1024)))


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("repository_path")
        batch.drop_column("release_attachment_id")
        batch.drop_column("release_sha256")
