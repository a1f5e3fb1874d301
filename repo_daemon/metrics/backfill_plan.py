"""The backfill's plan, pure: one ticket's history as RT recorded it (the ticket as a search
returns it and its field changes) → the records the bridge would have written for it (its
stays in states, early-adopter acceptances, the StageRollout Report's time, its facts), or the
reason it cannot be planned.

Pure: no database, no RT, no clock. Reading RT and writing the records are ``backfill``'s.
It follows the workflow's rules for what a change means (an empty RolloutProgress is
Submitted; a team added to EarlyAdopters accepts, removed withdraws, too late in a final state;
only the first StageRollout Report counts) but never decides a move: RT's history is taken as
it happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bridge import records
from bridge.settings import model as settings_model
from bridge.tracker import history

PROGRESS = records.TrackedField.ROLLOUT_PROGRESS.label
EARLY_ADOPTERS = records.TrackedField.EARLY_ADOPTERS.label
STAGE_REPORT = records.TrackedField.STAGE_ROLLOUT_REPORT.label
EMERGENCY = records.TrackedField.EMERGENCY_RELEASE.label
MAJOR_RELEASE = "AssociatedMajorRelease"
# The fields whose history the backfill reads (MajorRelease and EmergencyRelease are read as
# they are now: RT records no change for the values a ticket is created with).
FIELDS = (PROGRESS, EARLY_ADOPTERS, STAGE_REPORT)
S = records.RolloutState
# As the shipped workflows' ``terminal``: a team added after these is too late to take part.
FINAL = frozenset({S.PRODUCTION, S.REJECTED, S.IGNORED, S.NOT_PUBLISHED, S.WITHDRAWN})


@dataclass(frozen=True, kw_only=True)
class Stay:
    """A stay in one state, as ``state_history`` holds it (``left_at`` None for the last)."""

    state: records.RolloutState
    entered_at: datetime
    left_at: datetime | None
    transaction_id: int | None
    actor: str


@dataclass(frozen=True, kw_only=True)
class Acceptance:
    """An early-adopter team's acceptance, as ``early_adopter_acceptances`` holds it."""

    team: str
    ngi: str
    accepted_by: str
    accepted_at: datetime
    transaction_id: int
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    withdrawn_transaction_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class ReleasePlan:
    """What to record for one ticket. ``notes`` say what of its history was left out."""

    ticket_id: int
    major_release: str | None
    emergency: bool
    stays: tuple[Stay, ...]
    acceptances: tuple[Acceptance, ...]
    stage_report_at: datetime | None
    last_transaction_id: int | None
    notes: tuple[str, ...] = ()

    @property
    def state(self) -> records.RolloutState:
        """The state RT's history ends in."""
        return self.stays[-1].state


@dataclass(frozen=True, kw_only=True)
class Skipped:
    """A ticket that cannot be backfilled, and why (in words an operator can act on)."""

    ticket_id: int
    reason: str


class _Unusable(Exception):
    """The ticket's history cannot be read into records; the message says why."""


def _when(change: history.FieldChange) -> datetime:
    at = change.changed_at
    if at is None:
        raise _Unusable(f"transaction {change.transaction_id} has no readable time")
    return at


def _ordered(changes: Iterable[history.FieldChange]) -> list[tuple[datetime, history.FieldChange]]:
    """Changes in the order they happened: RT's time, then transaction id (ids are not always in
    time order: imported or edited histories)."""
    timed = [(_when(c), c) for c in changes]
    return sorted(timed, key=lambda pair: (pair[0], pair[1].transaction_id))


def _state(value: str, where: str) -> records.RolloutState:
    try:
        return records.RolloutState.parse(value)
    except ValueError:
        reason = f"{where} RolloutProgress is {value!r}, not a state the bridge knows"
        raise _Unusable(reason) from None


def _stays(
    ticket: history.QueueTicket, created: datetime, changes: Sequence[history.FieldChange]
) -> tuple[list[Stay], list[str]]:
    moves = _ordered(changes)
    notes: list[str] = []
    first = moves[0][1].old if moves else ticket.value(PROGRESS)
    where = f"transaction {moves[0][1].transaction_id}: before it," if moves else "now"
    stays = [
        Stay(
            state=_state(first, where),
            entered_at=created,
            left_at=None,
            transaction_id=None,
            actor=ticket.creator,
        )
    ]
    for at, change in moves:
        if at < created:
            raise _Unusable(
                f"transaction {change.transaction_id} ({at:%Y-%m-%d %H:%M:%S}) is older than the "
                f"ticket ({created:%Y-%m-%d %H:%M:%S})"
            )
        to = _state(change.new, f"transaction {change.transaction_id}: after it,")
        if to is stays[-1].state:
            notes.append(f"transaction {change.transaction_id} left it in {to.label}")
            continue
        last = stays[-1]
        stays[-1] = Stay(
            state=last.state,
            entered_at=last.entered_at,
            left_at=at,
            transaction_id=last.transaction_id,
            actor=last.actor,
        )
        stays.append(
            Stay(state=to, entered_at=at, left_at=None, transaction_id=change.transaction_id,
                 actor=change.actor)
        )  # fmt: skip
    now = _state(ticket.value(PROGRESS), "now")
    if now is not stays[-1].state:
        raise _Unusable(
            f"its history ends in {stays[-1].state.label} but RolloutProgress is {now.label} "
            "(a change RT did not record)"
        )
    return stays, notes


def _state_at(stays: Sequence[Stay], at: datetime) -> records.RolloutState:
    current = stays[0].state
    for stay in stays:
        if stay.entered_at <= at:
            current = stay.state
    return current


def _acceptances(
    stays: Sequence[Stay],
    changes: Sequence[history.FieldChange],
    teams: Mapping[str, settings_model.EarlyAdopterTeam],
) -> tuple[list[Acceptance], list[str]]:
    done: list[Acceptance] = []
    standing: dict[str, int] = {}  # team -> index in done
    notes: list[str] = []
    for at, change in _ordered(changes):
        if change.old and change.old in standing:
            i = standing.pop(change.old)
            a = done[i]
            done[i] = Acceptance(
                team=a.team, ngi=a.ngi, accepted_by=a.accepted_by, accepted_at=a.accepted_at,
                transaction_id=a.transaction_id, withdrawn_by=change.actor, withdrawn_at=at,
                withdrawn_transaction_id=change.transaction_id,
            )  # fmt: skip
        if not change.new:
            continue
        team = teams.get(change.new)
        if team is None:
            notes.append(
                f"transaction {change.transaction_id}: {change.new!r} is not an early-adopter "
                "team of the settings; not recorded"
            )
        elif _state_at(stays, at) in FINAL:
            notes.append(
                f"transaction {change.transaction_id}: {team.name} was added after the release "
                "was final; not recorded"
            )
        elif team.name not in standing:
            standing[team.name] = len(done)
            done.append(
                Acceptance(team=team.name, ngi=team.ngi, accepted_by=change.actor,
                           accepted_at=at, transaction_id=change.transaction_id)
            )  # fmt: skip
    return done, notes


def _report_at(
    ticket: history.QueueTicket, created: datetime, changes: Sequence[history.FieldChange]
) -> datetime | None:
    filled = [at for at, change in _ordered(changes) if change.new.strip()]
    if filled:
        return filled[0]
    # Filled in when the ticket was created: RT records no change for it.
    return created if ticket.value(STAGE_REPORT).strip() else None


def plan(
    ticket: history.QueueTicket,
    changes: Sequence[history.FieldChange],
    teams: Sequence[settings_model.EarlyAdopterTeam],
) -> ReleasePlan | Skipped:
    """The records of ``ticket`` from its ``changes`` (any of its field changes, in any order;
    those of other tickets or fields are ignored), with the NGIs of the settings' ``teams``; or
    why it cannot be planned."""
    mine = [c for c in changes if c.ticket_id == ticket.ticket_id]
    by_field: dict[str, list[history.FieldChange]] = {name: [] for name in FIELDS}
    for change in mine:
        if change.field in by_field:
            by_field[change.field].append(change)
    created = ticket.created_at
    if created is None:
        reason = f"no readable Created ({ticket.created!r})"
        return Skipped(ticket_id=ticket.ticket_id, reason=reason)
    try:
        stays, notes = _stays(ticket, created, by_field[PROGRESS])
        accepted, more = _acceptances(stays, by_field[EARLY_ADOPTERS], {t.name: t for t in teams})
        report_at = _report_at(ticket, created, by_field[STAGE_REPORT])
    except _Unusable as exc:
        return Skipped(ticket_id=ticket.ticket_id, reason=str(exc))
    moves = [s.transaction_id for s in stays if s.transaction_id is not None]
    return ReleasePlan(
        ticket_id=ticket.ticket_id,
        major_release=ticket.value(MAJOR_RELEASE) or None,
        emergency=ticket.value(EMERGENCY) == "Yes",
        stays=tuple(stays),
        acceptances=tuple(accepted),
        stage_report_at=report_at,
        last_transaction_id=max(moves) if moves else None,
        notes=tuple(notes + more),
    )
