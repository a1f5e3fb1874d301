"""A small story of webhook deliveries for the subscriptions' and deliveries' commands, API and
docs: two subscriptions (``mirror`` answering, ``ci`` failing), the job_queued events of three
tickets delivered to both, on a fixed clock. ``ci``'s deliveries fail for good (a schedule of
one attempt); one of ``mirror``'s is still pending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bridge import records
from bridge.records import RolloutState as S
from bridge.store import deliveries, queue, subscription_store

T0 = datetime(2026, 12, 6, 12, 0, 0)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Story:
    clock: Clock
    subs: subscription_store.SubscriptionStore
    store: deliveries.DeliveryStore
    secrets: dict[str, str]


def request(ticket: int, transaction: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=transaction, current=S.UNVERIFIED,
        previous=S.SUBMITTED, actor="alice",
    )  # fmt: skip


def attempt(
    claimed: deliveries.Claimed, status: int | None, error: str | None = None
) -> deliveries.AttemptResult:
    ok = status is not None and 200 <= status < 300
    return deliveries.AttemptResult(
        delivery_id=claimed.id,
        attempt=claimed.attempt,
        request_headers={
            "webhook-id": claimed.webhook_id,
            "webhook-signature": "v1,<redacted>",
            "content-type": "application/json",
        },
        status=status,
        response_body=b"ok" if ok else b"upstream down",
        duration=0.012,
        error_class=None if ok else ("http" if status else "refused"),
        error=None if ok else (error or f"HTTP {status}"),
    )


def write(engine: sa.Engine, clock: Clock | None = None) -> Story:
    clock = clock or Clock()
    subs = subscription_store.SubscriptionStore(engine, clock=clock)
    store = deliveries.DeliveryStore(engine, clock=clock)
    jobs = queue.Queue(engine, clock=clock)
    secrets = {}
    for name, url in (("mirror", "https://mirror.example.org/hook"),
                      ("ci", "https://ci.example.org/rollout")):  # fmt: skip
        _sub, secrets[name] = subs.add(
            name,
            subscription_store.Spec(url=url, kinds=("job_queued",), description=f"the {name}"),
            actor="ops",
            enabled=True,
        )
    jobs.enqueue_many([request(4242, 100), request(4243, 101)])
    clock.advance(60)
    claimed = store.claim("repo1", limit=10, lease_seconds=30)
    store.finish(
        "repo1",
        [
            attempt(c, 204 if c.subscription.name == "mirror" else None, "connection refused")
            for c in claimed
        ],
        schedule=(0.0,),
        jitter=0,
    )
    clock.advance(60)
    jobs.enqueue_many([request(4244, 102)])  # waits: nobody claims it
    clock.advance(60)
    return Story(clock=clock, subs=subs, store=store, secrets=secrets)
