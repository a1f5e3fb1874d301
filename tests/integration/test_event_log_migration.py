"""Migration 0008 on a database with old-style rows (built at 0007, filled, then upgraded):
the log it writes verifies, rebuilds with no difference (also after new work), and the
``events`` view still answers the old columns (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pytest_postgresql.janitor import DatabaseJanitor

from bridge import records
from bridge.store import chain_check, database, rebuild, tables
from tests.support import event_history
from tests.support.pg_server import PostgresServer

S = records.RolloutState
T0 = datetime(2026, 11, 20, 9, 0, 0, 123456)

# The ``events`` table as revision 0007 left it.
OLD_EVENTS = sa.Table(
    "events",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("ticket_id", sa.BigInteger),
    sa.Column("transaction_id", sa.BigInteger),
    sa.Column("job_id", sa.BigInteger),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("needs_comment", sa.Boolean, nullable=False),
    sa.Column("commented_at", sa.DateTime),
    sa.Column("http_status", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("caller", sa.Text),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_url(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[str]:
    """An empty database (no migration run yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.sqlite"
        return
    server: PostgresServer = request.getfixturevalue("pg_server")
    name = f"old_{request.node.name.split('[')[0][-20:]}_{id(request)}"
    with DatabaseJanitor(user=server.user, host=server.host, port=server.port, dbname=name):
        yield server.url(name)


def _upgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", "bridge.store:migrations")
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


OLD_ROWS = [
    {"id": 1, "at": _at(1), "kind": "job_retry", "ticket_id": 10, "transaction_id": 1001,
     "job_id": 1, "detail": "attempt 1: rsync timed out", "needs_comment": False},
    {"id": 2, "at": _at(2), "kind": "hook_refused", "ticket_id": 12, "transaction_id": 1201,
     "job_id": None, "detail": "bad state", "needs_comment": True, "commented_at": None,
     "http_status": 422, "reason": "RolloutProgress 'Shipped' is unknown",
     "caller": "192.0.2.1 (signed)"},
    {"id": 3, "at": _at(3), "kind": "hook_refused", "ticket_id": 12, "transaction_id": 1202,
     "job_id": None, "detail": "bad state", "needs_comment": True, "commented_at": _at(4),
     "http_status": 422, "reason": "again", "caller": None},
    {"id": 5, "at": _at(5), "kind": "job_dead", "ticket_id": 12, "transaction_id": 1203,
     "job_id": 3, "detail": "attempt 8: RT unavailable", "needs_comment": False},
]  # fmt: skip


def _fill_old(engine: sa.Engine) -> None:
    rel, hist, areas, slots, jobs = (
        tables.releases,
        tables.state_history,
        tables.release_areas,
        tables.stage_slots,
        tables.jobs,
    )
    with engine.begin() as conn:
        conn.execute(rel.insert(), [
            {"ticket_id": 10, "state": "Production", "major_release": "UMD-5", "emergency": False,
             "updated_at": _at(30)},
            {"ticket_id": 11, "state": "StageRollout", "major_release": "UMD-5",
             "emergency": False, "updated_at": _at(40)},
            {"ticket_id": 12, "state": "Failed", "major_release": "UMD-6", "emergency": False,
             "failed_target": "Unverified", "updated_at": _at(50)},
        ])  # fmt: skip
        spans = {
            10: ["Submitted", "Unverified", "StageRollout", "Production"],
            11: ["Submitted", "Unverified", "StageRollout"],
            12: ["Submitted", "Failed"],
        }
        for ticket, states in spans.items():
            for n, state in enumerate(states):
                last = n == len(states) - 1
                conn.execute(
                    hist.insert().values(
                        ticket_id=ticket,
                        state=state,
                        entered_at=_at(ticket + n * 7.25),
                        left_at=None if last else _at(ticket + (n + 1) * 7.25),
                        actor="qc",
                    )
                )
        conn.execute(areas.insert(), [
            {"ticket_id": 10, "area": "production/umd5/base", "published_at": _at(30)},
            {"ticket_id": 11, "area": "unverified/umd5/11", "published_at": _at(20)},
            {"ticket_id": 11, "area": "stagerollout/umd5/11", "published_at": _at(35)},
        ])  # fmt: skip
        conn.execute(slots.insert().values(major_release="UMD-5", ticket_id=11, emergency=False,
                                           taken_at=_at(35)))  # fmt: skip
        common = {
            "current": "Unverified",
            "previous": "Submitted",
            "emergency": False,
            "actor": "qc",
            "source": "hook",
            "scheduled_at": _at(1),
            "created_at": _at(1),
        }
        conn.execute(jobs.insert(), [
            {"id": 1, "ticket_id": 10, "transaction_id": 1001, "status": "done", "attempts": 2,
             **common},
            {"id": 2, "ticket_id": 11, "transaction_id": 1101, "status": "queued", "attempts": 0,
             **common},
            {"id": 3, "ticket_id": 12, "transaction_id": 1203, "status": "dead", "attempts": 8,
             **common},
        ])  # fmt: skip
        # Every row with every column: an executemany takes its columns from the first row.
        empty = dict.fromkeys(c.name for c in OLD_EVENTS.c)
        conn.execute(OLD_EVENTS.insert(), [empty | r for r in OLD_ROWS])


@pytest.fixture
def migrated(bare_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(bare_url)
    _upgrade(engine, "0007")
    _fill_old(engine)
    _upgrade(engine, "head")
    assert database.schema_is_current(engine)
    yield engine
    engine.dispose()


def test_the_migrated_log_verifies_and_rebuilds_without_a_difference(
    migrated: sa.Engine,
) -> None:
    report = chain_check.verify(migrated)
    assert report.ok, report.broken
    assert report.checked == len(OLD_ROWS) + 3 + 3  # the old events, a release and a job each
    check = rebuild.check(migrated)
    assert check.differences == () and check.not_checked == ()
    assert (check.releases, check.jobs, check.slots) == (3, 3, 1)


def test_new_work_after_the_migration_still_rebuilds_without_a_difference(
    migrated: sa.Engine,
) -> None:
    # After the migration's own time (the imported events'), as on a real daemon's clock.
    clock = event_history.FakeClock(event_history.queue.utcnow() + timedelta(minutes=1))
    store = event_history.releases.ReleaseStore(migrated, clock=clock)
    q = event_history.queue.Queue(migrated, clock=clock)
    (job,) = q.claim("w1")  # the job that was queued before the log
    assert store.free_slot("UMD-5", 11)
    store.forget_areas(11, ["stagerollout/umd5/11"])
    event_history.move(store, 11, S.STAGE_ROLLOUT, S.PRODUCTION, txn=1102)
    assert q.complete(job.id, "w1", job=job)
    clock.advance(60)
    event_history.move(store, 12, S.FAILED, S.UNVERIFIED, txn=1204)
    q.retry(3, actor="operator")
    assert rebuild.differences(migrated) == []
    assert chain_check.verify(migrated).ok
    log = rebuild.rebuilt(migrated)
    assert [s[0] for s in log.releases[11].stays] == [
        "Submitted", "Unverified", "StageRollout", "Production"
    ]  # fmt: skip
    assert (log.jobs[2].status, log.jobs[2].attempts) == ("done", 1)


def test_the_events_view_answers_the_old_columns(migrated: sa.Engine) -> None:
    columns = [c.name for c in OLD_EVENTS.c]
    with migrated.connect() as conn:
        rows = conn.execute(
            sa.text(f"SELECT {', '.join(columns)} FROM events WHERE kind <> 'imported' ORDER BY id")  # noqa: S608
        ).all()
    got = [dict(r._mapping) for r in rows]
    assert [r["kind"] for r in got] == [r["kind"] for r in OLD_ROWS]
    for old, new in zip(OLD_ROWS, got, strict=True):
        assert new["at"] == old["at"] or str(new["at"]).startswith(str(old["at"])[:19])
        for key in ("ticket_id", "transaction_id", "job_id", "detail", "http_status", "reason",
                    "caller"):  # fmt: skip
            assert new[key] == old.get(key), (key, old, new)
        assert bool(new["needs_comment"]) == old["needs_comment"]
        commented = new["commented_at"]
        assert (commented is None) == (old.get("commented_at") is None)
