"""Outbound webhooks: subscriptions, deliveries, their attempts, recoveries and notices.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

``subscriptions`` are the endpoints that hear of events; ``deliveries`` one event to one
subscription (created in the event's transaction, unique per event and subscription);
``delivery_attempts`` every try; ``delivery_recoveries`` the resends asked since a time;
``delivery_notices`` which ticket was told of which step of a failing endpoint.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kinds", sa.Text, nullable=False),
        sa.Column("filters", sa.Text, nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("previous_secret", sa.String(200)),
        sa.Column("previous_until", sa.DateTime),
        sa.Column("github_signature", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text),
        sa.Column("disabled_at", sa.DateTime),
        sa.Column("declared", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("failing_since", sa.DateTime),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("warned", sa.Integer, nullable=False),
        sa.Column("last_success_at", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("name", name="uq_subscriptions_name"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("seq", sa.Integer),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime, nullable=False),
        sa.Column("locked_by", sa.String(200)),
        sa.Column("locked_until", sa.DateTime),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("finished_at", sa.DateTime),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("recovery_id", sa.BigInteger),
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_deliveries_event_subscription"),
    )
    op.create_index("ix_deliveries_status_next", "deliveries", ["status", "next_attempt_at"])
    op.create_index(
        "ix_deliveries_due", "deliveries", ["subscription_id", "status", "next_attempt_at"]
    )
    op.create_index(
        "ix_deliveries_release", "deliveries", ["subscription_id", "ticket_id", "status", "id"]
    )
    op.create_index("ix_deliveries_created", "deliveries", ["subscription_id", "created_at"])
    op.create_index("ix_deliveries_recovery", "deliveries", ["recovery_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.BigInteger, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("request_headers", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("response_body", sa.Text),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("error_class", sa.String(16)),
        sa.Column("error", sa.Text),
    )
    op.create_index(
        "ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id", "attempt"]
    )
    op.create_index("ix_delivery_attempts_at", "delivery_attempts", ["at"])
    op.create_table(
        "delivery_recoveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("subscription_id", sa.BigInteger, nullable=False),
        sa.Column("since", sa.DateTime, nullable=False),
        sa.Column("asked_by", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("cancelled_at", sa.DateTime),
    )
    op.create_table(
        "delivery_notices",
        sa.Column("subscription_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("step", sa.String(16), primary_key=True),
        sa.Column("spell", sa.DateTime, primary_key=True),
        sa.Column("told_at", sa.DateTime),
    )


def downgrade() -> None:
    for table in (
        "delivery_notices",
        "delivery_recoveries",
        "delivery_attempts",
        "deliveries",
        "subscriptions",
    ):
        op.drop_table(table)
