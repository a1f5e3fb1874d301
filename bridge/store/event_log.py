"""The event log and the bridge's named values, in the database: all SQL on the ``events`` and
``state`` tables.

``EventLog`` appends events (typed, see ``events``), lists them, tracks which refusals still
need a comment on their ticket, and keeps named values such as reconciliation's cursor.
``queue.Queue`` extends it, so one handle serves the jobs and the log written beside them. It
knows nothing of jobs' life cycle (``queue``) nor of what an event means to anyone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store import events as eventlog
from bridge.store import tables, text


def _event(row: sa.Row[Any]) -> eventlog.Event:
    m = row._mapping
    return eventlog.Event(
        id=int(m["id"]),
        at=m["at"],
        kind=eventlog.EventKind(m["kind"]),
        ticket_id=m["ticket_id"],
        transaction_id=m["transaction_id"],
        job_id=m["job_id"],
        detail=str(m["detail"] or ""),
        needs_comment=bool(m["needs_comment"]),
        commented_at=m["commented_at"],
        http_status=m["http_status"],
        reason=m["reason"],
        caller=m["caller"],
    )


class EventLog:
    """The event log and named values on one database engine (see ``bridge.store.database``).

    ``clock`` gives the current time as naive UTC, the form every table stores.
    """

    def __init__(self, engine: sa.Engine, *, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self._dialect = engine.dialect.name

    # -- events ---------------------------------------------------------------------------

    def record_event(
        self,
        kind: eventlog.EventKind,
        *,
        ticket_id: int | None = None,
        transaction_id: int | None = None,
        job_id: int | None = None,
        detail: str = "",
        needs_comment: bool = False,
        http_status: int | None = None,
        reason: str | None = None,
        caller: str | None = None,
    ) -> int:
        """Append to the event log; returns the event's id.

        ``kind`` is checked again at run time (``ValueError`` for anything that is not an
        ``EventKind``: no free-text kinds reach the log). ``http_status``, ``reason`` and
        ``caller`` are for refused hooks (see ``events.Event``). Texts are stored escaped where
        no column could hold them (``text.storable``), so recording never fails on what they
        quote.
        """
        stmt = tables.events.insert().values(
            at=self.clock(),
            kind=eventlog.EventKind(kind).value,
            ticket_id=ticket_id,
            transaction_id=transaction_id,
            job_id=job_id,
            detail=text.storable(detail, None),
            needs_comment=needs_comment,
            http_status=http_status,
            reason=None if reason is None else text.storable(reason, None),
            caller=None if caller is None else text.storable(caller, None),
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt.returning(tables.events.c.id)).scalar_one())

    def events(
        self,
        *,
        kind: eventlog.EventKind | None = None,
        ticket_id: int | None = None,
        job_id: int | None = None,
        limit: int = 100,
    ) -> list[eventlog.Event]:
        """Events, newest first."""
        ev = tables.events
        stmt = sa.select(ev).order_by(ev.c.id.desc()).limit(limit)
        if job_id is not None:
            stmt = stmt.where(ev.c.job_id == job_id)
        if kind is not None:
            stmt = stmt.where(ev.c.kind == kind.value)
        if ticket_id is not None:
            stmt = stmt.where(ev.c.ticket_id == ticket_id)
        with self.engine.begin() as conn:
            return [_event(r) for r in conn.execute(stmt).all()]

    def pending_comments(self, limit: int = 20) -> list[eventlog.Event]:
        """Events whose reason still has to be commented on their ticket, oldest first."""
        ev = tables.events
        stmt = (
            sa.select(ev)
            .where(ev.c.needs_comment.is_(True), ev.c.commented_at.is_(None))
            .order_by(ev.c.id)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            return [_event(r) for r in conn.execute(stmt).all()]

    def already_commented(self, event: eventlog.Event) -> bool:
        """Whether the same refusal (ticket, RT transaction and reason) was commented before:
        a captured delivery replayed is told on its ticket once."""
        ev = tables.events
        same_txn = (
            ev.c.transaction_id.is_(None)
            if event.transaction_id is None
            else ev.c.transaction_id == event.transaction_id
        )
        same_reason = (
            ev.c.detail == event.detail if event.reason is None else ev.c.reason == event.reason
        )
        stmt = (
            sa.select(ev.c.id)
            .where(
                ev.c.ticket_id == event.ticket_id,
                same_txn,
                same_reason,
                ev.c.commented_at.is_not(None),
                ev.c.id != event.id,
            )
            .limit(1)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def prune_refusals(self, *, older_than: timedelta, batch: int = 10_000) -> int:
        """Delete refused-hook events older than ``older_than`` whose comment is settled (made,
        or never to be made); returns how many. In batches, so a flood's rows never hold one
        long lock. The retention of refusal records; nothing else is deleted."""
        ev = tables.events
        cutoff = self.clock() - older_than
        kinds = (eventlog.EventKind.HOOK_REFUSED.value, eventlog.EventKind.RECOVERED_REFUSED.value)
        settled = sa.or_(ev.c.needs_comment.is_(False), ev.c.commented_at.is_not(None))
        removed = 0
        while True:
            chosen = (
                sa.select(ev.c.id)
                .where(ev.c.kind.in_(kinds), ev.c.at < cutoff, settled)
                .order_by(ev.c.id)
                .limit(batch)
            )
            with self.engine.begin() as conn:
                ids = list(conn.execute(chosen).scalars())
                if ids:
                    conn.execute(ev.delete().where(ev.c.id.in_(ids)))
            removed += len(ids)
            if len(ids) < batch:
                return removed

    def mark_commented(self, event_id: int, *, done: bool = True) -> None:
        """The event's comment was made (or, with ``done=False``, will never be: no ticket)."""
        values: dict[str, Any] = {"commented_at": self.clock()}
        if not done:
            values = {"needs_comment": False}
        with self.engine.begin() as conn:
            conn.execute(
                tables.events.update().where(tables.events.c.id == event_id).values(**values)
            )

    # -- named values ---------------------------------------------------------------------

    def get_state(self, key: str) -> str | None:
        """A named value the bridge keeps (e.g. reconciliation's cursor), or None."""
        st = tables.state
        with self.engine.begin() as conn:
            value = conn.execute(sa.select(st.c.value).where(st.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_state(self, key: str, value: str) -> None:
        """Set a named value (insert or replace)."""
        st = tables.state
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(st).values(key=key, value=value)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value})
        with self.engine.begin() as conn:
            conn.execute(stmt)
