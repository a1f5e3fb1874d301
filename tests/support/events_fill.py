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


def fill(
    engine: sa.Engine,
    count: int,
    *,
    start: datetime,
    step: timedelta = timedelta(milliseconds=1),
    tickets: int = 1000,
    batch: int = 20_000,
) -> Filled:
    """Append ``count`` events after the log's head, at ``start`` and ``step`` apart (never
    before the head's time). Every seventh event is a refused hook of no release; the others
    belong to one of ``tickets`` releases, ``ticket_id = 1 + n % tickets``."""
    log = tables.event_log
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
        first_id = last_id + 1
        cycle = itertools.cycle(range(len(KINDS)))
        rows: list[dict[str, Any]] = []
        for n in range(count):
            kind = KINDS[next(cycle)]
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
            row: dict[str, Any] = {
                "id": last_id,
                "at": at,
                "kind": kind.value,
                "ticket_id": ticket,
                "seq": seq,
                "actor": ACTORS[n % len(ACTORS)],
                "cause": CAUSES[n % len(CAUSES)].label,
                "transaction_id": 10_000 + n if ticket is not None else None,
                "job_id": ticket,
                "data": event_chain.canonical_data(data),
                "prev_hash": last_hash,
            }
            row["hash"] = last_hash = event_chain.hash_of_row(row)
            row["major_release"] = major
            row["area"] = area
            rows.append(row)
            at += step
            if len(rows) >= batch:
                conn.execute(log.insert(), rows)
                rows = []
        if rows:
            conn.execute(log.insert(), rows)
    return Filled(first_id, last_id, at - step)
