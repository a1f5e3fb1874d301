"""``rollout release show`` on a real database (SQLite and PostgreSQL), with the events written
by the real stores the way the daemon writes them: the queue claims, fails and re-runs a job,
the release store records the release, its steps, its publication and its moves, each inside
the job's provenance. The timeline shows every attempt in order with its cause, the failed
attempts' errors, and the states with their times; docs/events.md shows this very output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import database, event_log, provenance, queue, release_events, releases, retry
from bridge.store import events as eventlog
from repo_daemon import cli
from repo_daemon.daemon import assemble
from tests.support import paths

S = records.RolloutState
K = eventlog.EventKind
TICKET = 4711
NOW = datetime(2026, 11, 24, 15, 0, 0)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def at(self, hh_mm_ss: str) -> None:
        self.now = datetime.fromisoformat(f"2026-11-24T{hh_mm_ss}")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 24, 9, 0, 0))


@pytest.fixture
def stores(db_url: str, clock: Clock) -> Iterator[tuple[queue.Queue, releases.ReleaseStore]]:
    engine = database.create_engine(db_url)
    yield queue.Queue(engine, clock=clock), releases.ReleaseStore(engine, clock=clock)
    engine.dispose()


def _working_on(job: records.Job) -> provenance.Provenance:
    """What ``repo_daemon.daemon.runner`` sets around a job."""
    return provenance.Provenance(
        job_id=job.id,
        ticket_id=job.ticket_id,
        transaction_id=job.request.transaction_id,
        actor=job.request.actor,
        cause=eventlog.Cause.parse(job.cause),
        attempt=job.attempt,
    )


def _step(
    store: releases.ReleaseStore, job: records.Job, name: str, seconds: float, detail: str = ""
) -> None:
    """A checkpointed action, as ``WorkflowProcessor._act`` records it."""
    done = event_log.draft(
        K.ACTION_DONE,
        ticket_id=TICKET,
        data={
            "detail": f"{name}: {detail}" if detail else name,
            "action": name,
            "seconds": seconds,
        },
    )
    store.mark_step(job.id, name, detail, event=done)


def _move(
    store: releases.ReleaseStore,
    job: records.Job,
    came_from: S,
    to: S,
    ran: list[dict[str, object]],
) -> None:
    """A move as ``WorkflowProcessor._apply`` records it: the ticket told, then the move with
    its ``transition_done`` event in one transaction."""
    told = event_log.draft(
        K.TICKET_TOLD,
        ticket_id=TICKET,
        data={
            "detail": "write_ticket: RepositoryURL, RolloutHistory, RolloutProgress",
            "step": "write_ticket",
            "fields": ["RepositoryURL", "RolloutHistory", "RolloutProgress"],
        },
    )
    store.mark_step(job.id, "write_ticket", "fields", event=told)
    event = event_log.draft(
        K.TRANSITION_DONE,
        ticket_id=TICKET,
        data={
            "detail": f"{came_from.label} → {to.label}: allowed",
            "from": came_from.label,
            "to": to.label,
            "asked": job.request.current.label,
            "actions": ran,
        },
    )
    store.move(
        TICKET, to, transaction_id=job.request.transaction_id, actor=job.request.actor, event=event
    )


def _walk(jobs: queue.Queue, store: releases.ReleaseStore, clock: Clock) -> int:
    """Submitted → Unverified: the sync fails, is retried and dead-lettered, bob re-runs it
    and it goes through; later Unverified → InVerification. Returns the first job's id."""
    policy = retry.RetryPolicy(max_attempts=2, base_delay=5.0, jitter=0.0)
    error = (
        "RsyncFailed: rsync exited with code 10 (error in socket I/O) fetching "
        "rsync://provider.example.org/umd/"
    )
    job_id = jobs.enqueue(
        records.ReleaseRequest(
            ticket_id=TICKET,
            transaction_id=9001,
            current=S.UNVERIFIED,
            previous=S.SUBMITTED,
            actor="qc-anna",
        )
    )
    clock.at("09:00:02")
    (job,) = jobs.claim("vm1:101")
    with provenance.working_for(_working_on(job)):
        store.ensure(
            TICKET,
            state=S.SUBMITTED,
            major_release="UMD-5",
            emergency=False,
            entered_at=datetime(2026, 11, 24, 8, 40),
        )
        clock.at("09:00:03")
        store.freeze_release_xml(TICKET, sha256="5e" * 32, attachment_id=31)
        _step(store, job, "freeze_release_xml", 0.8, "attachment 31")
        clock.at("09:01:30")
    assert (
        jobs.fail(job, "vm1:101", error, transient=True, policy=policy, action="sync_packages")
        is records.JobStatus.QUEUED
    )
    clock.at("09:01:40")
    (job,) = jobs.claim("vm1:101")
    clock.at("09:03:10")
    assert (
        jobs.fail(job, "vm1:101", error, transient=True, policy=policy, action="sync_packages")
        is records.JobStatus.DEAD
    )
    clock.at("09:30:00")
    jobs.retry(job_id, actor="bob")
    clock.at("09:30:05")
    (job,) = jobs.claim("vm2:202")
    with provenance.working_for(_working_on(job)):
        clock.at("09:30:47")
        _step(store, job, "sync_packages", 42.0, "3 files")
        clock.at("09:30:49")
        store.set_repository_path(
            TICKET,
            "unverified/UMD-5/1.2.0",
            published={"snapshot": "20261124T093049", "files": 3, "bytes": 1234567},
        )
        _step(store, job, "publish_unverified", 1.3)
        clock.at("09:30:50")
        _move(
            store,
            job,
            S.SUBMITTED,
            S.UNVERIFIED,
            [
                {"name": "check_fields", "outcome": "done", "seconds": 0.0},
                {"name": "freeze_release_xml", "outcome": "done before", "seconds": 0.0},
                {"name": "sync_packages", "outcome": "done", "seconds": 42.0},
                {"name": "publish_unverified", "outcome": "done", "seconds": 1.3},
                {"name": "notify_watchers", "outcome": "done", "seconds": 0.0},
            ],
        )
    assert jobs.complete(job.id, "vm2:202", job=job)
    clock.at("11:00:00")
    jobs.enqueue(
        records.ReleaseRequest(
            ticket_id=TICKET,
            transaction_id=9002,
            current=S.IN_VERIFICATION,
            previous=S.UNVERIFIED,
            actor="qc-anna",
        )
    )
    clock.at("11:00:01")
    (job,) = jobs.claim("vm1:101")
    with provenance.working_for(_working_on(job)):
        clock.at("11:00:02")
        _move(
            store,
            job,
            S.UNVERIFIED,
            S.IN_VERIFICATION,
            [{"name": "notify_watchers", "outcome": "done", "seconds": 0.0}],
        )
    assert jobs.complete(job.id, "vm1:101", job=job)
    return job_id


@pytest.fixture
def rollout(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``rollout`` on the test's database, its clock at ``NOW``."""
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))

    def fixed(settings: settings_model.Settings) -> queue.Queue:
        return queue.Queue(database.create_engine(settings.database()), clock=lambda: NOW)

    monkeypatch.setattr(assemble, "open_queue", fixed)
    yield


def _show(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = cli.main(["release", "show", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_attempts_show_in_order_with_their_numbers_causes_and_errors(
    stores: tuple[queue.Queue, releases.ReleaseStore],
    clock: Clock,
    rollout: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job_id = _walk(*stores, clock)
    status, out, err = _show(capsys, str(TICKET), "--json")
    assert (status, err) == (0, "")
    shown = json.loads(out)
    first, second = shown["changes"]
    assert first["job_id"] == job_id
    assert [(a["number"], a["cause"], a["asked_by"], a["end"]) for a in first["attempts"]] == [
        (1, "hook", "qc-anna", "retry"),
        (2, "automatic_retry", "qc-anna", "dead"),
        (3, "manual_rerun", "bob", "done"),
    ]
    assert [a["number"] for a in second["attempts"]] == [1]
    for failed in first["attempts"][:2]:
        assert failed["error"].startswith("RsyncFailed: rsync exited with code 10")
        assert failed["failed_action"] == "sync_packages"
    assert first["attempts"][0]["actions"] == [
        {
            "name": "freeze_release_xml",
            "outcome": "done",
            "seconds": 0.8,
            "detail": "freeze_release_xml: attachment 31",
            "after_failure": False,
        },
        {
            "name": "sync_packages",
            "outcome": "failed",
            "seconds": None,
            "detail": first["attempts"][0]["error"],
            "after_failure": False,
        },
    ]
    assert [x["by"] for x in first["reruns"]] == ["bob"]
    assert [(s["state"], s["entered_at"], s["left_at"], s["seconds"]) for s in shown["stays"]] == [
        ("Submitted", "2026-11-24T08:40:00.000000Z", "2026-11-24T09:30:50.000000Z", 3050.0),
        ("Unverified", "2026-11-24T09:30:50.000000Z", "2026-11-24T11:00:02.000000Z", 5352.0),
        ("InVerification", "2026-11-24T11:00:02.000000Z", None, 14398.0),
    ]
    assert shown["state"] == "InVerification" and shown["pruned"] is False
    assert [(p["area"], p["files"], p["bytes"]) for p in shown["publications"]] == [
        ("unverified/UMD-5/1.2.0", 3, 1234567)
    ]


def test_the_text_is_what_docs_events_md_shows(
    stores: tuple[queue.Queue, releases.ReleaseStore],
    clock: Clock,
    rollout: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _walk(*stores, clock)
    status, out, err = _show(capsys, str(TICKET))
    assert (status, err) == (0, "")
    doc = (paths.ROOT / "docs" / "events.md").read_text()
    section = doc[doc.index("<!-- section: timeline -->") : doc.index("<!-- end section: timeline")]
    (example,) = re.findall(r"```text\n\$ rollout release show 4711\n(.*?)```", section, re.S)
    assert out == example


def test_a_ticket_without_events_exits_1_saying_so(
    stores: tuple[queue.Queue, releases.ReleaseStore],
    clock: Clock,
    rollout: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _walk(*stores, clock)
    status, out, err = _show(capsys, "4712")
    assert (status, out) == (1, "")
    assert err.startswith("error: the bridge has no events for ticket 4712")


def test_a_long_history_is_read_in_pages_oldest_first(
    stores: tuple[queue.Queue, releases.ReleaseStore], clock: Clock
) -> None:
    jobs, store = stores
    _walk(jobs, store, clock)
    whole = release_events.events_of(jobs.engine, TICKET)
    assert [e.seq for e in whole] == list(range(1, len(whole) + 1))
    assert release_events.events_of(jobs.engine, TICKET, page=2) == whole
    assert release_events.events_of(jobs.engine, TICKET, page=len(whole)) == whole
    newest_first = jobs.events(ticket_id=TICKET, limit=1000)
    assert [e.id for e in whole] == [e.id for e in reversed(newest_first)]


def test_a_release_whose_first_events_were_deleted_says_so(
    stores: tuple[queue.Queue, releases.ReleaseStore],
    clock: Clock,
    rollout: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jobs, store = stores
    _walk(jobs, store, clock)
    from bridge.store import tables  # retention's own delete is covered by its tests

    with jobs.engine.begin() as conn:
        conn.execute(
            tables.event_log.delete().where(
                tables.event_log.c.ticket_id == TICKET, tables.event_log.c.seq <= 5
            )
        )
    status, out, _ = _show(capsys, str(TICKET))
    assert status == 0
    assert "events 1–5 of this release were deleted by retention" in out
    assert re.search(r"^  Submitted +\? +2026-11-24 09:30:50 +\? ", out, re.M)


def test_times_of_a_move_are_the_stores_own(
    stores: tuple[queue.Queue, releases.ReleaseStore], clock: Clock
) -> None:
    """The timeline's stays agree with ``state_history``, which the store keeps beside."""
    jobs, store = stores
    _walk(jobs, store, clock)
    from repo_daemon.history import timeline

    built = timeline.build(TICKET, release_events.events_of(jobs.engine, TICKET), now=NOW)
    kept = store.history(TICKET)
    assert [(s.state, s.entered_at, s.left_at) for s in built.stays] == [
        (k.state.label, k.entered_at, k.left_at) for k in kept
    ]
    four_hours_less_2s = timedelta(hours=4, seconds=-2).total_seconds()
    assert built.stays[-1].seconds == kept[-1].seconds(NOW) == four_hours_less_2s
