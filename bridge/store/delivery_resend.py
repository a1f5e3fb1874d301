"""Sending deliveries again and forgetting old ones: ``redeliver`` one, ``recover`` the failed
ones of a subscription since a time (cancellable while some wait), and retention of finished
deliveries and their attempts by age (never of an unfinished one).

Each request to send again writes its event (``deliveries_requeued``, ``deliveries_cancelled``).
A base of ``deliveries.DeliveryStore``; it sends nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge import errors
from bridge.store import event_log, tables
from bridge.store import events as eventlog
from bridge.store import subscription_store as store_of_subscriptions

K = eventlog.EventKind
STATUSES = ("pending", "sending", "delivered", "failed", "cancelled")
PENDING, SENDING, DELIVERED, FAILED, CANCELLED = STATUSES
OPEN = (PENDING, SENDING)


class DeliveryNotFound(errors.BridgeError):
    def __init__(self, delivery_id: int) -> None:
        super().__init__(f"no delivery has id {delivery_id}")
        self.delivery_id = delivery_id


class RecoveryNotFound(errors.BridgeError):
    def __init__(self, recovery_id: int) -> None:
        super().__init__(f"no recovery has id {recovery_id}")
        self.recovery_id = recovery_id


class Resends:
    """Redelivery, recovery and retention over the deliveries of one database."""

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def redeliver(self, delivery_id: int, *, actor: str) -> None:
        """Send one delivery again (whatever its state but sending), with the same
        ``webhook-id``, as a new round of the schedule."""
        d = tables.deliveries
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(d).where(d.c.id == delivery_id)).first()
            if row is None:
                raise DeliveryNotFound(delivery_id)
            conn.execute(
                d.update()
                .where(d.c.id == delivery_id, d.c.status != SENDING)
                .values(status=PENDING, attempts=0, next_attempt_at=now, finished_at=None)
            )
            name = _name(conn, int(row.subscription_id))
            self._requeued(conn, name, 1, now, actor=actor, ticket=row.ticket_id)

    def recover(
        self, subscription: str, *, since: datetime, actor: str, dry_run: bool
    ) -> tuple[int, int | None]:
        """Queue again every failed delivery of ``subscription`` created since ``since``;
        returns how many and the recovery's id (None on a dry run, which changes nothing)."""
        d, rec = tables.deliveries, tables.delivery_recoveries
        now = self.clock()
        with self.engine.begin() as conn:
            sub = store_of_subscriptions.SubscriptionStore(self.engine, clock=self.clock)._get(
                conn, subscription, lock=True
            )
            which = (d.c.subscription_id == sub.id, d.c.status == FAILED, d.c.created_at >= since)
            count = int(conn.execute(sa.select(sa.func.count()).where(*which)).scalar_one())
            if dry_run or count == 0:
                return count, None
            rid = conn.execute(
                rec.insert()
                .values(subscription_id=sub.id, since=since, asked_by=actor, at=now, count=count)
                .returning(rec.c.id)
            ).scalar_one()
            conn.execute(
                d.update()
                .where(*which)
                .values(
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    finished_at=None,
                    recovery_id=rid,
                )
            )
            self._requeued(conn, sub.name, count, now, actor=actor, recovery=int(rid), since=since)
            return count, int(rid)

    def cancel_recovery(self, recovery_id: int, *, actor: str) -> int:
        """Stop a recovery: its deliveries not yet sent go back to failed; returns how many."""
        d, rec = tables.deliveries, tables.delivery_recoveries
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(rec).where(rec.c.id == recovery_id)).first()
            if row is None:
                raise RecoveryNotFound(recovery_id)
            count = conn.execute(
                d.update()
                .where(d.c.recovery_id == recovery_id, d.c.status == PENDING)
                .values(status=FAILED, finished_at=now)
            ).rowcount
            conn.execute(rec.update().where(rec.c.id == recovery_id).values(cancelled_at=now))
            name = _name(conn, int(row.subscription_id))
            event_log.append(
                conn,
                [
                    event_log.draft(
                        K.DELIVERIES_CANCELLED,
                        ticket_id=None,
                        actor=actor,
                        cause=eventlog.Cause.OPERATOR,
                        data={
                            "detail": f"recovery {recovery_id} of {name} cancelled "
                            f"({count} not sent)",
                            "subscription": name,
                            "recovery": recovery_id,
                            "count": int(count or 0),
                        },
                    )
                ],
                now=now,
            )
            return int(count or 0)

    def _requeued(
        self,
        conn: sa.Connection,
        name: str,
        count: int,
        now: datetime,
        *,
        actor: str,
        ticket: int | None = None,
        recovery: int | None = None,
        since: datetime | None = None,
    ) -> None:
        data: dict[str, Any] = {
            "detail": f"{count} deliveries to {name} queued again",
            "subscription": name,
            "count": count,
        }
        if recovery is not None:
            data |= {"recovery": recovery, "since": since}
        event_log.append(
            conn,
            [
                event_log.draft(
                    K.DELIVERIES_REQUEUED,
                    ticket_id=ticket,
                    actor=actor,
                    cause=eventlog.Cause.OPERATOR,
                    transaction_id=None,
                    job_id=None,
                    data=data,
                )
            ],
            now=now,
        )

    # -- retention ---------------------------------------------------------------------------

    def prune(self, *, older_than: datetime) -> tuple[int, int]:
        """Delete finished deliveries (delivered, failed, cancelled) finished before
        ``older_than`` with their attempts, and older attempts of the others; never an
        unfinished delivery. Returns (deliveries, attempts) deleted."""
        d, a = tables.deliveries, tables.delivery_attempts
        with self.engine.begin() as conn:
            old = sa.select(d.c.id).where(
                d.c.status.in_((DELIVERED, FAILED, CANCELLED)), d.c.finished_at < older_than
            )
            ids = [int(i) for i in conn.execute(old).scalars()]
            attempts = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                attempts += conn.execute(a.delete().where(a.c.delivery_id.in_(chunk))).rowcount
                conn.execute(d.delete().where(d.c.id.in_(chunk)))
            attempts += conn.execute(
                a.delete().where(
                    a.c.at < older_than,
                    a.c.delivery_id.in_(sa.select(d.c.id).where(d.c.status.not_in(OPEN))),
                )
            ).rowcount
            return len(ids), int(attempts or 0)


def _name(conn: sa.Connection, subscription_id: int) -> str:
    s = tables.subscriptions
    return str(conn.execute(sa.select(s.c.name).where(s.c.id == subscription_id)).scalar_one())
