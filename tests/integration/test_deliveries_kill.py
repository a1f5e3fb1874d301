"""Deliveries survive a SIGKILL of the daemon (issue 17): nothing lost, nothing delivered twice
except an attempt whose answer was lost.

Per trial: a fresh database with one subscription to a real ``WebhookReceiver`` (every request
verified with the official ``standardwebhooks`` library) and ``RELEASES`` × ``PER_RELEASE``
pending deliveries; a child (``tests.support.delivery_child``: the real ``DeliveryWorker``,
store and ``Sender``) sends them and is SIGKILLed once or twice at random points (seeded: after
a random number of receipts; the seed is printed, ``ROLLOUT_TEST_KILL_SEED`` repeats it). The
receiver answers each request's body a byte at a time, so kills land while answers are on
their way. Right after each kill the deliveries the dead child held (``sending``) are read from
the database. A new child, its clock ahead by a lease (as if it had waited the killed one's
leases out), then finishes the work.

After each trial: every delivery's webhook-id was received and verified; every delivery is
``delivered`` with exactly one successful attempt recorded; each release's FIRST receipts came
in its sequence order; a webhook-id received twice was in flight at a kill, and there are no
more repeats than deliveries in flight at the kills (at least once: the receiver dedupes on
``webhook-id``). 20 trials on SQLite, 3 on PostgreSQL; the next trial's database, receiver and
children are made ready while one runs (about 50 s for SQLite's 20 on a busy 2-core machine).
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import contextlib
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from bridge.store import database, subscription_store
from tests.support import delivery_child as dc
from tests.support.pg_server import PostgresServer
from tests.support.webhook_receiver import Answer, WebhookReceiver

TRIALS = {"sqlite": 20, "postgresql": 3}
RELEASES, PER_RELEASE = 8, 8
SLOW = Answer(status=200, body=b"ok", trickle=0.003)  # its body takes a few milliseconds
DONE_TIMEOUT = 60.0
SEED = int(os.environ.get("ROLLOUT_TEST_KILL_SEED", "0")) or random.SystemRandom().randrange(
    1, 2**31
)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    kills_at: list[int]  # receipts counted when each kill was sent
    in_flight: int  # deliveries held by the killed children, summed over the kills
    repeats: int  # receipts beyond the first of their webhook-id


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


@dataclass
class Trial:
    """A trial made ready: its database filled, its receiver listening, its children started
    (Python's start-up is not the test's subject: each waits for its turn)."""

    url: str
    receiver: WebhookReceiver
    ids: list[str]
    kills_at: list[int]  # receipts counted when each kill is sent
    children: list[dc.Child]
    closing: contextlib.ExitStack

    @classmethod
    def prepare(cls, new_db: NewDatabase, name: str, workdir: Path, kills_at: list[int]) -> Trial:
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(new_db(name))
            secret = subscription_store.new_secret()
            receiver = stack.enter_context(WebhookReceiver(secret))
            receiver.script(*[SLOW] * (4 * RELEASES * PER_RELEASE))
            ids = dc.fill(url, receiver.url, secret, releases=RELEASES, per_release=PER_RELEASE)
            workdir.mkdir(parents=True, exist_ok=True)
            children = [
                dc.Child.start(url, f"child-{g}", workdir / "child.log", ahead=g * dc.AHEAD_STEP)
                for g in range(len(kills_at) + 1)
            ]
            stack.callback(lambda: [c.kill() for c in children if c.alive()])
            return cls(url, receiver, ids, kills_at, children, stack.pop_all())

    def close(self) -> None:
        self.closing.close()


def run_trial(trial: Trial) -> Outcome:
    receiver, ids, kills_at = trial.receiver, trial.ids, trial.kills_at
    total = len(ids)
    assert total == RELEASES * PER_RELEASE
    engine = database.create_engine(trial.url)
    try:
        held: set[str] = set()
        in_flight = 0
        for child, target in zip(trial.children, kills_at, strict=False):
            child.go()
            try:
                receiver.wait_for(target, timeout=30)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; {child.failure()}") from None
            child.kill()
            holding = [
                r.webhook_id
                for r in dc.state(engine)
                if r.status == "sending" and r.locked_by == child.name
            ]
            held.update(holding)
            in_flight += len(holding)
        last = trial.children[-1]
        last.go()
        wait(
            lambda: all(r.status == "delivered" for r in dc.state(engine)) or not last.alive(),
            DONE_TIMEOUT,
            "every delivery delivered",
        )
        last.stop()
        receipts = receiver.receipts
        rows = dc.state(engine)
        recorded = dc.successes(engine)
    finally:
        engine.dispose()

    # A request the kill cut short reaches the receiver incomplete and fails verification:
    # not a delivery, and only ever one that was in flight.
    cut = [r for r in receipts if len(r.body) < int(r.headers.get("content-length", "0"))]
    assert {str(r.webhook_id) for r in cut} <= held
    assert [r for r in receipts if r not in cut and (not r.verified or r.status != 200)] == []
    receipts = [r for r in receipts if r not in cut]
    assert collections.Counter(r.status for r in rows) == {"delivered": total}
    received = collections.Counter(str(r.webhook_id) for r in receipts)
    assert set(received) == set(ids), "a delivery was never received"
    # The books count each delivery once, whoever sent it how often.
    assert {row.id: len(recorded.get(row.id, [])) for row in rows} == {row.id: 1 for row in rows}
    assert dc.order_problems([r.payload for r in receipts], rows) == []
    repeated = {wid: n - 1 for wid, n in received.items() if n > 1}
    assert set(repeated) <= held, (
        f"received twice but never in flight at a kill: {sorted(set(repeated) - held)}; "
        f"held {sorted(held)}; kills at {kills_at}"
    )
    assert sum(repeated.values()) <= in_flight
    return Outcome(kills_at=kills_at, in_flight=in_flight, repeats=sum(repeated.values()))


NewDatabase = Callable[[str], contextlib.AbstractContextManager[str]]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_db(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> NewDatabase:
    """Fresh, migrated databases (one per name) on the test's backend (made from any
    thread)."""
    server: PostgresServer | None = (
        request.getfixturevalue("pg_server") if backend == "postgresql" else None
    )

    @contextlib.contextmanager
    def sqlite(name: str) -> Iterator[str]:
        path = tmp_path / name
        path.mkdir(parents=True)
        url = database.default_url(path)
        _migrate(url)
        yield url

    @contextlib.contextmanager
    def postgresql(name: str) -> Iterator[str]:
        assert server is not None
        dbname = f"kill_{os.getpid()}_{name.replace('-', '_')}"
        with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=dbname):
            url = server.url(dbname)
            _migrate(url)
            yield url

    return sqlite if backend == "sqlite" else postgresql


def _migrate(url: str) -> None:
    engine = database.create_engine(url)
    database.migrate(engine)
    engine.dispose()


def test_a_sigkill_during_deliveries_loses_nothing_and_repeats_only_what_was_in_flight(
    backend: str, new_db: NewDatabase, tmp_path: Path
) -> None:
    rng = random.Random(f"{SEED}-{backend}")
    print(f"\nkill seed {SEED} ({backend}); ROLLOUT_TEST_KILL_SEED={SEED} repeats it")
    outcomes = []
    count = TRIALS[backend]
    plans = [sorted(rng.sample(range(1, RELEASES * PER_RELEASE), rng.choice([1, 2])))
             for _ in range(count)]  # fmt: skip

    def prepare(n: int) -> Trial:
        return Trial.prepare(new_db, f"db-{n}", tmp_path / f"trial-{n}", plans[n - 1])

    # The next trial is made ready while one runs.
    with futures.ThreadPoolExecutor(1) as helper:
        coming: futures.Future[Trial] | None = helper.submit(prepare, 1)
        try:
            for n in range(1, count + 1):
                assert coming is not None
                trial, coming = coming.result(), None
                started = time.monotonic()
                if n < count:
                    coming = helper.submit(prepare, n + 1)
                try:
                    outcome = run_trial(trial)
                finally:
                    trial.close()
                outcomes.append(outcome)
                print(
                    f"trial {n:2d}: killed at {outcome.kills_at} receipts, {outcome.in_flight} "
                    f"in flight, {outcome.repeats} received twice "
                    f"({time.monotonic() - started:.1f} s)"
                )
        finally:
            if coming is not None:
                coming.result().close()
    # The kills did land while deliveries were on their way (or the test shows nothing).
    assert sum(o.in_flight for o in outcomes) > 0
