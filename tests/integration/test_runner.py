"""The runner with fake processors on a real queue (SQLite in tmp_path, a fake clock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bridge import errors, records
from bridge.settings import model as settings_model
from bridge.store import database, events, queue
from repo_daemon import errors as daemon_errors
from repo_daemon.daemon import runner

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
def jobs(tmp_path: Path, clock: FakeClock) -> Iterator[queue.Queue]:
    engine = database.create_engine(database.default_url(tmp_path))
    database.migrate(engine)
    yield queue.Queue(engine, clock=clock, lease=LEASE)
    engine.dispose()


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
        self.behaviour = behaviour

    def gave_up(self, job: records.Job, message: str) -> None:
        """Nothing to tell anyone about a dead letter."""

    def process(self, job: records.Job) -> None:
        self.seen.append(job.id)
        if self.behaviour is not None:
            self.behaviour(job)


def raising(exc: BaseException) -> Callable[[records.Job], None]:
    def behaviour(_job: records.Job) -> None:
        raise exc

    return behaviour


def make_runner(
    jobs: queue.Queue,
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


def status(jobs: queue.Queue, job_id: int) -> records.Job:
    job = jobs.get(job_id)
    assert job is not None
    return job


def test_due_jobs_are_processed_in_order_and_completed(jobs: queue.Queue) -> None:
    ids = [jobs.enqueue(change(1, 10)), jobs.enqueue(change(2, 11)), jobs.enqueue(change(1, 12))]
    processor = FakeProcessor()

    report = make_runner(jobs, processor).drain()

    assert processor.seen == ids
    assert (report.claimed, report.done, report.finished) == (3, 3, 3)
    assert {status(jobs, i).status for i in ids} == {records.JobStatus.DONE}
    assert make_runner(jobs, processor).drain() == runner.DrainReport()  # nothing due


def test_max_jobs_bounds_one_drain(jobs: queue.Queue) -> None:
    jobs.enqueue_many([change(t, t) for t in range(1, 6)])
    report = make_runner(jobs, FakeProcessor()).drain(max_jobs=2)
    assert report.done == 2
    assert jobs.stats()["queued"] == 3


def test_a_transient_error_is_retried_with_backoff(jobs: queue.Queue, clock: FakeClock) -> None:
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


def test_an_outdated_decision_is_tried_again_at_once(jobs: queue.Queue) -> None:
    job_id = jobs.enqueue(change(1, 10))
    raced = daemon_errors.DecisionOutdated("the UMD-5 staged-rollout slot was taken meanwhile")
    tries: list[int] = []

    def behaviour(job: records.Job) -> None:
        tries.append(job.attempts)
        if len(tries) == 1:
            raise raced

    report = make_runner(jobs, FakeProcessor(behaviour), base_delay=10).drain()

    assert (report.retried, report.done, tries) == (1, 1, [1, 2])
    assert status(jobs, job_id).status is records.JobStatus.DONE
    kinds = [e.kind.value for e in reversed(jobs.events(ticket_id=1))]
    assert kinds == ["job_queued", "job_claimed", "job_retry", "job_claimed", "job_done"]


def test_transient_errors_end_in_the_dead_letter(jobs: queue.Queue, clock: FakeClock) -> None:
    job_id = jobs.enqueue(change(1, 10))
    down = daemon_errors.ProcessingFailed("rsync: connection refused", transient=True)
    run = make_runner(jobs, FakeProcessor(raising(down)), max_attempts=3)

    outcomes = []
    for _ in range(3):
        report = run.drain()
        outcomes.append((report.retried, report.dead))
        clock.advance(3600)

    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    job = status(jobs, job_id)
    assert (job.status, job.attempts) == (records.JobStatus.DEAD, 3)
    assert [e.kind.value for e in jobs.events(ticket_id=1)] == [
        "job_dead", "job_claimed", "job_retry", "job_claimed", "job_retry", "job_claimed",
        "job_queued",
    ]  # fmt: skip
    assert run.drain().claimed == 0


def test_a_permanent_error_fails_the_job_at_once(jobs: queue.Queue) -> None:
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
    jobs: queue.Queue, caplog: pytest.LogCaptureFixture
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
    jobs: queue.Queue, clock: FakeClock
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


def test_the_bridges_own_writes_are_completed_without_processing(jobs: queue.Queue) -> None:
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


def test_without_a_bridge_user_nothing_is_skipped(jobs: queue.Queue) -> None:
    jobs.enqueue(change(1, 10, actor=""))
    processor = FakeProcessor()
    assert make_runner(jobs, processor, bridge_user=None).drain().done == 1
    assert len(processor.seen) == 1


def test_stop_finishes_the_job_in_hand_and_releases_the_rest(jobs: queue.Queue) -> None:
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
    jobs: queue.Queue, clock: FakeClock
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
    jobs: queue.Queue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))

    def stalled(_job: records.Job) -> None:  # no heartbeat got through: another daemon took it
        clock.advance(LEASE.total_seconds() + 1)
        assert [j.id for j in jobs.claim("other")] == [job_id]

    report = make_runner(jobs, FakeProcessor(stalled), heartbeat_interval=3600).drain()
    assert (report.done, report.lost) == (0, 1)
    job = status(jobs, job_id)
    assert (job.status, job.locked_by) == (records.JobStatus.RUNNING, "other")


# -- the default processor ------------------------------------------------------------------


# -- several workers ------------------------------------------------------------------------


def test_jobs_of_different_tickets_run_at_once(jobs: queue.Queue) -> None:
    ids = [jobs.enqueue(change(t, t)) for t in range(1, 5)]
    together = threading.Barrier(4, timeout=10)  # broken unless all four run at the same time

    report = make_runner(jobs, FakeProcessor(lambda _job: together.wait()), workers=4).drain()

    assert (report.claimed, report.done) == (4, 4)
    assert {status(jobs, i).status for i in ids} == {records.JobStatus.DONE}


def test_a_stuck_ticket_does_not_hold_up_the_others(jobs: queue.Queue) -> None:
    stuck = jobs.enqueue(change(1, 1))
    others = [jobs.enqueue(change(t, t)) for t in range(2, 5)]
    unstick = threading.Event()
    later: list[int] = []

    def behaviour(job: records.Job) -> None:
        if job.id == stuck:
            # Work arriving while it hangs is taken up by the free workers, too.
            later.extend(jobs.enqueue(change(t, t)) for t in range(5, 9))
            assert unstick.wait(20)

    run = make_runner(jobs, FakeProcessor(behaviour), workers=2, poll_interval=0.01)
    reports: list[runner.DrainReport] = []
    drained = threading.Thread(target=lambda: reports.append(run.drain()))
    drained.start()
    deadline = time.monotonic() + 20
    while not all(status(jobs, i).status is records.JobStatus.DONE for i in others + later):
        assert time.monotonic() < deadline, "the other tickets waited for the stuck one"
        time.sleep(0.01)
    assert status(jobs, stuck).status is records.JobStatus.RUNNING
    unstick.set()
    drained.join(20)
    (report,) = reports
    assert (report.claimed, report.done) == (8, 8)
    run.close()


def test_a_tickets_changes_run_one_at_a_time_and_in_order_with_several_workers(
    jobs: queue.Queue,
) -> None:
    for txn in range(10, 40):
        jobs.enqueue(change(txn % 3, txn))  # three tickets, ten changes each
    lock = threading.Lock()
    running: set[int] = set()
    seen: dict[int, list[int]] = {}
    overlaps: list[int] = []

    def behaviour(job: records.Job) -> None:
        with lock:
            if job.ticket_id in running:
                overlaps.append(job.ticket_id)
            running.add(job.ticket_id)
            seen.setdefault(job.ticket_id, []).append(job.request.transaction_id)
        time.sleep(0.005)  # long enough for the other workers to try
        with lock:
            running.discard(job.ticket_id)

    report = make_runner(jobs, FakeProcessor(behaviour), workers=4, poll_interval=0.01).drain()

    assert report.done == 30
    assert overlaps == []
    assert seen == {t: sorted(seen[t]) for t in seen}
    assert sorted(len(v) for v in seen.values()) == [10, 10, 10]


def test_stop_with_several_workers_finishes_the_jobs_in_hand_and_claims_nothing_more(
    jobs: queue.Queue,
) -> None:
    ids = [jobs.enqueue(change(t, t)) for t in range(1, 7)]
    started = threading.Barrier(3, timeout=10)
    run = make_runner(jobs, FakeProcessor(), workers=3, poll_interval=0.01)

    def behaviour(_job: records.Job) -> None:
        if started.wait() == 0:  # all three in hand: SIGTERM arrives
            run.stop()

    run.processor = FakeProcessor(behaviour)
    report = run.drain()

    assert (report.claimed, report.done) == (3, 3)
    assert [status(jobs, i).status for i in ids] == [records.JobStatus.DONE] * 3 + [
        records.JobStatus.QUEUED
    ] * 3
    assert {status(jobs, i).attempts for i in ids[3:]} == {0}
    run.close()


# -- failures are recorded, whatever they say -----------------------------------------------


def test_a_failure_quoting_bytes_that_are_not_utf8_is_recorded_escaped(
    make_queue: Callable[..., queue.Queue],
) -> None:
    jobs = make_queue(lease=LEASE)
    job_id = jobs.enqueue(change(1, 10))
    # os.listdir keeps a name's undecodable bytes as lone surrogates; PostgreSQL refuses NUL.
    refused = daemon_errors.ProcessingFailed(
        "the tree holds 'caf\udce9.rpm' and 'a\x00b'", transient=False
    )

    report = make_runner(jobs, FakeProcessor(raising(refused))).drain()

    assert (report.failed, report.unrecorded) == (1, 0)
    job = status(jobs, job_id)
    assert job.status is records.JobStatus.FAILED
    assert job.last_error == "ProcessingFailed: the tree holds 'caf\\xe9.rpm' and 'a\\x00b'"
    (event, *_) = jobs.events(ticket_id=1)
    assert event.kind is events.EventKind.JOB_FAILED
    assert "'caf\\xe9.rpm' and 'a\\x00b'" in event.detail


class UnstorableText:
    """A queue whose database refuses some text (as a driver refuses what it cannot encode),
    or every outcome of some jobs (the database fails while they finish): the error paths no
    real database produces on demand."""

    def __init__(
        self, jobs: queue.Queue, *, refuse: str = "", broken_jobs: Collection[int] = ()
    ) -> None:
        self._jobs = jobs
        self.lease = jobs.lease
        self.refuse = refuse
        self.broken_jobs = set(broken_jobs)

    def __getattr__(self, name: str) -> object:
        return getattr(self._jobs, name)

    def complete(self, job_id: int, worker: str, **kwargs: object) -> bool:
        if job_id in self.broken_jobs:
            raise OSError("disk I/O error")
        return self._jobs.complete(job_id, worker, **kwargs)  # type: ignore[arg-type]

    def fail(self, job: records.Job, worker: str, error: str, **kwargs: object) -> object:
        if job.id in self.broken_jobs or (self.refuse and self.refuse in error):
            raise ValueError("the driver cannot store this text")
        return self._jobs.fail(job, worker, error, **kwargs)  # type: ignore[arg-type]


def test_a_failure_whose_text_cannot_be_stored_is_recorded_in_plain_words(
    jobs: queue.Queue,
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    odd = daemon_errors.ProcessingFailed("\N{SNOWMAN} cannot be stored", transient=False)
    store = UnstorableText(jobs, refuse="\N{SNOWMAN}")

    report = make_runner(store, FakeProcessor(raising(odd))).drain()  # type: ignore[arg-type]

    assert (report.failed, report.unrecorded) == (1, 0)
    job = status(jobs, job_id)
    assert job.status is records.JobStatus.FAILED
    assert job.last_error is not None
    assert job.last_error.startswith("the failure's own text could not be recorded (")
    assert "\\u2603 cannot be stored" in job.last_error


def test_a_job_whose_outcome_cannot_be_recorded_is_dead_lettered_after_its_attempts(
    jobs: queue.Queue, clock: FakeClock
) -> None:
    job_id = jobs.enqueue(change(1, 10))
    other = jobs.enqueue(change(2, 11))
    store = UnstorableText(jobs, broken_jobs={job_id})
    processor = FakeProcessor()
    run = make_runner(store, processor, max_attempts=3)  # type: ignore[arg-type]

    first = run.drain()  # the other ticket's job is not held up by it
    assert (first.done, first.unrecorded) == (1, 1)
    assert status(jobs, other).status is records.JobStatus.DONE
    for attempt in (2, 3):
        clock.advance(LEASE.total_seconds() + 1)
        assert run.drain().unrecorded == 1
        assert status(jobs, job_id).attempts == attempt
    store.broken_jobs.clear()  # the dead letter itself must be recordable
    clock.advance(LEASE.total_seconds() + 1)
    last = run.drain()

    assert last.dead == 1
    job = status(jobs, job_id)
    assert (job.status, job.attempts) == (records.JobStatus.DEAD, 4)
    assert job.last_error is not None and "could not record the outcome" in job.last_error
    clock.advance(24 * 3600)
    assert run.drain().claimed == 0  # never claimed again
    assert processor.seen.count(job_id) == 3
