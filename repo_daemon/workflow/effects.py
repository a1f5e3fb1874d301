"""What an action asks for, as data: the effects a handler returns and the processor applies
once, at the end of a transition.

A handler never writes the ticket, the bridge's records or the queue itself; it returns a
``Result`` whose effects say what the ticket is told (comments, replies, fields, watchers,
groups told once, status), what the bridge records (an early adopter's acceptance, the
staged-rollout report's time, EmergencyRelease) and what must follow the commit (moving the next
Deferred release in). ``ticket_plan.TicketPlan.from_effects`` folds them into the one
write-back. Plain frozen data: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bridge.records import RolloutState


@dataclass(frozen=True, kw_only=True)
class Comment:
    """A comment for the people working on the ticket (AdminCc and Cc get it by mail).
    A ``headline`` (what happened to the state) comes before the other comments."""

    text: str
    headline: bool = False


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A reply: the technology provider (the requestors) gets it too."""

    text: str


@dataclass(frozen=True, kw_only=True)
class SetFields:
    """Custom fields to write on the ticket (a tuple: all the values of a multi-value field)."""

    fields: Mapping[str, str | tuple[str, ...]]


@dataclass(frozen=True, kw_only=True)
class SetWatchers:
    """The Cc and AdminCc groups of the ticket from now on (each list replaces the old one)."""

    cc: tuple[str, ...]
    admin_cc: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SetOwner:
    """The ticket's owner from now on (an RT user name)."""

    owner: str


@dataclass(frozen=True, kw_only=True)
class TellGroups:
    """Groups told of this change without watching the ticket: Cc for its messages only (the
    early-adopter teams of a major release when a release enters staged rollout)."""

    groups: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Resolve:
    """Resolve the ticket."""


@dataclass(frozen=True, kw_only=True)
class MoveNextDeferredIn:
    """After the commit: queue the oldest Deferred release of ``major_release`` into
    StageRollout, if the slot is free then."""

    major_release: str


# -- the bridge's records (applied with the write-back, once) ---------------------------------


@dataclass(frozen=True, kw_only=True)
class RecordAcceptance:
    """Record that an early-adopter team accepted the release: RT's ``actor`` added it at
    ``at`` in ``transaction_id``."""

    team: str
    ngi: str
    major_release: str | None
    actor: str
    at: datetime
    transaction_id: int


@dataclass(frozen=True, kw_only=True)
class WithdrawAcceptance:
    """Record that the team's acceptance was withdrawn (removed from EarlyAdopters)."""

    team: str
    actor: str
    at: datetime
    transaction_id: int


@dataclass(frozen=True, kw_only=True)
class RecordStageReport:
    """Record when the StageRollout Report was filled in (the first time counts)."""

    at: datetime


@dataclass(frozen=True, kw_only=True)
class RecordEmergency:
    """Keep EmergencyRelease, as the ticket says now, on the release's record."""

    emergency: bool


Record = RecordAcceptance | WithdrawAcceptance | RecordStageReport | RecordEmergency
Effect = (
    Comment | Reply | SetFields | SetWatchers | SetOwner | TellGroups | Resolve
    | MoveNextDeferredIn | Record
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Result:
    """What an action did (``detail``, a line for the job's checkpoint) and asks for."""

    detail: str
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Handling:
    """What the handler of a change of another field than RolloutProgress (or of the
    ticket's status) decided: a line for the event log, the effects, and, for a ticket closed
    by hand, the state the workflow closes the release in (``close_as``: run as if a person
    had asked for it, after the effects here)."""

    detail: str
    effects: tuple[Effect, ...] = ()
    close_as: RolloutState | None = None
