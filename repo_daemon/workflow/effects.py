"""What an action asks for, as data: the effects a handler returns and the processor applies
once, at the end of a transition.

A handler never writes the ticket or queues work itself; it returns a ``Result`` whose effects
say what the ticket is told (comments, replies, fields, watchers, status) and what must follow
the commit (moving the next Deferred release in). ``TicketPlan.from_effects`` folds them into
the one write-back. Plain frozen data: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


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
class Resolve:
    """Resolve the ticket."""


@dataclass(frozen=True, kw_only=True)
class MoveNextDeferredIn:
    """After the commit: queue the oldest Deferred release of ``major_release`` into
    StageRollout, if the slot is free then."""

    major_release: str


Effect = Comment | Reply | SetFields | SetWatchers | Resolve | MoveNextDeferredIn


@dataclass(frozen=True, kw_only=True)
class Result:
    """What an action did (``detail``, a line for the job's checkpoint) and asks for."""

    detail: str
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TicketPlan:
    """Everything one transition writes on the ticket, folded from the effects in order."""

    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cc: tuple[str, ...] | None = None
    admin_cc: tuple[str, ...] | None = None
    resolve: bool = False
    comments: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()
    follow_ups: tuple[MoveNextDeferredIn, ...] = ()

    @classmethod
    def from_effects(cls, effects: Iterable[Effect]) -> TicketPlan:
        """Fold effects in order: later fields and watchers win; messages keep their order,
        headlines first."""
        fields: dict[str, str] = {}
        cc: tuple[str, ...] | None = None
        admin_cc: tuple[str, ...] | None = None
        resolve = False
        comments: list[str] = []
        headlines: list[str] = []
        replies: list[str] = []
        follow_ups: list[MoveNextDeferredIn] = []
        for effect in effects:
            match effect:
                case Comment(text=text, headline=True):
                    comments.insert(len(headlines), text)
                    headlines.append(text)
                case Comment(text=text):
                    comments.append(text)
                case Reply(text=text):
                    replies.append(text)
                case SetFields(fields=more):
                    fields.update(more)
                case SetWatchers(cc=new_cc, admin_cc=new_admin):
                    cc, admin_cc = new_cc, new_admin
                case Resolve():
                    resolve = True
                case MoveNextDeferredIn():
                    follow_ups.append(effect)
        return cls(
            fields=MappingProxyType(fields),
            cc=cc,
            admin_cc=admin_cc,
            resolve=resolve,
            comments=tuple(comments),
            replies=tuple(replies),
            follow_ups=tuple(follow_ups),
        )
