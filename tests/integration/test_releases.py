"""Release records, time in state and staged-rollout slots, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bridge import records
from bridge.store import database, releases, tables

S = records.RolloutState


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 9, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def make_store(db_url: str) -> Callable[..., releases.ReleaseStore]:
    engines: list[sa.Engine] = []

    def make(**kw: object) -> releases.ReleaseStore:
        engine = database.create_engine(db_url)
        engines.append(engine)
        return releases.ReleaseStore(engine, **kw)  # type: ignore[arg-type]

    yield make  # type: ignore[misc]
    for engine in engines:
        engine.dispose()


def test_the_migrations_build_exactly_the_tables_the_code_uses(db_url: str) -> None:
    engine = database.create_engine(db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    current = database.schema_is_current(engine)
    engine.dispose()
    assert diff == []
    assert current


def test_time_in_state_is_recorded_on_every_move(
    make_store: Callable[..., releases.ReleaseStore],
) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    store.ensure(1, state=S.SUBMITTED, major_release="UMD-5", emergency=False,
                 entered_at=clock.now - timedelta(hours=1))  # fmt: skip
    clock.advance(60)
    store.move(1, S.UNVERIFIED, transaction_id=10, actor="qc")
    clock.advance(300)
    store.move(1, S.IN_VERIFICATION, transaction_id=11, actor="qc")
    clock.advance(30)
    store.move(1, S.UNVERIFIED, transaction_id=12, actor="qc")
    clock.advance(5)
    store.move(1, S.UNVERIFIED, transaction_id=13, actor="qc")  # no-op move: no new span
    history = store.history(1)
    assert [(h.state, h.transaction_id) for h in history] == [
        (S.SUBMITTED, None), (S.UNVERIFIED, 10), (S.IN_VERIFICATION, 11), (S.UNVERIFIED, 12),
    ]  # fmt: skip
    assert [h.left_at is None for h in history] == [False, False, False, True]
    assert store.time_in_state(1) == {
        "Submitted": 3660.0,
        "Unverified": 305.0,
        "InVerification": 30.0,
    }
    release = store.get(1)
    assert release is not None and release.state is S.UNVERIFIED
    assert release.last_transaction_id == 13


def test_failed_remembers_where_to_retry(make_store: Callable[..., releases.ReleaseStore]) -> None:
    store = make_store()
    store.ensure(2, state=S.SUBMITTED, major_release=None, emergency=False)
    store.move(2, S.FAILED, transaction_id=20, actor="rollout-bridge", failed_target=S.UNVERIFIED)
    release = store.get(2)
    assert release is not None and release.failed_target is S.UNVERIFIED
    store.move(2, S.UNVERIFIED, transaction_id=21, actor="admin")
    release = store.get(2)
    assert release is not None and release.failed_target is None


def test_one_regular_release_per_major_release_in_staged_rollout(
    make_store: Callable[..., releases.ReleaseStore],
) -> None:
    store = make_store()
    assert store.take_slot("UMD-5", 1, emergency=False)
    assert store.take_slot("UMD-5", 1, emergency=False)  # idempotent
    assert not store.take_slot("UMD-5", 2, emergency=False)
    assert store.take_slot("UMD-4", 2, emergency=False)  # another major release: own slot
    assert store.take_slot("UMD-5", 3, emergency=True)  # an emergency never waits
    assert store.slot_holders("UMD-5") == (1, 3)
    assert store.slot_holders("UMD-5", excluding=1) == (3,)
    assert store.free_slot("UMD-5", 1)
    assert not store.free_slot("UMD-5", 1)
    assert store.take_slot("UMD-5", 2, emergency=False)


def test_racing_releases_get_the_slot_once(
    make_store: Callable[..., releases.ReleaseStore],
) -> None:
    winners: list[int] = []
    barrier = threading.Barrier(6)

    def race(ticket: int) -> None:
        store = make_store()
        barrier.wait()
        if store.take_slot("CAs", ticket, emergency=False):
            winners.append(ticket)

    threads = [threading.Thread(target=race, args=(t,)) for t in range(100, 106)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(winners) == 1


def test_oldest_deferred_comes_first(make_store: Callable[..., releases.ReleaseStore]) -> None:
    clock = FakeClock()
    store = make_store(clock=clock)
    for ticket in (7, 5, 9):
        store.ensure(ticket, state=S.IN_VERIFICATION, major_release="UMD-5", emergency=False)
    store.ensure(8, state=S.IN_VERIFICATION, major_release="UMD-4", emergency=False)
    for ticket in (7, 8, 5, 9):
        clock.advance(10)
        store.move(ticket, S.DEFERRED, transaction_id=None, actor="rollout-bridge")
    assert store.oldest_deferred("UMD-5") == 7
    store.move(7, S.STAGE_ROLLOUT, transaction_id=None, actor="rollout-bridge")
    assert store.oldest_deferred("UMD-5") == 5
    assert store.oldest_deferred("UMD-3") is None


def test_checkpoints(make_store: Callable[..., releases.ReleaseStore]) -> None:
    store = make_store()
    store.mark_step(1, "sync_packages", "3 files")
    store.mark_step(1, "sync_packages", "again")
    assert store.steps_done(1) == {"sync_packages": "3 files"}
    assert store.steps_done(2) == {}


def test_the_frozen_release_xml_and_where_it_is_published(
    make_store: Callable[..., releases.ReleaseStore],
) -> None:
    store = make_store()
    store.ensure(4, state=S.SUBMITTED, major_release="UMD-5", emergency=False)
    store.freeze_release_xml(4, sha256="ab" * 32, attachment_id=17)
    store.set_repository_path(4, "unverified/dcache/9.2.1")
    release = store.get(4)
    assert release is not None
    assert (release.release_sha256, release.release_attachment_id) == ("ab" * 32, 17)
    assert release.repository_path == "unverified/dcache/9.2.1"


def test_the_area_record_is_backfilled_from_where_releases_were_published(
    db_url: str,
) -> None:
    from alembic import command

    engine = database.create_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(database._alembic_config(conn), "0004")
            now = datetime(2026, 11, 24, 9, 0, 0)
            for ticket, path in ((1, "stagerollout/UMD-5"), (2, None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO releases (ticket_id, state, emergency, updated_at, "
                        "repository_path) VALUES (:t, 'StageRollout', false, :now, :path)"
                    ),
                    {"t": ticket, "now": now, "path": path},
                )
        database.migrate(engine)
        store = releases.ReleaseStore(engine)
        assert store.published_areas(1) == ("stagerollout/UMD-5",)
        assert store.published_areas(2) == ()
        store.set_repository_path(2, "unverified/x/1.0")
        store.set_repository_path(2, "stagerollout/UMD-5")
        store.set_repository_path(2, "stagerollout/UMD-5")
        assert store.published_areas(2) == ("unverified/x/1.0", "stagerollout/UMD-5")
        store.forget_areas(2, ["unverified/x/1.0"])
        assert store.published_areas(2) == ("stagerollout/UMD-5",)
    finally:
        engine.dispose()
