"""What an action asks for, as data: the effects a handler returns and the processor applies
once, at the end of a transition.

A handler never writes the ticket or queues work itself; it returns a ``Result`` whose effects
say what the ticket is told (comments, replies, fields, watchers, status) and what must follow
the commit (moving the next Deferred release in). ``ticket_plan.TicketPlan.from_effects``
folds them into the one write-back. Plain frozen data: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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
    """Custom fields to write on the ticket."""

    fields: Mapping[str, str]


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
class Resolve:
    """Resolve the ticket."""


@dataclass(frozen=True, kw_only=True)
class MoveNextDeferredIn:
    """After the commit: queue the oldest Deferred release of ``major_release`` into
    StageRollout, if the slot is free then."""

    major_release: str


Effect = Comment | Reply | SetFields | SetWatchers | SetOwner | Resolve | MoveNextDeferredIn


@dataclass(frozen=True, kw_only=True)
class Result:
    """What an action did (``detail``, a line for the job's checkpoint) and asks for."""

    detail: str
    effects: tuple[Effect, ...] = ()
