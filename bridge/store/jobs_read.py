"""Reading the queue's jobs: one job, a list, the counts per status and the oldest due, and a
readiness ping. ``JobReading`` is part of ``queue.Queue`` (a base class of it), on the same
engine and clock; ``job_of`` turns a ``jobs`` row into a ``records.Job``. It changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.store import tables


def job_of(row: sa.Row[Any]) -> records.Job:
    """The ``records.Job`` of a ``jobs`` row."""
    m = row._mapping
    return records.Job(
        id=int(m["id"]),
        request=records.ReleaseRequest(
            ticket_id=int(m["ticket_id"]),
            transaction_id=int(m["transaction_id"]),
            current=records.RolloutState.parse(m["current"]),
            previous=records.RolloutState.parse(m["previous"]),
            emergency=bool(m["emergency"]),
            actor=str(m["actor"]),
            source=next(s for s in records.JobSource if s.label == m["source"]),
            field=records.TrackedField.parse(m["field"]),
            old_value=str(m["old_value"] or ""),
            new_value=str(m["new_value"] or ""),
            changed_at=m["changed_at"],
        ),
        status=records.JobStatus.parse(m["status"]),
        attempts=int(m["attempts"]),
        scheduled_at=m["scheduled_at"],
        created_at=m["created_at"],
        locked_by=m["locked_by"],
        locked_until=m["locked_until"],
        finished_at=m["finished_at"],
        last_error=m["last_error"],
    )


class JobReading:
    """The queue's reads, for ``queue.Queue``."""

    engine: sa.Engine
    clock: Callable[[], datetime]

    def get(self, job_id: int) -> records.Job | None:
        """The job with that id, or None."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tables.jobs).where(tables.jobs.c.id == job_id)).first()
        return job_of(row) if row is not None else None

    def list_jobs(
        self,
        *,
        statuses: Iterable[records.JobStatus] = (),
        ticket_id: int | None = None,
        limit: int = 100,
    ) -> list[records.Job]:
        """Jobs, newest first, optionally only those in ``statuses`` or of one ticket."""
        jobs = tables.jobs
        stmt = sa.select(jobs).order_by(jobs.c.id.desc()).limit(limit)
        labels = [s.label for s in statuses]
        if labels:
            stmt = stmt.where(jobs.c.status.in_(labels))
        if ticket_id is not None:
            stmt = stmt.where(jobs.c.ticket_id == ticket_id)
        with self.engine.begin() as conn:
            return [job_of(r) for r in conn.execute(stmt).all()]

    def stats(self) -> dict[str, Any]:
        """Counts per status, how many queued jobs are due now, and the oldest due one's age."""
        jobs = tables.jobs
        now = self.clock()
        with self.engine.begin() as conn:
            counts = {
                str(status): int(count)
                for status, count in conn.execute(
                    sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
                ).all()
            }
            oldest = conn.execute(
                sa.select(sa.func.min(jobs.c.scheduled_at)).where(
                    jobs.c.status == records.JobStatus.QUEUED.label, jobs.c.scheduled_at <= now
                )
            ).scalar()
            due = conn.execute(
                sa.select(sa.func.count()).where(
                    jobs.c.status == records.JobStatus.QUEUED.label, jobs.c.scheduled_at <= now
                )
            ).scalar_one()
        result: dict[str, Any] = {s.label: int(counts.get(s.label, 0)) for s in records.JobStatus}
        result["due"] = int(due)
        result["oldest_due_seconds"] = (now - oldest).total_seconds() if oldest else 0.0
        return result

    def ping(self) -> None:
        """Raise if the database cannot be reached (for readiness checks)."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
