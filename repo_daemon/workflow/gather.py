"""Gather: everything a transition's actions read, read once into immutable views.

``TicketView`` is the ticket's fields parsed once, with one rule for each business fact (the
major release is the ticket's ``AssociatedMajorRelease``; release.xml may only agree with it),
and what the bridge fills in at the intake of a mailed release (``mail_fields``).
``Inputs`` is what every handler gets: the change asked for, the ticket, the bridge's record of
the release, the facts the engine looked at, its decision, the workflow's people table and the
early adopters (the settings' teams, those that accepted). ``ChangeInputs`` is the same for a
change of another field or of the ticket's status (``field_changes``). It reads nothing itself
except the frozen release.xml, on first use and once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from bridge import records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.store import early_adopters as acceptances
from bridge.store import releases
from repo_daemon.release_xml import model as release_model
from repo_daemon.workflow import engine, mail_fields, model

# The field a release manager writes why a release is closed in (Rejected, Ignored, ...).
CLOSING_REASON = "Closing Reason"
# RT's statuses of a closed ticket (RT's default lifecycle's inactive ones).
CLOSED_STATUSES = frozenset({"resolved", "rejected", "deleted"})


@dataclass(frozen=True, kw_only=True)
class TicketView:
    """The fields of a release's ticket the bridge acts on, parsed once."""

    id: int
    subject: str
    progress: RolloutState  # what RT shows now (empty means Submitted)
    major_release: str | None  # AssociatedMajorRelease: the one rule for the major release
    emergency: bool  # EmergencyRelease = Yes
    release_type: str | None
    sync_url: str | None
    sync_protocol: str | None
    closing_reason: str | None  # why a manager closed it (told to the provider)
    status: str  # the ticket's status in RT (new, open, resolved, rejected, deleted, …)
    ticket: records.Ticket  # as read, for the write-back's comparison
    # What the bridge fills in at intake, from the mail or release.xml; the values count as
    # the ticket's for every action (check_fields writes them back).
    filled: mail_fields.Filled = mail_fields.NOTHING

    @classmethod
    def of(
        cls, ticket: records.Ticket, *, filled: mail_fields.Filled = mail_fields.NOTHING
    ) -> TicketView:
        def text(name: str) -> str | None:
            value = (filled.values.get(name) or ticket.field(name) or "").strip()
            return value or None

        return cls(
            id=ticket.id,
            subject=ticket.subject,
            progress=ticket.rollout_state,
            major_release=text("AssociatedMajorRelease"),
            emergency=(text("EmergencyRelease") or "No") == "Yes",
            release_type=text("ReleaseType"),
            sync_url=text("Sync-URL"),
            sync_protocol=text("Sync-Protocol"),
            closing_reason=text(CLOSING_REASON),
            status=ticket.status,
            ticket=ticket,
            filled=filled,
        )

    @property
    def closed(self) -> bool:
        """Whether a person closed the ticket in RT (resolved, rejected or deleted): the bridge
        then never sets another status on it."""
        return self.status in CLOSED_STATUSES

    def field(self, name: str) -> str | None:
        """A custom field's value as RT shows it, or as the bridge fills it in (None when
        empty)."""
        return self.filled.values.get(name) or self.ticket.field(name)


@dataclass(frozen=True, kw_only=True)
class People:
    """Who is Cc in each state: the workflow's table, with the settings' overrides."""

    cc_overrides: Mapping[str, tuple[str, ...]]  # state label -> groups
    admin_cc: tuple[str, ...]
    owner_overrides: Mapping[str, str] = field(default_factory=dict)  # state label -> user

    def cc(self, definition: model.Definition, state: RolloutState) -> tuple[str, ...]:
        override = self.cc_overrides.get(state.label)
        return override if override is not None else definition.info(state).cc

    def owner(self, definition: model.Definition, state: RolloutState) -> str | None:
        """Who owns the ticket in ``state``; None keeps whoever owns it."""
        override = self.owner_overrides.get(state.label)
        owner = override if override is not None else definition.info(state).owner
        return owner or None


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """What one transition's handlers read. Immutable: handlers return effects instead."""

    job: records.Job
    ticket: TicketView
    release: releases.Release  # the bridge's record, as it was before this transition
    facts: model.Facts
    decision: engine.Decision
    definition: model.Definition
    people: People
    failure: str = ""  # why processing failed (the failure actions only)
    failure_for_provider: bool = False  # the provider can fix what failed (their input)
    known_major_releases: tuple[str, ...] = ()  # settings' registry; empty: any name
    # The early-adopter teams of the settings, and those whose acceptance of this release
    # stands (they watch the ticket in every state from then on).
    early_adopters: tuple[settings_model.EarlyAdopterTeam, ...] = ()
    accepted: tuple[acceptances.Acceptance, ...] = ()
    # The lasting work this job finished in an earlier attempt (a resumed job skips it).
    checkpoints: frozenset[str] = frozenset()
    read_release_xml: Callable[[], release_model.ReleaseInfo]

    @property
    def came_from(self) -> RolloutState:
        """Where the release was."""
        return self.release.state

    @property
    def going_to(self) -> RolloutState:
        """Where the release ends up (the decision's state)."""
        return self.decision.state

    def cc(self, state: RolloutState) -> tuple[str, ...]:
        """The Cc groups of the ticket in ``state``: the state's, and the groups of the teams
        that accepted the release."""
        accepted = [a.team for a in self.accepted]
        return watching(self.people.cc(self.definition, state), self.early_adopters, accepted)

    @property
    def automatic(self) -> bool:
        """The change is the bridge's own (e.g. a Deferred release moving in)."""
        return self.job.request.source is records.JobSource.BRIDGE

    @cached_property
    def release_xml(self) -> release_model.ReleaseInfo:
        """The frozen release.xml, parsed and checked against the ticket (read on first use).
        Raises the parser's errors."""
        return self.read_release_xml()


def watching(
    groups: Sequence[str],
    teams: Sequence[settings_model.EarlyAdopterTeam],
    accepted: Sequence[str],
) -> tuple[str, ...]:
    """``groups`` and the groups of the teams named in ``accepted`` (teams the settings no
    longer know are left out), without repeats."""
    group_of = {t.name: t.group for t in teams}
    extra = [group_of[name] for name in accepted if name in group_of]
    return tuple(dict.fromkeys((*groups, *extra)))


@dataclass(frozen=True, kw_only=True)
class ChangeInputs:
    """What the handler of a change of another field than RolloutProgress (or of the
    ticket's status) reads. Immutable: handlers return effects instead."""

    job: records.Job
    ticket: TicketView
    release: releases.Release  # the bridge's record (at the workflow's start if none yet)
    definition: model.Definition
    people: People
    early_adopters: tuple[settings_model.EarlyAdopterTeam, ...] = ()
    accepted: tuple[acceptances.Acceptance, ...] = ()  # standing acceptances, before the change
    # The staged-rollout team's group (the ``sr`` role): its members may add any team.
    staged_rollout_group: str = "sw-rel-sr"
    # Those of the given RT groups the person who made the change is in; read from RT only when
    # a handler asks (one check for the changes that need one; nobody's for an unknown person).
    member_of: Callable[[Collection[str]], frozenset[str]]

    @property
    def request(self) -> records.ReleaseRequest:
        return self.job.request

    @property
    def changed_at(self) -> datetime:
        """When RT made the change (when the bridge learnt of it, if RT did not say)."""
        return self.request.changed_at or self.job.created_at

    @property
    def final(self) -> bool:
        """Whether the release is in a final state of its workflow."""
        return self.release.state in self.definition.terminal

    def team(self, name: str) -> settings_model.EarlyAdopterTeam | None:
        """The early-adopter team called ``name``, or None when the settings do not know it."""
        return next((t for t in self.early_adopters if t.name == name), None)

    def cc(self, accepted: Sequence[str]) -> tuple[str, ...]:
        """The Cc groups of the ticket in the release's state, with the teams named in
        ``accepted`` watching."""
        state_groups = self.people.cc(self.definition, self.release.state)
        return watching(state_groups, self.early_adopters, accepted)
