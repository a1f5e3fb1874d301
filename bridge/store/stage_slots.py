"""The staged-rollout slots: which releases of a major release are in staged rollout (one
regular holder at most, emergencies beside it), and which Deferred release waits longest.

``StageSlots`` is part of ``releases.ReleaseStore`` (a base class of it), on the same engine
and clock; taking and giving up a place is recorded as ``slot_taken`` / ``slot_freed`` in the
same transaction. It decides nothing: the workflow's guards and actions do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa

from bridge import records
from bridge.store import event_log, tables
from bridge.store import events as eventlog


class StageSlots:
    """The slots' SQL, for ``ReleaseStore``."""

    engine: sa.Engine
    clock: Callable[[], datetime]

    def slot_holders(self, major_release: str, *, excluding: int | None = None) -> tuple[int, ...]:
        """Tickets in staged rollout for ``major_release`` (regular holder first)."""
        slots = tables.stage_slots
        stmt = (
            sa.select(slots.c.ticket_id)
            .where(slots.c.major_release == major_release)
            .order_by(slots.c.emergency, slots.c.taken_at)
        )
        if excluding is not None:
            stmt = stmt.where(slots.c.ticket_id != excluding)
        with self.engine.begin() as conn:
            return tuple(int(t) for t in conn.execute(stmt).scalars())

    def take_slot(self, major_release: str, ticket_id: int, *, emergency: bool) -> bool:
        """Take the slot (idempotent). False when another regular release holds it."""
        slots = tables.stage_slots
        with self.engine.begin() as conn:
            mine = conn.execute(
                sa.select(slots.c.ticket_id).where(
                    slots.c.major_release == major_release, slots.c.ticket_id == ticket_id
                )
            ).first()
            if mine is not None:
                return True
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    slots.insert().values(
                        major_release=major_release,
                        ticket_id=ticket_id,
                        emergency=emergency,
                        taken_at=self.clock(),
                    )
                )
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.SLOT_TAKEN,
                            ticket_id=ticket_id,
                            data={"detail": f"took the {major_release} staged-rollout slot"
                                  + (" (emergency)" if emergency else ""),
                                  "major_release": major_release, "emergency": emergency},
                        )
                    ],
                    now=self.clock(),
                )  # fmt: skip
        except sa.exc.IntegrityError:
            return False
        return True

    def free_slot(self, major_release: str, ticket_id: int) -> bool:
        """Give up ``ticket_id``'s place; False when it held none."""
        slots = tables.stage_slots
        with self.engine.begin() as conn:
            result = conn.execute(
                slots.delete().where(
                    slots.c.major_release == major_release, slots.c.ticket_id == ticket_id
                )
            )
            if result.rowcount:
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.SLOT_FREED,
                            ticket_id=ticket_id,
                            data={"detail": f"gave up the {major_release} staged-rollout slot",
                                  "major_release": major_release},
                        )
                    ],
                    now=self.clock(),
                )  # fmt: skip
        return bool(result.rowcount)

    def oldest_deferred(self, major_release: str) -> int | None:
        """The release of ``major_release`` that has waited in Deferred the longest."""
        rel, hist = tables.releases, tables.state_history
        stmt = (
            sa.select(rel.c.ticket_id)
            .join(hist, sa.and_(hist.c.ticket_id == rel.c.ticket_id, hist.c.left_at.is_(None)))
            .where(
                rel.c.major_release == major_release,
                rel.c.state == records.RolloutState.DEFERRED.label,
            )
            .order_by(hist.c.entered_at, rel.c.ticket_id)
            .limit(1)
        )
        with self.engine.begin() as conn:
            found = conn.execute(stmt).scalar()
        return int(found) if found is not None else None
