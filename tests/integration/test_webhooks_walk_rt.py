"""Issue 17's walks against the real RT 5: releases moved by real people in real groups, the
workflow's events turned into deliveries in the same transactions, and the deliveries sent as
the daemon sends them (``Deliveries.send``) to real receivers on loopback that verify every
request (``standardwebhooks``; GitHub's ``X-Hub-Signature-256``).

1. A walk to Production is delivered exactly as subscribed: each receiver's verified receipts
   are the events its subscription wants, computed from the event log with the product's one
   matching rule, in order, once each; the subscription for another major release gets none.
2. A receiver down for a while gets everything, in order per release, after its retries
   (attempts refused meanwhile); ``Retry-After`` (seconds and an HTTP date) is a floor for the
   next attempt; 410 disables the subscription, its later deliveries wait unattempted, and
   enabling it (as a ping does) sends them in order.
3. An endpoint failing steadily is warned at 50 % and 90 % of its budget and disabled, and the
   real RT ticket of each release whose deliveries wait says so once per step.
"""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks

from bridge.store import events as eventlog
from bridge.store import queue, subscription_store
from bridge.store.subscriptions import Filters, Subscription
from bridge.tracker.client import TrackerClient
from repo_daemon.deliveries import service
from tests.support import webhook_walk as walk
from tests.support.webhook_receiver import Answer, GitHubReceiver, Receipt, WebhookReceiver
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt

OPERATOR = "olga"
K = eventlog.EventKind
NOTICE = "Webhook deliveries about this release"
# What a production system wants: moves, publications, the slot; and, once the workflow emits
# them, the outcomes (subscribed to now where catalogued; asserted once emitted).
PRODUCTION_KINDS = ("transition_done", "release_published", "slot_freed",
                    *walk.catalogued(walk.OUTCOME_KINDS))  # fmt: skip
OUTCOMES_EMITTED = any(
    walk.emitted_by_product(k) for k in K if k.value == "release_reached_production"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Hooked:
    """A subscription and the receiver its URL points at (``path`` tells two apart)."""

    name: str
    receiver: WebhookReceiver
    path: str
    sub: Subscription

    def receipts(self) -> list[Receipt]:
        return [r for r in self.receiver.receipts if r.path == self.path]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("webhook-walk")) as running:
        yield running


@pytest.fixture
def subscribe(bridge: Bridge) -> Iterator[Callable[..., Hooked]]:
    """Add a subscription with a receiver of its own (or ``receiver``, sharing its secret);
    both go when the test ends."""
    store = subscription_store.SubscriptionStore(bridge.queue.engine, clock=queue.utcnow)
    made: list[str] = []
    receivers: list[WebhookReceiver] = []

    def add(
        name: str,
        *,
        kinds: tuple[str, ...] = ("*",),
        filters: Filters | None = None,
        github: bool = False,
        receiver: WebhookReceiver | None = None,
        path: str = "/hook",
        default_status: int = 204,
        receiver_class: type[WebhookReceiver] | None = None,
    ) -> Hooked:
        if receiver is None:
            kind = receiver_class or (GitHubReceiver if github else WebhookReceiver)
            receiver = kind(subscription_store.new_secret(), default_status=default_status)
            receivers.append(receiver)
        spec = subscription_store.Spec(
            url=receiver.url_for(receiver.host, path), kinds=kinds, filters=filters or Filters(),
            github_signature=github,
        )  # fmt: skip
        sub, _ = store.add(name, spec, actor=OPERATOR, enabled=True, secret=receiver.secret)
        made.append(name)
        return Hooked(name=name, receiver=receiver, path=path, sub=sub)

    yield add
    for name in made:
        store.remove(name, actor=OPERATOR)
    for receiver in receivers:
        receiver.stop()


@pytest.fixture
def sending(bridge: Bridge) -> Iterator[Callable[..., service.Deliveries]]:
    """The daemon's deliveries parts on the walk's database, with ``walk.WALK_HOOKS`` changed
    by the keywords; notices are commented with the bridge's own RT account."""
    made: list[tuple[service.Deliveries, TrackerClient]] = []

    def build(
        *, clock: Callable[[], datetime] = queue.utcnow, **changes: object
    ) -> service.Deliveries:
        hooks = dataclasses.replace(walk.WALK_HOOKS, **changes)  # type: ignore[arg-type]
        settings = dataclasses.replace(bridge.settings, webhooks=hooks)
        tracker = TrackerClient(bridge.settings.tracker)
        parts = service.build(
            settings, bridge.queue.engine, worker_name=f"walk-{len(made)}", tracker=tracker,
            clock=clock,
        )  # fmt: skip
        made.append((parts, tracker))
        return parts

    yield build
    for parts, tracker in made:
        parts.close()
        tracker.close()


def _settle(
    bridge: Bridge,
    deliveries: service.Deliveries,
    names: Sequence[str],
    *,
    until: Callable[[], bool] = lambda: True,
    timeout: float = 60.0,
) -> None:
    """Process the queue and send what is due, as the daemon would, until nothing is queued,
    no delivery to ``names`` is unfinished and ``until`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        bridge.drain()
        deliveries.send()
        if (
            bridge.queue.stats()["queued"] == 0
            and walk.open_deliveries(bridge.queue.engine, names) == 0
            and until()
        ):
            return
        assert time.monotonic() < deadline, walk.open_deliveries(bridge.queue.engine, names)
        time.sleep(0.05)


def _move(
    bridge: Bridge, deliveries: service.Deliveries, ticket: int, state: str, who: str
) -> None:
    """``who`` sets RolloutProgress in RT; the bridge processes it and deliveries go out."""
    bridge.as_user(who).set_custom_fields(ticket, {"RolloutProgress": state})
    deadline = time.monotonic() + 60
    while True:
        bridge.drain()
        deliveries.send()
        if bridge.state(ticket) == state and bridge.queue.stats()["queued"] == 0:
            return
        assert time.monotonic() < deadline, (bridge.state(ticket), bridge.comments(ticket)[-1:])
        time.sleep(0.1)


class _Throttling(WebhookReceiver):
    """Answers its first request 429 with ``Retry-After: 2`` and its second 503 with a
    ``Retry-After`` HTTP date about three seconds after that request came (kept in
    ``not_before``); then the default."""

    def __init__(self, secret: str, **kwargs: Any) -> None:
        super().__init__(secret, **kwargs)
        self.not_before: datetime | None = None
        self.script(Answer(status=429, headers={"Retry-After": "2"}))

    def check(self, body: bytes, headers: dict[str, str]) -> tuple[bool, Any, str | None]:
        verified, payload, problem = super().check(body, headers)
        if verified and len(self.receipts) == 1:
            date = email.utils.formatdate(time.time() + 3, usegmt=True)
            self.not_before = email.utils.parsedate_to_datetime(date)
            self.script(Answer(status=503, headers={"Retry-After": date}))
        return verified, payload, problem


def _send_until(deliveries: service.Deliveries, done: Callable[[], bool]) -> None:
    """Send what is due, as the daemon would, until ``done``."""
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, "the condition did not come"
        deliveries.send()
        time.sleep(0.05)


def _ids(receipts: Sequence[Receipt]) -> list[str]:
    return [str(r.webhook_id) for r in receipts]


def _per_release(items: Sequence[tuple[int | None, str | None]]) -> dict[int | None, list[str]]:
    out: dict[int | None, list[str]] = {}
    for ticket, webhook_id in items:
        out.setdefault(ticket, []).append(str(webhook_id))
    return out


def test_a_walk_to_production_is_delivered_exactly_as_subscribed(
    bridge: Bridge,
    subscribe: Callable[..., Hooked],
    sending: Callable[..., service.Deliveries],
) -> None:
    engine = bridge.queue.engine
    major = "HOOKS-1"
    mark = walk.head(engine)
    everything = subscribe("walk-all", filters=Filters(major_releases=(major,)))
    production = subscribe(
        "walk-production", kinds=PRODUCTION_KINDS, github=True, path="/state",
        filters=Filters(target_states=("Production",)),
    )  # fmt: skip
    published = subscribe(
        "walk-published", kinds=("release_published",), github=True, path="/area",
        receiver=production.receiver, filters=Filters(areas=("production/*",)),
    )  # fmt: skip
    other = subscribe("walk-other", filters=Filters(major_releases=("HOOKS-9",)))
    hooked = (everything, production, published, other)
    names = [h.name for h in hooked]
    deliveries = sending()

    ticket = bridge.file_release(major)
    _settle(bridge, deliveries, names)
    for state, who in (
        ("Unverified", "manager1"), ("InVerification", "qc1"), ("StageRollout", "qc1"),
        ("Production", "sr1"),
    ):  # fmt: skip
        _move(bridge, deliveries, ticket, state, who)
    _settle(bridge, deliveries, names)

    # Each receiver's verified receipts are exactly what its subscription wants from the log:
    # the same webhook-ids in the same order, once each; one delivery row per event, delivered.
    wanted = walk.expected(engine, [h.sub for h in hooked], after=mark)
    for h in hooked:
        got = h.receipts()
        want = wanted[h.name]
        assert all(r.verified and r.status == 204 for r in got), h.name
        assert _ids(got) == [e.webhook_id for e in want], h.name
        assert len(set(_ids(got))) == len(got), h.name
        assert [r.payload["id"] for r in got] == _ids(got), h.name
        assert [r.payload["type"] for r in got] == [e.kind for e in want], h.name
        assert [r.payload["sequence"] for r in got] == [e.seq for e in want], h.name
        for seqs in _per_release([(r.payload["data"]["ticket"], r.payload["sequence"])
                                  for r in got]).values():  # fmt: skip
            assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)
            assert len(set(seqs)) == len(seqs)
        assert walk.statuses(engine, h.name) == {e.event_id: "delivered" for e in want}, h.name

    # What the walk was, said independently of the matching rule.
    every = [e for e in bridge.queue.events(ticket_id=ticket, limit=100_000) if e.id > mark]
    every.sort(key=lambda e: e.id)
    recorded = next(e.id for e in every if e.kind is K.RELEASE_RECORDED)
    got_all = everything.receipts()
    assert {f"evt_{e.id}" for e in every if e.id >= recorded} <= set(_ids(got_all))
    assert {r.payload["data"]["major_release"] for r in got_all} == {major}
    moves = [(r.payload["data"]["from"], r.payload["data"]["to"]) for r in got_all
             if r.payload["type"] == "transition_done"]  # fmt: skip
    assert moves == [
        ("Submitted", "Unverified"), ("Unverified", "InVerification"),
        ("InVerification", "StageRollout"), ("StageRollout", "Production"),
    ]  # fmt: skip
    kinds = {r.payload["type"] for r in got_all}
    assert {"release_published", "slot_taken", "slot_freed", "ticket_told"} <= kinds
    areas = [r.payload["data"]["area"] for r in got_all if r.payload["type"] == "release_published"]
    assert areas[0].startswith("unverified/") and f"stagerollout/{major}" in areas
    assert any(a.startswith(f"production/{major}") for a in areas)

    # The production system heard of the move to Production and of nothing before it; the
    # mirror of the production publication only. Both also carry Standard Webhooks headers.
    told = production.receipts()
    moved = [(r.payload["data"]["from"], r.payload["data"]["to"]) for r in told
             if r.payload["type"] == "transition_done"]  # fmt: skip
    assert moved == [("StageRollout", "Production")]
    assert all(r.payload["data"].get("to") in (None, "Production") for r in told)
    pulled = published.receipts()
    assert pulled and [r.payload["data"]["area"] for r in pulled] == [
        a for a in areas if a.startswith("production/")
    ]
    for r in told + pulled:
        assert standardwebhooks.Webhook(production.receiver.secret).verify(r.body, r.headers)

    # Another major release's subscriber was never called.
    assert other.receiver.receipts == [] and other.receiver.connections == 0
    assert walk.statuses(engine, other.name) == {}

    if OUTCOMES_EMITTED:  # stricter once the workflow emits the subscriber-facing outcomes
        for h in (everything, production):
            reached = [r for r in h.receipts() if r.payload["type"] == "release_reached_production"]
            assert len(reached) == 1, h.name
            assert reached[0].payload["data"]["area"].startswith(f"production/{major}")
            assert reached[0].payload["data"]["url"]
        for r in pulled:
            assert r.payload["data"]["url"] and "serial" in r.payload["data"]


def test_down_throttled_and_gone_endpoints_get_everything_in_order(
    bridge: Bridge,
    subscribe: Callable[..., Hooked],
    sending: Callable[..., service.Deliveries],
) -> None:
    engine = bridge.queue.engine
    mark = walk.head(engine)
    down = subscribe("walk-down", filters=Filters(major_releases=("HOOKS-2", "HOOKS-2B")))
    throttled = subscribe(
        "walk-throttled", filters=Filters(major_releases=("HOOKS-2",)), receiver_class=_Throttling
    )
    gone = subscribe("walk-gone", filters=Filters(major_releases=("HOOKS-2",)))
    gone.receiver.script(Answer(status=410))
    deliveries = sending()
    down.receiver.stop()

    # The releases are recorded, published to unverified and their events delivered while
    # one receiver is down.
    first = bridge.file_release("HOOKS-2")
    second = bridge.file_release("HOOKS-2B")
    _move(bridge, deliveries, first, "Unverified", "manager1")

    # 410: the subscription is disabled at once, the delivery waits; the ticket is told.
    (gone_first,) = gone.receipts()
    assert gone_first.status == 410
    store = subscription_store.SubscriptionStore(engine, clock=queue.utcnow)
    assert not store.get(gone.name).enabled
    disabled = [e for e in walk.events_about(engine, gone.name, after=mark)
                if e.kind is K.SUBSCRIPTION_DISABLED]  # fmt: skip
    assert len(disabled) == 1 and "410" in disabled[0].data["reason"]
    deliveries.judge()
    stuck = [t for t in bridge.comments(first) if t.startswith(NOTICE)]
    assert len(stuck) == 1 and "410 Gone" in stuck[0] and gone.name in stuck[0]

    # The releases move on while one receiver is down: its attempts are refused and retried.
    _move(bridge, deliveries, second, "Unverified", "manager1")

    def refused_thrice() -> bool:
        found = [a for a in walk.attempts(engine, down.name) if a.error_class == "refused"]
        return {a.ticket_id for a in found if a.attempt >= 3} == {first, second}

    _send_until(deliveries, refused_thrice)
    refused = [a for a in walk.attempts(engine, down.name) if a.error_class == "refused"]
    assert {a.ticket_id for a in refused} == {first, second}
    assert max(a.attempt for a in refused) >= 3
    assert down.receipts() == []
    down.receiver.start()
    _move(bridge, deliveries, first, "InVerification", "qc1")
    _settle(bridge, deliveries, [down.name, throttled.name])

    wanted = walk.expected(engine, [down.sub, throttled.sub, gone.sub], after=mark)

    # Down, then up: everything arrived once, in order per release, after its retries.
    got = down.receipts()
    assert all(r.verified and r.status == 204 for r in got)
    assert sorted(_ids(got)) == sorted(e.webhook_id for e in wanted[down.name])
    assert len(set(_ids(got))) == len(got)
    assert _per_release([(r.payload["data"]["ticket"], r.webhook_id) for r in got]) == (
        _per_release([(e.ticket_id, e.webhook_id) for e in wanted[down.name]])
    )
    tried = walk.attempts(engine, down.name)
    for ticket in (first, second):
        head = next(e for e in wanted[down.name] if e.ticket_id == ticket)
        classes = [a.error_class for a in tried if a.event_id == head.event_id]
        assert classes[-1] is None and len(classes) >= 4
        assert set(classes[:-1]) == {"refused"}
    assert set(walk.statuses(engine, down.name).values()) == {"delivered"}

    # Retry-After respected: the receiver's clock and the attempts' rows agree.
    got = throttled.receipts()
    assert [r.status for r in got[:3]] == [429, 503, 204]
    assert len({r.webhook_id for r in got[:3]}) == 1
    assert got[1].received_at - got[0].received_at >= 2.0
    not_before = throttled.receiver.not_before  # type: ignore[attr-defined]
    assert not_before is not None and got[2].received_at >= not_before.timestamp()
    head_attempts = [a for a in walk.attempts(engine, throttled.name)
                     if f"evt_{a.event_id}" == got[0].webhook_id]  # fmt: skip
    assert [a.status for a in head_attempts] == [429, 503, 204]
    assert head_attempts[1].at - head_attempts[0].at >= timedelta(seconds=2)
    assert head_attempts[2].at >= not_before.astimezone(UTC).replace(tzinfo=None)
    delivered = [r for r in got if r.status == 204]
    assert _ids(delivered) == [e.webhook_id for e in wanted[throttled.name]]

    # Gone: nothing more was attempted while disabled, though its deliveries gathered.
    assert len(gone.receipts()) == 1
    assert len(walk.attempts(engine, gone.name)) == 1
    waiting = walk.statuses(engine, gone.name)
    assert set(waiting.values()) == {"pending"}
    assert sorted(waiting) == [e.event_id for e in wanted[gone.name]]
    assert len(waiting) > 1
    store.enable(gone.name, actor=OPERATOR, how="ping")
    _settle(bridge, deliveries, [gone.name])
    got = gone.receipts()
    assert all(r.verified for r in got) and [r.status for r in got[1:]] == [204] * (len(got) - 1)
    assert _ids(got[1:]) == [e.webhook_id for e in wanted[gone.name]]
    enabled = [e for e in walk.events_about(engine, gone.name, after=mark)
               if e.kind is K.SUBSCRIPTION_ENABLED]  # fmt: skip
    assert [e.data["how"] for e in enabled] == ["ping"]


def test_a_steadily_failing_endpoint_is_disabled_and_its_tickets_say_so(
    bridge: Bridge,
    subscribe: Callable[..., Hooked],
    sending: Callable[..., service.Deliveries],
) -> None:
    engine = bridge.queue.engine
    mark = walk.head(engine)
    budget = 120.0  # seconds of the shifted clock; warned at 60 s and 108 s, disabled at 120 s
    clock = walk.ShiftedClock()
    deliveries = sending(clock=clock, disable_after=budget, disable_min_failures=2)
    failing = subscribe(
        "walk-failing", filters=Filters(major_releases=("HOOKS-3",)), default_status=500
    )
    tickets = [bridge.file_release("HOOKS-3"), bridge.file_release("HOOKS-3")]
    for ticket in tickets:  # recorded and published: deliveries about both wait for it
        _move(bridge, deliveries, ticket, "Unverified", "manager1")

    taken: list[str] = []
    tried_when_disabled = -1
    # 140 s of the clock, 5 s at a time (well under the 12 s between 90 % and the end, so no
    # step is skipped); judged twice at each step: the second look has nothing new to say.
    for _ in range(28):
        bridge.drain()
        deliveries.send()
        taken += deliveries.judge()
        taken += deliveries.judge()
        if tried_when_disabled < 0 and any("disabled" in line for line in taken):
            tried_when_disabled = len(walk.attempts(engine, failing.name))
        clock.advance(5)

    assert [line.split(":")[0] for line in taken] == [failing.name] * 3
    assert "warned at 50 %" in taken[0] and "warned at 90 %" in taken[1]
    assert "disabled" in taken[2]
    steps = [e for e in walk.events_about(engine, failing.name, after=mark)
             if e.kind in (K.SUBSCRIPTION_WARNED, K.SUBSCRIPTION_DISABLED)]  # fmt: skip
    assert [(e.kind, e.data.get("level")) for e in steps] == [
        (K.SUBSCRIPTION_WARNED, 50), (K.SUBSCRIPTION_WARNED, 90), (K.SUBSCRIPTION_DISABLED, None),
    ]  # fmt: skip
    assert all(e.data["pending"] >= 2 for e in steps)

    # Many failed attempts, none once disabled; every request was verified and answered 500.
    tried = walk.attempts(engine, failing.name)
    assert len(tried) == tried_when_disabled >= 2 * 10
    assert {(a.status, a.error_class) for a in tried} == {(500, "http")}
    assert {a.ticket_id for a in tried} == set(tickets)
    assert all(r.verified and r.status == 500 for r in failing.receipts())

    # Each release's real RT ticket says each step once: never once per attempt.
    for ticket in tickets:
        said = [t for t in bridge.comments(ticket) if t.startswith(NOTICE)]
        assert len(said) == 3, said
        assert "delayed" in said[0] and "50 % of its failure budget" in said[0]
        assert "delayed" in said[1] and "90 % of its failure budget" in said[1]
        assert "stuck" in said[2] and "was disabled" in said[2]
        assert all(failing.name in t and "127.0.0.1" in t for t in said)
        assert not any(failing.receiver.url in t for t in said)  # the host only, never the URL
