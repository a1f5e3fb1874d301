"""Records shared by every part of the bridge: the release states and the ticket as read from RT.

Plain data only; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class RolloutState(enum.Enum):
    """The values of the ticket's ``RolloutProgress`` field (``label`` is RT's spelling).

    What each state means, what people are told when a release enters it and who is Cc there
    are written once, in the workflow definition's ``[states]`` table
    (``schemas/workflows/*.toml``), not here.
    """

    SUBMITTED = "Submitted"
    UNVERIFIED = "Unverified"
    IN_VERIFICATION = "InVerification"
    WAITING_FOR_RESPONSE = "WaitingForResponse"
    STAGE_ROLLOUT = "StageRollout"
    DEFERRED = "Deferred"
    PRODUCTION = "Production"
    REJECTED = "Rejected"
    IGNORED = "Ignored"
    NOT_PUBLISHED = "NotPublished"
    FAILED = "Failed"
    WITHDRAWN = "Withdrawn"  # was in production and was taken out again

    @property
    def label(self) -> str:
        """The value as RT shows it."""
        return str(self.value)

    @classmethod
    def parse(cls, value: str | None) -> RolloutState:
        """The state for an RT field value; empty or missing means Submitted.

        Raises ``ValueError`` naming the allowed values for anything else.
        """
        if value is None or value.strip() == "":
            return cls.SUBMITTED
        for state in cls:
            if state.label == value.strip():
                return state
        allowed = ", ".join(s.label for s in cls)
        raise ValueError(f"unknown RolloutProgress value {value!r}; allowed: {allowed}")


@dataclass(frozen=True, kw_only=True)
class Watcher:
    """A ticket watcher: a user (by name or address) or a group (by name)."""

    kind: str  # "user" or "group"
    name: str


@dataclass(frozen=True, kw_only=True)
class Ticket:
    """A ticket as the bridge sees it: core fields, custom fields and watchers."""

    id: int
    queue: str
    subject: str
    status: str
    custom_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    requestors: tuple[Watcher, ...] = ()
    cc: tuple[Watcher, ...] = ()
    admin_cc: tuple[Watcher, ...] = ()
    owner: str | None = None  # the owning user's name; None for RT's "Nobody"

    def field(self, name: str) -> str | None:
        """The first value of custom field ``name``, or None when it is empty."""
        values = self.custom_fields.get(name, ())
        return values[0] if values else None

    @property
    def rollout_state(self) -> RolloutState:
        """The ticket's RolloutProgress (empty means Submitted)."""
        return RolloutState.parse(self.field("RolloutProgress"))

    def cc_groups(self) -> tuple[str, ...]:
        """Names of the groups that are Cc on the ticket."""
        return tuple(w.name for w in self.cc if w.kind == "group")

    def admin_cc_groups(self) -> tuple[str, ...]:
        """Names of the groups that are AdminCc on the ticket."""
        return tuple(w.name for w in self.admin_cc if w.kind == "group")


@dataclass(frozen=True, kw_only=True)
class Attachment:
    """A file attached to a ticket, with its bytes."""

    id: int
    filename: str
    content_type: str
    content: bytes
    transaction_id: int | None = None


class JobStatus(enum.Enum):
    """Where a queued change is. Each value has a description."""

    QUEUED = ("queued", "Waiting to be processed (possibly until a retry time).")
    RUNNING = ("running", "Claimed by a daemon, which holds a lease on it.")
    DONE = ("done", "Processed.")
    FAILED = ("failed", "Stopped by a permanent error; an operator may retry it.")
    DEAD = ("dead", "Dead-lettered after the last retry; an operator may retry it.")

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description

    @classmethod
    def parse(cls, value: str) -> JobStatus:
        """The status called ``value``; raises ``ValueError`` naming the allowed ones."""
        for status in cls:
            if status.label == value:
                return status
        allowed = ", ".join(s.label for s in cls)
        raise ValueError(f"unknown job status {value!r}; allowed: {allowed}")


class JobSource(enum.Enum):
    """How a change reached the queue."""

    HOOK = ("hook", "Posted by RT's scrip.")
    RECOVERED = ("recovered", "Found in RT's history by reconciliation (the hook never came).")
    BRIDGE = ("bridge", "Started by the bridge itself, e.g. a Deferred release moving in.")

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description


class TrackedField(enum.Enum):
    """The changes of a ticket RT's scrip reports and the bridge acts on (``label`` is the
    name a hook gives in its ``field``: RT's custom field name, or ``Status``)."""

    ROLLOUT_PROGRESS = ("RolloutProgress", "A person moved the release in the workflow.")
    EARLY_ADOPTERS = (
        "EarlyAdopters",
        "An early-adopter team was added to (accepted) or removed from the staged rollout.",
    )
    STAGE_ROLLOUT_REPORT = ("StageRollout Report", "The staged-rollout report was filled in.")
    EMERGENCY_RELEASE = ("EmergencyRelease", "The release was made (or unmade) an emergency.")
    STATUS = ("Status", "The ticket was resolved, rejected, deleted or reopened in RT.")

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description

    @classmethod
    def parse(cls, value: str) -> TrackedField:
        """The field called ``value``; raises ``ValueError`` naming the known ones."""
        for tracked in cls:
            if tracked.label == value:
                return tracked
        known = ", ".join(t.label for t in cls)
        raise ValueError(f"unknown field {value!r}; the bridge follows: {known}")


@dataclass(frozen=True, kw_only=True)
class ReleaseRequest:
    """A change of a ticket as RT reported it: a RolloutProgress move (``current`` asked for,
    ``previous`` before), or a change of another field the bridge follows (``field``).

    For a change of another field, ``old_value`` / ``new_value`` are RT's raw values (for a
    multi-value field, the one value removed or added; empty for none) and ``current`` /
    ``previous`` are not what changed: build those with ``field_change``, which leaves them
    Submitted (and a move's raw values empty: its states say it all). ``changed_at`` is RT's
    time of the transaction (naive UTC), when known.
    """

    ticket_id: int
    transaction_id: int
    current: RolloutState
    previous: RolloutState
    emergency: bool = False
    actor: str = ""
    source: JobSource = JobSource.HOOK
    field: TrackedField = TrackedField.ROLLOUT_PROGRESS
    old_value: str = ""
    new_value: str = ""
    changed_at: datetime | None = None

    @classmethod
    def field_change(
        cls,
        *,
        ticket_id: int,
        transaction_id: int,
        field: TrackedField,
        old_value: str,
        new_value: str,
        actor: str = "",
        emergency: bool = False,
        source: JobSource = JobSource.HOOK,
        changed_at: datetime | None = None,
    ) -> ReleaseRequest:
        """A change of ``field``; for RolloutProgress the values are parsed into states
        (``ValueError`` for one the bridge does not know)."""
        moved = field is TrackedField.ROLLOUT_PROGRESS
        return cls(
            ticket_id=ticket_id,
            transaction_id=transaction_id,
            current=RolloutState.parse(new_value) if moved else RolloutState.SUBMITTED,
            previous=RolloutState.parse(old_value) if moved else RolloutState.SUBMITTED,
            emergency=emergency,
            actor=actor,
            source=source,
            field=field,
            old_value="" if moved else old_value,
            new_value="" if moved else new_value,
            changed_at=changed_at,
        )

    @property
    def is_move(self) -> bool:
        """Whether this is a RolloutProgress move (the workflow engine decides it)."""
        return self.field is TrackedField.ROLLOUT_PROGRESS

    @property
    def before(self) -> str:
        """The value before the change, as people read it."""
        return self.previous.label if self.is_move else self.old_value

    @property
    def after(self) -> str:
        """The value after the change, as people read it."""
        return self.current.label if self.is_move else self.new_value

    def describe(self) -> str:
        """The change in a few words, for logs and the queue's listing."""
        if self.is_move:
            return f"{self.previous.label} → {self.current.label}"
        if self.old_value and not self.new_value:
            return f"{self.field.label}: {self.old_value!r} removed"
        if self.new_value and not self.old_value:
            return f"{self.field.label}: {self.new_value!r} added"
        return f"{self.field.label}: {self.old_value!r} → {self.new_value!r}"


@dataclass(frozen=True, kw_only=True)
class Job:
    """A queued change with its processing state."""

    id: int
    request: ReleaseRequest
    status: JobStatus
    attempts: int
    scheduled_at: datetime
    created_at: datetime
    locked_by: str | None = None
    locked_until: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None
    # Set by a claim: the attempt this is, counted over manual re-runs (``attempts`` restarts
    # at a re-run), and what started it (an ``events.Cause`` label).
    attempt: int = 0
    cause: str = ""

    @property
    def ticket_id(self) -> int:
        return self.request.ticket_id
