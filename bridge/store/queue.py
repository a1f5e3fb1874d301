"""The durable queue of ticket changes (RolloutProgress moves and the other fields the bridge
follows, ``records.TrackedField``): all SQL on the ``jobs`` table.

- ``enqueue`` / ``enqueue_many`` store changes; RT's transaction id is the dedupe key, so a hook
  that arrives twice (or a hook and reconciliation) is queued once.
- ``claim`` hands out work with a lease (``locked_until``): a job whose daemon died is claimed
  again once the lease runs out. Only the oldest open change of a ticket (by transaction id) is
  ever claimable, and a partial unique index allows one running job per ticket, so a ticket's
  changes run strictly in order and never two at once. On PostgreSQL the claim uses
  ``FOR UPDATE SKIP LOCKED`` so several daemons share one queue; on SQLite it is one
  ``BEGIN IMMEDIATE`` + ``UPDATE … RETURNING``.
- ``complete`` / ``fail`` are fenced by the worker's name: a daemon whose lease was taken over
  cannot overwrite the new owner's result. When to try a failed job again is decided by a
  ``retry.RetryPolicy``; ``fail`` and ``retry`` write what happened to the event log, which
  ``Queue`` extends (``event_log.EventLog``) so callers hold one handle for both.

It knows nothing of RT or of what processing a job means.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge import errors, records
from bridge.store import event_log, job_events, job_inserts, jobs_read, retry, tables, text
from bridge.store import events as eventlog

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
OPEN = (records.JobStatus.QUEUED.label, records.JobStatus.RUNNING.label)


def utcnow() -> datetime:
    """The current time as naive UTC, the form every table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


class AlreadyQueued(errors.BridgeError):
    """The change (same RT transaction) is queued already, as job ``job_id``."""

    def __init__(self, transaction_id: int, job_id: int) -> None:
        self.transaction_id = transaction_id
        self.job_id = job_id
        super().__init__(f"transaction {transaction_id} is already queued as job {job_id}")


class JobNotFound(errors.BridgeError):
    """No job has that id."""


class JobNotRetryable(errors.BridgeError):
    """Only failed or dead-lettered jobs can be retried by hand."""


@dataclass(frozen=True, kw_only=True)
class Enqueued:
    """The outcome of storing one change: its job id, and whether this call created it."""

    job_id: int
    created: bool


_FAILURE_STEP_PREFIX = "failed:"


class Queue(jobs_read.JobReading, event_log.EventLog):
    """The queue on one database engine (see ``bridge.store.database``), with the event log
    (``event_log.EventLog``) it writes to beside it."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock = utcnow,
        lease: timedelta = timedelta(minutes=5),
    ) -> None:
        super().__init__(engine, clock=clock)
        self.lease = lease

    # -- storing ------------------------------------------------------------------------

    def enqueue_many(
        self,
        requests: Sequence[records.ReleaseRequest],
        *,
        cause: eventlog.Cause | None = None,
    ) -> list[Enqueued]:
        """Store several changes in one transaction (one durable commit), in order, each new
        one with its ``job_queued`` event. ``cause`` overrides the one its source gives (a hook,
        reconciliation, the bridge; a hook of an emergency release is ``emergency``).

        All rows go in one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` run on the
        DBAPI cursor (``job_inserts.insert_jobs``), and the transactions it skipped (queued
        before, or twice in ``requests``) are looked up in one select: a few statements per
        commit, not two per row."""
        if not requests:
            return []
        now = self.clock()
        jobs = tables.jobs
        queued = records.JobStatus.QUEUED.label
        rows = [
            {
                "ticket_id": request.ticket_id,
                "transaction_id": request.transaction_id,
                "current": request.current.label,
                "previous": request.previous.label,
                "field": request.field.label,
                "old_value": request.old_value,
                "new_value": request.new_value,
                "changed_at": request.changed_at,
                "emergency": request.emergency,
                "actor": request.actor,
                "source": request.source.label,
                "status": queued,
                "attempts": 0,
                "scheduled_at": now,
                "created_at": now,
            }
            for request in requests
        ]
        with self.engine.begin() as conn:
            created = job_inserts.insert_jobs(conn, rows)
            missing = [r.transaction_id for r in requests if r.transaction_id not in created]
            existing: dict[int, int] = {}
            if missing:
                existing = {
                    int(t): int(i)
                    for i, t in conn.execute(
                        sa.select(jobs.c.id, jobs.c.transaction_id).where(
                            jobs.c.transaction_id.in_(sorted(set(missing)))
                        )
                    )
                }
            results: list[Enqueued] = []
            drafts: list[event_log.Draft] = []
            for request in requests:
                new_id = created.pop(request.transaction_id, None)
                if new_id is not None:
                    results.append(Enqueued(job_id=new_id, created=True))
                    drafts.append(job_events.queued(request, new_id, cause))
                    existing[request.transaction_id] = new_id  # a repeat later in the batch
                else:
                    job_id = existing[request.transaction_id]
                    results.append(Enqueued(job_id=job_id, created=False))
            event_log.append(conn, drafts, now=now)
        return results

    def enqueue(self, request: records.ReleaseRequest) -> int:
        """Store one change; returns its job id. Raises ``AlreadyQueued`` for a known one."""
        (result,) = self.enqueue_many([request])
        if not result.created:
            raise AlreadyQueued(request.transaction_id, result.job_id)
        return result.job_id

    # -- claiming and finishing ------------------------------------------------------------

    def claim(self, worker: str, *, limit: int = 1) -> list[records.Job]:
        """Take up to ``limit`` jobs that are due, with a lease for ``worker``.

        A job is due when it is queued and its time has come, or running with an expired
        lease (its daemon died). Only a ticket's oldest open job is ever due.
        """
        now = self.clock()
        candidate, earlier = tables.jobs.alias("candidate"), tables.jobs.alias("earlier")
        earlier_open = (
            sa.select(earlier.c.id)
            .where(
                earlier.c.ticket_id == candidate.c.ticket_id,
                earlier.c.transaction_id < candidate.c.transaction_id,
                earlier.c.status.in_(OPEN),
            )
            .exists()
        )
        due = sa.or_(
            sa.and_(
                candidate.c.status == records.JobStatus.QUEUED.label,
                candidate.c.scheduled_at <= now,
            ),
            sa.and_(
                candidate.c.status == records.JobStatus.RUNNING.label,
                candidate.c.locked_until < now,
            ),
        )
        pick = (
            sa.select(candidate.c.id)
            .where(due, ~earlier_open)
            .order_by(candidate.c.scheduled_at, candidate.c.id)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        jobs = tables.jobs
        pick = pick.add_columns(candidate.c.status)
        with self.engine.begin() as conn:
            picked = {int(i): str(st) for i, st in conn.execute(pick).all()}
            if not picked:
                return []
            rows = conn.execute(
                jobs.update()
                .where(jobs.c.id.in_(list(picked)))
                .values(
                    status=records.JobStatus.RUNNING.label,
                    locked_by=worker,
                    locked_until=now + self.lease,
                    attempts=jobs.c.attempts + 1,
                )
                .returning(*jobs.c)
            ).all()
            found = [jobs_read.job_of(r) for r in rows]
            found = [
                self._attempt(conn, job, lease_expired=picked[job.id] != "queued") for job in found
            ]
            event_log.append(
                conn,
                [
                    job_events.job_event(
                        eventlog.EventKind.JOB_CLAIMED,
                        job,
                        cause=eventlog.Cause.parse(job.cause),
                        detail=f"attempt {job.attempt} taken by {worker}",
                        worker=worker,
                        lease_expired=picked[job.id] != "queued",
                    )
                    for job in found
                ],
                now=now,
            )
        claimed = sorted(found, key=lambda j: (j.scheduled_at, j.id))
        for job in claimed:
            logger.debug("claimed job %s", job.id, extra={"job_id": job.id, "worker": worker})
        return claimed

    def _attempt(
        self, conn: sa.Connection, job: records.Job, *, lease_expired: bool
    ) -> records.Job:
        """``job`` with the attempt it is now (its claims so far, over re-runs) and its cause:
        what made it due (a retry, a re-run, a daemon that died) or what queued it."""
        log = tables.event_log
        claims = conn.execute(
            sa.select(sa.func.count()).where(
                log.c.job_id == job.id, log.c.kind == eventlog.EventKind.JOB_CLAIMED.value
            )
        ).scalar_one()
        cause = eventlog.Cause.LEASE_EXPIRED.label
        if not lease_expired:
            found = conn.execute(
                sa.select(log.c.kind, log.c.cause)
                .where(log.c.job_id == job.id, log.c.kind.in_(job_events.MADE_DUE))
                .order_by(log.c.id.desc())
                .limit(1)
            ).first()
            cause = (
                job_events.due_cause(str(found.kind), str(found.cause))
                if found
                else job_events.cause_of(job.request).label
            )
        return dataclasses.replace(job, attempt=int(claims) + 1, cause=cause)

    def _fenced(
        self,
        job_id: int,
        worker: str,
        *,
        events: Sequence[event_log.Draft] = (),
        **values: Any,
    ) -> bool:
        jobs = tables.jobs
        stmt = (
            jobs.update()
            .where(
                jobs.c.id == job_id,
                jobs.c.status == records.JobStatus.RUNNING.label,
                jobs.c.locked_by == worker,
            )
            .values(**values)
        )
        with self.engine.begin() as conn:
            changed = bool(conn.execute(stmt).rowcount == 1)
            if changed:
                event_log.append(conn, events, now=self.clock())
            return changed

    def heartbeat(self, job_id: int, worker: str) -> bool:
        """Extend the lease of a job ``worker`` holds; False when it no longer holds it."""
        return self._fenced(job_id, worker, locked_until=self.clock() + self.lease)

    def complete(
        self,
        job_id: int,
        worker: str,
        *,
        job: records.Job | None = None,
        also: Sequence[event_log.Draft] = (),
    ) -> bool:
        """Mark the job done; False (and nothing changed) when ``worker`` lost its lease.
        ``job`` (as claimed) lets its ``job_done`` event say which attempt it was; ``also``
        are events recorded with it (e.g. why nothing was done)."""
        if job is not None:
            done = job_events.job_event(
                eventlog.EventKind.JOB_DONE, job, detail=f"done by {worker}"
            )
        else:
            done = self._for_job(
                job_id,
                event_log.draft(
                    eventlog.EventKind.JOB_DONE,
                    job_id=job_id,
                    actor=eventlog.BRIDGE_ACTOR,
                    data={"detail": f"done by {worker}"},
                ),
            )
        return self._fenced(
            job_id,
            worker,
            events=[*also, done],
            status=records.JobStatus.DONE.label,
            finished_at=self.clock(),
            locked_until=None,
            last_error=None,
        )

    def give_back(self, job_id: int, worker: str) -> bool:
        """Give a job back untouched (e.g. on shutdown before work began); not counted as a try."""
        jobs = tables.jobs
        back = event_log.draft(
            eventlog.EventKind.JOB_GIVEN_BACK,
            job_id=job_id,
            actor=eventlog.BRIDGE_ACTOR,
            data={"detail": f"given back untouched by {worker}", "worker": worker},
        )
        return self._fenced(
            job_id,
            worker,
            events=[self._for_job(job_id, back)],
            status=records.JobStatus.QUEUED.label,
            locked_by=None,
            locked_until=None,
            attempts=jobs.c.attempts - 1,
        )

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
        """Record a failed try: queue it again after a backoff, or stop it as failed (permanent
        error) or dead (retries spent). Returns the new status, or None when ``worker`` had lost
        the lease (nothing changed).

        ``error`` is stored escaped where no column could hold it (``text.storable``: bytes of a
        name that were not UTF-8, NUL), so what a failure quotes never keeps it from being
        recorded."""
        error = text.storable(error)
        now = self.clock()
        retry_at = policy.next_attempt(transient=transient, attempts=job.attempts, now=now)
        if retry_at is not None:
            status = records.JobStatus.QUEUED
            values: dict[str, Any] = {"scheduled_at": retry_at}
        else:
            status = records.JobStatus.DEAD if transient else records.JobStatus.FAILED
            values = {"finished_at": now}
        kind = {
            records.JobStatus.QUEUED: eventlog.EventKind.JOB_RETRY,
            records.JobStatus.FAILED: eventlog.EventKind.JOB_FAILED,
            records.JobStatus.DEAD: eventlog.EventKind.JOB_DEAD,
        }[status]
        when = f"; next try at {retry_at:%Y-%m-%d %H:%M:%S} UTC" if retry_at else ""
        data: dict[str, Any] = {"error": error}
        if action:
            data["action"] = action
        if retry_at is not None:
            data["next_try_at"] = retry_at.isoformat(timespec="seconds")
        changed = self._fenced(
            job.id,
            worker,
            events=[
                job_events.job_event(
                    kind,
                    job,
                    detail=text.storable(f"attempt {job.attempts}: {error}{when}"),
                    **data,
                )
            ],
            status=status.label,
            locked_by=None,
            locked_until=None,
            last_error=error,
            **values,
        )
        if not changed:
            return None
        return status

    def retry(self, job_id: int, *, actor: str = "") -> records.Job:
        """Queue a failed or dead-lettered job again, now, with a fresh count of attempts: a
        manual re-run by ``actor`` (the operator), recorded as ``job_requeued``.

        Raises ``JobNotFound`` or ``JobNotRetryable`` (naming its status).
        """
        jobs = tables.jobs
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).first()
            if row is None:
                raise JobNotFound(f"there is no job {job_id}")
            status = row._mapping["status"]
            if status not in (records.JobStatus.FAILED.label, records.JobStatus.DEAD.label):
                raise JobNotRetryable(
                    f"job {job_id} is {status}; only failed or dead jobs can be retried"
                )
            conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id)
                .values(
                    status=records.JobStatus.QUEUED.label,
                    attempts=0,
                    scheduled_at=self.clock(),
                    finished_at=None,
                )
            )
            new = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).one()
            # What the failed run told the ticket of its failure is forgotten: the re-run
            # writes its own outcome (see releases.FAILURE_STEP_PREFIX; the prefix is spelt
            # here because releases imports this module).
            steps = tables.job_steps
            conn.execute(
                steps.delete().where(
                    steps.c.job_id == job_id, steps.c.action.startswith(_FAILURE_STEP_PREFIX)
                )
            )
            event_log.append(
                conn,
                [
                    event_log.draft(
                        eventlog.EventKind.JOB_REQUEUED,
                        ticket_id=int(row._mapping["ticket_id"]),
                        transaction_id=int(row._mapping["transaction_id"]),
                        job_id=job_id,
                        actor=actor,
                        cause=eventlog.Cause.MANUAL_RERUN,
                        data={
                            "detail": f"re-run by {actor or 'an operator'} (was {status})",
                            "was": status,
                        },
                    )
                ],
                now=self.clock(),
            )
        return jobs_read.job_of(new)

    def _for_job(self, job_id: int, item: event_log.Draft) -> event_log.Draft:
        """``item`` with the job's ticket and transaction filled in from its row."""
        jobs = tables.jobs
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(jobs.c.ticket_id, jobs.c.transaction_id).where(jobs.c.id == job_id)
            ).first()
        if row is None:
            return item
        return dataclasses.replace(
            item, ticket_id=int(row.ticket_id), transaction_id=int(row.transaction_id)
        )
