"""In-memory fakes of the bridge's seams, for tests of the parts that use them.

``InMemoryQueue`` stands in for ``bridge.store.queue.Queue`` (the ``JobQueue`` protocol and
the event log) and ``FakeTracker`` for ``bridge.tracker.client.TrackerClient`` (the ``Tracker``
protocol), the way procrastinate ships its ``InMemoryConnector``: product code, typed, kept
true by tests that hold them to the real things' promises (dedupe, a ticket's changes in
order and one at a time, fenced finishing, refused unknown fields, history by transaction id).
They keep everything in dicts and lists: no database, no HTTP, no clock of their own (pass
one). They must not be used by the product itself. The module runs past 500 lines because
each fake has to carry the whole surface of the real thing it replaces (the queue's and RT's),
and a test of the daemon nearly always needs both: one place to import them from.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bridge import errors, records
from bridge.store import events as eventlog
from bridge.store import protocols, queue, retry
from bridge.tracker import client, history, protocol

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

    def enqueue_many(self, requests: Sequence[records.ReleaseRequest]) -> list[queue.Enqueued]:
        """Store several changes, in order; a known transaction is reported, not stored again."""
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
                claimed.append(
                    self._set(
                        job.id,
                        status=Status.RUNNING,
                        locked_by=worker,
                        locked_until=now + self.lease,
                        attempts=job.attempts + 1,
                    )
                )
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

    def complete(self, job_id: int, worker: str) -> bool:
        """Mark the job done; False (nothing changed) when ``worker`` lost its lease."""
        with self._lock:
            if self._held(job_id, worker) is None:
                return False
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
            return True

    def fail(
        self,
        job: records.Job,
        worker: str,
        error: str,
        *,
        transient: bool,
        policy: retry.RetryPolicy,
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
            self.record_event(
                kind,
                ticket_id=job.ticket_id,
                transaction_id=job.request.transaction_id,
                job_id=job.id,
                detail=f"attempt {job.attempts}: {error}{when}"[:4000],
            )
            return status

    def retry(self, job_id: int) -> records.Job:
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
            self.record_event(
                eventlog.EventKind.JOB_REQUEUED,
                ticket_id=job.ticket_id,
                job_id=job_id,
                detail=f"retried by an operator (was {job.status.label})",
            )
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
    ) -> int:
        """Append to the event log; returns the event's id (``ValueError`` for unknown kinds)."""
        with self._lock:
            event = eventlog.Event(
                id=next(self._event_ids),
                at=self.clock(),
                kind=eventlog.EventKind(kind),
                ticket_id=ticket_id,
                transaction_id=transaction_id,
                job_id=job_id,
                detail=detail,
                needs_comment=needs_comment,
                http_status=http_status,
                reason=reason,
                caller=caller,
            )
            self._events.append(event)
            return event.id

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackerCall:
    """One call made on a ``FakeTracker``: the method, the ticket, and the other arguments."""

    operation: str
    ticket_id: int | None
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class FakeTracker:
    """RT in memory, as the bridge sees it: tickets, attachments, history; records every call.

    Set a ticket up with ``add_ticket`` and ``attach``; make a change as a person in RT would
    with ``change_field`` (it enters the history reconciliation reads). ``fail_next`` makes the
    next call raise. Like RT, a reply reopens a resolved ticket unless it sets the status,
    and a custom field the ticket does not have is refused (``TrackerRejected``).
    """

    def __init__(self, *, user: str = "rollout-bridge", first_transaction: int = 1000) -> None:
        self.user = user
        self.tickets: dict[int, records.Ticket] = {}
        self.attachments: dict[int, list[records.Attachment]] = {}
        self.comments: dict[int, list[str]] = {}
        self.replies: dict[int, list[str]] = {}
        self.calls: list[TrackerCall] = []
        self.history: list[history.FieldChange] = []
        self.closed = False
        self._transactions: dict[int, list[dict[str, Any]]] = {}
        self._field_ids: dict[str, int] = {}
        self._ids = itertools.count(first_transaction)
        self._failures: list[errors.TrackerError] = []

    # -- setting up ----------------------------------------------------------------------

    def add_ticket(
        self,
        ticket_id: int,
        *,
        queue: str = "sw-rel",
        subject: str = "",
        status: str = "new",
        fields: Mapping[str, str | Sequence[str]] | None = None,
    ) -> records.Ticket:
        """Create a ticket with these custom fields (a field with no value: ``()``)."""
        ticket = records.Ticket(
            id=ticket_id,
            queue=queue,
            subject=subject or f"Release {ticket_id}",
            status=status,
            custom_fields={k: _values(v) for k, v in (fields or {}).items()},
        )
        self.tickets[ticket_id] = ticket
        self._transactions.setdefault(ticket_id, []).append(self._txn("Create", self.user))
        return ticket

    def attach(
        self, ticket_id: int, filename: str, content: bytes, content_type: str = "text/xml"
    ) -> records.Attachment:
        """Attach a file, as a new transaction; returns the attachment."""
        self._ticket(ticket_id, "attach")
        txn = self._txn("Correspond", "provider")
        self._transactions[ticket_id].append(txn)
        attachment = records.Attachment(
            id=next(self._ids),
            filename=filename,
            content_type=content_type,
            content=content,
            transaction_id=int(txn["id"]),
        )
        self.attachments.setdefault(ticket_id, []).append(attachment)
        return attachment

    def change_field(self, ticket_id: int, name: str, value: str, *, actor: str) -> int:
        """Set a custom field as ``actor`` would in RT; returns the transaction id."""
        ticket = self._ticket(ticket_id, "change_field")
        return self._set_field(ticket, name, value, actor)

    def fail_next(self, exc: errors.TrackerError) -> None:
        """Make the next call raise ``exc`` (calls after it work again)."""
        self._failures.append(exc)

    def operations(self) -> list[str]:
        """The names of the calls made so far, in order."""
        return [c.operation for c in self.calls]

    # -- the Tracker protocol --------------------------------------------------------------

    def get_ticket(self, ticket_id: int) -> records.Ticket:
        self._call("get_ticket", ticket_id)
        return self._ticket(ticket_id, "get_ticket")

    def newest_attachment_id(self, ticket_id: int, filename: str) -> int | None:
        self._call("newest_attachment_id", ticket_id, filename=filename)
        found = self._named(ticket_id, filename, "newest_attachment_id")
        return found[-1].id if found else None

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment:
        self._call("download_attachment", ticket_id, filename=filename)
        found = self._named(ticket_id, filename, "download_attachment")
        if not found:
            raise errors.TrackerNotFound(
                f"the ticket has no attachment named {filename!r}; attach it to the ticket",
                operation="download_attachment",
                ticket_id=ticket_id,
            )
        return found[-1]

    def update_ticket(
        self,
        ticket_id: int,
        *,
        custom_fields: Mapping[str, str | Sequence[str]] | None = None,
        cc_groups: Sequence[str] | None = None,
        admin_cc_groups: Sequence[str] | None = None,
        status: str | None = None,
        owner: str | None = None,
        current: records.Ticket | None = None,
    ) -> list[str]:
        arguments = {"custom_fields": custom_fields, "cc_groups": cc_groups,
                     "admin_cc_groups": admin_cc_groups, "status": status,
                     "owner": owner}  # fmt: skip
        self._call("update_ticket", ticket_id, **{k: v for k, v in arguments.items() if v})
        ticket = self._ticket(ticket_id, "update_ticket")
        unknown = sorted(set(custom_fields or {}) - set(ticket.custom_fields))
        if unknown:
            raise errors.TrackerRejected(
                f"the ticket has no custom field {', '.join(map(repr, unknown))}",
                operation="update_ticket",
                ticket_id=ticket_id,
            )
        messages = []
        for name, value in (custom_fields or {}).items():
            self._set_field(self.tickets[ticket_id], name, value, self.user)
            messages.append(f"{name} changed")
        ticket = self.tickets[ticket_id]
        if cc_groups is not None:
            ticket = dataclasses.replace(ticket, cc=_groups(ticket.cc, cc_groups))
        if admin_cc_groups is not None:
            ticket = dataclasses.replace(ticket, admin_cc=_groups(ticket.admin_cc, admin_cc_groups))
        if status is not None:
            ticket = dataclasses.replace(ticket, status=status)
            messages.append(f"Status changed to {status}")
        if owner is not None:
            ticket = dataclasses.replace(ticket, owner=owner)
            messages.append(f"Owner changed to {owner}")
        self.tickets[ticket_id] = ticket
        return messages

    def comment(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        self._call("comment", ticket_id, text=text, status=status)
        self._correspond(ticket_id, "Comment", text, status, self.comments)

    def reply(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        self._call("reply", ticket_id, text=text, status=status)
        ticket = self._ticket(ticket_id, "reply")
        if status is None and ticket.status == "resolved":
            status = "open"  # RT reopens a resolved ticket on a reply
        self._correspond(ticket_id, "Correspond", text, status, self.replies)

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]:
        self._call("transactions_of", ticket_id)
        self._ticket(ticket_id, "transactions_of")
        return [dict(t) for t in self._transactions[ticket_id]]

    def custom_field_id(self, name: str, queue: str) -> int:
        self._call("custom_field_id", None, name=name, queue=queue)
        return self._field_id(name)

    def field_changes_since(
        self,
        field_id: int,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
    ) -> list[history.FieldChange]:
        self._call("field_changes_since", None, field_id=field_id, after=after_transaction_id)
        return [
            c
            for c in self.history
            if c.field_id == field_id
            and c.transaction_id > after_transaction_id
            and self.tickets[c.ticket_id].queue == queue
        ][:limit]

    def newest_field_change(self, field_id: int, *, queue: str) -> int | None:
        self._call("newest_field_change", None, field_id=field_id)
        ids = [
            c.transaction_id
            for c in self.history
            if c.field_id == field_id and self.tickets[c.ticket_id].queue == queue
        ]
        return max(ids, default=None)

    def total_round_trips(self) -> int:
        """Every call counts as one round trip (the real client's counts may be higher)."""
        return len(self.calls)

    def close(self) -> None:
        self.closed = True

    # -- inside ----------------------------------------------------------------------------

    def _call(self, operation: str, ticket_id: int | None, **arguments: Any) -> None:
        self.calls.append(
            TrackerCall(operation=operation, ticket_id=ticket_id, arguments=arguments)
        )
        if self._failures:
            raise self._failures.pop(0)

    def _ticket(self, ticket_id: int, operation: str) -> records.Ticket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise errors.TrackerNotFound(
                f"there is no ticket {ticket_id}", operation=operation, ticket_id=ticket_id
            )
        return ticket

    def _named(self, ticket_id: int, filename: str, operation: str) -> list[records.Attachment]:
        self._ticket(ticket_id, operation)
        return [a for a in self.attachments.get(ticket_id, []) if a.filename == filename]

    def _txn(self, kind: str, actor: str, **more: Any) -> dict[str, Any]:
        return {"id": next(self._ids), "Type": kind, "Creator": {"id": actor}, **more}

    def _field_id(self, name: str) -> int:
        return self._field_ids.setdefault(name, len(self._field_ids) + 1)

    def _set_field(
        self, ticket: records.Ticket, name: str, value: str | Sequence[str], actor: str
    ) -> int:
        old = ticket.field(name) or ""
        new = _values(value)
        self.tickets[ticket.id] = dataclasses.replace(
            ticket, custom_fields={**ticket.custom_fields, name: new}
        )
        txn = self._txn("CustomField", actor, Field=self._field_id(name), OldValue=old,
                        NewValue=new[0] if new else "")  # fmt: skip
        self._transactions[ticket.id].append(txn)
        change = history.FieldChange(
            transaction_id=int(txn["id"]),
            ticket_id=ticket.id,
            field_id=self._field_id(name),
            old=old,
            new=new[0] if new else "",
            actor=actor,
            created="",
        )
        self.history.append(change)
        return change.transaction_id

    def _correspond(
        self,
        ticket_id: int,
        kind: str,
        text: str,
        status: str | None,
        log: dict[int, list[str]],
    ) -> None:
        ticket = self._ticket(ticket_id, kind.lower())
        log.setdefault(ticket_id, []).append(text)
        self._transactions[ticket_id].append(self._txn(kind, self.user))
        if status is not None:
            self.tickets[ticket_id] = dataclasses.replace(ticket, status=status)


def _values(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _groups(
    watchers: tuple[records.Watcher, ...], groups: Sequence[str]
) -> tuple[records.Watcher, ...]:
    """The role's people kept, its groups replaced (as ``TrackerClient.update_ticket`` does)."""
    people = tuple(w for w in watchers if w.kind != "group")
    return people + tuple(records.Watcher(kind="group", name=g) for g in groups)


if TYPE_CHECKING:  # mypy holds the fakes, and the real client, to the protocols

    def _conforms(
        jobs: InMemoryQueue, real_jobs: queue.Queue, fake: FakeTracker, real: client.TrackerClient
    ) -> tuple[protocols.JobQueue, protocols.JobQueue, protocol.Tracker, protocol.Tracker]:
        return jobs, real_jobs, fake, real
