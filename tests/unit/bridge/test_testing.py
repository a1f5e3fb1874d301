"""The in-memory fakes keep the promises of the real queue and the real tracker client."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bridge import errors, records, testing
from bridge.intake import refusals
from bridge.store import events, queue, retry
from bridge.tracker import history

S = records.RolloutState
POLICY = retry.RetryPolicy(base_delay=10, factor=1, jitter=0, max_attempts=2)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 12, 0)

    def __call__(self) -> datetime:
        return self.now


def change(ticket: int, txn: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=S.UNVERIFIED, previous=S.SUBMITTED
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(clock: Clock) -> testing.InMemoryQueue:
    return testing.InMemoryQueue(clock=clock, lease=timedelta(seconds=60))


# -- InMemoryQueue --------------------------------------------------------------------------------


def test_a_transaction_is_queued_once(jobs: testing.InMemoryQueue) -> None:
    first = jobs.enqueue(change(1, 10))
    with pytest.raises(queue.AlreadyQueued) as raised:
        jobs.enqueue(change(1, 10))
    assert (raised.value.transaction_id, raised.value.job_id) == (10, first)
    assert jobs.enqueue_many([change(1, 10), change(2, 20)]) == [
        queue.Enqueued(job_id=first, created=False),
        queue.Enqueued(job_id=first + 1, created=True),
    ]
    assert len(jobs.list_jobs()) == 2


def test_a_tickets_changes_are_claimed_in_order_and_one_at_a_time(
    jobs: testing.InMemoryQueue,
) -> None:
    jobs.enqueue_many([change(1, 12), change(1, 11), change(2, 20)])
    claimed = jobs.claim("a", limit=10)
    assert [j.request.transaction_id for j in claimed] == [11, 20]
    assert jobs.claim("b", limit=10) == []  # ticket 1's next change waits for 11
    assert jobs.complete(claimed[0].id, "a")
    (next_one,) = jobs.claim("b", limit=10)
    assert (next_one.request.transaction_id, next_one.attempts) == (12, 1)


def test_finishing_is_fenced_by_the_lease(jobs: testing.InMemoryQueue, clock: Clock) -> None:
    jobs.enqueue(change(1, 10))
    (job,) = jobs.claim("a")
    clock.now += timedelta(seconds=61)  # a's lease ran out: b takes the job over
    (again,) = jobs.claim("b")
    assert again.attempts == 2
    assert not jobs.heartbeat(job.id, "a")
    assert not jobs.complete(job.id, "a")
    assert jobs.fail(job, "a", "boom", transient=True, policy=POLICY) is None
    assert jobs.complete(job.id, "b")
    assert jobs.get(job.id).status is records.JobStatus.DONE  # type: ignore[union-attr]


def test_release_gives_a_job_back_without_counting_the_try(jobs: testing.InMemoryQueue) -> None:
    jobs.enqueue(change(1, 10))
    (job,) = jobs.claim("a")
    assert jobs.give_back(job.id, "a")
    (again,) = jobs.claim("b")
    assert again.attempts == 1


def test_failures_retry_then_dead_letter_with_events(
    jobs: testing.InMemoryQueue, clock: Clock
) -> None:
    jobs.enqueue(change(1, 10))
    (job,) = jobs.claim("a")
    assert jobs.fail(job, "a", "RT down", transient=True, policy=POLICY) is records.JobStatus.QUEUED
    assert jobs.claim("a") == []  # not due before its backoff
    clock.now += timedelta(seconds=10)
    (job,) = jobs.claim("a")
    assert jobs.fail(job, "a", "RT down", transient=True, policy=POLICY) is records.JobStatus.DEAD
    assert [e.kind for e in jobs.events(ticket_id=1)] == [
        events.EventKind.JOB_DEAD,
        events.EventKind.JOB_CLAIMED,
        events.EventKind.JOB_RETRY,
        events.EventKind.JOB_CLAIMED,
        events.EventKind.JOB_QUEUED,
    ]
    retried = jobs.retry(job.id, actor="alice")
    assert (retried.status, retried.attempts) == (records.JobStatus.QUEUED, 0)
    (rerun, *_) = jobs.events(ticket_id=1)
    assert (rerun.kind, rerun.actor, rerun.cause) == (
        events.EventKind.JOB_REQUEUED,
        "alice",
        events.Cause.MANUAL_RERUN,
    )
    (third,) = jobs.claim("a")
    assert (third.attempt, third.cause) == (3, events.Cause.MANUAL_RERUN.label)
    with pytest.raises(queue.JobNotRetryable):
        jobs.retry(job.id)
    with pytest.raises(queue.JobNotFound):
        jobs.retry(999)


def test_a_permanent_error_fails_at_once(jobs: testing.InMemoryQueue) -> None:
    jobs.enqueue(change(1, 10))
    (job,) = jobs.claim("a")
    assert jobs.fail(job, "a", "bad", transient=False, policy=POLICY) is records.JobStatus.FAILED
    (event,) = jobs.events(kind=events.EventKind.JOB_FAILED)
    assert event.detail == "attempt 1: bad"


def test_events_filter_and_refusals_are_commented_once(jobs: testing.InMemoryQueue) -> None:
    jobs.record_event(
        events.EventKind.HOOK_REFUSED,
        ticket_id=5,
        needs_comment=True,
        detail="HTTP 422: x (from a)",
        http_status=422,
        reason="x",
        caller="a",
    )
    jobs.record_event(events.EventKind.JOB_PROCESSED, ticket_id=6)
    assert [e.ticket_id for e in jobs.events()] == [6, 5]  # newest first
    assert [e.ticket_id for e in jobs.events(kind=events.EventKind.HOOK_REFUSED)] == [5]
    with pytest.raises(ValueError, match="job_shipped"):
        jobs.record_event("job_shipped")

    class Commenter:
        def __init__(self) -> None:
            self.comments: list[tuple[int, str]] = []

        def comment(self, ticket_id: int, text: str) -> None:
            self.comments.append((ticket_id, text))

    tracker = Commenter()
    commenter = refusals.RefusalCommenter(jobs, tracker)  # type: ignore[arg-type]
    assert commenter.run() == 1
    assert commenter.run() == 0
    ((ticket, text),) = tracker.comments
    assert ticket == 5 and "Reason: x\n" in text


def test_state_values(jobs: testing.InMemoryQueue) -> None:
    assert jobs.get_state("reconcile_cursor") is None
    jobs.set_state("reconcile_cursor", "41")
    jobs.set_state("reconcile_cursor", "42")
    assert jobs.get_state("reconcile_cursor") == "42"


# -- FakeTracker ----------------------------------------------------------------------------------


@pytest.fixture
def rt() -> testing.FakeTracker:
    tracker = testing.FakeTracker()
    tracker.add_ticket(1, fields={"RolloutProgress": "Submitted", "RepositoryURL": ()})
    return tracker


def test_tickets_read_back_and_unknown_ones_are_not_found(rt: testing.FakeTracker) -> None:
    ticket = rt.get_ticket(1)
    assert (ticket.rollout_state, ticket.field("RepositoryURL")) == (S.SUBMITTED, None)
    with pytest.raises(errors.TrackerNotFound):
        rt.get_ticket(2)
    assert rt.operations() == ["get_ticket", "get_ticket"]
    assert rt.total_round_trips() == 2


def test_the_newest_attachment_wins(rt: testing.FakeTracker) -> None:
    assert rt.newest_attachment_id(1, "release.xml") is None
    with pytest.raises(errors.TrackerNotFound, match=r"no attachment named 'release\.xml'"):
        rt.download_attachment(1, "release.xml")
    rt.attach(1, "release.xml", b"<old/>")
    newest = rt.attach(1, "release.xml", b"<new/>")
    assert rt.newest_attachment_id(1, "release.xml") == newest.id
    assert rt.download_attachment(1, "release.xml").content == b"<new/>"


def test_updates_change_the_ticket_and_unknown_fields_are_refused(
    rt: testing.FakeTracker,
) -> None:
    rt.tickets[1] = rt.tickets[1].__class__(
        **{**vars(rt.tickets[1]), "cc": (records.Watcher(kind="user", name="ann"),)}
    )
    rt.update_ticket(1, custom_fields={"RolloutProgress": "Unverified"}, cc_groups=["qc"])
    ticket = rt.get_ticket(1)
    assert ticket.rollout_state is S.UNVERIFIED
    assert ticket.cc == (
        records.Watcher(kind="user", name="ann"),
        records.Watcher(kind="group", name="qc"),
    )
    with pytest.raises(errors.TrackerRejected, match="no custom field 'Nope'"):
        rt.update_ticket(1, custom_fields={"Nope": "x"})
    assert rt.calls[0].arguments["custom_fields"] == {"RolloutProgress": "Unverified"}


def test_a_reply_reopens_a_resolved_ticket_unless_it_sets_the_status(
    rt: testing.FakeTracker,
) -> None:
    rt.update_ticket(1, status="resolved")
    rt.comment(1, "noted")
    assert rt.get_ticket(1).status == "resolved"
    rt.reply(1, "hello")
    assert rt.get_ticket(1).status == "open"
    rt.reply(1, "done", status="resolved")
    assert rt.get_ticket(1).status == "resolved"
    assert (rt.comments[1], rt.replies[1]) == (["noted"], ["hello", "done"])


def test_history_is_read_by_transaction_id_per_queue(rt: testing.FakeTracker) -> None:
    rt.add_ticket(2, queue="other", fields={"RolloutProgress": "Submitted"})
    field = history.Watched.one(rt.custom_field_id("RolloutProgress", "sw-rel"))
    first = rt.change_field(1, "RolloutProgress", "Unverified", actor="qc")
    rt.change_field(2, "RolloutProgress", "Unverified", actor="qc")
    second = rt.change_field(1, "RolloutProgress", "InVerification", actor="qc")
    assert rt.newest_field_change(field, queue="sw-rel") == second
    changes = rt.field_changes_since(field, 0, queue="sw-rel")
    assert [(c.transaction_id, c.old, c.new) for c in changes] == [
        (first, "Submitted", "Unverified"),
        (second, "Unverified", "InVerification"),
    ]
    assert rt.field_changes_since(field, first, queue="sw-rel") == changes[1:]
    kinds = [t["Type"] for t in rt.transactions_of(1)]
    assert kinds == ["Create", "CustomField", "CustomField"]


def test_values_added_removed_and_status_changes_enter_the_history(
    rt: testing.FakeTracker,
) -> None:
    ids = rt.custom_field_ids(["RolloutProgress", "EarlyAdopters"], "sw-rel")
    rt.missing_fields.add("EmergencyRelease")
    assert "EmergencyRelease" not in rt.custom_field_ids(["EmergencyRelease"], "sw-rel")
    added = rt.add_value(1, "EarlyAdopters", "desy", actor="sr1")
    rt.add_value(1, "EarlyAdopters", "infn", actor="sr1")
    removed = rt.remove_value(1, "EarlyAdopters", "desy", actor="sr1")
    resolved = rt.change_status(1, "resolved", actor="manager")
    assert rt.get_ticket(1).custom_fields["EarlyAdopters"] == ("infn",)
    assert rt.get_ticket(1).status == "resolved"
    watched = history.Watched(custom_fields={ids["EarlyAdopters"]: "EarlyAdopters"}, status=True)
    changes = rt.field_changes_since(watched, 0, queue="sw-rel")
    assert [(c.transaction_id, c.field, c.old, c.new) for c in changes] == [
        (added, "EarlyAdopters", "", "desy"),
        (added + 1, "EarlyAdopters", "", "infn"),
        (removed, "EarlyAdopters", "desy", ""),
        (resolved, "Status", "new", "resolved"),
    ]
    only_fields = history.Watched(custom_fields={ids["EarlyAdopters"]: "EarlyAdopters"})
    assert rt.newest_field_change(only_fields, queue="sw-rel") == removed


def test_a_failure_can_be_injected_once(rt: testing.FakeTracker) -> None:
    rt.fail_next(errors.TrackerUnavailable("RT answered HTTP 503", operation="get_ticket"))
    with pytest.raises(errors.TrackerUnavailable):
        rt.get_ticket(1)
    assert rt.get_ticket(1).id == 1
    rt.close()
    assert rt.closed


def test_groups_of_answers_from_memberships_and_unknown_users_are_not_found(
    rt: testing.FakeTracker,
) -> None:
    rt.memberships["qc1"] = frozenset({"sw-rel-qc", "team-a"})
    assert rt.groups_of("qc1") == {"sw-rel-qc", "team-a"}
    assert rt.groups_of("qc1", among=["sw-rel-qc", "sw-rel-sr"]) == {"sw-rel-qc"}
    with pytest.raises(errors.TrackerNotFound, match="no user 'ghost'"):
        rt.groups_of("ghost")
    assert rt.operations() == ["groups_of"] * 3


def test_the_fake_queue_prunes_settled_refusals_like_the_real_one() -> None:
    now = [datetime(2026, 12, 1)]
    jobs = testing.InMemoryQueue(clock=lambda: now[0])
    settled = jobs.record_event(events.EventKind.HOOK_REFUSED, detail="bad")
    pending = jobs.record_event(
        events.EventKind.HOOK_REFUSED, ticket_id=5, detail="x", needs_comment=True
    )
    now[0] += timedelta(days=31)
    recent = jobs.record_event(events.EventKind.HOOK_REFUSED, detail="bad")
    assert jobs.prune_refusals(older_than=timedelta(days=30)) == 1
    assert {e.id for e in jobs.events(limit=10)} == {pending, recent}
    assert settled not in {e.id for e in jobs.events(limit=10)}
