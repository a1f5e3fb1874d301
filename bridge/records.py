"""Records shared by every part of the bridge: the release states and the ticket as read from RT.

Plain data only; no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class RolloutState(enum.Enum):
    """The values of the ticket's ``RolloutProgress`` field. Each has a description."""

    SUBMITTED = ("Submitted", "Filed by the technology provider; nothing done yet.")
    UNVERIFIED = ("Unverified", "Synced, checked and published to unverified/; waiting for QC.")
    IN_VERIFICATION = ("InVerification", "QC is verifying the release.")
    WAITING_FOR_RESPONSE = ("WaitingForResponse", "QC is waiting for the technology provider.")
    STAGE_ROLLOUT = ("StageRollout", "In staged rollout to early adopters.")
    DEFERRED = ("Deferred", "Waiting for the major release's staged-rollout slot.")
    PRODUCTION = ("Production", "Published to the major release's production area.")
    REJECTED = ("Rejected", "Refused; removed from unverified and stagerollout.")
    IGNORED = ("Ignored", "Withdrawn or superseded; removed, not published.")
    NOT_PUBLISHED = ("NotPublished", "Verified but deliberately not published.")
    FAILED = ("Failed", "Processing failed; the ticket says why. Retry or reject.")

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description

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
