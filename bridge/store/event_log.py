"""Appending to the event log, and the bridge's named values: the writes on ``event_log``,
``refusal_comments`` and ``state``.

``append`` adds events in the caller's transaction (the one that makes the change they
record), numbers them (a global id, a sequence per release), chains them (``event_chain``) and
fills in who and why from ``provenance``. ``EventLog`` appends events of their own, lists them,
tracks which refusals still need a comment on their ticket, and keeps named values such as
reconciliation's cursor. ``queue.Queue`` extends it, so one handle serves the jobs and the log
written beside them. The log is never updated; only ``retention`` deletes from it. It knows
nothing of jobs' life cycle (``queue``), of feeds (``event_feed``) nor of what an event means.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store import delivery_fanout, event_chain, provenance, raw_sql, tables, text
from bridge.store import events as eventlog

# Key of the PostgreSQL advisory lock that serialises appends (the chain has one head).
APPEND_LOCK = 0x526F4576  # "RoEv"


@dataclass(frozen=True, kw_only=True)
class Draft:
    """An event about to be appended: what ``append`` needs beyond the id, time and chain."""

    kind: eventlog.EventKind
    ticket_id: int | None
    data: Mapping[str, Any]
    actor: str
    cause: eventlog.Cause
    transaction_id: int | None
    job_id: int | None


def draft(
    kind: eventlog.EventKind,
    *,
    ticket_id: int | None = None,
    data: Mapping[str, Any] | None = None,
    actor: str | None = None,
    cause: eventlog.Cause | None = None,
    transaction_id: int | None = None,
    job_id: int | None = None,
) -> Draft:
    """An event of ``kind``; what is not given comes from the work under way
    (``provenance.current()``: the job, its ticket and transaction, who asked, why, the
    attempt)."""
    now = provenance.current()
    values = dict(data or {})
    kind = eventlog.EventKind(kind)  # no free-text kinds reach the log
    # The cheap tests first: ``kind.fields`` builds a mapping, and intake's events have no attempt.
    if now.attempt is not None and "attempt" not in values and "attempt" in kind.fields:
        values["attempt"] = now.attempt
    return Draft(
        kind=kind,
        ticket_id=now.ticket_id if ticket_id is None else ticket_id,
        data=values,
        actor=now.actor if actor is None else actor,
        cause=now.cause if cause is None else cause,
        transaction_id=now.transaction_id if transaction_id is None else transaction_id,
        job_id=now.job_id if job_id is None else job_id,
    )


def _known(
    conn: sa.Connection, tickets: Sequence[int]
) -> tuple[int, str, datetime | None, dict[int, int], dict[int, str | None]]:
    """In one statement (per 250 tickets): the id, hash and time of the newest event
    (retention never deletes past the event that records its deletion, so the newest event is
    always in the table once there was one), and for each of ``tickets`` its last ``seq`` and
    its major release.

    One statement rather than one per question: each statement costs more than its answer
    (``benchmarks/events.py``: two look-ups per ticket and one for the head, each built as a
    Core select, made the log cost half the rate of ``enqueue_many``), and it runs on the
    DBAPI cursor (``raw_sql``), as SQLAlchemy's execution of it cost more CPU than the
    database's work. Each part is an index look-up: the newest id, the highest seq of a ticket
    on ``(ticket_id, seq)``, a release by its key."""
    head: Any = None
    seqs: dict[int, int] = {}
    majors: dict[int, str | None] = {}
    dialect = conn.dialect
    for start in range(0, max(len(tickets), 1), _TICKETS_PER_LOOKUP):
        chunk = tickets[start : start + _TICKETS_PER_LOOKUP]
        sql = _lookup(raw_sql.marker(dialect), len(chunk), head=head is None)
        (row,) = raw_sql.execute(conn, sql, [t for t in chunk for _ in range(2)])
        first = 3 if head is None else 0
        head = row if head is None else head
        for n, ticket in enumerate(chunk):
            seqs[ticket] = int(row[first + 2 * n] or 0)
            majors[ticket] = row[first + 2 * n + 1]
    head_id, head_hash, head_at = head[:3]
    if head_id is None:
        return 0, event_chain.GENESIS, None, seqs, majors
    read_at = raw_sql.reader(dialect, tables.event_log.c.at.type)
    at = head_at if read_at is None else read_at(head_at)
    return int(head_id), str(head_hash), at, seqs, majors


# The columns ``append`` writes, in the order of its insert's parameters.
_COLUMNS = (
    "id",
    "at",
    "kind",
    "ticket_id",
    "seq",
    "actor",
    "cause",
    "transaction_id",
    "job_id",
    "data",
    "prev_hash",
    "hash",
    "major_release",
    "area",
)
# A result row has at most 2,000 columns on SQLite: tickets are looked up this many at a time.
_TICKETS_PER_LOOKUP = 250


@functools.cache
def _lookup(marker: str, tickets: int, *, head: bool) -> str:
    """The SQL of ``_known`` for that many tickets, with the head or not (made once per shape;
    each ticket is bound twice, as positional parameters)."""
    # Only constants and counters go into the text; the tickets are bound parameters.
    parts: list[str] = []
    if head:
        parts += [
            "(SELECT max(id) FROM event_log) AS head_id",
            "(SELECT hash FROM event_log WHERE id = (SELECT max(id) FROM event_log)) AS head_hash",
            "(SELECT at FROM event_log WHERE id = (SELECT max(id) FROM event_log)) AS head_at",
        ]
    for n in range(tickets):
        parts += [
            f"(SELECT max(seq) FROM event_log WHERE ticket_id = {marker}) AS seq_{n}",  # noqa: S608
            f"(SELECT major_release FROM releases WHERE ticket_id = {marker}) AS major_{n}",  # noqa: S608
        ]
    return "SELECT " + ", ".join(parts)


def _insert(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert the event ``rows``: one multi-row INSERT per 500, on the DBAPI cursor."""
    raw_sql.insert_rows(conn, tables.event_log, _COLUMNS, rows)


def append(conn: sa.Connection, drafts: Sequence[Draft], *, now: datetime) -> list[int]:
    """Append ``drafts`` to the log in ``conn``'s transaction, in order; returns their ids.

    Call it in the transaction that makes the change the events record, so both are committed
    or neither. Appends are serialised (SQLite's ``BEGIN IMMEDIATE``; an advisory lock held to
    the end of the transaction on PostgreSQL), so ids and times follow commit order and the
    chain has one head. Texts are stored escaped where no column could hold them. The
    deliveries of the events to the subscriptions that want them are created with them
    (``delivery_fanout``).
    """
    if not drafts:
        return []
    if conn.dialect.name == "postgresql":
        raw_sql.execute(conn, "SELECT pg_advisory_xact_lock(%s)", (APPEND_LOCK,))
    tickets = list(dict.fromkeys(d.ticket_id for d in drafts if d.ticket_id is not None))
    last_id, last_hash, last_at, seqs, majors = _known(conn, tickets)
    at = max(now, last_at) if last_at is not None else now
    rows: list[dict[str, Any]] = []
    for item in drafts:
        ticket = item.ticket_id
        seq = None
        if ticket is not None:
            seqs[ticket] += 1
            seq = seqs[ticket]
        data = {k: _storable(v) for k, v in item.data.items()}
        major = data.get("major_release") if ticket is None else majors.get(ticket)
        if ticket is not None and "major_release" in data:
            majors[ticket] = major = data["major_release"]
        stored = event_chain.canonical_data(data)
        last_id += 1
        row = {
            "id": last_id,
            "at": at,
            "kind": item.kind.value,
            "ticket_id": ticket,
            "seq": seq,
            "actor": text.storable(item.actor, 200),
            "cause": item.cause.label,
            "transaction_id": item.transaction_id,
            "job_id": item.job_id,
            "data": stored,
            "prev_hash": last_hash,
        }
        row["hash"] = last_hash = event_chain.hash_of_row(row)
        area = data.get("area")
        row["major_release"] = None if major is None else str(major)[:100]
        row["area"] = None if area is None else str(area)[:1000]
        rows.append(row)
    _insert(conn, rows)
    delivery_fanout.create(conn, rows, now=at)
    return [r["id"] for r in rows]


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return text.storable(value, None)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _storable(v) for k, v in value.items()}
    return value


def event_of(
    row: Any, *, settled: bool | None = None, commented_at: datetime | None = None
) -> eventlog.Event:
    """The ``Event`` of an ``event_log`` row (with its refusal's comment bookkeeping, if any)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return eventlog.Event(
        id=int(m["id"]),
        at=m["at"],
        kind=eventlog.EventKind(m["kind"]),
        ticket_id=m["ticket_id"],
        transaction_id=m["transaction_id"],
        job_id=m["job_id"],
        seq=m["seq"],
        actor=str(m["actor"]),
        cause=eventlog.Cause.parse(str(m["cause"])),
        data=json.loads(m["data"]),
        prev_hash=str(m["prev_hash"]),
        hash=str(m["hash"]),
        needs_comment=settled is not None,
        commented_at=commented_at if settled is not None else None,
    )


def _with_comments() -> sa.Select[Any]:
    log, rc = tables.event_log, tables.refusal_comments
    return sa.select(log, rc.c.settled, rc.c.commented_at).select_from(
        log.outerjoin(rc, rc.c.event_id == log.c.id)
    )


def _event(row: sa.Row[Any]) -> eventlog.Event:
    m = row._mapping
    settled = m["settled"]
    event = event_of(m, settled=settled, commented_at=m["commented_at"])
    if settled and m["commented_at"] is None:
        # Settled without a comment: it will never be made (no such ticket).
        return dataclasses.replace(event, needs_comment=False)
    return event


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
        data: Mapping[str, Any] | None = None,
        actor: str | None = None,
        cause: eventlog.Cause | None = None,
    ) -> int:
        """Append one event in a transaction of its own; returns its id.

        For events that record no change of the stored tables (a refusal, an observation);
        a change appends its event with ``append`` in its own transaction. ``kind`` is checked
        again at run time (``ValueError`` for anything that is not an ``EventKind``).
        ``http_status``, ``reason`` and ``caller`` are for refused hooks; ``needs_comment``
        puts the refusal on the list the daemon comments on tickets.
        """
        values: dict[str, Any] = dict(data or {})
        if detail:
            values["detail"] = detail
        for key, value in (("http_status", http_status), ("reason", reason), ("caller", caller)):
            if value is not None:
                values[key] = value
        item = draft(
            kind,
            ticket_id=ticket_id,
            data=values,
            actor=actor,
            cause=cause,
            transaction_id=transaction_id,
            job_id=job_id,
        )
        with self.engine.begin() as conn:
            (event_id,) = append(conn, [item], now=self.clock())
            if needs_comment:
                conn.execute(
                    tables.refusal_comments.insert().values(event_id=event_id, settled=False)
                )
        return event_id

    def append_events(self, drafts: Sequence[Draft]) -> list[int]:
        """Append several events in one transaction of their own."""
        with self.engine.begin() as conn:
            return append(conn, drafts, now=self.clock())

    def events(
        self,
        *,
        kind: eventlog.EventKind | None = None,
        ticket_id: int | None = None,
        job_id: int | None = None,
        limit: int = 100,
    ) -> list[eventlog.Event]:
        """Events, newest first."""
        log = tables.event_log
        stmt = _with_comments().order_by(log.c.id.desc()).limit(limit)
        if job_id is not None:
            stmt = stmt.where(log.c.job_id == job_id)
        if kind is not None:
            stmt = stmt.where(log.c.kind == kind.value)
        if ticket_id is not None:
            stmt = stmt.where(log.c.ticket_id == ticket_id)
        with self.engine.begin() as conn:
            return [_event(r) for r in conn.execute(stmt).all()]

    def pending_comments(self, limit: int = 20) -> list[eventlog.Event]:
        """Events whose reason still has to be commented on their ticket, oldest first."""
        rc = tables.refusal_comments
        stmt = (
            _with_comments()
            .where(rc.c.settled.is_(False))
            .order_by(tables.event_log.c.id)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            return [_event(r) for r in conn.execute(stmt).all()]

    def already_commented(self, event: eventlog.Event) -> bool:
        """Whether the same refusal (ticket, RT transaction and reason) was commented before:
        a captured delivery replayed is told on its ticket once."""
        log, rc = tables.event_log, tables.refusal_comments
        same_txn = (
            log.c.transaction_id.is_(None)
            if event.transaction_id is None
            else log.c.transaction_id == event.transaction_id
        )
        stmt = _with_comments().where(
            log.c.ticket_id == event.ticket_id,
            same_txn,
            rc.c.commented_at.is_not(None),
            log.c.id != event.id,
        )
        with self.engine.begin() as conn:
            for row in conn.execute(stmt):
                seen = _event(row)
                if (
                    (seen.reason == event.reason)
                    if event.reason is not None
                    else (seen.detail == event.detail)
                ):
                    return True
        return False

    def prune_refusals(self, *, older_than: timedelta, batch: int = 10_000) -> int:
        """Delete refused-hook events older than ``older_than`` whose comment is settled (made,
        or never to be made); returns how many. The daemon's standing retention of refusal
        records, through ``retention`` (exported first, chained, never what is still needed)."""
        from bridge.store import retention  # retention builds on this module

        rule = retention.Rule(
            kinds=(eventlog.EventKind.HOOK_REFUSED, eventlog.EventKind.RECOVERED_REFUSED),
            older_than=older_than,
        )
        return retention.prune(self, [rule], batch=batch).deleted

    def mark_commented(self, event_id: int, *, done: bool = True) -> None:
        """The event's comment was made (or, with ``done=False``, will never be: no ticket)."""
        values: dict[str, Any] = {"settled": True}
        if done:
            values["commented_at"] = self.clock()
        rc = tables.refusal_comments
        with self.engine.begin() as conn:
            conn.execute(rc.update().where(rc.c.event_id == event_id).values(**values))

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
