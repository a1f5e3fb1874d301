"""The daemon's sending (issue 17), against real receivers on loopback and a real database
(SQLite and PostgreSQL): every delivery verified by the official ``standardwebhooks`` library
(and GitHub's ``X-Hub-Signature-256`` check where asked), in sequence order per release, each
attempt recorded with its headers redacted, and one endpoint that hangs never holding back
another's deliveries."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import sqlalchemy as sa

from bridge import records
from bridge.records import RolloutState as S
from bridge.settings import model
from bridge.store import deliveries, queue, subscription_store, tables
from repo_daemon.deliveries import destinations, outbound, worker
from tests.support.webhook_receiver import Answer, GitHubReceiver, WebhookReceiver

HOOKS = model.WebhookSettings(
    allow_cidrs=("127.0.0.0/8",), retry_schedule=(0.0, 0.2, 0.2), timeout=2.0, poll_interval=0.05
)


def _request(ticket: int, transaction: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=transaction, current=S.UNVERIFIED,
        previous=S.SUBMITTED, actor="alice",
    )  # fmt: skip


@pytest.fixture
def jobs(make_queue: Callable[..., queue.Queue]) -> queue.Queue:
    return make_queue()


@pytest.fixture
def sending(jobs: queue.Queue) -> Iterator[Callable[..., worker.DeliveryWorker]]:
    made: list[tuple[worker.DeliveryWorker, outbound.Sender]] = []

    def make(hooks: model.WebhookSettings = HOOKS) -> worker.DeliveryWorker:
        sender = outbound.Sender(
            destinations.DestinationPolicy.from_cidrs(hooks.allow_cidrs), timeout=hooks.timeout
        )
        store = deliveries.DeliveryStore(jobs.engine, clock=queue.utcnow)
        made.append(
            (worker.DeliveryWorker(store, sender, hooks, worker="w1", clock=queue.utcnow), sender)
        )
        return made[-1][0]

    yield make
    for w, sender in made:
        w.close()
        sender.close()


def _subscribe(jobs: queue.Queue, name: str, url: str, *, github: bool = False) -> str:
    subs = subscription_store.SubscriptionStore(jobs.engine, clock=queue.utcnow)
    spec = subscription_store.Spec(url=url, kinds=("job_queued",), github_signature=github)
    return subs.add(name, spec, actor="op", enabled=True)[1]


def test_every_delivery_is_verified_by_both_receivers_in_order_per_release(
    jobs: queue.Queue, sending: Callable[..., worker.DeliveryWorker]
) -> None:
    secret = subscription_store.new_secret()
    with WebhookReceiver(secret) as standard, GitHubReceiver(secret) as github:
        subs = subscription_store.SubscriptionStore(jobs.engine, clock=queue.utcnow)
        kinds = ("job_queued",)
        subs.add(
            "std",
            subscription_store.Spec(url=standard.url, kinds=kinds),
            actor="op",
            enabled=True,
            secret=secret,
        )
        subs.add(
            "gh",
            subscription_store.Spec(url=github.url, kinds=kinds, github_signature=True),
            actor="op",
            enabled=True,
            secret=secret,
        )
        for round_ in range(3):
            jobs.enqueue_many([_request(t, 100 * round_ + t) for t in (1, 2, 3)])
        assert sending().drain() == 18
        for receiver in (standard, github):
            got = receiver.wait_for(9)
            assert all(r.verified for r in got), [r.problem for r in got]
            per_release: dict[int, list[int]] = {}
            for r in got:
                per_release.setdefault(r.payload["data"]["ticket"], []).append(
                    r.payload["sequence"]
                )
            assert all(seqs == sorted(seqs) for seqs in per_release.values())
            assert len({r.webhook_id for r in got}) == 9
    a = tables.delivery_attempts
    with jobs.engine.connect() as conn:
        headers = [json.loads(h) for h in conn.execute(sa.select(a.c.request_headers)).scalars()]
    signed = [
        h.get("webhook-signature", "")
        + h.get("x-hub-signature-256", h.get("X-Hub-Signature-256", ""))
        for h in headers
    ]
    assert all("redacted" in s for s in signed) and not any(
        secret[6:20] in json.dumps(h) for h in headers
    )


def test_an_endpoint_that_hangs_does_not_hold_back_another(
    jobs: queue.Queue, sending: Callable[..., worker.DeliveryWorker]
) -> None:
    slow_secret = _secret = subscription_store.new_secret()
    with WebhookReceiver(slow_secret) as slow, WebhookReceiver(_secret) as fast:
        subscription_store.SubscriptionStore(jobs.engine, clock=queue.utcnow).add(
            "slow",
            subscription_store.Spec(url=slow.url, kinds=("job_queued",)),
            actor="op",
            enabled=True,
            secret=slow_secret,
        )
        subscription_store.SubscriptionStore(jobs.engine, clock=queue.utcnow).add(
            "fast",
            subscription_store.Spec(url=fast.url, kinds=("job_queued",)),
            actor="op",
            enabled=True,
            secret=_secret,
        )
        slow.script(*[Answer(hang=True)] * 20)
        jobs.enqueue_many([_request(t, t) for t in range(1, 21)])
        w = sending(replace(HOOKS, timeout=5.0, workers=4))
        # Step until the fast endpoint has all of its 20, while the slow one's hang.
        for _ in range(200):
            w.step()
            if len(fast.receipts) >= 20:
                break
        assert len(fast.receipts) == 20 and all(r.verified for r in fast.receipts)
        assert len(slow.receipts) <= 2  # half the slots at most, each waiting on its answer
        w.stop()
        slow.stop()


def test_during_a_rotation_both_secrets_sign_then_only_the_new_one(
    jobs: queue.Queue, sending: Callable[..., worker.DeliveryWorker]
) -> None:
    old = subscription_store.new_secret()
    subs = subscription_store.SubscriptionStore(jobs.engine, clock=queue.utcnow)
    with WebhookReceiver(old) as still_old:
        spec = subscription_store.Spec(url=still_old.url, kinds=("job_queued",))
        subs.add("s", spec, actor="op", enabled=True, secret=old)
        _sub, new = subs.rotate_secret("s", actor="op", overlap=3600)
        jobs.enqueue_many([_request(1, 1)])
        w = sending()
        w.drain()
        (during,) = still_old.wait_for(1)
        assert during.verified  # a receiver not yet told the new secret still verifies
        assert len(during.headers["webhook-signature"].split()) == 2
        subs.rotate_secret("s", actor="op", overlap=0, secret=subscription_store.new_secret())
        jobs.enqueue_many([_request(1, 2)])
        w.drain()
        after = still_old.wait_for(2)[1]
        assert not after.verified and len(after.headers["webhook-signature"].split()) == 1
    assert new != old
