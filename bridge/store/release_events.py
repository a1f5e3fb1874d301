"""Reading one release's events back, oldest first, however long its history: in pages along
its sequence numbers (the ``(ticket_id, seq)`` index), so no page grows with the log.

It only reads; appending is ``event_log``'s business and what the events mean is the reader's
(``repo_daemon.history``).
"""

from __future__ import annotations

import sqlalchemy as sa

from bridge import errors
from bridge.store import event_log, tables
from bridge.store import events as eventlog


class NoEvents(errors.BridgeError):
    """The event log holds no event of that ticket."""

    def __init__(self, ticket_id: int) -> None:
        self.ticket_id = ticket_id
        super().__init__(
            f"the bridge has no events for ticket {ticket_id}: it never saw a change of it, or "
            "retention deleted all of them (check the ticket number)"
        )


def events_of(engine: sa.Engine, ticket_id: int, *, page: int = 1000) -> list[eventlog.Event]:
    """Every event of ``ticket_id``, oldest first, read ``page`` at a time (each page in its
    own short transaction: appends go on meanwhile, and a page never waits for them). Raises
    ``NoEvents`` when there is none."""
    if page < 1:
        raise ValueError(f"page must be at least 1, not {page}")
    log = tables.event_log
    found: list[eventlog.Event] = []
    after = 0
    while True:
        stmt = (
            sa.select(log)
            .where(log.c.ticket_id == ticket_id, log.c.seq > after)
            .order_by(log.c.seq)
            .limit(page)
        )
        with engine.begin() as conn:
            rows = conn.execute(stmt).all()
        found += [event_log.event_of(row) for row in rows]
        if len(rows) < page:
            break
        after = int(rows[-1].seq)
    if not found:
        raise NoEvents(ticket_id)
    return found
