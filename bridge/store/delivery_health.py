"""Failing endpoints judged against their budget: an endpoint failing without a success is
warned at 50 % and 90 % of ``disable_after`` and disabled when it is used up (and it failed at
least ``min_failures`` times: days of failure, not a few errors). Each step writes its event and
a notice for the ticket of every release whose delivery is stuck behind it, to be commented
once (``repo_daemon.deliveries.notices`` comments them).

It sends nothing and comments nothing; ``deliveries`` records the failures it judges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bridge.store import event_log, subscription_store, tables
from bridge.store import events as eventlog
from bridge.store.subscriptions import Subscription, of_row

WARNED_50, WARNED_90, DISABLED = "warned_50", "warned_90", "disabled"
LEVELS = ((100, DISABLED), (90, WARNED_90), (50, WARNED_50))


@dataclass(frozen=True, kw_only=True)
class Notice:
    """A step of a failing endpoint to be said on a release's ticket."""

    subscription: Subscription
    ticket_id: int
    step: str
    spell: datetime


def level(sub: Subscription, now: datetime, *, disable_after: float, min_failures: int) -> int:
    """The share of its budget (0, 50, 90 or 100) an enabled endpoint has used. Pure."""
    if not sub.enabled or sub.failing_since is None:
        return 0
    used = (now - sub.failing_since).total_seconds() / disable_after
    if used >= 1 and sub.failures >= min_failures:
        return 100
    return next((n for n in (90, 50) if used >= n / 100), 0)


class Health:
    """Judging the endpoints of one database and keeping their notices."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def judge(self, *, disable_after: float, min_failures: int) -> list[str]:
        """Take every step that is due; returns one line per step taken."""
        now = self.clock()
        s = tables.subscriptions
        taken: list[str] = []
        with self.engine.connect() as conn:
            subs = [of_row(r) for r in conn.execute(sa.select(s).where(s.c.enabled))]
        for sub in subs:
            reached = level(sub, now, disable_after=disable_after, min_failures=min_failures)
            if reached <= sub.warned:
                continue
            with self.engine.begin() as conn:
                # Taken again under the row's lock: another daemon may have taken the step.
                fresh = _locked(conn, sub.id)
                if fresh is None or fresh.warned >= reached or not fresh.enabled:
                    continue
                conn.execute(s.update().where(s.c.id == sub.id).values(warned=reached))
                spell = fresh.failing_since or now
                if reached == 100:
                    days = disable_after / 86400
                    reason = (
                        f"failing since {spell:%Y-%m-%d %H:%M} UTC without a success "
                        f"({fresh.failures} attempts, {days:g} days: its whole budget)"
                    )
                    subscription_store.SubscriptionStore(self.engine, clock=self.clock).disable_in(
                        conn, sub.name, reason=reason, actor=eventlog.BRIDGE_ACTOR
                    )
                    note(conn, sub.id, DISABLED, spell, now)
                    taken.append(f"{sub.name}: disabled ({reason})")
                    continue
                pending = subscription_store.open_deliveries(conn, sub.id)
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.SUBSCRIPTION_WARNED,
                            ticket_id=None,
                            actor=eventlog.BRIDGE_ACTOR,
                            cause=eventlog.Cause.BRIDGE,
                            transaction_id=None,
                            job_id=None,
                            data={
                                "detail": f"subscription {sub.name} failing: {reached} % of "
                                "its budget used",
                                "subscription": sub.name,
                                "level": reached,
                                "failing_since": spell,
                                "pending": pending,
                            },
                        )
                    ],
                    now=now,
                )
                step = WARNED_90 if reached == 90 else WARNED_50
                note(conn, sub.id, step, spell, now)
                taken.append(f"{sub.name}: warned at {reached} % of its budget")
        return taken

    def unsaid(self, *, limit: int = 100) -> list[Notice]:
        """Notices not yet commented, oldest step first."""
        n, s = tables.delivery_notices, tables.subscriptions
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(n.c.ticket_id, n.c.step, n.c.spell, s)
                .join(s, s.c.id == n.c.subscription_id)
                .where(n.c.told_at.is_(None))
                .order_by(n.c.spell, n.c.ticket_id)
                .limit(limit)
            ).all()
        return [
            Notice(subscription=of_row(r), ticket_id=int(r.ticket_id), step=r.step, spell=r.spell)
            for r in rows
        ]

    def said(self, notice: Notice) -> None:
        n = tables.delivery_notices
        with self.engine.begin() as conn:
            conn.execute(
                n.update()
                .where(
                    n.c.subscription_id == notice.subscription.id,
                    n.c.ticket_id == notice.ticket_id,
                    n.c.step == notice.step,
                    n.c.spell == notice.spell,
                )
                .values(told_at=self.clock())
            )


def note(
    conn: sa.Connection, subscription_id: int, step: str, spell: datetime, now: datetime
) -> int:
    """Add a notice of ``step`` for each release with a delivery waiting for the endpoint
    (once per release, step and spell of failures); returns how many were new."""
    d, n = tables.deliveries, tables.delivery_notices
    tickets = conn.execute(
        sa.select(d.c.ticket_id)
        .where(
            d.c.subscription_id == subscription_id,
            d.c.status.in_(("pending", "sending")),
            d.c.ticket_id.is_not(None),
        )
        .distinct()
    ).scalars()
    known = set(
        conn.execute(
            sa.select(n.c.ticket_id).where(
                n.c.subscription_id == subscription_id, n.c.step == step, n.c.spell == spell
            )
        ).scalars()
    )
    new = [int(t) for t in tickets if int(t) not in known]
    if new:
        conn.execute(
            n.insert(),
            [{"subscription_id": subscription_id, "ticket_id": t, "step": step, "spell": spell}
             for t in new],
        )  # fmt: skip
    return len(new)


def _locked(conn: sa.Connection, subscription_id: int) -> Subscription | None:
    s = tables.subscriptions
    stmt = sa.select(s).where(s.c.id == subscription_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    return None if row is None else of_row(row)
