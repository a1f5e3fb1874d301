"""Reading the deliveries: lists with filters in keyset pages (newest first, by id), one
delivery with its attempts, each subscription's figures (what waits, since when, what failed,
what was delivered, how far into its failure budget), its recoveries, and who disabled each
disabled subscription.

Read only: it changes nothing (``deliveries`` and ``delivery_resend`` do) and judges nothing
(the commands and the API decide what is a problem).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store import delivery_fanout, delivery_resend, tables
from bridge.store import events as eventlog

STATUSES = delivery_resend.STATUSES
OPEN = delivery_resend.OPEN
DeliveryNotFound = delivery_resend.DeliveryNotFound


@dataclass(frozen=True, kw_only=True)
class Filters:
    """Which deliveries a list shows (None: any)."""

    subscription: str | None = None
    status: str | None = None
    ticket_id: int | None = None
    since: datetime | None = None  # created at or after (naive UTC)


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One delivery as listed (its body is in ``Detail``)."""

    id: int
    subscription: str
    event_id: int
    webhook_id: str
    kind: str
    ticket_id: int | None
    seq: int | None
    status: str
    attempts: int  # in the current round of the schedule
    next_attempt_at: datetime
    created_at: datetime
    finished_at: datetime | None
    last_status: int | None
    last_error: str | None
    recovery_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscription": self.subscription,
            "event_id": self.event_id,
            "webhook_id": self.webhook_id,
            "kind": self.kind,
            "ticket_id": self.ticket_id,
            "seq": self.seq,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at) if self.status in OPEN else None,
            "created_at": iso(self.created_at),
            "finished_at": iso(self.finished_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
            "recovery_id": self.recovery_id,
        }


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One try of a delivery: what was sent (signatures redacted) and what came back."""

    attempt: int
    at: datetime
    worker: str
    request_headers: Mapping[str, str]
    status: int | None
    response_body: str
    duration_ms: float
    error_class: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "at": iso(self.at),
            "worker": self.worker,
            "request_headers": dict(self.request_headers),
            "status": self.status,
            "response_body": self.response_body,
            "duration_ms": self.duration_ms,
            "error_class": self.error_class,
            "error": self.error,
        }


@dataclass(frozen=True, kw_only=True)
class Detail:
    """One delivery with its body and every attempt kept, oldest first."""

    delivery: Delivery
    payload: str
    attempts: tuple[Attempt, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.delivery.as_dict(),
            "payload": json.loads(self.payload),
            "attempt_log": [a.as_dict() for a in self.attempts],
        }


@dataclass(frozen=True, kw_only=True)
class Page:
    """Deliveries newest first; ``next_before`` is the id to ask ``before`` for the next page
    (None when this page is the last)."""

    deliveries: tuple[Delivery, ...]
    next_before: int | None


@dataclass(frozen=True, kw_only=True)
class Figures:
    """One subscription's deliveries in numbers, at ``now``."""

    pending: int  # pending or being sent
    oldest_pending_at: datetime | None
    failed: int  # failed for good (schedule used up) and not queued again
    delivered_24h: int
    budget_percent: float | None  # time failing as a share of the budget; None when not failing

    def oldest_pending_age(self, now: datetime) -> timedelta | None:
        return None if self.oldest_pending_at is None else now - self.oldest_pending_at

    def as_dict(self, now: datetime) -> dict[str, Any]:
        age = self.oldest_pending_age(now)
        return {
            "pending": self.pending,
            "oldest_pending_at": iso(self.oldest_pending_at),
            "oldest_pending_seconds": None if age is None else round(age.total_seconds()),
            "failed": self.failed,
            "delivered_24h": self.delivered_24h,
            "budget_percent": self.budget_percent,
        }


@dataclass(frozen=True, kw_only=True)
class Recovery:
    """A ``recover`` request: its failed deliveries since ``since``, queued again."""

    id: int
    subscription: str
    since: datetime
    asked_by: str
    at: datetime
    count: int
    waiting: int  # of them, not sent yet
    cancelled_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "subscription": self.subscription,
            "since": iso(self.since),
            "asked_by": self.asked_by,
            "at": iso(self.at),
            "count": self.count,
            "waiting": self.waiting,
            "cancelled_at": iso(self.cancelled_at),
        }


def iso(value: datetime | None) -> str | None:
    """Naive UTC as ISO 8601 with ``Z`` (seconds), as the subscriptions' records show it."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def _columns() -> list[Any]:
    d, s = tables.deliveries, tables.subscriptions
    return [*(c for c in d.c if c.name != "payload"), s.c.name.label("subscription")]


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(
        id=int(m["id"]),
        subscription=m["subscription"],
        event_id=int(m["event_id"]),
        webhook_id=delivery_fanout.webhook_id(int(m["event_id"])),
        kind=m["kind"],
        ticket_id=m["ticket_id"],
        seq=m["seq"],
        status=m["status"],
        attempts=int(m["attempts"]),
        next_attempt_at=m["next_attempt_at"],
        created_at=m["created_at"],
        finished_at=m["finished_at"],
        last_status=m["last_status"],
        last_error=m["last_error"],
        recovery_id=m["recovery_id"],
    )


def page(
    engine: sa.Engine, filters: Filters, *, before: int | None = None, limit: int = 50
) -> Page:
    """Up to ``limit`` deliveries matching ``filters`` with ids below ``before``, newest first.
    Raises ``ValueError`` for a status that is not one."""
    if filters.status is not None and filters.status not in STATUSES:
        raise ValueError(f"{filters.status!r} is not a status ({', '.join(STATUSES)})")
    d, s = tables.deliveries, tables.subscriptions
    stmt = sa.select(*_columns()).join(s, s.c.id == d.c.subscription_id)
    if filters.subscription is not None:
        stmt = stmt.where(s.c.name == filters.subscription)
    if filters.status is not None:
        stmt = stmt.where(d.c.status == filters.status)
    if filters.ticket_id is not None:
        stmt = stmt.where(d.c.ticket_id == filters.ticket_id)
    if filters.since is not None:
        stmt = stmt.where(d.c.created_at >= filters.since)
    if before is not None:
        stmt = stmt.where(d.c.id < before)
    stmt = stmt.order_by(d.c.id.desc()).limit(limit + 1)
    with engine.connect() as conn:
        found = [_delivery(r) for r in conn.execute(stmt)]
    more = len(found) > limit
    found = found[:limit]
    return Page(deliveries=tuple(found), next_before=found[-1].id if more else None)


def get(engine: sa.Engine, delivery_id: int) -> Detail:
    """One delivery with its body and attempts; ``DeliveryNotFound`` when there is none."""
    d, s, a = tables.deliveries, tables.subscriptions, tables.delivery_attempts
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(*_columns(), d.c.payload)
            .join(s, s.c.id == d.c.subscription_id)
            .where(d.c.id == delivery_id)
        ).first()
        if row is None:
            raise DeliveryNotFound(delivery_id)
        attempts = conn.execute(
            sa.select(a).where(a.c.delivery_id == delivery_id).order_by(a.c.attempt, a.c.id)
        ).all()
    return Detail(
        delivery=_delivery(row),
        payload=row.payload,
        attempts=tuple(
            Attempt(
                attempt=int(r.attempt),
                at=r.at,
                worker=r.worker,
                request_headers=json.loads(r.request_headers or "{}"),
                status=r.status,
                response_body=r.response_body or "",
                duration_ms=float(r.duration_ms),
                error_class=r.error_class,
                error=r.error,
            )
            for r in attempts
        ),
    )


def figures(
    engine: sa.Engine,
    *,
    now: datetime,
    disable_after: float,
    failed_since: datetime | None = None,
) -> dict[str, Figures]:
    """Each subscription's figures by name (every subscription, also one with no delivery).
    ``failed`` counts deliveries failed for good, finished at or after ``failed_since`` when
    given; ``budget_percent`` is the time since ``failing_since`` over ``disable_after``."""
    d, s = tables.deliveries, tables.subscriptions
    day_ago = now - timedelta(days=1)
    failed = d.c.status == delivery_resend.FAILED
    if failed_since is not None:
        failed = sa.and_(failed, d.c.finished_at >= failed_since)
    is_open = d.c.status.in_(OPEN)

    def count(condition: Any) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    stmt = (
        sa.select(
            s.c.name,
            s.c.failing_since,
            count(is_open).label("pending"),
            sa.func.min(sa.case((is_open, d.c.created_at), else_=None)).label("oldest"),
            count(failed).label("failed"),
            count(
                sa.and_(d.c.status == delivery_resend.DELIVERED, d.c.finished_at >= day_ago)
            ).label("delivered"),
        )
        .select_from(s.outerjoin(d, d.c.subscription_id == s.c.id))
        .group_by(s.c.id, s.c.name, s.c.failing_since)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return {
        r.name: Figures(
            pending=int(r.pending),
            oldest_pending_at=r.oldest,
            failed=int(r.failed),
            delivered_24h=int(r.delivered),
            budget_percent=budget_percent(r.failing_since, now, disable_after),
        )
        for r in rows
    }


def budget_percent(
    failing_since: datetime | None, now: datetime, disable_after: float
) -> float | None:
    """How much of the failure budget a spell of failures since ``failing_since`` has used, in
    percent (one decimal); None when it is not failing."""
    if failing_since is None:
        return None
    if disable_after <= 0:
        return 100.0
    return round(max(0.0, (now - failing_since).total_seconds()) / disable_after * 100, 1)


def recoveries(engine: sa.Engine, subscription: str | None = None) -> list[Recovery]:
    """The recoveries (of ``subscription``, or all), newest first, each with how many of its
    deliveries still wait."""
    d, s, rec = tables.deliveries, tables.subscriptions, tables.delivery_recoveries
    waiting = (
        sa.select(sa.func.count())
        .where(d.c.recovery_id == rec.c.id, d.c.status.in_(OPEN))
        .scalar_subquery()
    )
    stmt = (
        sa.select(rec, s.c.name.label("subscription"), waiting.label("waiting"))
        .join(s, s.c.id == rec.c.subscription_id)
        .order_by(rec.c.id.desc())
    )
    if subscription is not None:
        stmt = stmt.where(s.c.name == subscription)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [
        Recovery(
            id=int(r.id),
            subscription=r.subscription,
            since=r.since,
            asked_by=r.asked_by,
            at=r.at,
            count=int(r._mapping["count"]),
            waiting=int(r.waiting or 0),
            cancelled_at=r.cancelled_at,
        )
        for r in rows
    ]


def disabled_by(engine: sa.Engine) -> dict[str, str]:
    """Who disabled each subscription last, by name, from the ``subscription_disabled`` events
    (``rollout-bridge`` when the bridge did: 410 Gone, or failing past its budget). A
    subscription whose event retention has deleted is absent."""
    log = tables.event_log
    found: dict[str, str] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(log.c.actor, log.c.data)
            .where(log.c.kind == eventlog.EventKind.SUBSCRIPTION_DISABLED.value)
            .order_by(log.c.id.desc())
        )
        for row in rows:
            name = json.loads(row.data).get("subscription")
            if isinstance(name, str):
                found.setdefault(name, row.actor)
    return found
