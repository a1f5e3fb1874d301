"""``rollout metrics backfill``: the metrics' records of releases older than the bridge, rebuilt
from RT's ticket history.

For every ticket of the queue the bridge has no ``releases`` row for, it reads RT's history
(one ticket search, one TransactionSQL search over the queue's RolloutProgress, EarlyAdopters
and StageRollout Report changes), plans the records (``backfill_plan``, pure) and writes, in
one transaction per ticket: the ``releases`` row, its ``state_history`` stays, its
``early_adopter_acceptances``, the staged-rollout place of a release still in StageRollout, and
a ``release_backfilled`` event (with ``slot_taken`` for the place), so the log can rebuild them
(invariant 7). A ticket the bridge knows is never touched, so a second run writes nothing. A
ticket whose history cannot be read is skipped and reported; the run goes on.

It decides nothing about the workflow (no move is checked, nothing is said on the ticket) and
never writes to RT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import event_log, tables
from bridge.store import events as eventlog
from bridge.store.queue import utcnow
from bridge.tracker import history
from repo_daemon.metrics import backfill_plan

logger = logging.getLogger(__name__)

K = eventlog.EventKind


class HistorySource(Protocol):
    """The RT reads the backfill needs (``bridge.tracker.client.TrackerClient`` has them)."""

    def custom_field_ids(self, names: Sequence[str], queue: str) -> dict[str, int]: ...

    def tickets_in_queue(
        self, queue: str, *, ticket: int | None = None, page_size: int = 100
    ) -> list[history.QueueTicket]: ...

    def field_changes_since(
        self,
        watched: history.Watched,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
        ticket: int | None = None,
    ) -> list[history.FieldChange]: ...


@dataclass(frozen=True, kw_only=True)
class Report:
    """What a run did (or, with ``dry_run``, would do): the tickets backfilled, those the bridge
    knew (left alone), those skipped with why, and notes on what was left out of the others."""

    dry_run: bool
    tickets: int
    backfilled: tuple[int, ...]
    known: tuple[int, ...]
    skipped: tuple[backfill_plan.Skipped, ...]
    notes: tuple[tuple[int, str], ...]


def _known(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        return {int(t) for t in conn.execute(sa.select(tables.releases.c.ticket_id)).scalars()}


def _read(
    source: HistorySource, queue: str, ticket: int | None
) -> tuple[list[history.QueueTicket], list[history.FieldChange]]:
    """The queue's tickets and their followed fields' changes, from RT."""
    ids = source.custom_field_ids(list(backfill_plan.FIELDS), queue)
    tickets = source.tickets_in_queue(queue, ticket=ticket)
    watched = history.Watched(custom_fields={v: k for k, v in ids.items()})
    changes = (
        source.field_changes_since(watched, 0, queue=queue, limit=10**9, ticket=ticket)
        if ids
        else []
    )
    return tickets, changes


def _event(plan: backfill_plan.ReleasePlan) -> event_log.Draft:
    stays = [
        [s.state.label, s.entered_at, s.left_at, s.actor, s.transaction_id] for s in plan.stays
    ]
    accepted = [
        [a.team, a.ngi, a.accepted_at, a.accepted_by, a.transaction_id, a.withdrawn_at,
         a.withdrawn_by, a.withdrawn_transaction_id]
        for a in plan.acceptances
    ]  # fmt: skip
    return event_log.draft(
        K.RELEASE_BACKFILLED,
        ticket_id=plan.ticket_id,
        actor=eventlog.BRIDGE_ACTOR,
        cause=eventlog.Cause.BACKFILL,
        transaction_id=plan.last_transaction_id,
        data={
            "detail": f"recorded from RT's history in {plan.state.label} "
            f"({len(plan.stays)} stays, {len(plan.acceptances)} acceptances)",
            "state": plan.state.label,
            "major_release": plan.major_release,
            "emergency": plan.emergency,
            "history": stays,
            "acceptances": accepted,
            "stage_report_at": plan.stage_report_at,
            "notes": list(plan.notes),
        },
    )


def _slot(
    conn: sa.Connection, plan: backfill_plan.ReleasePlan
) -> tuple[dict[str, Any] | None, str | None]:
    """The staged-rollout place of a release still in StageRollout (its row and no note), or
    why it takes none."""
    if plan.state is not records.RolloutState.STAGE_ROLLOUT or not plan.major_release:
        return None, None
    slots = tables.stage_slots
    if not plan.emergency:
        holder = conn.execute(
            sa.select(slots.c.ticket_id).where(
                slots.c.major_release == plan.major_release, sa.not_(slots.c.emergency)
            )
        ).scalar()
        if holder is not None:
            return None, (
                f"#{holder} holds the {plan.major_release} staged-rollout place: this release "
                "in StageRollout takes none"
            )
    row = {
        "major_release": plan.major_release,
        "ticket_id": plan.ticket_id,
        "emergency": plan.emergency,
        "taken_at": plan.stays[-1].entered_at,
    }
    return row, None


def _write(engine: sa.Engine, plan: backfill_plan.ReleasePlan, now: datetime) -> str | None:
    """Write one release's records and events in one transaction; a note when its
    staged-rollout place was not taken. Returns "known" when the bridge recorded the release
    meanwhile (nothing written)."""
    rel, hist, acc = tables.releases, tables.state_history, tables.early_adopter_acceptances
    with engine.begin() as conn:
        mine = sa.select(rel.c.ticket_id).where(rel.c.ticket_id == plan.ticket_id)
        if conn.execute(mine).first() is not None:
            return "known"
        conn.execute(
            rel.insert().values(
                ticket_id=plan.ticket_id,
                state=plan.state.label,
                major_release=plan.major_release,
                emergency=plan.emergency,
                last_transaction_id=plan.last_transaction_id,
                updated_at=now,
                stage_report_at=plan.stage_report_at,
            )
        )
        conn.execute(
            hist.insert(),
            [
                {
                    "ticket_id": plan.ticket_id,
                    "state": s.state.label,
                    "entered_at": s.entered_at,
                    "left_at": s.left_at,
                    "transaction_id": s.transaction_id,
                    "actor": s.actor,
                }
                for s in plan.stays
            ],
        )
        if plan.acceptances:
            conn.execute(
                acc.insert(),
                [
                    {
                        "ticket_id": plan.ticket_id,
                        "team": a.team,
                        "ngi": a.ngi,
                        "major_release": plan.major_release,
                        "accepted_by": a.accepted_by,
                        "accepted_at": a.accepted_at,
                        "transaction_id": a.transaction_id,
                        "withdrawn_by": a.withdrawn_by,
                        "withdrawn_at": a.withdrawn_at,
                        "withdrawn_transaction_id": a.withdrawn_transaction_id,
                    }
                    for a in plan.acceptances
                ],
            )
        slot, note = _slot(conn, plan)
        drafts = [_event(plan)]
        if slot is not None:
            conn.execute(tables.stage_slots.insert().values(**slot))
            drafts.append(
                event_log.draft(
                    K.SLOT_TAKEN,
                    ticket_id=plan.ticket_id,
                    actor=eventlog.BRIDGE_ACTOR,
                    cause=eventlog.Cause.BACKFILL,
                    data={
                        "detail": f"held the {plan.major_release} staged-rollout slot when "
                        "backfilled" + (" (emergency)" if plan.emergency else ""),
                        "major_release": plan.major_release,
                        "emergency": plan.emergency,
                    },
                )
            )
        event_log.append(conn, drafts, now=now)
    return note


def backfill(
    engine: sa.Engine,
    source: HistorySource,
    *,
    queue: str,
    teams: Sequence[settings_model.EarlyAdopterTeam],
    ticket: int | None = None,
    dry_run: bool = False,
    clock: Callable[[], datetime] = utcnow,
) -> Report:
    """Backfill the records of the tickets of ``queue`` (only ``ticket`` when given) the bridge
    has no release for, from RT's history read through ``source``; ``teams`` give the NGI of
    each early-adopter team. With ``dry_run`` nothing is written. Tracker errors (RT down, the
    queue unknown) propagate: nothing was written by then for the tickets not yet reached."""
    tickets, changes = _read(source, queue, ticket)
    by_ticket: dict[int, list[history.FieldChange]] = {}
    for change in changes:
        by_ticket.setdefault(change.ticket_id, []).append(change)
    known = _known(engine)
    backfilled: list[int] = []
    left_alone: list[int] = []
    skipped: list[backfill_plan.Skipped] = []
    notes: list[tuple[int, str]] = []
    for found in tickets:
        if found.ticket_id in known:
            left_alone.append(found.ticket_id)
            continue
        planned = backfill_plan.plan(found, by_ticket.get(found.ticket_id, []), teams)
        if isinstance(planned, backfill_plan.Skipped):
            logger.warning("backfill: ticket %s skipped: %s", planned.ticket_id, planned.reason)
            skipped.append(planned)
            continue
        notes += [(planned.ticket_id, n) for n in planned.notes]
        if not dry_run:
            outcome = _write(engine, planned, clock())
            if outcome == "known":
                left_alone.append(planned.ticket_id)
                continue
            if outcome is not None:
                notes.append((planned.ticket_id, outcome))
        backfilled.append(planned.ticket_id)
    return Report(
        dry_run=dry_run,
        tickets=len(tickets),
        backfilled=tuple(backfilled),
        known=tuple(left_alone),
        skipped=tuple(skipped),
        notes=tuple(notes),
    )
