"""The scheduler's jobs, their order at start-up, clean shutdown; the refusal comments."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from bridge import errors, records
from bridge.intake import refusals
from bridge.settings import model as settings_model
from bridge.store import database, events, queue
from repo_daemon.daemon import runner, scheduler
from tests.support.daemon_helpers import wait_for

S = records.RolloutState


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[queue.Queue]:
    engine = database.create_engine(database.default_url(tmp_path))
    database.migrate(engine)
    yield queue.Queue(engine)
    engine.dispose()


def change(ticket: int, txn: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=S.UNVERIFIED, previous=S.SUBMITTED
    )


class Recorder:
    """A processor, and a reconciliation that "recovers" a change, noting the order."""

    def __init__(self, jobs: queue.Queue) -> None:
        self.jobs = jobs
        self.order: list[str] = []
        self.lock = threading.Lock()

    def gave_up(self, job: records.Job, message: str) -> None:
        """Nothing to tell anyone about a dead letter."""

    def process(self, job: records.Job) -> None:
        with self.lock:
            self.order.append(f"process {job.request.transaction_id}")

    def reconcile(self) -> None:
        with self.lock:
            self.order.append("reconcile")
        self.jobs.enqueue_many([change(2, 20)])


# One worker: "the job in hand" is one job (several workers: test_runner.py).
SETTINGS = settings_model.DaemonSettings(drain_interval=0.05, reconcile_interval=3600, workers=1)


def make_daemon(
    jobs: queue.Queue, recorder: Recorder, *, blocking: bool = False, reconcile: bool = True
) -> scheduler.Daemon:
    run = runner.Runner(jobs, recorder, SETTINGS, worker="test:1")
    return scheduler.Daemon(
        SETTINGS,
        run,
        reconcile=recorder.reconcile if reconcile else None,
        comment_refusals=lambda: None,
        blocking=blocking,
    )


def test_the_jobs_are_declared_with_safe_defaults(jobs: queue.Queue) -> None:
    daemon = make_daemon(jobs, Recorder(jobs))
    assert daemon.job_ids() == ["startup", "reconcile", "comment_refusals"]
    sched = daemon.scheduler
    sched.start(paused=True)
    try:
        for job in sched.get_jobs():
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 30)
        reconcile_job = sched.get_job("reconcile")
        assert isinstance(reconcile_job.trigger, IntervalTrigger)
        assert reconcile_job.trigger.interval.total_seconds() == 3600
        comments = sched.get_job("comment_refusals")
        assert comments.trigger.interval.total_seconds() == scheduler.COMMENT_INTERVAL
    finally:
        sched.shutdown(wait=False)


def test_start_up_reconciles_before_the_first_drain(jobs: queue.Queue) -> None:
    jobs.enqueue(change(1, 10))
    recorder = Recorder(jobs)
    daemon = make_daemon(jobs, recorder)
    daemon.start()
    try:
        wait_for(lambda: len(recorder.order) >= 3, timeout=10, what="both jobs processed")
        assert recorder.order == ["reconcile", "process 10", "process 20"]
        assert "drain" in daemon.job_ids()
        assert daemon.scheduler.get_job("drain").trigger.interval.total_seconds() == 0.05
    finally:
        daemon.request_stop()
        assert daemon.wait_stopped(10)
    assert daemon.runner.stopping
    assert not daemon.scheduler.running


def test_a_failed_start_up_reconciliation_does_not_stop_draining(
    jobs: queue.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    jobs.enqueue(change(1, 10))
    recorder = Recorder(jobs)

    def rt_down() -> None:
        raise errors.TrackerUnavailable("could not connect", operation="field_changes_since")

    recorder.reconcile = rt_down  # type: ignore[method-assign]
    daemon = make_daemon(jobs, recorder)
    daemon.start()
    try:
        wait_for(lambda: recorder.order == ["process 10"], timeout=10, what="the drain")
    finally:
        daemon.request_stop()
        daemon.wait_stopped(10)
    assert "start-up reconciliation failed (TrackerUnavailable" in caplog.text


def test_sigterm_stops_a_blocking_daemon_after_the_job_in_hand(jobs: queue.Queue) -> None:
    jobs.enqueue(change(1, 10))
    jobs.enqueue(change(2, 11))
    recorder = Recorder(jobs)
    release = threading.Event()

    def slow(job: records.Job) -> None:
        with recorder.lock:
            recorder.order.append(f"start {job.request.transaction_id}")
        assert release.wait(10)
        Recorder.process(recorder, job)

    recorder.process = slow  # type: ignore[method-assign]
    daemon = make_daemon(jobs, recorder, blocking=True, reconcile=False)

    def terminate() -> None:
        wait_for(lambda: "start 10" in recorder.order, timeout=10, what="the first job")
        os.kill(os.getpid(), signal.SIGTERM)
        wait_for(lambda: daemon.stopping, timeout=10, what="the stop")
        release.set()

    before = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate)
    killer.start()
    daemon.run()  # blocks in this (the main) thread until the signal
    killer.join()

    assert recorder.order == ["start 10", "process 10"]  # finished; 11 never claimed
    assert jobs.stats()["done"] == 1
    assert jobs.stats()["queued"] == 1
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_overlapping_drain_ticks_are_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # A drain that runs for minutes (a big sync) skips a tick each second: that is normal.
    logger = scheduler._scheduler_logger
    logger.warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "drain",
        1,
    )
    logger.warning("Run time of job %s was missed by %s", "reconcile", "0:01:00")
    assert [r.getMessage() for r in caplog.records] == [
        "Run time of job reconcile was missed by 0:01:00"
    ]


# -- comments on refused changes ------------------------------------------------------------


class FakeTracker:
    def __init__(self, missing: set[int] = frozenset(), down: bool = False) -> None:  # type: ignore[assignment]
        self.missing = missing
        self.down = down
        self.comments: list[tuple[int, str]] = []

    def comment(self, ticket_id: int, text: str) -> None:
        if self.down:
            raise errors.TrackerUnavailable("RT answered HTTP 503", operation="comment")
        if ticket_id in self.missing:
            raise errors.TrackerNotFound("no such ticket", operation="comment")
        self.comments.append((ticket_id, text))


def test_refusals_are_commented_once_in_words(jobs: queue.Queue) -> None:
    jobs.record_event(
        events.EventKind.HOOK_REFUSED,
        ticket_id=5,
        transaction_id=77,
        detail="HTTP 422: RolloutProgress 'Shipped' is not a state the bridge knows "
        "(from 127.0.0.1; signed by RT)",
        needs_comment=True,
        http_status=422,
        reason="RolloutProgress 'Shipped' is not a state the bridge knows",
        caller="127.0.0.1; signed by RT",
    )
    jobs.record_event(
        events.EventKind.HOOK_REFUSED, ticket_id=404, detail="bad", needs_comment=True
    )
    tracker = FakeTracker(missing={404})
    commenter = refusals.RefusalCommenter(jobs, tracker)

    assert commenter.run() == 1
    ((ticket, text),) = tracker.comments
    assert ticket == 5
    assert text.startswith(
        "The rollout bridge did not act on a change of this ticket (RT transaction 77)."
    )
    assert "Reason: RolloutProgress 'Shipped' is not a state the bridge knows\n" in text
    assert "set RolloutProgress again" in text
    assert jobs.pending_comments() == []  # the missing ticket is given up, not retried
    assert commenter.run() == 0
    assert len(tracker.comments) == 1


def test_refusals_wait_while_rt_is_down(jobs: queue.Queue) -> None:
    jobs.record_event(events.EventKind.HOOK_REFUSED, ticket_id=5, detail="x", needs_comment=True)
    jobs.record_event(events.EventKind.HOOK_REFUSED, ticket_id=6, detail="y", needs_comment=True)
    tracker = FakeTracker(down=True)
    commenter = refusals.RefusalCommenter(jobs, tracker)
    assert commenter.run() == 0
    assert len(jobs.pending_comments()) == 2
    tracker.down = False
    assert commenter.run() == 2
    assert [t for t, _ in tracker.comments] == [5, 6]


def test_the_same_refusal_again_is_not_commented_again(jobs: queue.Queue) -> None:
    def refuse(reason: str, txn: int = 77) -> None:
        jobs.record_event(
            events.EventKind.HOOK_REFUSED, ticket_id=5, transaction_id=txn, needs_comment=True,
            detail=f"HTTP 422: {reason}", http_status=422, reason=reason, caller="x",
        )  # fmt: skip

    for _ in range(5):
        refuse("unknown RolloutProgress value 'Shipped'")
    refuse("another reason")  # the same change refused for another reason: told
    refuse("unknown RolloutProgress value 'Shipped'", txn=78)  # another change: told
    tracker = FakeTracker()
    commenter = refusals.RefusalCommenter(jobs, tracker)
    assert commenter.run() == 3
    refuse("unknown RolloutProgress value 'Shipped'")  # replayed later
    assert commenter.run() == 0
    assert jobs.pending_comments() == []
    assert len(tracker.comments) == 3
