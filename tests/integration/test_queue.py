"""The durable queue on a real SQLite file and a real PostgreSQL server (every test on both)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from bridge import records
from bridge.intake import refusals
from bridge.store import events, queue, retry, tables

S = records.RolloutState
QueueFactory = Callable[..., queue.Queue]


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def change(
    ticket: int, txn: int, current: S = S.UNVERIFIED, previous: S = S.SUBMITTED
) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=current, previous=previous, actor="qc"
    )


def test_a_transaction_is_queued_once(make_queue: QueueFactory) -> None:
    q = make_queue()
    first = q.enqueue(change(1, 100))
    with pytest.raises(queue.AlreadyQueued) as caught:
        q.enqueue(change(1, 100))
    assert caught.value.job_id == first
    results = q.enqueue_many([change(2, 101), change(1, 100), change(2, 101)])
    assert [(r.created, r.job_id == first) for r in results] == [
        (True, False),
        (False, True),
        (False, False),
    ]
    assert results[2].job_id == results[0].job_id
    assert q.stats()["queued"] == 2


def test_stored_change_reads_back_exactly(make_queue: QueueFactory) -> None:
    q = make_queue()
    request = records.ReleaseRequest(
        ticket_id=7,
        transaction_id=700,
        current=S.STAGE_ROLLOUT,
        previous=S.IN_VERIFICATION,
        emergency=True,
        actor="sr-team",
        source=records.JobSource.RECOVERED,
    )
    job = q.get(q.enqueue(request))
    assert job is not None
    assert job.request == request
    assert job.status is records.JobStatus.QUEUED
    assert job.attempts == 0


def test_a_tickets_changes_run_in_transaction_order_one_at_a_time(
    make_queue: QueueFactory,
) -> None:
    q = make_queue()
    # Arrival order differs from RT's order: reconciliation found 11 after 12 was queued.
    q.enqueue(change(1, 10))
    q.enqueue(change(1, 12, S.STAGE_ROLLOUT, S.IN_VERIFICATION))
    q.enqueue(change(1, 11, S.IN_VERIFICATION, S.UNVERIFIED))
    q.enqueue(change(2, 13))

    first = q.claim("a", limit=10)
    assert sorted((j.ticket_id, j.request.transaction_id) for j in first) == [(1, 10), (2, 13)]
    assert q.claim("b", limit=10) == []  # ticket 1's next change waits for 10
    assert q.complete(first[0].id, "a") and q.complete(first[1].id, "a")
    assert [j.request.transaction_id for j in q.claim("b", limit=10)] == [11]
    assert q.claim("c", limit=10) == []


def test_the_database_allows_one_running_job_per_ticket(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    q = queue.Queue(engine)
    a, b = q.enqueue(change(1, 10)), q.enqueue(change(1, 11))
    jobs = tables.jobs
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(jobs.update().where(jobs.c.id.in_([a, b])).values(status="running"))
    engine.dispose()


def test_an_expired_lease_is_claimed_again_and_the_old_owner_is_fenced(
    make_queue: QueueFactory,
) -> None:
    clock = FakeClock()
    q = make_queue(clock=clock, lease=timedelta(seconds=60))
    q.enqueue(change(1, 10))
    (held,) = q.claim("dead-daemon")
    clock.advance(30)
    assert q.claim("other") == []  # the lease still holds
    assert q.heartbeat(held.id, "dead-daemon")
    clock.advance(59)
    assert q.claim("other") == []  # the heartbeat extended it
    clock.advance(2)
    (again,) = q.claim("other")
    assert again.id == held.id
    assert again.attempts == 2
    assert not q.complete(held.id, "dead-daemon")  # fenced: no longer its job
    assert not q.heartbeat(held.id, "dead-daemon")
    assert q.complete(again.id, "other")
    job = q.get(held.id)
    assert job is not None and job.status is records.JobStatus.DONE


def test_transient_failures_back_off_then_dead_letter_then_retry_by_hand(
    make_queue: QueueFactory,
) -> None:
    clock = FakeClock()
    q = make_queue(clock=clock)
    policy = retry.RetryPolicy(base_delay=10, factor=2, max_attempts=3, jitter=0)
    job_id = q.enqueue(change(1, 10))

    (job,) = q.claim("d")
    assert q.fail(job, "d", "RT timed out", transient=True, policy=policy) is (
        records.JobStatus.QUEUED
    )
    stored = q.get(job_id)
    assert stored is not None and stored.scheduled_at == clock.now + timedelta(seconds=10)
    clock.advance(9)
    assert q.claim("d") == []  # not before its time
    clock.advance(1)
    (job,) = q.claim("d")
    assert job.attempts == 2
    q.fail(job, "d", "RT timed out", transient=True, policy=policy)
    stored = q.get(job_id)
    assert stored is not None and stored.scheduled_at == clock.now + timedelta(seconds=20)
    clock.advance(20)
    (job,) = q.claim("d")
    assert q.fail(job, "d", "RT timed out", transient=True, policy=policy) is (
        records.JobStatus.DEAD
    )
    clock.advance(10_000)
    assert q.claim("d") == []
    dead = q.get(job_id)
    assert dead is not None and dead.last_error == "RT timed out"
    kinds = [e.kind.value for e in reversed(q.events(ticket_id=1))]
    assert kinds == [
        "job_queued", "job_claimed", "job_retry", "job_claimed", "job_retry", "job_claimed",
        "job_dead",
    ]  # fmt: skip

    retried = q.retry(job_id, actor="alice")
    assert (retried.status, retried.attempts) == (records.JobStatus.QUEUED, 0)
    (job,) = q.claim("d")
    # Attempts are counted over the re-run, and this one says why it ran.
    assert (job.attempt, job.cause) == (4, "manual_rerun")
    assert q.complete(job.id, "d", job=job)
    newest = [(e.kind.value, e.actor, e.cause.label, e.data.get("attempt"))
              for e in q.events(ticket_id=1, limit=3)]  # fmt: skip
    assert newest == [
        ("job_done", "rollout-bridge", "manual_rerun", 4),
        ("job_claimed", "rollout-bridge", "manual_rerun", 4),
        ("job_requeued", "alice", "manual_rerun", None),
    ]
    # One sequence per release, from 1, without gaps.
    assert [e.seq for e in reversed(q.events(ticket_id=1))] == list(range(1, 11))
    with pytest.raises(queue.JobNotRetryable, match="is done"):
        q.retry(job_id)
    with pytest.raises(queue.JobNotFound):
        q.retry(987654)


def test_a_permanent_failure_is_not_retried_and_does_not_block_the_ticket(
    make_queue: QueueFactory,
) -> None:
    q = make_queue()
    policy = retry.RetryPolicy()
    q.enqueue(change(1, 10))
    q.enqueue(change(1, 11, S.REJECTED, S.UNVERIFIED))
    (job,) = q.claim("d")
    assert q.fail(job, "d", "ticket 1 does not exist", transient=False, policy=policy) is (
        records.JobStatus.FAILED
    )
    (next_job,) = q.claim("d")
    assert next_job.request.transaction_id == 11
    assert q.stats()["failed"] == 1


def test_release_gives_a_job_back_without_counting_the_try(make_queue: QueueFactory) -> None:
    q = make_queue()
    q.enqueue(change(1, 10))
    (job,) = q.claim("d")
    assert q.give_back(job.id, "d")
    (again,) = q.claim("e")
    assert again.attempts == 1


def test_events_comments_and_state(make_queue: QueueFactory) -> None:
    q = make_queue()
    q.record_event(
        events.EventKind.HOOK_REFUSED,
        ticket_id=5,
        detail="unknown state 'Shipped'",
        needs_comment=True,
    )
    q.record_event(events.EventKind.HOOK_REFUSED, detail="bad signature")
    (pending,) = q.pending_comments()
    assert pending.ticket_id == 5
    q.mark_commented(pending.id)
    assert q.pending_comments() == []
    assert q.get_state("reconcile_cursor") is None
    q.set_state("reconcile_cursor", "41")
    q.set_state("reconcile_cursor", "42")
    assert q.get_state("reconcile_cursor") == "42"


def test_a_refusal_keeps_status_reason_and_caller_apart(make_queue: QueueFactory) -> None:
    q = make_queue()
    q.record_event(
        events.EventKind.HOOK_REFUSED,
        ticket_id=5,
        transaction_id=77,
        detail="HTTP 422: unknown state 'Shipped' (from 10.0.0.5; signed by RT)",
        needs_comment=True,
        http_status=422,
        reason="unknown state 'Shipped'",
        caller="10.0.0.5; signed by RT",
    )
    (event,) = q.events(kind=events.EventKind.HOOK_REFUSED)
    assert (event.kind, event.ticket_id, event.transaction_id) == (
        events.EventKind.HOOK_REFUSED, 5, 77,
    )  # fmt: skip
    assert (event.http_status, event.reason, event.caller) == (
        422, "unknown state 'Shipped'", "10.0.0.5; signed by RT",
    )  # fmt: skip
    assert "Reason: unknown state 'Shipped'\n" in refusals.comment_text(event)


def test_a_refusal_recorded_before_the_fields_is_commented_from_its_detail(
    make_queue: QueueFactory,
) -> None:
    q = make_queue()
    old = "HTTP 422: unknown state 'Shipped' (from 10.0.0.5; signed by RT)"
    # A refusal as revision 0003 wrote it (moved into the log by 0008): a detail, no fields.
    q.record_event(events.EventKind.HOOK_REFUSED, ticket_id=5, detail=old, needs_comment=True)
    (pending,) = q.pending_comments()
    assert (pending.http_status, pending.reason, pending.caller) == (None, None, None)
    assert f"Reason: {old}\n" in refusals.comment_text(pending)


def test_an_unknown_kind_is_not_recorded(make_queue: QueueFactory) -> None:
    q = make_queue()
    with pytest.raises(ValueError, match="job_shipped"):
        q.record_event("job_shipped")
    assert q.events() == []


def test_concurrent_claimers_do_every_job_once_and_in_order(make_queue: QueueFactory) -> None:
    tickets, per_ticket = 50, 10  # 500 jobs
    q = make_queue()
    q.enqueue_many(
        [change(t, t * 1000 + n) for t in range(1, tickets + 1) for n in range(per_ticket)]
    )
    done: dict[int, list[int]] = defaultdict(list)
    seen: list[int] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        worker_queue = make_queue()
        while True:
            jobs = worker_queue.claim(name, limit=5)
            if not jobs:
                if worker_queue.stats()["queued"] + worker_queue.stats()["running"] == 0:
                    return
                continue
            for job in jobs:
                with lock:
                    seen.append(job.id)
                    done[job.ticket_id].append(job.request.transaction_id)
                assert worker_queue.complete(job.id, name)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(seen) == tickets * per_ticket
    assert len(set(seen)) == len(seen)  # nothing twice
    for ticket, transactions in done.items():
        assert transactions == sorted(transactions), f"ticket {ticket} ran out of order"


def test_settled_refusals_past_their_retention_are_pruned_in_batches(
    make_queue: QueueFactory,
) -> None:
    clock = FakeClock()
    q = make_queue(clock=clock)

    def refuse(**kw: object) -> int:
        return q.record_event(events.EventKind.HOOK_REFUSED, detail="bad", **kw)  # type: ignore[arg-type]

    old_unsigned = [refuse() for _ in range(5)]  # never to be commented: settled
    old_commented = refuse(ticket_id=5, needs_comment=True)
    q.mark_commented(old_commented)
    old_pending = refuse(ticket_id=6, needs_comment=True)  # RT was down: kept until told
    old_other = q.record_event(events.EventKind.JOB_PROCESSED, ticket_id=5, detail="done")
    clock.advance(31 * 86400)
    recent = refuse()
    removed = q.prune_refusals(older_than=timedelta(days=30), batch=2)
    assert removed == len(old_unsigned) + 1
    left = {e.id for e in q.events(limit=100) if e.kind is not events.EventKind.EVENTS_PRUNED}
    assert left == {old_pending, old_other, recent}
    # Each batch is recorded, chained, with the runs of ids it deleted.
    pruned = q.events(kind=events.EventKind.EVENTS_PRUNED)
    assert sum(e.data["count"] for e in pruned) == removed
    assert q.prune_refusals(older_than=timedelta(days=30)) == 0
