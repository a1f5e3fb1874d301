"""Retention of the event log: delete events by age and kind, exported first, never one that
another part still needs, and leave the chain checkable across the gap.

Each batch is one transaction: the ``events_pruned`` event that records it is appended first
(so an id is never given twice), naming the runs of ids it deletes with the hash of each run's
last event; ``chain_check`` uses those to check the link across a gap. Events still needed are
never deleted (``holds``): the newest event of each release (it carries its sequence), the
state-bearing events of a release not yet closed or a job still open (rebuilt from them),
refusals still to be commented, and the ``events_pruned`` records themselves. It decides no
policy: the rules come from the caller (settings or ``rollout events prune``).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from bridge import records
from bridge.store import event_log, tables
from bridge.store import events as eventlog

if TYPE_CHECKING:
    from bridge.store.event_log import EventLog

logger = logging.getLogger(__name__)

_CLOSED = tuple(
    s.label
    for s in (
        records.RolloutState.PRODUCTION,
        records.RolloutState.REJECTED,
        records.RolloutState.IGNORED,
        records.RolloutState.NOT_PUBLISHED,
    )
)


K = eventlog.EventKind
# The kinds a release's state or a job's status is rebuilt from (``rebuild``): kept while the
# release or job is open.
STATE_KINDS = (
    K.IMPORTED, K.RELEASE_RECORDED, K.TRANSITION_DONE, K.TRANSITION_FAILED, K.JOB_QUEUED,
    K.JOB_CLAIMED, K.JOB_DONE, K.JOB_RETRY, K.JOB_FAILED, K.JOB_DEAD, K.JOB_REQUEUED,
    K.JOB_GIVEN_BACK, K.RELEASE_PUBLISHED, K.RELEASE_REMOVED, K.SLOT_TAKEN, K.SLOT_FREED,
    K.RELEASE_BACKFILLED,
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Delete events of ``kinds`` (every kind when empty) older than ``older_than``."""

    older_than: timedelta
    kinds: tuple[eventlog.EventKind, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What a pruning did (or, with ``dry_run``, would do)."""

    deleted: int
    held: int
    exports: tuple[Path, ...] = ()
    runs: tuple[tuple[int, int, str], ...] = field(default=())


def holds() -> list[sa.ColumnElement[bool]]:
    """Conditions an event must meet to be deletable: what other parts still need is kept."""
    log, rel, jobs, rc = tables.event_log, tables.releases, tables.jobs, tables.refusal_comments
    d = tables.deliveries
    newest = sa.select(sa.func.max(log.c.id)).where(log.c.ticket_id.is_not(None))
    # Uncorrelated: the newest event of every release, not of the row being tested.
    newest = newest.group_by(log.c.ticket_id).correlate(None)
    open_job = (records.JobStatus.QUEUED.label, records.JobStatus.RUNNING.label)
    state_bearing = log.c.kind.in_([k.value for k in STATE_KINDS])
    return [
        log.c.kind != eventlog.EventKind.EVENTS_PRUNED.value,
        log.c.id.not_in(newest.scalar_subquery()),
        ~sa.and_(
            state_bearing,
            sa.exists().where(rel.c.ticket_id == log.c.ticket_id, rel.c.state.not_in(_CLOSED)),
        ),
        ~sa.and_(
            state_bearing,
            sa.exists().where(jobs.c.id == log.c.job_id, jobs.c.status.in_(open_job)),
        ),
        # The deletion query joins refusal_comments itself: correlate only to the log's row.
        ~sa.exists().where(rc.c.event_id == log.c.id, rc.c.settled.is_(False)).correlate_except(rc),
        # An event still to be delivered to a subscriber (docs/notifications.md).
        ~sa.exists()
        .where(d.c.event_id == log.c.id, d.c.status.in_(("pending", "sending")))
        .correlate_except(d),
    ]


def _matching(rules: Sequence[Rule], now: Any) -> sa.ColumnElement[bool]:
    log = tables.event_log
    each = []
    for rule in rules:
        cond = log.c.at < now - rule.older_than
        if rule.kinds:
            cond = sa.and_(cond, log.c.kind.in_([k.value for k in rule.kinds]))
        each.append(cond)
    return sa.or_(*each) if each else sa.false()


def runs_of(rows: Sequence[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """``(id, hash)`` rows in id order as runs of consecutive ids: (first, last, last hash)."""
    runs: list[tuple[int, int, str]] = []
    for event_id, digest in rows:
        if runs and runs[-1][1] == event_id - 1:
            runs[-1] = (runs[-1][0], event_id, digest)
        else:
            runs.append((event_id, event_id, digest))
    return runs


def prune(
    log: EventLog,
    rules: Sequence[Rule],
    *,
    batch: int = 10_000,
    dry_run: bool = False,
    export_dir: Path | None = None,
    actor: str = "",
) -> Outcome:
    """Delete what ``rules`` match and nothing ``holds`` keeps, in batches (each exported to
    ``export_dir`` as gzipped JSON Lines before its transaction deletes it, when given).
    ``dry_run`` counts instead."""
    tbl = tables.event_log
    now = log.clock()
    matching = _matching(rules, now)
    keep = holds()
    with log.engine.begin() as conn:
        matched = int(conn.execute(sa.select(sa.func.count()).where(matching)).scalar_one())
        deletable = int(
            conn.execute(sa.select(sa.func.count()).where(matching, *keep)).scalar_one()
        )
    if dry_run:
        return Outcome(deleted=deletable, held=matched - deletable)
    deleted, exports, all_runs = 0, [], []
    after = 0
    while True:
        with log.engine.begin() as conn:
            rows = conn.execute(
                event_log._with_comments()
                .where(matching, *keep, tbl.c.id > after)
                .order_by(tbl.c.id)
                .limit(batch)
            ).all()
            if not rows:
                break
            chosen = [event_log._event(r) for r in rows]
            after = chosen[-1].id
            export = _export(export_dir, chosen) if export_dir is not None else None
            runs = runs_of([(e.id, e.hash) for e in chosen])
            event_log.append(
                conn,
                [
                    event_log.draft(
                        eventlog.EventKind.EVENTS_PRUNED,
                        actor=actor,
                        cause=eventlog.Cause.OPERATOR,
                        data={
                            "detail": f"retention deleted {len(chosen)} events"
                            + (f", exported to {export}" if export else ""),
                            "count": len(chosen),
                            "ranges": [list(r) for r in runs],
                            "export": str(export) if export else None,
                            "older_than": [
                                {"kinds": [k.value for k in r.kinds], "days": r.older_than.days}
                                for r in rules
                            ],
                        },
                    )
                ],
                now=log.clock(),
            )
            ids = [e.id for e in chosen]
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                conn.execute(tables.refusal_comments.delete().where(
                    tables.refusal_comments.c.event_id.in_(part)))  # fmt: skip
                conn.execute(tbl.delete().where(tbl.c.id.in_(part)))
        deleted += len(chosen)
        all_runs.extend(runs)
        if export is not None:
            exports.append(export)
        logger.info("event retention deleted %d events", len(chosen))
    return Outcome(
        deleted=deleted, held=matched - deletable, exports=tuple(exports), runs=tuple(all_runs)
    )


def _export(directory: Path, chosen: Sequence[eventlog.Event]) -> Path:
    """Write ``chosen`` as gzipped JSON Lines, durably, before they are deleted."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"events-{chosen[0].id}-{chosen[-1].id}.jsonl.gz"
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb") as out:
            for event in chosen:
                out.write(json.dumps(event.as_dict(), ensure_ascii=False).encode() + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    partial.replace(path)
    return path
