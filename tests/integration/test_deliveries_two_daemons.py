"""Two daemons share the deliveries of one PostgreSQL (issue 17): two child processes
(``tests.support.delivery_child``: the real ``DeliveryWorker``, store and ``Sender`` each, on
their own engine) send 500 deliveries of 50 releases to a real ``WebhookReceiver`` (every
request verified with the official ``standardwebhooks`` library). Both are running when the
events are written, as daemons are.

Without kills nothing is repeated: each webhook-id is received exactly once and recorded as
one successful attempt; both daemons did part of the work (the attempts' ``worker``); and
each release's deliveries arrived in its sequence order although the two daemons interleave.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from bridge.store import database, subscription_store
from tests.support import delivery_child as dc
from tests.support.pg_server import PostgresServer
from tests.support.webhook_receiver import WebhookReceiver

RELEASES, PER_RELEASE = 50, 10
DONE_TIMEOUT = 90.0


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    name = f"two_daemons_{os.getpid()}"
    with DatabaseJanitor(
        user=pg_server.user, host=pg_server.host, port=pg_server.port, dbname=name
    ):
        url = pg_server.url(name)
        engine = database.create_engine(url)
        database.migrate(engine)
        engine.dispose()
        yield url


def test_two_daemons_share_the_deliveries_each_sent_once_in_order(
    pg_url: str, tmp_path: Path
) -> None:
    secret = subscription_store.new_secret()
    receiver = WebhookReceiver(secret)
    engine = database.create_engine(pg_url)
    names = ("daemon-a", "daemon-b")
    children = [dc.Child.start(pg_url, name, tmp_path / f"{name}.log") for name in names]
    try:
        for child in children:
            child.ready()
            child.go()
        ids = dc.fill(pg_url, receiver.url, secret, releases=RELEASES, per_release=PER_RELEASE)
        total = len(ids)
        assert total == RELEASES * PER_RELEASE
        receiver.wait_for(total, timeout=DONE_TIMEOUT)
        deadline = time.monotonic() + 30
        while any(r.status != "delivered" for r in dc.state(engine)):
            assert time.monotonic() < deadline, "received but not all recorded as delivered"
            assert all(c.alive() for c in children), [c.failure() for c in children]
            time.sleep(0.02)
        for child in children:
            child.stop()
        receipts = receiver.receipts
        rows = dc.state(engine)
        recorded = dc.successes(engine)
    finally:
        for child in children:
            if child.alive():
                child.kill()
        receiver.stop()
        engine.dispose()

    assert [r for r in receipts if not r.verified or r.status != 204] == []
    received = collections.Counter(str(r.webhook_id) for r in receipts)
    assert sorted(received) == sorted(ids)
    assert {wid: n for wid, n in received.items() if n > 1} == {}, "sent twice without a kill"
    assert collections.Counter(r.status for r in rows) == {"delivered": total}
    assert {row.id: len(recorded.get(row.id, [])) for row in rows} == {row.id: 1 for row in rows}
    shares = collections.Counter(worker for workers in recorded.values() for worker in workers)
    print(f"\nshares of {total} deliveries: {dict(shares)}")
    assert set(shares) == set(names) and min(shares.values()) >= total // 10
    assert dc.order_problems([r.payload for r in receipts], rows) == []
