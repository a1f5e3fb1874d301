"""The changes of a ticket (the jobs of the queue) and their attempts, from the job events of
the log: each attempt numbered as its claim says (over manual re-runs), with its cause, who
asked, its actions, its error and how it ended. Also how to read the values events carry.

Pure, like ``history.timeline``, which feeds it the events of one release in order; it
decides nothing about releases and reads no database or clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bridge.store.events import Cause, Event, EventKind
from repo_daemon.history import records as r

END_OF = {
    EventKind.JOB_DONE: r.DONE,
    EventKind.JOB_RETRY: r.RETRY,
    EventKind.JOB_FAILED: r.FAILED,
    EventKind.JOB_DEAD: r.DEAD,
    EventKind.JOB_GIVEN_BACK: r.GIVEN_BACK,
}
_STATUS_AFTER = {r.DONE: "done", r.RETRY: "queued", r.FAILED: "failed", r.DEAD: "dead",
                 r.GIVEN_BACK: "queued"}  # fmt: skip


def when(value: Any) -> datetime | None:
    """A time the event's data carries (ISO text, naive UTC), or None."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None) if value else None
    except ValueError:
        return None


def number(value: Any) -> int | None:
    """A whole number the data carries, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def seconds(value: Any) -> float | None:
    """A number of seconds the data carries, or None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def text(value: Any) -> str | None:
    """A value as text; None stays None."""
    return None if value is None else str(value)


def names(value: Any) -> tuple[str, ...]:
    """A list of names the data carries (empty for anything else)."""
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def action_run(item: Any, *, after_failure: bool = False) -> r.ActionRun:
    """One entry of a transition's ``actions`` (name, outcome, seconds, detail)."""
    item = item if isinstance(item, Mapping) else {"name": str(item)}
    return r.ActionRun(
        name=str(item.get("name", "")),
        outcome=str(item.get("outcome", "")),
        seconds=seconds(item.get("seconds")),
        detail=str(item.get("detail") or ""),
        after_failure=after_failure,
    )


class Changes:
    """The ticket's changes so far, by job, in the order they were first seen (the records
    are frozen: each update replaces one)."""

    def __init__(self) -> None:
        self.by_job: dict[int, r.Change] = {}

    def add(self, e: Event) -> None:
        """Take in a job event (one of ``HANDLERS``' kinds, with a job)."""
        HANDLERS[e.kind](self, e)

    def imported(self, e: Event) -> None:
        """What the bridge knew of the job before the event log."""
        change = self.change(e)
        self.by_job[change.job_id] = dataclasses.replace(
            change,
            status=str(e.data.get("state", change.status)),
            before_log_status=text(e.data.get("state")),
            before_log_attempts=number(e.data.get("attempts")),
        )

    def asked(self, job_id: int, state: str) -> None:
        """A move's target, read from the workflow's event when the queue's left it out."""
        change = self.by_job[job_id]
        if not change.after and state:
            self.by_job[job_id] = dataclasses.replace(change, after=state)

    def change(self, e: Event) -> r.Change:
        """The change ``e`` belongs to (one only seen from here on if its start is pruned)."""
        assert e.job_id is not None
        if e.job_id not in self.by_job:
            self.by_job[e.job_id] = r.Change(
                job_id=e.job_id, transaction_id=e.transaction_id, cause=e.cause.label
            )
        return self.by_job[e.job_id]

    def queued(self, e: Event) -> None:
        change = self.change(e)
        self.by_job[change.job_id] = dataclasses.replace(
            change,
            field=str(e.data.get("field", "")),
            # A RolloutProgress move carries its states; other fields RT's raw values.
            before=str(e.data.get("old_value") or e.data.get("from") or ""),
            after=str(e.data.get("new_value") or e.data.get("to") or ""),
            asked_by=e.actor,
            cause=e.cause.label,
            source=str(e.data.get("source", "")),
            queued_at=e.at,
            status="queued",
            detail=e.detail,
        )

    def claimed(self, e: Event) -> None:
        change = self.change(e)
        attempts = list(change.attempts)
        if attempts and attempts[-1].end == r.RUNNING:
            lost = r.LEASE_EXPIRED if e.data.get("lease_expired") else r.UNKNOWN
            attempts[-1] = dataclasses.replace(attempts[-1], end=lost)
        rerun = e.cause is Cause.MANUAL_RERUN and change.reruns
        attempts.append(
            r.Attempt(
                number=number(e.data.get("attempt")),
                event_id=e.id,
                cause=e.cause.label,
                asked_by=change.reruns[-1].by if rerun else change.asked_by,
                worker=str(e.data.get("worker", "")),
                started_at=e.at,
            )
        )
        self.by_job[change.job_id] = dataclasses.replace(
            change, attempts=tuple(attempts), status="running"
        )

    def requeued(self, e: Event) -> None:
        change = self.change(e)
        rerun = r.Rerun(event_id=e.id, at=e.at, by=e.actor, was=str(e.data.get("was", "")))
        self.by_job[change.job_id] = dataclasses.replace(
            change, reruns=(*change.reruns, rerun), status="queued"
        )

    def action_done(self, e: Event) -> None:
        run = r.ActionRun(
            name=str(e.data.get("action", "")),
            outcome="done",
            seconds=seconds(e.data.get("seconds")),
            detail=e.detail,
        )
        self.attempt(e, lambda a: dataclasses.replace(a, actions=(*a.actions, run)))

    def ended(self, e: Event) -> None:
        end = END_OF[e.kind]
        error, failed = text(e.data.get("error")), text(e.data.get("action"))

        def finish(a: r.Attempt) -> r.Attempt:
            actions = a.actions if end == r.DONE else with_failed(a.actions, failed, error)
            return dataclasses.replace(
                a, end=end, ended_at=e.at, seconds=between(a.started_at, e.at),
                actions=actions, error=a.error or error, failed_action=a.failed_action or failed,
                next_try_at=when(e.data.get("next_try_at")),
            )  # fmt: skip

        self.attempt(e, finish)
        assert e.job_id is not None
        self.by_job[e.job_id] = dataclasses.replace(
            self.by_job[e.job_id], status=_STATUS_AFTER[end]
        )

    def handled(self, e: Event) -> None:
        """How an attempt that moved nothing ended: another field's change handled, the
        bridge's own write skipped, a change processed by a reading processor."""
        self.attempt(
            e, lambda a: dataclasses.replace(a, result=e.kind.value, result_detail=e.detail)
        )

    def rt_calls(self, e: Event) -> None:
        calls = number(e.data.get("calls"))
        self.attempt(e, lambda a: dataclasses.replace(a, rt_calls=calls))

    def attempt(self, e: Event, update: Callable[[r.Attempt], r.Attempt]) -> None:
        """Update the attempt ``e`` belongs to: the one its data names, else the job's latest
        (one is made up when its claim is not among the events)."""
        change = self.change(e)
        attempts = list(change.attempts)
        wanted = number(e.data.get("attempt"))
        found = [i for i, a in enumerate(attempts) if wanted is None or a.number == wanted]
        if not found:
            attempts.append(r.Attempt(number=wanted, event_id=None, cause=e.cause.label,
                                      asked_by="", started_at=None))  # fmt: skip
            found = [len(attempts) - 1]
        attempts[found[-1]] = update(attempts[found[-1]])
        self.by_job[change.job_id] = dataclasses.replace(change, attempts=tuple(attempts))


def with_failed(
    actions: tuple[r.ActionRun, ...], failed: str | None, error: str | None
) -> tuple[r.ActionRun, ...]:
    """``actions`` with the action that failed last, unless it is listed already."""
    if not failed or any(a.name == failed and a.outcome == "failed" for a in actions):
        return actions
    return (*actions, r.ActionRun(name=failed, outcome="failed", seconds=None, detail=error or ""))


def between(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


HANDLERS: dict[EventKind, Callable[[Changes, Event], None]] = {
    EventKind.JOB_QUEUED: Changes.queued,
    EventKind.JOB_CLAIMED: Changes.claimed,
    EventKind.JOB_REQUEUED: Changes.requeued,
    EventKind.ACTION_DONE: Changes.action_done,
    **{kind: Changes.ended for kind in END_OF},
    EventKind.FIELD_CHANGE_DONE: Changes.handled,
    EventKind.JOB_SKIPPED_OWN_WRITE: Changes.handled,
    EventKind.JOB_PROCESSED: Changes.handled,
    EventKind.RT_CALLS: Changes.rt_calls,
}
