"""The runner with fake processors on the in-memory queue (``bridge.testing``) and a fake clock.

The same tests on a real SQLite queue are tests/integration/test_runner.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bridge import errors, records, testing
from bridge import secrets as bridge_secrets
from bridge.settings import model as settings_model
from bridge.store import events
from repo_daemon import errors as daemon_errors
from repo_daemon.daemon import failures, runner
from tests.support import tracker_processor

S = records.RolloutState
SECRET = "1-14-5f0c0ffee5f0c0ffee"
LEASE = timedelta(seconds=60)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, 0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jobs(clock: FakeClock) -> testing.InMemoryQueue:
    return testing.InMemoryQueue(clock=clock, lease=LEASE)


def change(ticket: int, txn: int, *, actor: str = "qc") -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket,
        transaction_id=txn,
        current=S.UNVERIFIED,
        previous=S.SUBMITTED,
        actor=actor,
    )


class FakeProcessor:
    """Records what it is given; ``behaviour`` may raise or do something for a job."""

    def __init__(self, behaviour: Callable[[records.Job], None] | None = None) -> None:
        self.seen: list[int] = []
        self.gave_up_on: list[tuple[int, str]] = []
        self.behaviour = behaviour

    def process(self, job: records.Job) -> None:
        self.seen.append(job.id)
        if self.behaviour is not None:
            self.behaviour(job)

    def gave_up(self, job: records.Job, message: str) -> None:
        self.gave_up_on.append((job.id, message))

    def close(self) -> None:
        pass


def raising(exc: BaseException) -> Callable[[records.Job], None]:
    def behaviour(_job: records.Job) -> None:
        raise exc

    return behaviour


def make_runner(
    jobs: testing.InMemoryQueue,
    processor: runner.Processor,
    *,
    max_attempts: int = 3,
    base_delay: float = 10.0,
    bridge_user: str | None = "rollout-bridge",
    workers: int = 1,
    **kwargs: object,
) -> runner.Runner:
    daemon = settings_model.DaemonSettings(
        retry_base_delay=base_delay,
        retry_max_attempts=max_attempts,
        rt_bridge_user=bridge_user,
        workers=workers,
    )
    return runner.Runner(
        jobs,
        processor,
        daemon,
        worker="test:1",
        secrets=[SECRET],
        **kwargs,  # type: ignore[arg-type]
    )


def status(jobs: testing.InMemoryQueue, job_id: int) -> records.Job:
    job = jobs.get(job_id)
    assert job is not None
    return job


def test_due_jobs_are_processed_in_order_and_completed(jobs: testing.InMemoryQueue) -> None:
    ids = [jobs.enqueue(change(1, 10)), jobs.enqueue(change(2, 11)), jobs.enqueue(change(1, 12))]
    processor = FakeProcessor()

    report = make_runner(jobs, processor).drain()

    assert processor.seen == ids
    assert (report.claimed, report.done, report.finished) == (3, 3, 3)
    assert {status(jobs, i).status for i in ids} == {records.JobStatus.DONE}
    assert make_runner(jobs, processor).drain() == runner.DrainReport()  # nothing due


def test_max_jobs_bounds_one_drain(jobs: testing.InMemoryQueue) -> None:
    jobs.enqueue_many([change(t, t) for t in range(1, 6)])
    report = make_runner(jobs, FakeProcessor()).drain(max_jobs=2)
    assert report.done == 2
    assert len(jobs.list_jobs(statuses=[records.JobStatus.QUEUED])) == 3


def test_a_transient_error_is_retried_with_backoff(
    jobs: testing.InMemoryQueue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    down = errors.TrackerUnavailable("RT did not answer", operation="get_ticket", ticket_id=1)
    processor = FakeProcessor(raising(down))
    run = make_runner(jobs, processor, base_delay=10)

    report = run.drain()

    assert report.retried == 1
    job = status(jobs, job_id)
    assert job.status is records.JobStatus.QUEUED
    assert job.last_error == "TrackerUnavailable: get_ticket (ticket 1): RT did not answer"
    delay = (job.scheduled_at - clock.now).total_seconds()
    assert 7.5 <= delay <= 12.5  # 10 s ± 25 % jitter
    assert run.drain().claimed == 0  # not before its time
    clock.advance(delay)
    processor.behaviour = None
    assert run.drain().done == 1
    assert status(jobs, job_id).attempts == 2
    assert [e.kind.value for e in reversed(jobs.events(ticket_id=1))] == [
        "job_queued", "job_claimed", "job_retry", "job_claimed", "job_done",
    ]  # fmt: skip
    # Each attempt is numbered; the second one says it was an automatic retry.
    claims = [e for e in reversed(jobs.events(kind=events.EventKind.JOB_CLAIMED))]
    assert [(e.data["attempt"], e.cause) for e in claims] == [
        (1, events.Cause.HOOK), (2, events.Cause.AUTOMATIC_RETRY),
    ]  # fmt: skip


def test_an_outdated_decision_is_tried_again_at_once_within_the_limit(
    jobs: testing.InMemoryQueue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    raced = daemon_errors.DecisionOutdated("the UMD-5 staged-rollout slot was taken meanwhile")
    tries: list[int] = []

    def behaviour(job: records.Job) -> None:
        tries.append(job.attempts)
        if len(tries) == 1:
            raise raced

    run = make_runner(jobs, FakeProcessor(behaviour), base_delay=10, max_attempts=3)
    report = run.drain()  # no time passes: the retry is due at once, in the same drain
    assert (report.retried, report.done, tries) == (1, 1, [1, 2])
    assert status(jobs, job_id).status is records.JobStatus.DONE

    # a decision outdated every time still ends in the dead letter after max_attempts
    stuck = jobs.enqueue(change(2, 11))
    report = make_runner(jobs, FakeProcessor(raising(raced)), max_attempts=3).drain()
    assert (report.retried, report.dead) == (2, 1)
    assert status(jobs, stuck).status is records.JobStatus.DEAD


def test_transient_errors_end_in_the_dead_letter(
    jobs: testing.InMemoryQueue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    down = daemon_errors.ProcessingFailed("rsync: connection refused", transient=True)
    processor = FakeProcessor(raising(down))
    run = make_runner(jobs, processor, max_attempts=3)

    outcomes = []
    for _ in range(3):
        report = run.drain()
        outcomes.append((report.retried, report.dead))
        clock.advance(3600)

    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    job = status(jobs, job_id)
    assert (job.status, job.attempts) == (records.JobStatus.DEAD, 3)
    # Only the dead letter is handed back to the processor, once, with the cause.
    assert processor.gave_up_on == [(job_id, "ProcessingFailed: rsync: connection refused")]
    assert [e.kind.value for e in jobs.events(ticket_id=1)] == [
        "job_dead", "job_claimed", "job_retry", "job_claimed", "job_retry", "job_claimed",
        "job_queued",
    ]  # fmt: skip
    assert run.drain().claimed == 0


def test_a_permanent_error_fails_the_job_at_once(jobs: testing.InMemoryQueue) -> None:
    job_id = jobs.enqueue(change(7, 10))
    gone = errors.TrackerNotFound("RT has no such object", operation="get_ticket", ticket_id=7)
    report = make_runner(jobs, FakeProcessor(raising(gone))).drain()
    assert report.failed == 1
    job = status(jobs, job_id)
    assert (job.status, job.attempts) == (records.JobStatus.FAILED, 1)
    assert job.last_error == "TrackerNotFound: get_ticket (ticket 7): RT has no such object"
    (event, *_) = jobs.events(ticket_id=7)
    assert event.kind is events.EventKind.JOB_FAILED


def test_an_unknown_exception_is_transient_named_and_free_of_secrets(
    jobs: testing.InMemoryQueue, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    bug = KeyError(f"token {SECRET} not in cache")
    report = make_runner(jobs, FakeProcessor(raising(bug))).drain()
    assert report.retried == 1
    job = status(jobs, job_id)
    assert job.status is records.JobStatus.QUEUED
    assert job.last_error == "unexpected KeyError: 'token ******** not in cache'"
    assert SECRET not in caplog.text
    assert SECRET not in str(jobs.events(ticket_id=1))


def test_a_job_that_killed_its_daemons_goes_to_the_dead_letter(
    jobs: testing.InMemoryQueue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    for crashed in ("a:1", "b:2", "c:3"):  # claimed, then the daemon died: the lease runs out
        (claimed,) = jobs.claim(crashed)
        assert claimed.id == job_id
        clock.advance(LEASE.total_seconds() + 1)
    processor = FakeProcessor()

    report = make_runner(jobs, processor, max_attempts=3).drain()

    assert processor.seen == []  # never started again
    assert report.dead == 1
    job = status(jobs, job_id)
    assert (job.status, job.attempts) == (records.JobStatus.DEAD, 4)
    assert job.last_error is not None
    assert "claimed 4 times without finishing" in job.last_error
    assert f"rollout queue retry {job_id}" in job.last_error


def test_the_bridges_own_writes_are_completed_without_processing(
    jobs: testing.InMemoryQueue,
) -> None:
    own = jobs.enqueue(change(1, 10, actor="rollout-bridge"))
    theirs = jobs.enqueue(change(1, 11, actor="qc"))
    processor = FakeProcessor()

    report = make_runner(jobs, processor, bridge_user="rollout-bridge").drain()

    assert (report.skipped, report.done) == (1, 1)
    assert processor.seen == [theirs]
    assert status(jobs, own).status is records.JobStatus.DONE
    (event,) = jobs.events(kind=events.EventKind.JOB_SKIPPED_OWN_WRITE)
    assert (event.job_id, event.transaction_id) == (own, 10)
    assert "bridge's own account 'rollout-bridge'" in event.detail


def test_without_a_bridge_user_nothing_is_skipped(jobs: testing.InMemoryQueue) -> None:
    jobs.enqueue(change(1, 10, actor=""))
    processor = FakeProcessor()
    assert make_runner(jobs, processor, bridge_user=None).drain().done == 1
    assert len(processor.seen) == 1


def test_stop_finishes_the_job_in_hand_and_releases_the_rest(jobs: testing.InMemoryQueue) -> None:
    ids = [jobs.enqueue(change(t, t)) for t in range(1, 5)]
    processor = FakeProcessor()
    run = make_runner(jobs, processor, batch=3)
    processor.behaviour = lambda _job: run.stop()  # SIGTERM arrives during the first job

    report = run.drain()

    assert processor.seen == [ids[0]]
    assert (report.claimed, report.done, report.released) == (3, 1, 2)
    assert status(jobs, ids[0]).status is records.JobStatus.DONE
    for job_id in ids[1:]:
        job = status(jobs, job_id)
        assert (job.status, job.attempts, job.locked_by) == (records.JobStatus.QUEUED, 0, None)
    assert run.stopping
    assert run.drain().claimed == 0  # a stopped runner claims nothing


def test_the_heartbeat_keeps_the_lease_while_a_job_runs(
    jobs: testing.InMemoryQueue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))

    def long_job(_job: records.Job) -> None:
        clock.advance(LEASE.total_seconds() * 2)  # far past the first lease
        deadline = time.monotonic() + 10
        while status(jobs, job_id).locked_until != clock.now + LEASE:
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.01)
        assert jobs.claim("other") == []  # the lease holds: nobody else takes it

    report = make_runner(jobs, FakeProcessor(long_job), heartbeat_interval=0.01).drain()
    assert report.done == 1


def test_a_job_whose_lease_was_taken_over_is_not_completed(
    jobs: testing.InMemoryQueue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))

    def stalled(_job: records.Job) -> None:  # no heartbeat got through: another daemon took it
        clock.advance(LEASE.total_seconds() + 1)
        assert [j.id for j in jobs.claim("other")] == [job_id]

    report = make_runner(jobs, FakeProcessor(stalled), heartbeat_interval=3600).drain()
    assert (report.done, report.lost) == (0, 1)
    job = status(jobs, job_id)
    assert (job.status, job.locked_by) == (records.JobStatus.RUNNING, "other")


# -- a processor that reads RT ---------------------------------------------------------------


def test_a_ticket_reading_processor_records_what_rt_says(jobs: testing.InMemoryQueue) -> None:
    tracker = testing.FakeTracker()
    tracker.add_ticket(1, fields={"RolloutProgress": "InVerification"})
    processor = tracker_processor.TrackerProcessor(jobs, lambda: tracker)  # type: ignore[arg-type,return-value]
    done = jobs.enqueue(change(1, 10))
    missing = jobs.enqueue(change(404, 11))

    report = make_runner(jobs, processor).drain()

    assert (report.done, report.failed) == (1, 1)
    (event,) = jobs.events(kind=events.EventKind.JOB_PROCESSED)
    assert (event.job_id, event.ticket_id, event.transaction_id) == (done, 1, 10)
    assert event.detail == (
        "ticket 1 is at RolloutProgress InVerification (change Submitted → Unverified by qc, hook)"
    )
    failed = status(jobs, missing)
    assert failed.status is records.JobStatus.FAILED
    assert failed.last_error.startswith("TrackerNotFound: get_ticket (ticket 404): ")  # type: ignore[union-attr]
    processor.close()
    assert tracker.closed


def test_secrets_of_settings_are_all_masked() -> None:
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(
            url="http://rt.invalid/",
            token=bridge_secrets.Secret(SECRET),
            password=bridge_secrets.Secret("pw-1"),
        ),
        database_url=bridge_secrets.Secret("postgresql://bridge:db-pass-2@db/rollout"),
        receiver=settings_model.ReceiverSettings(hook_secret=bridge_secrets.Secret("whsec_abc")),
    )
    found = failures.secrets_of(settings)
    text = f"{SECRET} pw-1 postgresql://bridge:db-pass-2@db/rollout db-pass-2 whsec_abc"
    assert bridge_secrets.redact(text, found) == "******** ******** ******** ******** ********"
