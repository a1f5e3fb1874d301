"""The read Prometheus's ``/metrics`` needs beyond ``pipeline_reads``, aggregated in the
database so a scrape stays cheap however long the history is: each subscription's open and
failed deliveries on the status index (``delivery_reads.figures`` walks every delivery kept).

Read-only; times are naive UTC. It decides nothing and labels nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bridge.store import delivery_resend, tables


@dataclass(frozen=True, kw_only=True)
class DeliveryCounts:
    """A subscription's state and its deliveries waiting or failed for good."""

    enabled: bool
    failing_since: datetime | None  # the current spell of failures; None when not failing
    pending: int  # pending or being sent
    failed: int  # failed for good (retries used up) and not queued again


def delivery_counts(engine: sa.Engine) -> Mapping[str, DeliveryCounts]:
    """Every subscription by name, with its open and failed deliveries counted."""
    subs, d = tables.subscriptions, tables.deliveries
    counted = (*delivery_resend.OPEN, delivery_resend.FAILED)
    with engine.connect() as conn:
        states = conn.execute(
            sa.select(subs.c.id, subs.c.name, subs.c.enabled, subs.c.failing_since)
        ).all()
        counts = conn.execute(
            sa.select(d.c.subscription_id, d.c.status, sa.func.count())
            .where(d.c.status.in_(counted))
            .group_by(d.c.subscription_id, d.c.status)
        ).all()
    by_id: dict[int, dict[str, int]] = {}
    for subscription_id, status, n in counts:
        by_id.setdefault(int(subscription_id), {})[str(status)] = int(n)
    found = {}
    for row in sorted(states, key=lambda r: str(r.name)):
        mine = by_id.get(int(row.id), {})
        found[str(row.name)] = DeliveryCounts(
            enabled=bool(row.enabled),
            failing_since=row.failing_since,
            pending=sum(mine.get(s, 0) for s in delivery_resend.OPEN),
            failed=mine.get(delivery_resend.FAILED, 0),
        )
    return found
