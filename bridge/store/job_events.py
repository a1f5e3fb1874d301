"""The events of a job's life in the queue: ``job_queued`` for a change stored, and the
events of its claims, outcome and re-runs, with the attempt and the cause each carries.

Drafts only (``event_log.draft``): ``queue.Queue`` appends them in the transaction of the
change, and ``bridge.testing.InMemoryQueue`` uses the same ones. It writes nothing itself.
"""

from __future__ import annotations

from typing import Any

from bridge import records
from bridge.store import event_log
from bridge.store import events as eventlog

# The events after which a job is due again, whose cause the next attempt carries.
MADE_DUE = (
    eventlog.EventKind.JOB_QUEUED.value,
    eventlog.EventKind.JOB_RETRY.value,
    eventlog.EventKind.JOB_REQUEUED.value,
    eventlog.EventKind.IMPORTED.value,
)


def due_cause(kind: str, cause: str) -> str:
    """The cause of the attempt after an event of ``kind`` made the job due."""
    if kind == eventlog.EventKind.JOB_RETRY.value:
        return eventlog.Cause.AUTOMATIC_RETRY.label
    return cause


def cause_of(request: records.ReleaseRequest) -> eventlog.Cause:
    """What started a change, from how it reached the queue."""
    if request.source is records.JobSource.RECOVERED:
        return eventlog.Cause.RECONCILIATION
    if request.source is records.JobSource.BRIDGE:
        return eventlog.Cause.BRIDGE
    return eventlog.Cause.EMERGENCY if request.emergency else eventlog.Cause.HOOK


def queued(
    request: records.ReleaseRequest, job_id: int, cause: eventlog.Cause | None
) -> event_log.Draft:
    """The ``job_queued`` event of a change just stored as ``job_id``."""
    return event_log.draft(
        eventlog.EventKind.JOB_QUEUED,
        ticket_id=request.ticket_id,
        transaction_id=request.transaction_id,
        job_id=job_id,
        actor=request.actor,
        cause=cause or cause_of(request),
        data={
            "detail": f"queued {request.describe()}",
            "field": request.field.label,
            "from": request.previous.label,
            "to": request.current.label,
            "old_value": request.old_value,
            "new_value": request.new_value,
            "emergency": request.emergency,
            "source": request.source.label,
        },
    )


def job_event(
    kind: eventlog.EventKind,
    job: records.Job,
    *,
    detail: str,
    cause: eventlog.Cause | None = None,
    **data: Any,
) -> event_log.Draft:
    """An event about ``job`` (as claimed: its attempt and cause), by the bridge."""
    values: dict[str, Any] = {"detail": detail, **data}
    if job.attempt:
        values["attempt"] = job.attempt
    return event_log.draft(
        kind,
        ticket_id=job.ticket_id,
        transaction_id=job.request.transaction_id,
        job_id=job.id,
        actor=eventlog.BRIDGE_ACTOR,
        cause=cause or (eventlog.Cause.parse(job.cause) if job.cause else cause_of(job.request)),
        data=values,
    )
