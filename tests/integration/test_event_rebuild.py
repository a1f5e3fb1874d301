"""``rebuild``: what the log rebuilds agrees with the tables the real writers keep, and each
table changed by hand is found (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import database, rebuild, retention
from bridge.store import events as eventlog
from tests.support import event_history


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def history(engine: sa.Engine) -> event_history.History:
    return event_history.write(engine)


def _sql(engine: sa.Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        assert conn.execute(sa.text(statement), params).rowcount == 1


def test_a_realistic_history_rebuilds_without_a_difference(
    engine: sa.Engine, history: event_history.History
) -> None:
    report = rebuild.check(engine, batch=5)
    assert report.differences == ()
    assert report.not_checked == ()
    assert (report.releases, report.jobs, report.slots) == (4, 4, 1)
    assert rebuild.differences(engine) == []


def test_the_rebuilt_stays_match_the_stored_history_state_by_state(
    engine: sa.Engine, history: event_history.History
) -> None:
    log = rebuild.rebuilt(engine)
    for ticket in (1, 2, 3, 4):
        stored = [(s.state.label, s.entered_at, s.left_at) for s in history.store.history(ticket)]
        mine = log.releases[ticket].stays
        assert [s[0] for s in mine] == [s[0] for s in stored]
        for (_, entered, left), (_, my_entered, my_left) in zip(stored, mine, strict=True):
            assert abs(my_entered - entered) < timedelta(seconds=1)
            assert (left is None) == (my_left is None)
            assert left is None or abs(my_left - left) < timedelta(seconds=1)
    assert [s[0] for s in log.releases[2].stays] == [
        "Submitted", "Failed", "Unverified", "Rejected"
    ]  # fmt: skip
    assert log.jobs[history.rerun_job].status == "done"
    assert log.jobs[history.dead_job].status == "dead"
    assert (log.jobs[history.open_job].status, log.jobs[history.open_job].attempts) == ("queued", 0)


CHANGES = {
    "release state": (
        "UPDATE releases SET state = 'StageRollout' WHERE ticket_id = 1",
        ("release 1 state", "StageRollout", "Production"),
    ),
    "failed_target": (
        "UPDATE releases SET failed_target = 'Unverified' WHERE ticket_id = 2",
        ("release 2 failed_target", "Unverified", "-"),
    ),
    "a stay's state": (
        "UPDATE state_history SET state = 'Deferred' WHERE ticket_id = 1 AND state = 'Unverified'",
        ("release 1 stays in states", None, None),
    ),
    "a stay deleted": (
        "DELETE FROM state_history WHERE ticket_id = 2 AND state = 'Failed'",
        ("release 2 stays in states", None, None),
    ),
    "a stay's time": (
        "UPDATE state_history SET entered_at = '2026-11-23 09:00:00' WHERE ticket_id = 4 "
        "AND state = 'Deferred'",
        ("release 4 stay 2 (Deferred) entered_at", "2026-11-23 09:00:00", None),
    ),
    "an area added": (
        "INSERT INTO release_areas (ticket_id, area, published_at) VALUES "
        "(2, 'production/umd5/base', '2026-11-24 10:00:00')",
        ("release 2 areas", "production/umd5/base", "(none)"),
    ),
    "an area lost": (
        "DELETE FROM release_areas WHERE ticket_id = 3",
        ("release 3 areas", "(none)", "stagerollout/umd5/3.0"),
    ),
    "a slot freed": (
        "DELETE FROM stage_slots WHERE ticket_id = 3",
        ("release 3 staged-rollout slot of UMD-5", "not held", "held (emergency)"),
    ),
    "a slot taken": (
        "INSERT INTO stage_slots (major_release, ticket_id, emergency, taken_at) VALUES "
        "('UMD-5', 4, false, '2026-11-24 10:00:00')",
        ("release 4 staged-rollout slot of UMD-5", "held", "not held"),
    ),
    "a release removed": (
        "DELETE FROM releases WHERE ticket_id = 4",
        ("release 4", "(no record)", "Deferred"),
    ),
    "a job's status": (
        "UPDATE jobs SET status = 'done' WHERE id = {dead}",
        ("job {dead} status", "done", "dead"),
    ),
    "a job's attempts": (
        "UPDATE jobs SET attempts = 7 WHERE id = {done}",
        ("job {done} attempts", "7", "1"),
    ),
    "a job without events": (
        "INSERT INTO jobs (ticket_id, transaction_id, current, previous, emergency, actor, "
        "source, status, attempts, scheduled_at, created_at, field) VALUES (4, 999, "
        "'StageRollout', 'Deferred', false, '', 'hook', 'queued', 0, '2026-11-24 10:00:00', "
        "'2026-11-24 10:00:00', 'RolloutProgress')",
        ("job {new}", "queued", "(no event)"),
    ),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_each_table_changed_by_hand_is_a_difference(
    engine: sa.Engine, history: event_history.History, change: str
) -> None:
    statement, (what, stored, rebuilt) = CHANGES[change]
    ids = {"dead": history.dead_job, "done": history.done_job, "new": history.open_job + 1}
    _sql(engine, statement.format(**ids))
    found = rebuild.differences(engine)
    assert [d.what for d in found] == [what.format(**ids)]
    assert stored is None or found[0].stored == stored
    assert rebuilt is None or found[0].rebuilt == rebuilt


def _prune_release_1(history: event_history.History) -> None:
    """Retention, a year on, of every event it may delete (release 1 is closed)."""
    history.clock.advance(400 * 86400)
    retention.prune(history.queue, [retention.Rule(older_than=timedelta(days=30))])


def test_a_release_whose_history_was_pruned_is_not_checked_rather_than_different(
    engine: sa.Engine, history: event_history.History
) -> None:
    _prune_release_1(history)
    kinds = {e.kind for e in history.queue.events(ticket_id=1, limit=100)}
    assert eventlog.EventKind.RELEASE_RECORDED not in kinds  # its seed is gone
    _sql(engine, "UPDATE releases SET state = 'Withdrawn' WHERE ticket_id = 1")
    report = rebuild.check(engine)
    assert 1 in report.not_checked
    assert [d for d in report.differences if d.what.startswith("release 1 ")] == []
    # The open releases' state-bearing events were held: they still check, and still differ.
    _sql(engine, "UPDATE releases SET state = 'Unverified' WHERE ticket_id = 4")
    assert [d.what for d in rebuild.differences(engine)] == ["release 4 state"]
