"""What the event log holds: the kinds of event (``EventKind``) and one recorded ``Event``.

An event kind's value is the string stored in ``events.kind``, so the database keeps the values
it always had; each kind says in one line what it means. A refused hook keeps its HTTP status,
its reason and its caller in fields of their own, so nobody parses them back out of ``detail``.
Plain data only: writing and reading events is ``bridge.store.event_log``'s business.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class EventKind(enum.Enum):
    """The kinds of event the bridge and the daemon record. Each has a ``description``."""

    HOOK_REFUSED = "hook_refused"
    RECOVERED_REFUSED = "recovered_refused"
    JOB_PROCESSED = "job_processed"
    JOB_SKIPPED_OWN_WRITE = "job_skipped_own_write"
    JOB_RETRY = "job_retry"
    JOB_FAILED = "job_failed"
    JOB_DEAD = "job_dead"
    JOB_REQUEUED = "job_requeued"
    TRANSITION_DONE = "transition_done"
    TRANSITION_BLOCKED = "transition_blocked"
    TRANSITION_NOOP = "transition_noop"
    TRANSITION_FAILED = "transition_failed"
    TRANSITION_STALE = "transition_stale"
    DEFERRED_PROMOTED = "deferred_promoted"
    FIELD_CHANGE_DONE = "field_change_done"
    RT_CALLS = "rt_calls"

    @property
    def description(self) -> str:
        """What an event of this kind means, in one line."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS: dict[EventKind, str] = {
    EventKind.HOOK_REFUSED: "The receiver refused a hook; a signed one is commented on its ticket.",
    EventKind.RECOVERED_REFUSED: (
        "Reconciliation found a RolloutProgress value the bridge does not know; commented."
    ),
    EventKind.JOB_PROCESSED: (
        "A change was processed by a processor that only reads its ticket (such as the test "
        "suite's); the workflow records transition_* events instead."
    ),
    EventKind.JOB_SKIPPED_OWN_WRITE: "A change made by the bridge's own RT account; nothing done.",
    EventKind.JOB_RETRY: "A try failed with a transient error; the job waits for its next try.",
    EventKind.JOB_FAILED: "A try failed with a permanent error; the job stopped.",
    EventKind.JOB_DEAD: "The last try failed; the job was dead-lettered.",
    EventKind.JOB_REQUEUED: "An operator queued a failed or dead job again.",
    EventKind.TRANSITION_DONE: "The workflow carried out a change of state.",
    EventKind.TRANSITION_BLOCKED: "The workflow refused a change (a guard did not hold).",
    EventKind.TRANSITION_NOOP: "The change asked for nothing the workflow has to do.",
    EventKind.TRANSITION_FAILED: "An action of a change failed; the release went to Failed.",
    EventKind.TRANSITION_STALE: "The ticket has moved on since the change; it was not acted on.",
    EventKind.DEFERRED_PROMOTED: "A Deferred release took the staged-rollout slot that came free.",
    EventKind.FIELD_CHANGE_DONE: (
        "A change of another field (EarlyAdopters, StageRollout Report, EmergencyRelease) or of "
        "the ticket's status was handled."
    ),
    EventKind.RT_CALLS: "How many RT round trips processing one change took.",
}


@dataclass(frozen=True, kw_only=True)
class Event:
    """One entry of the event log.

    ``detail`` is the line operators read. For a refused hook, ``http_status``, ``reason``
    (what the ticket is told) and ``caller`` (who called, for operators) are stored on their
    own; they are None on other events and on refusals recorded before they existed.
    """

    id: int
    at: datetime
    kind: EventKind
    ticket_id: int | None = None
    transaction_id: int | None = None
    job_id: int | None = None
    detail: str = ""
    needs_comment: bool = False
    commented_at: datetime | None = None
    http_status: int | None = None
    reason: str | None = None
    caller: str | None = None
