"""A fast filler of the event log for tests and benchmarks: many valid events (numbered per
release, chained with ``bridge.store.event_chain`` from the log's head, times never going
backwards) written by multi-row inserts, without the append path's per-event work.

The events are plausible rather than meaningful: kinds, tickets, actors, causes, major
releases and areas cycle so that every filter of the feed has something to find.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store import event_chain, tables
from bridge.store import events as eventlog

KINDS: Sequence[eventlog.EventKind] = (
    eventlog.EventKind.JOB_QUEUED,
    eventlog.EventKind.JOB_CLAIMED,
    eventlog.EventKind.TRANSITION_DONE,
    eventlog.EventKind.RELEASE_PUBLISHED,
    eventlog.EventKind.TICKET_TOLD,
    eventlog.EventKind.JOB_DONE,
    eventlog.EventKind.HOOK_REFUSED,
)
ACTORS = ("alice", "bob", eventlog.BRIDGE_ACTOR)
CAUSES = (eventlog.Cause.HOOK, eventlog.Cause.AUTOMATIC_RETRY, eventlog.Cause.RECONCILIATION)
MAJORS = ("UMD-4", "UMD-5")


@dataclass(frozen=True)
class Filled:
    """What ``fill`` wrote: the ids (first and last, inclusive) and the last time."""

    first_id: int
    last_id: int
    last_at: datetime


_COLUMNS = (
    "id", "at", "kind", "ticket_id", "seq", "actor", "cause", "transaction_id", "job_id",
    "major_release", "area", "data", "prev_hash", "hash",
)  # fmt: skip


def fill(
    engine: sa.Engine,
    count: int,
    *,
    start: datetime,
    step: timedelta = timedelta(milliseconds=1),
    tickets: int = 1000,
    batch: int = 50_000,
) -> Filled:
    """Append ``count`` events after the log's head, at ``start`` and ``step`` apart (never
    before the head's time), in one transaction. Every seventh event is a refused hook of no
    release; the others belong to one of ``tickets`` releases, ``ticket_id = 1 + n % tickets``.

    Rows go to the driver's ``executemany`` as tuples (the time through the column type's own
    conversion); on SQLite a big fill drops the log's secondary indexes and builds them again
    afterwards, which is several times faster than keeping them up to date row by row.
    """
    log = tables.event_log
    dialect = engine.dialect
    to_db = log.c.at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    columns, marks = ", ".join(_COLUMNS), ", ".join([mark] * len(_COLUMNS))
    insert = f"INSERT INTO event_log ({columns}) VALUES ({marks})"  # noqa: S608 (constants)
    with engine.begin() as conn:
        head = conn.execute(
            sa.select(log.c.id, log.c.hash, log.c.at).order_by(log.c.id.desc()).limit(1)
        ).first()
        last_id, last_hash = (int(head.id), str(head.hash)) if head else (0, event_chain.GENESIS)
        at = max(start, head.at) if head else start
        seqs: dict[int, int] = {
            int(t): int(s or 0)
            for t, s in conn.execute(
                sa.select(log.c.ticket_id, sa.func.max(log.c.seq))
                .where(log.c.ticket_id.is_not(None))
                .group_by(log.c.ticket_id)
            )
        }
        rebuild = _drop_indexes(conn) if dialect.name == "sqlite" and count >= 100_000 else []
        first_id = last_id + 1
        cycle = itertools.cycle(KINDS)
        rows: list[tuple[Any, ...]] = []
        for n in range(count):
            kind = next(cycle)
            last_id += 1
            ticket: int | None = None
            seq: int | None = None
            if kind is not eventlog.EventKind.HOOK_REFUSED:
                ticket = 1 + n % tickets
                seq = seqs[ticket] = seqs.get(ticket, 0) + 1
            major = MAJORS[n % len(MAJORS)] if ticket is not None else None
            data: dict[str, Any] = {"detail": f"event {last_id} of the filler"}
            area = None
            if kind is eventlog.EventKind.RELEASE_PUBLISHED:
                area = f"production/{major}/updates"
                data.update(area=area, snapshot=f"s{n}", files=3, bytes=1024 + n)
            elif kind is eventlog.EventKind.HOOK_REFUSED:
                data.update(http_status=401, reason="bad signature", caller="192.0.2.1")
            actor = ACTORS[n % len(ACTORS)]
            cause = CAUSES[n % len(CAUSES)].label
            transaction = 10_000 + n if ticket is not None else None
            stored = event_chain.canonical_data(data)
            digest = event_chain.event_hash(
                id=last_id, at=at, kind=kind.value, ticket_id=ticket, seq=seq, actor=actor,
                cause=cause, transaction_id=transaction, job_id=ticket, data=stored,
                prev_hash=last_hash,
            )  # fmt: skip
            rows.append(
                (last_id, to_db(at), kind.value, ticket, seq, actor, cause, transaction, ticket,
                 major, area, stored, last_hash, digest)
            )  # fmt: skip
            last_hash = digest
            at += step
            if len(rows) >= batch:
                conn.exec_driver_sql(insert, rows)
                rows = []
        if rows:
            conn.exec_driver_sql(insert, rows)
        for statement in rebuild:
            conn.exec_driver_sql(statement)
    return Filled(first_id, last_id, at - step)


def _drop_indexes(conn: sa.Connection) -> list[str]:
    """Drop the log's own indexes (SQLite); returns the statements that make them again."""
    found = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event_log' "
        "AND sql IS NOT NULL"
    ).all()
    for name, _ in found:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    return [str(sql) for _, sql in found]
