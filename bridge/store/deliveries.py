"""The deliveries' life in the database: claimed under a lease (several daemons share them like
jobs), each attempt recorded, retried by the schedule, given up, sent again by hand.

Order: of one subscription's deliveries about one release, only the oldest unfinished one can
be claimed, so they go out in the release's sequence. A delivery whose schedule is used up is
``failed`` and no longer holds the others back; a redelivery or recovery sends it again.

It makes no HTTP request and reads no settings: ``repo_daemon.deliveries`` sends and passes the
schedule in. Reading (lists, a delivery with its attempts, counts) is ``delivery_reads``.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store import delivery_fanout, delivery_health, delivery_resend, event_log, tables, text
from bridge.store import events as eventlog
from bridge.store import subscription_store as store_of_subscriptions
from bridge.store.subscriptions import Subscription, of_row

K = eventlog.EventKind
PENDING, SENDING, DELIVERED, FAILED, CANCELLED = delivery_resend.STATUSES
OPEN = delivery_resend.OPEN
GONE = 410
DeliveryNotFound = delivery_resend.DeliveryNotFound
RecoveryNotFound = delivery_resend.RecoveryNotFound


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """A delivery taken for one attempt: what to send, where, signed with what."""

    id: int
    event_id: int
    ticket_id: int | None
    subscription: Subscription
    payload: str
    webhook_id: str
    round_attempt: int  # 1 for the first attempt of this round of the schedule
    attempt: int  # the attempt's number among all made (its row's number)


@dataclass(frozen=True, kw_only=True)
class AttemptResult:
    """What one attempt gave, as the sender saw it."""

    delivery_id: int
    attempt: int  # ``Claimed.attempt``
    request_headers: dict[str, str]  # already redacted
    status: int | None
    response_body: bytes
    duration: float
    error_class: str | None
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300 and self.error_class is None


def retry_delay(
    schedule: Sequence[float],
    done: int,
    *,
    jitter: float,
    retry_after: float | None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait after attempt number ``done`` (1-based) of a round, or None when the
    schedule is used up. Pure. Jitter spreads retries by up to ±``jitter``; ``Retry-After``
    is a floor."""
    if done >= len(schedule):
        return None
    delay = schedule[done] * (1 + jitter * (2 * rand() - 1))
    return max(delay, retry_after or 0.0)


class DeliveryStore(delivery_resend.Resends):
    """Claiming and recording deliveries in one database (sending again and retention are
    ``delivery_resend``'s)."""

    # -- claiming ----------------------------------------------------------------------------

    def claim(
        self,
        worker: str,
        *,
        limit: int,
        lease_seconds: float,
        skip: Collection[int] = (),
        reclaim: bool = True,
    ) -> list[Claimed]:
        """Take up to ``limit`` due deliveries of enabled subscriptions for ``worker``, each the
        oldest unfinished of its subscription and release; leases that ran out are taken back
        first (their daemon stopped). Subscriptions in ``skip`` are passed over (the caller
        has their share in flight); ``reclaim=False`` skips taking back run-out leases (a
        worker claiming often does it every few seconds only)."""
        now = self.clock()
        d = tables.deliveries
        with self.engine.begin() as conn:
            if reclaim:
                conn.execute(
                    d.update()
                    .where(d.c.status == SENDING, d.c.locked_until < now)
                    .values(status=PENDING, locked_by=None, locked_until=None, next_attempt_at=now)
                )
            # The enabled subscriptions first (a handful), so the deliveries gathering behind a
            # disabled one are never scanned (``ix_deliveries_due``).
            enabled = [int(i) for i in conn.execute(_ENABLED).scalars() if int(i) not in skip]
            if not enabled:
                return []
            # Per subscription, along its index in due order, so the scan stops at ``limit``
            # (one statement over all of them would sort every due delivery first); then the
            # most overdue of them all.
            pick = _pick(conn.dialect.name)
            due: list[tuple[datetime, int]] = []
            for sub in enabled:
                found = conn.execute(pick, {"sub": sub, "now": now, "limit": limit})
                due += [(at, int(i)) for i, at in found]
            ids = [i for _, i in sorted(due)[:limit]]
            if not ids:
                return []
            until = now + timedelta(seconds=lease_seconds)
            taken = conn.execute(_TAKE, {"ids": ids, "worker": worker, "until": until})
            rows = sorted(taken, key=lambda r: int(r.id))
            wanted = sorted({int(r.subscription_id) for r in rows})
            subs = {int(r.id): of_row(r) for r in conn.execute(_SUBS, {"ids": wanted})}
        return [_claimed(r, subs[int(r.subscription_id)]) for r in rows]

    def extend(self, worker: str, ids: Sequence[int], *, lease_seconds: float) -> None:
        """Keep the leases of deliveries still being sent."""
        d = tables.deliveries
        with self.engine.begin() as conn:
            conn.execute(
                d.update()
                .where(d.c.id.in_(list(ids)), d.c.locked_by == worker, d.c.status == SENDING)
                .values(locked_until=self.clock() + timedelta(seconds=lease_seconds))
            )

    def give_back(self, worker: str, ids: Sequence[int]) -> None:
        """Return deliveries not sent (shutting down): due again, the attempt not counted."""
        d = tables.deliveries
        with self.engine.begin() as conn:
            conn.execute(
                d.update()
                .where(d.c.id.in_(list(ids)), d.c.locked_by == worker, d.c.status == SENDING)
                .values(
                    status=PENDING,
                    locked_by=None,
                    locked_until=None,
                    attempts=d.c.attempts - 1,
                    tries=d.c.tries - 1,
                    next_attempt_at=self.clock(),
                )
            )

    # -- recording ---------------------------------------------------------------------------

    def finish(
        self,
        worker: str,
        results: Sequence[AttemptResult],
        *,
        schedule: Sequence[float],
        jitter: float,
        rand: Callable[[], float] = random.random,
    ) -> None:
        """Record the attempts of ``results`` in one transaction: each attempt a row; a success
        delivered, a failure retried by the schedule or given up; 410 Gone disables the
        subscription (its delivery waits). A delivery whose lease ``worker`` lost keeps its
        attempt row but is otherwise left to its new holder."""
        if not results:
            return
        now = self.clock()
        s = tables.subscriptions
        ids = [r.delivery_id for r in results]
        with self.engine.begin() as conn:
            held = {int(row.id): row for row in conn.execute(_HELD, {"ids": ids, "worker": worker})}
            # Subscriptions' rows before deliveries' rows, as every writer takes them (enable,
            # remove, the health judge), so two writers never wait on each other in a circle.
            if conn.dialect.name == "postgresql" and held:
                subs = sorted({int(r.subscription_id) for r in held.values()})
                conn.execute(
                    sa.select(s.c.id).where(s.c.id.in_(subs)).order_by(s.c.id).with_for_update()
                )
            conn.execute(
                _ATTEMPT,
                [
                    {
                        "delivery_id": r.delivery_id,
                        "attempt": r.attempt,
                        "at": now,
                        "worker": worker,
                        "request_headers": json.dumps(r.request_headers, sort_keys=True),
                        "status": r.status,
                        "response_body": text.storable(
                            r.response_body.decode("utf-8", "replace"), 4096
                        ),
                        "duration_ms": round(r.duration * 1000, 3),
                        "error_class": None if r.ok else (r.error_class or "http"),
                        "error": None if r.ok else text.storable(r.error or "", 2000),
                    }
                    for r in results
                ],
            )
            done = [r for r in results if r.ok and r.delivery_id in held]
            for status in sorted({r.status for r in done if r.status is not None}):
                ok = [r.delivery_id for r in done if r.status == status]
                conn.execute(_DELIVERED, {"ids": ok, "now": now, "answer": status})
            if done:
                good = sorted({int(held[r.delivery_id].subscription_id) for r in done})
                conn.execute(_SUCCEEDED, {"ids": good, "now": now})
            for r in results:
                row = held.get(r.delivery_id)
                if row is not None and not r.ok:
                    self._failed(conn, r, row, now, schedule=schedule, jitter=jitter, rand=rand)

    def _failed(
        self,
        conn: sa.Connection,
        r: AttemptResult,
        row: Any,
        now: datetime,
        *,
        schedule: Sequence[float],
        jitter: float,
        rand: Callable[[], float],
    ) -> None:
        d, s = tables.deliveries, tables.subscriptions
        error = text.storable(r.error or f"HTTP {r.status}", 2000)
        sub = of_row(conn.execute(sa.select(s).where(s.c.id == row.subscription_id)).one())
        conn.execute(
            s.update()
            .where(s.c.id == sub.id)
            .values(
                failing_since=sa.func.coalesce(s.c.failing_since, now),
                failures=s.c.failures + 1,
                last_error=error,
            )
        )
        base = {
            "locked_by": None,
            "locked_until": None,
            "last_status": r.status,
            "last_error": error,
        }
        if r.status == GONE:
            # The endpoint says it is gone for good: stop sending there; this delivery waits.
            conn.execute(
                d.update()
                .where(d.c.id == r.delivery_id)
                .values(**base, status=PENDING, attempts=d.c.attempts - 1, next_attempt_at=now)
            )
            store_of_subscriptions.SubscriptionStore(self.engine, clock=self.clock).disable_in(
                conn, sub.name, reason="the endpoint answered 410 Gone", actor=eventlog.BRIDGE_ACTOR
            )
            delivery_health.note(
                conn, sub.id, delivery_health.DISABLED, sub.failing_since or now, now
            )
            return
        delay = retry_delay(
            schedule, int(row.attempts), jitter=jitter, retry_after=r.retry_after, rand=rand
        )
        if delay is not None:
            conn.execute(
                d.update()
                .where(d.c.id == r.delivery_id)
                .values(**base, status=PENDING, next_attempt_at=now + timedelta(seconds=delay))
            )
            return
        conn.execute(
            d.update().where(d.c.id == r.delivery_id).values(**base, status=FAILED, finished_at=now)
        )
        event_log.append(
            conn,
            [
                event_log.draft(
                    K.DELIVERY_GAVE_UP,
                    ticket_id=row.ticket_id,
                    actor=eventlog.BRIDGE_ACTOR,
                    cause=eventlog.Cause.BRIDGE,
                    transaction_id=None,
                    job_id=None,
                    data={
                        "detail": f"delivery {r.delivery_id} to {sub.name} gave up: {error}",
                        "subscription": sub.name,
                        "delivery": r.delivery_id,
                        "event": int(row.event_id),
                        "attempts": int(row.attempts),
                        "error": error,
                    },
                )
            ],
            now=now,
        )


# The hot statements, built once (building a Core statement costs more than running it here);
# lists are expanding parameters.
_d, _s = tables.deliveries, tables.subscriptions
_ENABLED = sa.select(_s.c.id).where(_s.c.enabled)
_SUBS = sa.select(_s).where(_s.c.id.in_(sa.bindparam("ids", expanding=True)))
_TAKE = (
    _d.update()
    .where(_d.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status=SENDING,
        locked_by=sa.bindparam("worker"),
        locked_until=sa.bindparam("until"),
        attempts=_d.c.attempts + 1,
        tries=_d.c.tries + 1,
    )
    .returning(*_d.c)
)
_HELD = sa.select(
    _d.c.id, _d.c.attempts, _d.c.subscription_id, _d.c.ticket_id, _d.c.event_id
).where(
    _d.c.id.in_(sa.bindparam("ids", expanding=True)),
    _d.c.status == SENDING,
    _d.c.locked_by == sa.bindparam("worker"),
)
_ATTEMPT = tables.delivery_attempts.insert()
_DELIVERED = (
    _d.update()
    .where(_d.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        status=DELIVERED,
        finished_at=sa.bindparam("now"),
        locked_by=None,
        locked_until=None,
        last_status=sa.bindparam("answer"),
        last_error=None,
    )
)
_SUCCEEDED = (
    _s.update()
    .where(_s.c.id.in_(sa.bindparam("ids", expanding=True)))
    .values(
        failing_since=None,
        failures=0,
        warned=0,
        last_success_at=sa.bindparam("now"),
        last_error=None,
    )
)


@functools.cache
def _pick(dialect: str) -> sa.Select[Any]:
    """The due deliveries of a subscription, each the oldest unfinished of its release, most
    overdue first (``ix_deliveries_due``)."""
    earlier = sa.alias(_d, "earlier")
    blocked = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.subscription_id == _d.c.subscription_id,
            earlier.c.ticket_id == _d.c.ticket_id,
            earlier.c.status.in_(OPEN),
            earlier.c.id < _d.c.id,
        )
        .exists()
    )
    pick = (
        sa.select(_d.c.id, _d.c.next_attempt_at)
        .where(
            _d.c.subscription_id == sa.bindparam("sub"),
            _d.c.status == PENDING,
            _d.c.next_attempt_at <= sa.bindparam("now"),
            ~blocked,
        )
        .order_by(_d.c.next_attempt_at, _d.c.id)
        .limit(sa.bindparam("limit"))
    )
    if dialect == "postgresql":
        pick = pick.with_for_update(skip_locked=True, of=_d)
    return pick


def _claimed(row: Any, sub: Subscription) -> Claimed:
    m = row._mapping
    return Claimed(
        id=int(m["id"]),
        event_id=int(m["event_id"]),
        ticket_id=m["ticket_id"],
        subscription=sub,
        payload=m["payload"],
        webhook_id=delivery_fanout.webhook_id(int(m["event_id"])),
        round_attempt=int(m["attempts"]),
        attempt=int(m["tries"]),
    )
