"""Helpers for the webhook walks against the real RT (tests/integration/test_webhooks_walk_rt.py):
what each subscription should have received, computed from the event log with the product's
one matching rule (``subscriptions.matches``); webhook settings fit for a test; a clock that a
test moves forward; the attempts and deliveries of a subscription as the database holds them.

It sends nothing and decides nothing about deliveries: it reads what the product wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bridge.settings import model as settings_model
from bridge.store import event_log, queue, subscriptions, tables
from bridge.store import events as eventlog
from bridge.store.subscriptions import Subscription
from tests.support import paths

# A short schedule (the real one waits minutes): about 40 s of retries before giving up, so a
# receiver down for a few seconds is waited for; loopback allowed (it is refused by default).
WALK_HOOKS = settings_model.WebhookSettings(
    allow_cidrs=("127.0.0.0/8",),
    retry_schedule=(0.0, 0.3, 0.6, *([1.0] * 40)),
    jitter=0.1,
    timeout=5.0,
    poll_interval=0.05,
    disable_min_failures=2,
)
OPEN = ("pending", "sending")
# The events written in the transaction that moves a release (its state is their ``to``), and
# the kinds whose ``to`` is the target state (the ``transition_*`` kinds; for the others the
# release's state when they were written).
MOVES = ("transition_done", "transition_failed")
STATE_TO = (*MOVES, "transition_noop", "transition_stale", "transition_blocked")
# The subscriber-facing kinds another change makes the workflow emit.
OUTCOME_KINDS = ("release_reached_production", "release_failed", "release_withdrawn")


def catalogued(kinds: Iterable[str]) -> tuple[str, ...]:
    """The ``kinds`` that are in the event log's catalogue."""
    known = {k.value for k in eventlog.EventKind}
    return tuple(k for k in kinds if k in known)


def emitted_by_product(kind: eventlog.EventKind) -> bool:
    """Whether a product module other than the catalogue names ``kind``: the kind is written
    somewhere (a catalogued kind nobody writes is not yet emitted)."""
    catalogue = paths.ROOT / "bridge" / "store" / "events.py"
    needle = f".{kind.name}"
    for package in ("bridge", "repo_daemon"):
        for path in sorted((paths.ROOT / package).rglob("*.py")):
            if path != catalogue and needle in Path(path).read_text(encoding="utf-8"):
                return True
    return False


class ShiftedClock:
    """The real time (naive UTC, as the tables store it) plus an offset a test moves forward:
    "as time passes", without waiting for it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return queue.utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass(frozen=True, kw_only=True)
class Expected:
    """One delivery a subscription should get: the event it carries."""

    webhook_id: str
    event_id: int
    kind: str
    ticket_id: int | None
    seq: int | None


def head(engine: sa.Engine) -> int:
    """The id of the newest event (0 when the log is empty)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(tables.event_log.c.id))).scalar() or 0)


def expected(
    engine: sa.Engine, subs: Sequence[Subscription], *, after: int
) -> dict[str, list[Expected]]:
    """For each subscription, the events after id ``after`` it wants, in id order.

    The attributes are read from the log alone: the kind, the major release and area the event
    row carries, the target state (the ``to`` of a ``transition_*`` event, else the
    state its release was in: the ``to`` of its newest move so far, or the state it was recorded
    in; none before it was recorded) and emergency likewise."""
    log = tables.event_log
    with engine.connect() as conn:
        rows = conn.execute(sa.select(log).order_by(log.c.id)).all()
    states: dict[int, str] = {}
    emergencies: dict[int, bool] = {}
    wanted: dict[str, list[Expected]] = {s.name: [] for s in subs}
    for row in rows:
        m = row._mapping
        data: dict[str, Any] = json.loads(m["data"])
        ticket = m["ticket_id"]
        if ticket is not None:
            if m["kind"] == eventlog.EventKind.RELEASE_RECORDED.value:
                states[ticket] = str(data.get("state") or "Submitted")
                emergencies[ticket] = bool(data.get("emergency"))
            if m["kind"] in MOVES:
                states[ticket] = str(data["to"])
            if isinstance(data.get("emergency"), bool) and ticket in emergencies:
                emergencies[ticket] = data["emergency"]
        if m["id"] <= after:
            continue
        emergency = data.get("emergency")
        attrs = subscriptions.Attributes(
            kind=m["kind"],
            major_release=m["major_release"],
            area=m["area"],
            target_state=data.get("to")
            if m["kind"] in STATE_TO
            else (states.get(ticket) if ticket is not None else None),
            emergency=emergency
            if isinstance(emergency, bool)
            else (emergencies.get(ticket) if ticket is not None else None),
            subscription=data.get("subscription"),
        )
        for sub in subs:
            if subscriptions.matches(sub, attrs):
                wanted[sub.name].append(
                    Expected(
                        webhook_id=f"evt_{m['id']}",
                        event_id=int(m["id"]),
                        kind=m["kind"],
                        ticket_id=ticket,
                        seq=m["seq"],
                    )
                )
    return wanted


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One row of ``delivery_attempts`` with its delivery's event."""

    delivery_id: int
    event_id: int
    ticket_id: int | None
    attempt: int
    at: datetime
    status: int | None
    error_class: str | None


def attempts(engine: sa.Engine, subscription: str) -> list[Attempt]:
    """Every attempt at a delivery to ``subscription``, in the order they were recorded."""
    a, d, s = tables.delivery_attempts, tables.deliveries, tables.subscriptions
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                a.c.delivery_id,
                d.c.event_id,
                d.c.ticket_id,
                a.c.attempt,
                a.c.at,
                a.c.status,
                a.c.error_class,
            )
            .join(d, d.c.id == a.c.delivery_id)
            .join(s, s.c.id == d.c.subscription_id)
            .where(s.c.name == subscription)
            .order_by(a.c.id)
        ).all()
    return [
        Attempt(
            delivery_id=int(r.delivery_id),
            event_id=int(r.event_id),
            ticket_id=r.ticket_id,
            attempt=int(r.attempt),
            at=r.at,
            status=r.status,
            error_class=r.error_class,
        )
        for r in rows
    ]


def statuses(engine: sa.Engine, subscription: str) -> dict[int, str]:
    """Each delivery to ``subscription`` (by event id) and its status."""
    d, s = tables.deliveries, tables.subscriptions
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.event_id, d.c.status)
            .join(s, s.c.id == d.c.subscription_id)
            .where(s.c.name == subscription)
            .order_by(d.c.event_id)
        ).all()
    return {int(r.event_id): str(r.status) for r in rows}


def open_deliveries(engine: sa.Engine, names: Iterable[str]) -> int:
    """How many deliveries to the subscriptions ``names`` are not finished."""
    d, s = tables.deliveries, tables.subscriptions
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(d.join(s, s.c.id == d.c.subscription_id))
                .where(s.c.name.in_(list(names)), d.c.status.in_(OPEN))
            ).scalar_one()
        )


def events_about(engine: sa.Engine, subscription: str, *, after: int) -> list[eventlog.Event]:
    """The events after id ``after`` about ``subscription`` (its data names it), oldest first."""
    log = tables.event_log
    with engine.connect() as conn:
        rows = conn.execute(sa.select(log).where(log.c.id > after).order_by(log.c.id)).all()
    found = [event_log.event_of(r) for r in rows]
    return [e for e in found if e.data.get("subscription") == subscription]
