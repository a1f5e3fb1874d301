"""Deliveries in the database (issue 17), on SQLite and PostgreSQL: made in the event's own
transaction for the subscriptions that want it, claimed one release at a time in sequence
order, retried by the schedule, given up, disabled by 410, sent again by hand, pruned."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bridge import records, secrets
from bridge.records import RolloutState as S
from bridge.settings import model
from bridge.store import (
    deliveries,
    delivery_health,
    event_log,
    events,
    queue,
    releases,
    subscription_store,
    subscriptions,
    tables,
)
from bridge.store.subscriptions import Filters

SCHEDULE = (0.0, 10.0, 20.0)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _request(ticket: int, transaction: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=transaction, current=S.UNVERIFIED,
        previous=S.SUBMITTED, actor="alice",
    )  # fmt: skip


def _result(
    claimed: deliveries.Claimed, status: int | None, **kw: object
) -> deliveries.AttemptResult:
    return deliveries.AttemptResult(
        delivery_id=claimed.id,
        attempt=claimed.attempt,
        request_headers={"webhook-id": claimed.webhook_id},
        status=status,
        response_body=b"ok",
        duration=0.01,
        error_class=None if status and 200 <= status < 300 else ("http" if status else "refused"),
        error=None if status and 200 <= status < 300 else "no",
        **kw,  # type: ignore[arg-type]
    )


def _setup(
    make_queue: Callable[..., queue.Queue],
) -> tuple[queue.Queue, Clock, subscription_store.SubscriptionStore, deliveries.DeliveryStore]:
    clock = Clock()
    # One clock for the events (the queue writes them) and the deliveries: with the wall clock
    # on one side, deliveries made at a later real time looked not yet due.
    jobs = make_queue(clock=clock)
    subs = subscription_store.SubscriptionStore(jobs.engine, clock=clock)
    return jobs, clock, subs, deliveries.DeliveryStore(jobs.engine, clock=clock)


def test_an_event_gets_one_delivery_per_matching_subscription_in_its_transaction(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs, _clock, subs, _store = _setup(make_queue)
    releases.ReleaseStore(jobs.engine).ensure(
        7, state=S.SUBMITTED, major_release="UMD-5", emergency=False
    )
    subs.add(
        "all-queued",
        subscription_store.Spec(url="https://a.example/h", kinds=("job_*",)),
        actor="op",
        enabled=True,
    )
    subs.add(
        "umd4-only",
        subscription_store.Spec(
            url="https://b.example/h", kinds=("*",), filters=Filters(major_releases=("UMD-4",))
        ),
        actor="op",
        enabled=True,
    )
    jobs.enqueue_many([_request(7, 100)])
    d, log = tables.deliveries, tables.event_log
    with jobs.engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.subscription_id, d.c.kind, d.c.event_id, d.c.payload)
        ).all()
        queued = conn.execute(
            sa.select(log.c.id, log.c.seq).where(log.c.kind == "job_queued")
        ).one()
    assert [(r.kind, r.event_id) for r in rows] == [("job_queued", queued.id)]
    body = json.loads(rows[0].payload)
    assert body["id"] == f"evt_{queued.id}" and body["type"] == "job_queued"
    assert body["sequence"] == queued.seq and body["data"]["ticket"] == 7
    assert body["data"]["major_release"] == "UMD-5"


def test_one_release_goes_out_in_order_and_retries_follow_the_schedule(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs, clock, subs, store = _setup(make_queue)
    subs.add(
        "s",
        subscription_store.Spec(url="https://a.example/h", kinds=("job_queued",)),
        actor="op",
        enabled=True,
    )
    jobs.enqueue_many([_request(1, 10), _request(2, 20)])
    jobs.enqueue_many([_request(1, 11)])
    first = store.claim("w", limit=10, lease_seconds=30)
    # Ticket 1's second delivery waits behind its first; ticket 2's goes beside it.
    assert sorted(c.ticket_id or 0 for c in first) == [1, 2]
    store.finish(
        "w",
        [_result(c, 503 if c.ticket_id == 1 else 204) for c in first],
        schedule=SCHEDULE,
        jitter=0,
    )
    assert store.claim("w", limit=10, lease_seconds=30) == []  # ticket 1 waits 10 s
    clock.advance(10)
    again = store.claim("w", limit=10, lease_seconds=30)
    assert [(c.ticket_id, c.round_attempt) for c in again] == [(1, 2)]
    store.finish("w", [_result(again[0], 200)], schedule=SCHEDULE, jitter=0)
    last = store.claim("w", limit=10, lease_seconds=30)
    assert [c.ticket_id for c in last] == [1] and last[0].event_id > again[0].event_id
    # It fails for its whole schedule, and is given up; nothing of ticket 1 is left waiting.
    for wait in (0, 10, 20):
        clock.advance(wait)
        got = last if wait == 0 else store.claim("w", limit=10, lease_seconds=30)
        store.finish("w", [_result(got[0], None)], schedule=SCHEDULE, jitter=0)
    d = tables.deliveries
    with jobs.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(d.c.id, d.c.status)).all())
        kinds = conn.execute(sa.select(tables.event_log.c.kind)).scalars().all()
    assert sorted(statuses.values()) == ["delivered", "delivered", "failed"]
    assert "delivery_gave_up" in kinds
    sub = subs.get("s")
    assert sub.failures == 3 and sub.failing_since is not None

    count, none = store.recover("s", since=clock.now - timedelta(days=1), actor="op", dry_run=True)
    assert (count, none) == (1, None)
    count, rid = store.recover("s", since=clock.now - timedelta(days=1), actor="op", dry_run=False)
    assert count == 1 and rid is not None
    assert store.cancel_recovery(rid, actor="op") == 1


def test_410_disables_the_subscription_and_its_delivery_waits_for_it(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs, _clock, subs, store = _setup(make_queue)
    subs.add(
        "s",
        subscription_store.Spec(url="https://a.example/h", kinds=("job_queued",)),
        actor="op",
        enabled=True,
    )
    jobs.enqueue_many([_request(1, 10)])
    (c,) = store.claim("w", limit=10, lease_seconds=30)
    store.finish("w", [_result(c, 410)], schedule=SCHEDULE, jitter=0)
    sub = subs.get("s")
    assert not sub.enabled and "410" in (sub.disabled_reason or "")
    assert store.claim("w", limit=10, lease_seconds=30) == []
    subs.enable("s", actor="op", how="ping")
    (again,) = store.claim("w", limit=10, lease_seconds=30)
    assert again.id == c.id and again.webhook_id == c.webhook_id


def test_a_failing_endpoint_is_warned_then_disabled_once_per_step_with_notices(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs, clock, subs, store = _setup(make_queue)
    health = delivery_health.Health(jobs.engine, clock=clock)
    subs.add(
        "s",
        subscription_store.Spec(url="https://a.example/h", kinds=("job_queued",)),
        actor="op",
        enabled=True,
    )
    jobs.enqueue_many([_request(1, 10), _request(2, 20)])
    for c in store.claim("w", limit=10, lease_seconds=30):
        store.finish("w", [_result(c, 500)], schedule=(0.0, 1000.0), jitter=0)
    budget = dict(disable_after=100.0, min_failures=2)
    assert health.judge(**budget) == []
    clock.advance(50)
    assert health.judge(**budget) == ["s: warned at 50 % of its budget"]
    assert health.judge(**budget) == []  # once per step
    clock.advance(45)
    assert health.judge(**budget) == ["s: warned at 90 % of its budget"]
    clock.advance(5)
    (disabled,) = health.judge(**budget)
    assert disabled.startswith("s: disabled (failing since")
    assert not subs.get("s").enabled
    said = [(n.ticket_id, n.step) for n in health.unsaid()]
    assert sorted(said) == sorted(
        (t, step) for t in (1, 2) for step in ("warned_50", "warned_90", "disabled")
    )
    for notice in health.unsaid():
        health.said(notice)
    assert health.unsaid() == [] and health.judge(**budget) == []
    with jobs.engine.connect() as conn:
        log = tables.event_log
        which = sa.select(log.c.kind).where(log.c.kind.like("subscription_%")).order_by(log.c.id)
        kinds = conn.execute(which).scalars().all()
    assert kinds == [
        "subscription_changed",
        "subscription_warned",
        "subscription_warned",
        "subscription_disabled",
    ]


def test_retention_deletes_finished_deliveries_only(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs, clock, subs, store = _setup(make_queue)
    subs.add(
        "s",
        subscription_store.Spec(url="https://a.example/h", kinds=("job_queued",)),
        actor="op",
        enabled=True,
    )
    jobs.enqueue_many([_request(1, 10), _request(2, 20)])
    first, second = store.claim("w", limit=10, lease_seconds=30)
    store.finish("w", [_result(first, 200), _result(second, 500)], schedule=(0.0, 1000.0), jitter=0)
    clock.advance(86400 * 31)
    assert store.prune(older_than=clock.now - timedelta(days=30)) == (1, 1)
    d = tables.deliveries
    with jobs.engine.connect() as conn:
        left = conn.execute(sa.select(d.c.id, d.c.status)).all()
    assert [(r.id, r.status) for r in left] == [(second.id, "pending")]


def test_a_rolled_back_change_leaves_neither_its_event_nor_its_delivery(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs, clock, subs, _store = _setup(make_queue)
    subs.add(
        "s",
        subscription_store.Spec(url="https://a.example/h", kinds=("*",)),
        actor="op",
        enabled=True,
    )

    class Boom(Exception):
        pass

    try:
        with jobs.engine.begin() as conn:
            event_log.append(
                conn,
                [event_log.draft(events.EventKind.RT_CALLS, ticket_id=5, data={"calls": 1})],
                now=clock(),
            )
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(tables.deliveries)).scalar_one()
                == 1
            )
            raise Boom
    except Boom:
        pass
    with jobs.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(tables.deliveries)).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                sa.select(sa.func.count()).where(tables.event_log.c.kind == "rt_calls")
            ).scalar_one()
            == 0
        )


def test_declared_subscriptions_follow_the_settings_file(
    make_queue: Callable[..., queue.Queue],
) -> None:
    _jobs, _clock, subs, _store = _setup(make_queue)
    one = model.DeclaredSubscription(
        name="mirror", url="https://m.example/h", secret=secrets.Secret("whsec_" + "A" * 32),
        kinds=("release_*",),
    )  # fmt: skip
    assert subs.sync_declared([one], actor="bridge") == ["added mirror"]
    assert subs.sync_declared([one], actor="bridge") == []
    changed = replace(one, url="https://m.example/h2", secret=secrets.Secret("whsec_" + "B" * 32))
    assert subs.sync_declared([changed], actor="bridge") == [
        "edited mirror",
        "new secret for mirror",
    ]
    got = subs.get("mirror")
    assert (
        got.declared
        and got.url == "https://m.example/h2"
        and got.secret.reveal().endswith("B" * 32)
    )
    with pytest.raises(subscriptions.SubscriptionDeclared):
        subs.edit("mirror", subscription_store.Spec(url="https://x.example/"), actor="op")
    with pytest.raises(subscriptions.SubscriptionDeclared):
        subs.remove("mirror", actor="op")
    assert subs.sync_declared([], actor="bridge") == ["removed mirror (no longer declared)"]
    assert subs.all() == []
