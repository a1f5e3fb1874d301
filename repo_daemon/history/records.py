"""The records of a release's timeline (``history.timeline`` builds them): stays in states,
changes with their attempts and actions, publications, the staged-rollout slot, early
adopters, what the ticket was told, and the other events. Frozen data, no behaviour.

Times are naive UTC, like the event log's. A time that is None is one the events at hand do
not hold (it is before the log, or its event was deleted by retention).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# How an attempt ended (``Attempt.end``).
RUNNING = "running"  # no end recorded (yet): it is running, or its daemon stopped just now
DONE = "done"
RETRY = "retry"  # failed with a transient error; the queue tries again
FAILED = "failed"  # failed with a permanent error
DEAD = "dead"  # the last try failed: dead-lettered
GIVEN_BACK = "given back"  # a daemon that was stopping gave the job back untouched
LEASE_EXPIRED = "lease expired"  # its daemon stopped; another one took the job over
UNKNOWN = "unknown"  # taken again with no end recorded


@dataclass(frozen=True, kw_only=True)
class Stay:
    """A stay in one state. ``left_at`` None with ``current`` False: when it ended is not in
    the events. ``seconds`` is the time spent (up to ``now`` for the current stay)."""

    state: str
    entered_at: datetime | None
    left_at: datetime | None = None
    by: str = ""  # who moved the release into it (as the event's actor says)
    current: bool = False
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class ActionRun:
    """One action of an attempt: ``outcome`` is ``done``, ``done before`` (checkpointed by an
    earlier attempt) or ``failed``; ``after_failure`` marks the actions a failure runs."""

    name: str
    outcome: str
    seconds: float | None
    detail: str = ""
    after_failure: bool = False


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One try of a change: its number (counted over manual re-runs), what started it and who
    asked, what it did, how the workflow ended it (``result``: the event kind, e.g.
    ``transition_done``) and how the try ended (``end``)."""

    number: int | None
    event_id: int | None  # the job_claimed event's id (None when it is not in the events)
    cause: str
    asked_by: str
    worker: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    seconds: float | None = None
    end: str = RUNNING
    actions: tuple[ActionRun, ...] = ()
    result: str | None = None
    result_detail: str = ""
    moved_from: str | None = None
    moved_to: str | None = None
    asked: str | None = None
    error: str | None = None
    failed_action: str | None = None
    next_try_at: datetime | None = None
    rt_calls: int | None = None


@dataclass(frozen=True, kw_only=True)
class Rerun:
    """A failed or dead job queued again by hand."""

    event_id: int
    at: datetime
    by: str
    was: str


@dataclass(frozen=True, kw_only=True)
class Change:
    """One change of the ticket (one job of the queue) and its attempts, oldest first.
    ``before``/``after`` are the field's values (``after`` is the state asked for, for a
    move); ``status`` is the job's as the events leave it."""

    job_id: int
    transaction_id: int | None
    cause: str
    field: str = ""
    before: str = ""
    after: str = ""
    asked_by: str = ""
    source: str = ""
    queued_at: datetime | None = None
    status: str = "unknown"
    detail: str = ""
    attempts: tuple[Attempt, ...] = ()
    reruns: tuple[Rerun, ...] = ()
    before_log_status: str | None = None  # what the bridge knew before the event log
    before_log_attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class Publication:
    """The release published into ``area`` (``published_at`` None: before the log)."""

    area: str
    published_at: datetime | None
    snapshot: str | None = None
    files: int | None = None
    bytes: int | None = None
    removed_at: datetime | None = None
    job_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class SlotStay:
    """The release's hold of its major release's staged-rollout slot."""

    major_release: str
    taken_at: datetime | None
    freed_at: datetime | None = None
    emergency: bool = False


@dataclass(frozen=True, kw_only=True)
class Acceptance:
    """An early-adopter team's acceptance of the staged rollout (and its withdrawal)."""

    team: str
    ngi: str
    accepted_at: datetime | None
    accepted_by: str = ""
    withdrawn_at: datetime | None = None
    withdrawn_by: str = ""


@dataclass(frozen=True, kw_only=True)
class Told:
    """What the bridge wrote to the ticket at once: fields set, a comment's and a reply's
    first line, the groups taken off the watchers again after being told."""

    at: datetime
    job_id: int | None
    attempt: int | None
    step: str
    fields: tuple[str, ...] = ()
    comment: str | None = None
    reply: str | None = None
    to: str | None = None
    untold: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Note:
    """Another event of the release (release.xml frozen, facts changed, a refused hook, ...)."""

    at: datetime
    kind: str
    actor: str
    detail: str
    job_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Timeline:
    """A release's timeline. ``pruned``: retention deleted its first events (``first_seq`` >
    1), so what they recorded is missing."""

    ticket_id: int
    now: datetime
    state: str | None
    failed_target: str | None
    major_release: str | None
    emergency: bool
    events: int
    first_seq: int | None
    last_seq: int | None
    pruned: bool
    first_at: datetime
    last_at: datetime
    stays: tuple[Stay, ...]
    changes: tuple[Change, ...]
    publications: tuple[Publication, ...]
    slots: tuple[SlotStay, ...]
    acceptances: tuple[Acceptance, ...]
    told: tuple[Told, ...]
    notes: tuple[Note, ...]
