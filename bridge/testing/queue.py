"""``InMemoryQueue``: the job queue and event log in memory, with ``Queue``'s semantics.

A test fake (see ``bridge.testing``); the product never uses it.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bridge import records
from bridge.store import event_chain, event_log, job_events, queue, retry
from bridge.store import events as eventlog

Status = records.JobStatus
_OPEN = (Status.QUEUED, Status.RUNNING)


class InMemoryQueue:
    """The queue and event log in memory, with ``Queue``'s semantics. Thread-safe.

    A transaction is queued once (``enqueue`` raises ``queue.AlreadyQueued``); only a ticket's
    oldest open change is ever claimed; ``complete`` / ``fail`` / ``release`` change nothing
    (and return False / None) for a worker that no longer holds the lease.
    """

    def __init__(
        self, *, clock: queue.Clock = queue.utcnow, lease: timedelta = timedelta(minutes=5)
    ) -> None:
        self.clock = clock
        self.lease = lease
        self._lock = threading.RLock()
        self._jobs: dict[int, records.Job] = {}
        self._by_transaction: dict[int, int] = {}
        self._events: list[eventlog.Event] = []
        self._state: dict[str, str] = {}
        self._job_ids = itertools.count(1)
        self._event_ids = itertools.count(1)

    # -- storing ------------------------------------------------------------------------

    def enqueue_many(
        self,
        requests: Sequence[records.ReleaseRequest],
        *,
        cause: eventlog.Cause | None = None,
    ) -> list[queue.Enqueued]:
        """Store several changes, in order; a known transaction is reported, not stored again.
        Each new one gets its ``job_queued`` event."""
        results: list[queue.Enqueued] = []
        with self._lock:
            now = self.clock()
            for request in requests:
                known = self._by_transaction.get(request.transaction_id)
                if known is not None:
                    results.append(queue.Enqueued(job_id=known, created=False))
                    continue
                job_id = next(self._job_ids)
                self._jobs[job_id] = records.Job(
                    id=job_id,
                    request=request,
                    status=Status.QUEUED,
                    attempts=0,
                    scheduled_at=now,
                    created_at=now,
                )
                self._by_transaction[request.transaction_id] = job_id
                results.append(queue.Enqueued(job_id=job_id, created=True))
                self._append(job_events.queued(request, job_id, cause))
        return results

    def enqueue(self, request: records.ReleaseRequest) -> int:
        """Store one change; returns its job id. Raises ``queue.AlreadyQueued`` for a known one."""
        (result,) = self.enqueue_many([request])
        if not result.created:
            raise queue.AlreadyQueued(request.transaction_id, result.job_id)
        return result.job_id

    # -- claiming and finishing ------------------------------------------------------------

    def _due(self, job: records.Job, now: datetime) -> bool:
        if job.status is Status.QUEUED:
            return job.scheduled_at <= now
        return job.status is Status.RUNNING and (job.locked_until or now) < now

    def _earlier_open(self, job: records.Job) -> bool:
        return any(
            other.ticket_id == job.ticket_id
            and other.request.transaction_id < job.request.transaction_id
            and other.status in _OPEN
            for other in self._jobs.values()
        )

    def claim(self, worker: str, *, limit: int = 1) -> list[records.Job]:
        """Take up to ``limit`` due jobs with a lease for ``worker`` (see ``Queue.claim``)."""
        with self._lock:
            now = self.clock()
            due = [
                j for j in self._jobs.values() if self._due(j, now) and not self._earlier_open(j)
            ]
            due.sort(key=lambda j: (j.scheduled_at, j.id))
            claimed = []
            for job in due[:limit]:
                expired = job.status is Status.RUNNING
                claims = sum(
                    1 for e in self._events
                    if e.job_id == job.id and e.kind is eventlog.EventKind.JOB_CLAIMED
                )  # fmt: skip
                made_due = [
                    e
                    for e in self._events
                    if e.job_id == job.id and e.kind.value in job_events.MADE_DUE
                ]
                cause = (
                    eventlog.Cause.LEASE_EXPIRED if expired
                    else eventlog.Cause.parse(
                        job_events.due_cause(made_due[-1].kind.value, made_due[-1].cause.label)
                    )
                    if made_due
                    else job_events.cause_of(job.request)
                )  # fmt: skip
                taken = self._set(
                    job.id,
                    status=Status.RUNNING,
                    locked_by=worker,
                    locked_until=now + self.lease,
                    attempts=job.attempts + 1,
                    attempt=claims + 1,
                    cause=cause.label,
                )
                self._append(
                    job_events.job_event(
                        eventlog.EventKind.JOB_CLAIMED, taken, cause=cause,
                        detail=f"attempt {claims + 1} taken by {worker}", worker=worker,
                        lease_expired=expired,
                    )
                )  # fmt: skip
                claimed.append(taken)
        return claimed

    def _set(self, job_id: int, **changes: Any) -> records.Job:
        job = dataclasses.replace(self._jobs[job_id], **changes)
        self._jobs[job_id] = job
        return job

    def _held(self, job_id: int, worker: str) -> records.Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.status is not Status.RUNNING or job.locked_by != worker:
            return None
        return job

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Extend ``worker``'s lease; False when it no longer holds it."""
        with self._lock:
            if self._held(job_id, worker) is None:
                return False
            self._set(job_id, locked_until=self.clock() + self.lease)
            return True

    def complete(
        self,
        job_id: int,
        worker: str,
        *,
        job: records.Job | None = None,
        also: Sequence[event_log.Draft] = (),
    ) -> bool:
        """Mark the job done; False (nothing changed) when ``worker`` lost its lease."""
        with self._lock:
            held = self._held(job_id, worker)
            if held is None:
                return False
            for item in also:
                self._append(item)
            self._append(
                job_events.job_event(
                    eventlog.EventKind.JOB_DONE, job or held, detail=f"done by {worker}"
                )
            )
            self._set(
                job_id,
                status=Status.DONE,
                finished_at=self.clock(),
                locked_until=None,
                last_error=None,
            )
            return True

    def give_back(self, job_id: int, worker: str) -> bool:
        """Give a job back untouched; the try is not counted."""
        with self._lock:
            job = self._held(job_id, worker)
            if job is None:
                return False
            self._set(
                job_id,
                status=Status.QUEUED,
                locked_by=None,
                locked_until=None,
                attempts=job.attempts - 1,
            )
            self._append(
                job_events.job_event(
                    eventlog.EventKind.JOB_GIVEN_BACK, job, detail=f"given back by {worker}",
                    worker=worker,
                )
            )  # fmt: skip
            return True

    def fail(
        self,
        job: records.Job,
        worker: str,
        error: str,
        *,
        transient: bool,
        policy: retry.RetryPolicy,
        action: str | None = None,
    ) -> records.JobStatus | None:
        """Record a failed try as ``Queue.fail`` does (retry, failed or dead, and an event)."""
        with self._lock:
            if self._held(job.id, worker) is None:
                return None
            now = self.clock()
            retry_at = policy.next_attempt(transient=transient, attempts=job.attempts, now=now)
            if retry_at is not None:
                status, values = Status.QUEUED, {"scheduled_at": retry_at}
            else:
                status = Status.DEAD if transient else Status.FAILED
                values = {"finished_at": now}
            self._set(
                job.id,
                status=status,
                locked_by=None,
                locked_until=None,
                last_error=error[:4000],
                **values,
            )
            kind = {
                Status.QUEUED: eventlog.EventKind.JOB_RETRY,
                Status.FAILED: eventlog.EventKind.JOB_FAILED,
                Status.DEAD: eventlog.EventKind.JOB_DEAD,
            }[status]
            when = f"; next try at {retry_at:%Y-%m-%d %H:%M:%S} UTC" if retry_at else ""
            data: dict[str, Any] = {"error": error}
            if action:
                data["action"] = action
            self._append(
                job_events.job_event(
                    kind, job, detail=f"attempt {job.attempts}: {error}{when}"[:4000], **data
                )
            )
            return status

    def retry(self, job_id: int, *, actor: str = "") -> records.Job:
        """Queue a failed or dead job again, now. Raises ``JobNotFound`` / ``JobNotRetryable``."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise queue.JobNotFound(f"there is no job {job_id}")
            if job.status not in (Status.FAILED, Status.DEAD):
                raise queue.JobNotRetryable(
                    f"job {job_id} is {job.status.label}; only failed or dead jobs can be retried"
                )
            new = self._set(
                job_id,
                status=Status.QUEUED,
                attempts=0,
                scheduled_at=self.clock(),
                finished_at=None,
            )
            self._append(
                event_log.draft(
                    eventlog.EventKind.JOB_REQUEUED,
                    ticket_id=job.ticket_id,
                    transaction_id=job.request.transaction_id,
                    job_id=job_id,
                    actor=actor,
                    cause=eventlog.Cause.MANUAL_RERUN,
                    data={"detail": f"re-run by {actor or 'an operator'} (was {job.status.label})",
                          "was": job.status.label},
                )
            )  # fmt: skip
            return new

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: int) -> records.Job | None:
        """The job with that id, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def list_jobs(
        self,
        *,
        statuses: Iterable[records.JobStatus] = (),
        ticket_id: int | None = None,
        limit: int = 100,
    ) -> list[records.Job]:
        """Jobs, newest first, optionally only those in ``statuses`` or of one ticket."""
        wanted = set(statuses)
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)
        return [
            j
            for j in jobs
            if (not wanted or j.status in wanted) and ticket_id in (None, j.ticket_id)
        ][:limit]

    def ping(self) -> None:
        """Always reachable."""

    # -- events and state ----------------------------------------------------------------

    def _append(self, item: event_log.Draft, *, needs_comment: bool = False) -> int:
        """Append one event as ``event_log.append`` does: numbered, per-release sequence,
        chained."""
        with self._lock:
            previous = self._events[-1] if self._events else None
            at = self.clock() if previous is None else max(self.clock(), previous.at)
            seq = None
            if item.ticket_id is not None:
                seq = 1 + max((e.seq or 0 for e in self._events if e.ticket_id == item.ticket_id),
                              default=0)  # fmt: skip
            row: dict[str, Any] = {
                "id": next(self._event_ids), "at": at, "kind": item.kind.value,
                "ticket_id": item.ticket_id, "seq": seq, "actor": item.actor,
                "cause": item.cause.label, "transaction_id": item.transaction_id,
                "job_id": item.job_id, "data": event_chain.canonical_data(item.data),
                "prev_hash": previous.hash if previous else event_chain.GENESIS,
            }  # fmt: skip
            row["hash"] = event_chain.hash_of_row(row)
            event = event_log.event_of(row, settled=False if needs_comment else None)
            self._events.append(event)
            return event.id

    def record_event(
        self,
        kind: eventlog.EventKind,
        *,
        ticket_id: int | None = None,
        transaction_id: int | None = None,
        job_id: int | None = None,
        detail: str = "",
        needs_comment: bool = False,
        http_status: int | None = None,
        reason: str | None = None,
        caller: str | None = None,
        data: Mapping[str, Any] | None = None,
        actor: str | None = None,
        cause: eventlog.Cause | None = None,
    ) -> int:
        """Append to the event log; returns the event's id (``ValueError`` for unknown kinds)."""
        values: dict[str, Any] = dict(data or {})
        if detail:
            values["detail"] = detail
        for key, value in (("http_status", http_status), ("reason", reason), ("caller", caller)):
            if value is not None:
                values[key] = value
        return self._append(
            event_log.draft(
                kind, ticket_id=ticket_id, data=values, actor=actor, cause=cause,
                transaction_id=transaction_id, job_id=job_id,
            ),
            needs_comment=needs_comment,
        )  # fmt: skip

    def events(
        self,
        *,
        kind: eventlog.EventKind | None = None,
        ticket_id: int | None = None,
        job_id: int | None = None,
        limit: int = 100,
    ) -> list[eventlog.Event]:
        """Events, newest first."""
        with self._lock:
            found = [
                e
                for e in reversed(self._events)
                if kind in (None, e.kind)
                and ticket_id in (None, e.ticket_id)
                and job_id in (None, e.job_id)
            ]
        return found[:limit]

    def pending_comments(self, limit: int = 20) -> list[eventlog.Event]:
        """Events whose reason still has to be commented on their ticket, oldest first."""
        with self._lock:
            pending = [e for e in self._events if e.needs_comment and e.commented_at is None]
        return pending[:limit]

    def already_commented(self, event: eventlog.Event) -> bool:
        """Whether the same refusal (ticket, transaction, reason) was commented before."""
        with self._lock:
            return any(
                e.id != event.id
                and e.commented_at is not None
                and e.ticket_id == event.ticket_id
                and e.transaction_id == event.transaction_id
                and (
                    e.reason == event.reason
                    if event.reason is not None
                    else e.detail == event.detail
                )
                for e in self._events
            )

    def prune_refusals(self, *, older_than: timedelta, batch: int = 10_000) -> int:
        """Delete settled refused-hook events older than ``older_than``; returns how many."""
        kinds = (eventlog.EventKind.HOOK_REFUSED, eventlog.EventKind.RECOVERED_REFUSED)
        cutoff = self.clock() - older_than
        with self._lock:
            keep = [
                e
                for e in self._events
                if not (
                    e.kind in kinds
                    and e.at < cutoff
                    and (not e.needs_comment or e.commented_at is not None)
                )
            ]
            removed = len(self._events) - len(keep)
            self._events[:] = keep
        return removed

    def mark_commented(self, event_id: int, *, done: bool = True) -> None:
        """The event's comment was made (or, with ``done=False``, will never be)."""
        with self._lock:
            for i, event in enumerate(self._events):
                if event.id == event_id:
                    self._events[i] = (
                        dataclasses.replace(event, commented_at=self.clock())
                        if done
                        else dataclasses.replace(event, needs_comment=False)
                    )

    def get_state(self, key: str) -> str | None:
        """A named value, or None."""
        with self._lock:
            return self._state.get(key)

    def set_state(self, key: str, value: str) -> None:
        """Set a named value."""
        with self._lock:
            self._state[key] = value
