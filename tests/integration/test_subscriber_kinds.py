"""The event kinds subscribers want most are written once each, with their fields, in the
transaction of the change they record, and delivered as docs/notifications.md shows them.

A release is walked, in this process, with the product's parts: the real queue, release store
and workflow processor on SQLite and PostgreSQL, the real repository steps (sync from an rsync
daemon, publication into a temporary tree with metadata and signing) and the runner; the
in-memory tracker of ``bridge.testing`` stands in for RT. The walk: Submitted → Unverified →
InVerification → StageRollout → Production, which fails the first time (a plain file occupies
the production area's parent, a conflict a person must clear), then Production again from
Failed, then Withdrawn; last, a subscription is disabled. Every commit on the walk's engine is
watched (the DBAPI's commit, as the atomicity tests do): what each commit added to the log, the
release's state and areas then, and the serial the areas' trees showed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge import records
from bridge.records import RolloutState as S
from bridge.store import (
    database,
    delivery_fanout,
    queue,
    releases,
    subscription_store,
    tables,
    webhook_schema,
)
from repo_daemon.daemon import runner
from repo_daemon.publish import index
from repo_daemon.workflow import processor as workflow
from repo_daemon.workflow import steps
from tests.support import packages, paths
from tests.support.repo_clients import shared_key
from tests.support.rsync_server import RsyncDaemon
from tests.support.transition_child import MANAGER, TICKET, Config, SavedTracker, _file_ticket
from tests.support.transition_child import settings_of as child_settings

MAJOR = "UMD-5"
PRODUCTION = f"production/{MAJOR}/base"  # NonIncremental
NEW_KINDS = ("release_reached_production", "release_failed", "release_withdrawn")


@dataclass
class Commit:
    """What one commit left: the events it added, the release's state and areas after it."""

    events: list[tuple[int, str, dict[str, Any]]]
    state: str | None
    areas: frozenset[str]
    serials: dict[str, str]  # area -> its .rollout-serial right after the commit


@dataclass
class Watch:
    """Every commit of ``engine`` that added events, seen through an engine of its own."""

    engine: sa.Engine
    url: str
    repo_root: Path
    commits: list[Commit] = field(default_factory=list)
    _last: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.checker = database.create_engine(self.url)
        self._commit = self.engine.dialect.do_commit
        self.engine.dialect.do_commit = self._do_commit  # type: ignore[method-assign]

    def _do_commit(self, dbapi_connection: Any) -> None:
        self._commit(dbapi_connection)
        with self._lock:
            self._look()

    def _look(self) -> None:
        log, rel, held = tables.event_log, tables.releases, tables.release_areas
        with self.checker.connect() as conn:
            rows = conn.execute(
                sa.select(log.c.id, log.c.kind, log.c.data)
                .where(log.c.id > self._last)
                .order_by(log.c.id)
            ).all()
            if not rows:
                return
            state = conn.execute(sa.select(rel.c.state).where(rel.c.ticket_id == TICKET)).scalar()
            areas = frozenset(
                conn.execute(sa.select(held.c.area).where(held.c.ticket_id == TICKET)).scalars()
            )
        self._last = int(rows[-1].id)
        serials = {}
        for area in areas:
            serial = self.repo_root / area / index.SERIAL_NAME
            if serial.exists():
                serials[area] = serial.read_text(encoding="ascii").strip()
        events = [(int(r.id), str(r.kind), json.loads(r.data)) for r in rows]
        self.commits.append(Commit(events=events, state=state, areas=areas, serials=serials))

    def of_kind(self, kind: str) -> list[tuple[int, Commit, dict[str, Any]]]:
        """Each event of ``kind``: its commit's index, the commit, its data."""
        return [
            (n, commit, data)
            for n, commit in enumerate(self.commits)
            for _, k, data in commit.events
            if k == kind
        ]

    def close(self) -> None:
        self.engine.dialect.do_commit = self._commit  # type: ignore[method-assign]
        self.checker.dispose()


@dataclass
class Provider:
    rsync: RsyncDaemon
    release_xml: Path
    sync_url: str


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    missing = packages.tools_missing()
    assert not missing, f"install {missing} (Debian: dpkg, rpm) to build the test packages"
    root = tmp_path_factory.mktemp("kinds")
    with RsyncDaemon(root / "rsyncd", {"provider": root / "provider"}) as rsync:
        url = rsync.url("provider", "kinds/")
        tree = packages.layout_provider_tree(
            root / "provider" / "kinds",
            packages.build_pair(root / "built", "kinds-pkg", tag="kinds"),
            short_name="kinds", sync_url=url, major_release=MAJOR,
        )  # fmt: skip
        release_xml = root / "release.xml"
        release_xml.write_bytes(tree.release_xml)
        yield Provider(rsync=rsync, release_xml=release_xml, sync_url=url)


@dataclass
class Walk:
    watch: Watch
    store: releases.ReleaseStore
    subscriptions: subscription_store.SubscriptionStore
    base_url: str
    repo_root: Path


@pytest.fixture
def walked(db_url: str, provider: Provider, tmp_path: Path) -> Iterator[Walk]:
    key = shared_key()
    config = Config(
        db_url=db_url, data_dir=tmp_path / "data", tracker_state=tmp_path / "rt.pickle",
        release_xml=provider.release_xml, sync_url=provider.sync_url,
        signing_key=key.fingerprint, gnupghome=key.home, lease_seconds=30.0,
        major_release=MAJOR,
    )  # fmt: skip
    settings = child_settings(config)
    engine = database.create_engine(db_url)
    jobs = queue.Queue(engine, lease=timedelta(seconds=30))
    store = releases.ReleaseStore(engine, clock=jobs.clock)
    kept = subscription_store.SubscriptionStore(engine, clock=jobs.clock)
    # A mirror wants the release kinds and the slot; operations want to hear of endpoints.
    kept.add(
        "mirror",
        subscription_store.Spec(url="https://mirror.example/hook", kinds=("release_*", "slot_*")),
        actor="test", enabled=True,
    )  # fmt: skip
    kept.add(
        "ops",
        subscription_store.Spec(url="https://ops.example/hook", kinds=("subscription_disabled",)),
        actor="test", enabled=True,
    )  # fmt: skip
    tracker = SavedTracker(config.tracker_state)
    _file_ticket(tracker, config)
    work = steps.RepositoryWork(settings, store, steps.repository(settings))
    processor = workflow.WorkflowProcessor(
        settings, jobs, store, lambda: tracker,  # type: ignore[arg-type,return-value]
        repository=work,
    )  # fmt: skip
    run = runner.Runner(jobs, processor, settings.daemon, worker="kinds")
    repo_root = settings.repository.root
    watch = Watch(engine, db_url, repo_root)
    txn = iter(range(7001, 8000))
    state = S.SUBMITTED

    def move(to: S) -> S:
        tracker.change_field(TICKET, "RolloutProgress", to.label, actor=MANAGER)
        jobs.enqueue_many([
            records.ReleaseRequest(ticket_id=TICKET, transaction_id=next(txn), current=to,
                                   previous=state, actor=MANAGER)
        ])  # fmt: skip
        for _ in range(20):
            if run.drain().claimed == 0:
                break
        found = store.get(TICKET)
        assert found is not None
        return found.state

    try:
        for to in (S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT):
            state = move(to)
            assert state is to
        # Something that is not the bridge's occupies the production area's parent.
        blocker = repo_root / "production" / MAJOR
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("not an area\n")
        state = move(S.PRODUCTION)
        assert state is S.FAILED
        blocker.unlink()
        state = move(S.PRODUCTION)
        assert state is S.PRODUCTION
        state = move(S.WITHDRAWN)
        assert state is S.WITHDRAWN
        kept.disable("mirror", reason="the mirror moved", actor="operator1")
        yield Walk(
            watch=watch, store=store, subscriptions=kept,
            base_url=settings.repository.base_url, repo_root=repo_root,
        )  # fmt: skip
    finally:
        watch.close()
        run.close()
        processor.close()
        engine.dispose()


def _events(engine: sa.Engine, kind: str) -> list[dict[str, Any]]:
    log = tables.event_log
    with engine.connect() as conn:
        rows = conn.execute(sa.select(log.c.data).where(log.c.kind == kind).order_by(log.c.id))
        return [json.loads(r.data) for r in rows]


def test_each_new_kind_is_written_once_with_its_fields(walked: Walk) -> None:
    engine = walked.store.engine
    counts = {kind: len(_events(engine, kind)) for kind in NEW_KINDS}
    assert counts == dict.fromkeys(NEW_KINDS, 1)
    url = f"{walked.base_url}{PRODUCTION}/"

    (reached,) = _events(engine, "release_reached_production")
    assert {k: reached[k] for k in ("major_release", "area", "url", "emergency")} == {
        "major_release": MAJOR, "area": PRODUCTION, "url": url, "emergency": False,
    }  # fmt: skip

    (failed,) = _events(engine, "release_failed")
    assert failed["failed_target"] == "Production"
    assert failed["action"] == "promote_to_production"
    assert f"production/{MAJOR}" in failed["error"]
    assert "not a plain directory" in failed["error"]

    (withdrawn,) = _events(engine, "release_withdrawn")
    assert withdrawn["area"] == PRODUCTION
    assert withdrawn["areas"][0] == PRODUCTION
    assert set(withdrawn["areas"]) >= {PRODUCTION, f"stagerollout/{MAJOR}"}
    assert withdrawn["major_release"] == MAJOR


def test_each_new_event_is_committed_with_the_change_it_records(walked: Walk) -> None:
    watch = walked.watch
    (n, commit, _), = watch.of_kind("release_reached_production")  # fmt: skip
    kinds = [(k, d.get("to")) for _, k, d in commit.events]
    assert ("transition_done", "Production") in kinds
    assert commit.state == "Production"
    assert watch.commits[n - 1].state != "Production"

    (n, commit, _), = watch.of_kind("release_failed")  # fmt: skip
    assert ("transition_failed", "Failed") in [(k, d.get("to")) for _, k, d in commit.events]
    assert commit.state == "Failed"
    assert watch.commits[n - 1].state != "Failed"

    (n, commit, _), = watch.of_kind("release_withdrawn")  # fmt: skip
    removed = [d["area"] for _, k, d in commit.events if k == "release_removed"]
    assert PRODUCTION in removed
    assert PRODUCTION not in commit.areas
    assert PRODUCTION in watch.commits[n - 1].areas


def test_release_published_carries_the_url_and_serial_a_mirror_pulls(walked: Walk) -> None:
    published = walked.watch.of_kind("release_published")
    assert [d["area"] for _, _, d in published] == [
        "unverified/kinds/1.0.0", f"stagerollout/{MAJOR}", PRODUCTION,
    ]  # fmt: skip
    for n, commit, data in published:
        area = data["area"]
        assert data["url"] == f"{walked.base_url}{area}/"
        # The serial the area's tree showed when the publication was committed.
        assert data["serial"] == commit.serials[area]
        assert data["serial"].endswith("/" + data["snapshot"])
        assert area in commit.areas
        assert area not in walked.watch.commits[n - 1].areas
    (reached,) = _events(walked.store.engine, "release_reached_production")
    assert reached["url"] == published[-1][2]["url"]


def test_the_doc_shows_each_subscriber_kind_as_it_is_delivered(walked: Walk) -> None:
    """The example bodies of docs/notifications.md have the keys of real deliveries, and
    every data field a delivery carries is in the kind's documented schema."""
    examples = doc_examples()
    engine = walked.store.engine
    d, s = tables.deliveries, tables.subscriptions
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.name, d.c.kind, d.c.payload, d.c.event_id)
            .join(s, s.c.id == d.c.subscription_id)
            .order_by(d.c.id)
        ).all()
    bodies: dict[str, dict[str, Any]] = {}
    for name, kind, payload, event_id in rows:
        body = json.loads(payload)
        assert body["id"] == delivery_fanout.webhook_id(int(event_id))
        assert body["type"] == kind
        assert name == ("ops" if kind == "subscription_disabled" else "mirror")
        bodies.setdefault(kind, body)
    for headline in webhook_schema.SUBSCRIBER_KINDS:
        kind = headline.kind.value
        assert kind in bodies, f"the walk made no delivery of {kind}"
        assert kind in examples, f"docs/notifications.md shows no example of {kind}"
        real, shown = bodies[kind], examples[kind]
        assert sorted(shown) == sorted(real), kind
        assert sorted(shown["data"]) == sorted(real["data"]), kind
        assert shown["version"] == real["version"] == webhook_schema.version(headline.kind)
        assert set(real["data"]) <= set(webhook_schema.data_fields(headline.kind)), kind


def test_deliveries_of_the_walk_follow_its_events_one_each(walked: Walk) -> None:
    """One delivery per event per wanting subscription, in the event's order."""
    d, log = tables.deliveries, tables.event_log
    mirror = walked.subscriptions.get("mirror")
    with walked.store.engine.connect() as conn:
        wanted = (
            conn.execute(
                sa.select(log.c.id)
                .where(
                    sa.or_(
                        log.c.kind.like("release\\_%", escape="\\"),
                        log.c.kind.like("slot\\_%", escape="\\"),
                    )
                )
                .order_by(log.c.id)
            )
            .scalars()
            .all()
        )
        sent = (
            conn.execute(
                sa.select(d.c.event_id).where(d.c.subscription_id == mirror.id).order_by(d.c.id)
            )
            .scalars()
            .all()
        )
    assert list(sent) == list(wanted)
    assert len(wanted) >= 12  # publications, slot, failure, production, removals, withdrawal


def doc_examples() -> dict[str, dict[str, Any]]:
    """The JSON example bodies of the payload section, by type."""
    doc = (paths.DOCS / "notifications.md").read_text(encoding="utf-8")
    start = doc.index("<!-- section: payload -->")
    section = doc[start : doc.index("<!-- end section: payload -->")]
    found: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", section, flags=re.S):
        body = json.loads(block)
        found[body["type"]] = body
    return found
