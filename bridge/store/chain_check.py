"""Checking the event log's hash chain: walk ``event_log`` in id order, recompute each event's
hash, follow each ``prev_hash`` link, explain each gap in the ids by retention, and name the
first broken link (``rollout events verify``).

A link can break three ways, and the first one met is reported with the event's id and kind:

- **edited**: an event's stored hash is not the hash of its columns (``event_chain``);
- **deleted**: ids are missing and no ``events_pruned`` event records retention deleting them;
- **inserted**: an event's ``prev_hash`` is not the hash of the event before it (or, after a
  gap retention made, the hash of the last event retention deleted), it claims a place another
  event holds already, or it sits at an id retention deleted.

A chain kept in the same database cannot stop someone who rewrites every event after a point
(or deletes the newest ones): the rewritten chain is consistent again. That is why the check
gives the head (the newest id and its hash), for the operator to record elsewhere, and checks a
recorded head (``anchor``) when given one. It reads in batches (never the whole table at once)
and changes nothing.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from bridge.store import event_chain, event_feed, tables
from bridge.store import events as eventlog

logger = logging.getLogger(__name__)

EDITED = "edited"
DELETED = "deleted"
INSERTED = "inserted"


@dataclass(frozen=True, kw_only=True)
class Break:
    """The first broken link: at event ``id`` (of ``kind``; ``None`` when the event is gone),
    ``what`` (edited, deleted, inserted) and, in words, why."""

    id: int
    kind: str | None
    what: str
    detail: str

    def describe(self) -> str:
        """One line naming the link and what is wrong with it."""
        kind = f" ({self.kind})" if self.kind else ""
        return f"event {self.id}{kind}: {self.what}: {self.detail}"


@dataclass(frozen=True, kw_only=True)
class Anchor:
    """A head recorded earlier, elsewhere: event ``id`` had ``hash``."""

    id: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``ID:HASH`` as ``verify`` prints the head (``ValueError`` otherwise)."""
        left, sep, right = text.strip().partition(":")
        digest = right.strip().lower()
        if not sep or not left.strip().isdigit() or len(digest) != 64:
            raise ValueError(f"{text!r} is not ID:HASH (an event id and its 64-digit hash)")
        int(digest, 16)
        return cls(id=int(left), hash=digest)


@dataclass(frozen=True, kw_only=True)
class Report:
    """What ``verify`` found. ``broken`` is None when every link holds."""

    checked: int  # events read
    pruned: int  # ids explained by retention
    pruned_records: int  # events_pruned events
    head_id: int  # 0 for an empty log
    head_hash: str
    broken: Break | None

    @property
    def ok(self) -> bool:
        return self.broken is None


@dataclass(frozen=True)
class _Run:
    first: int
    last: int
    hash: str
    recorded_by: int  # the events_pruned event that names it


def _runs(conn: sa.Connection) -> dict[int, _Run]:
    """The runs of ids retention deleted, by first id, from every ``events_pruned`` event."""
    log = tables.event_log
    runs: dict[int, _Run] = {}
    stmt = sa.select(log.c.id, log.c.data).where(
        log.c.kind == eventlog.EventKind.EVENTS_PRUNED.value
    )
    for record_id, text in conn.execute(stmt):
        try:
            ranges = json.loads(text).get("ranges") or []
            found = [_Run(int(a), int(b), str(h), int(record_id)) for a, b, h in ranges]
        except (ValueError, TypeError, AttributeError):
            continue  # an edited record; the walk reports its hash
        for run in found:
            runs.setdefault(run.first, run)
    return runs


def _rows(engine: sa.Engine, batch: int) -> Iterator[Mapping[str, Any]]:
    """Every event row in id order, ``batch`` rows per query (keyset on id)."""
    log = tables.event_log
    cols = [c for c in log.c if c.name not in ("id", "major_release", "area")]
    for row in event_feed.walk(engine, cols, batch=batch):
        yield cast(Mapping[str, Any], row._mapping)


def _claimed_by(engine: sa.Engine, digest: str) -> int | None:
    """The event whose stored hash is ``digest`` (a scan, only run on a broken link)."""
    log = tables.event_log
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(log.c.id).where(log.c.hash == digest).order_by(log.c.id).limit(1)
        ).scalar()
    return None if found is None else int(found)


def verify(engine: sa.Engine, *, batch: int = 5000, anchor: Anchor | None = None) -> Report:
    """Walk the chain and report the first broken link (and the head). ``anchor``, a head
    recorded earlier, must still be in the log with the same hash."""
    with engine.connect() as conn:
        runs = _runs(conn)
    records = len({r.recorded_by for r in runs.values()})
    starts = sorted(runs)
    prev_id, prev_hash = 0, event_chain.GENESIS
    checked = pruned = 0
    anchor_seen = False

    def report(broken: Break | None) -> Report:
        return Report(checked=checked, pruned=pruned, pruned_records=records, head_id=prev_id,
                      head_hash=prev_hash, broken=broken)  # fmt: skip

    for row in _rows(engine, batch):
        event_id, kind = int(row["id"]), str(row["kind"])
        stored_prev = str(row["prev_hash"])
        expected, gap, broken = prev_hash, 0, None
        if event_id > prev_id + 1:
            expected, gap, broken = _across(runs, prev_id, event_id, kind)
            if broken is not None:
                # Retention may have run since the walk began: its record is committed
                # with its deletions, so read the records again before calling it a break.
                with engine.connect() as conn:
                    runs = _runs(conn)
                records = len({r.recorded_by for r in runs.values()})
                starts = sorted(runs)
                expected, gap, broken = _across(runs, prev_id, event_id, kind)
        if broken is None and (run := _inside(starts, runs, event_id)) is not None:
            broken = _in_run(event_id, kind, run)
        if broken is None and stored_prev != expected:
            broken = _bad_link(engine, event_id, kind, stored_prev, prev_id)
        if broken is None and event_chain.hash_of_row(row) != str(row["hash"]):
            broken = Break(id=event_id, kind=kind, what=EDITED,
                           detail="its stored hash is not the hash of its contents: "
                           "a column was changed after it was written")  # fmt: skip
        if broken is None and anchor is not None and event_id == anchor.id:
            anchor_seen = True
            if str(row["hash"]) != anchor.hash:
                broken = Break(id=event_id, kind=kind, what=EDITED,
                               detail=f"its hash is not the recorded head's {anchor.hash}: "
                               "the chain was rewritten from here or before")  # fmt: skip
        if broken is not None:
            return report(broken)
        checked += 1
        pruned += gap
        prev_id, prev_hash = event_id, str(row["hash"])
    if anchor is not None and not anchor_seen:
        return report(_anchor_gone(anchor, runs, prev_id))
    return report(None)


def _anchor_gone(anchor: Anchor, runs: Mapping[int, _Run], head_id: int) -> Break | None:
    """The recorded head is not in the log: retention deleted it (and recorded its hash, when
    it was the last of its run), or it is missing."""
    for run in runs.values():
        if run.first <= anchor.id <= run.last:
            if run.last == anchor.id and run.hash != anchor.hash:
                return Break(id=anchor.id, kind=None, what=EDITED,
                             detail=f"retention recorded its hash as {run.hash}, not the "
                             f"recorded head's {anchor.hash}")  # fmt: skip
            return None
    if anchor.id > head_id:
        detail = f"the recorded head is not in the log: the newest event is {head_id}"
    else:
        detail = "the recorded head's id is missing from the log"
    return Break(id=anchor.id, kind=None, what=DELETED, detail=detail)


def _inside(starts: list[int], runs: Mapping[int, _Run], event_id: int) -> _Run | None:
    """The run retention deleted that holds ``event_id``, if any (``starts``: sorted firsts)."""
    at = bisect.bisect_right(starts, event_id) - 1
    if at < 0:
        return None
    run = runs[starts[at]]
    return run if run.first <= event_id <= run.last else None


def _in_run(event_id: int, kind: str, run: _Run) -> Break:
    return Break(id=event_id, kind=kind, what=INSERTED,
                 detail=f"it sits at an id retention deleted (run {run.first}–{run.last}, "
                 f"recorded by event {run.recorded_by})")  # fmt: skip


def _across(
    runs: Mapping[int, _Run], prev_id: int, event_id: int, kind: str
) -> tuple[str, int, Break | None]:
    """The hash event ``event_id`` must follow after the gap from ``prev_id``, how many ids
    retention explains, or the break when the gap is not retention's."""
    pos, expected = prev_id + 1, ""
    while pos < event_id:
        run = runs.get(pos)
        if run is None:
            later = [r.first for r in runs.values() if pos < r.first < event_id]
            last = min(later) - 1 if later else event_id - 1
            span = f"{pos}" if last == pos else f"{pos}–{last}"
            return "", 0, Break(id=pos, kind=None, what=DELETED,
                                detail=f"event{'s' if last > pos else ''} {span} "
                                f"missing before event {event_id} ({kind}), and no "
                                "events_pruned event records retention deleting them")  # fmt: skip
        if run.last >= event_id:
            return "", 0, _in_run(event_id, kind, run)
        if run.recorded_by <= run.last:
            return "", 0, Break(id=pos, kind=None, what=DELETED,
                                detail=f"events {run.first}–{run.last} are claimed deleted by "
                                f"event {run.recorded_by}, which is older than them")  # fmt: skip
        pos, expected = run.last + 1, run.hash
    return expected, event_id - prev_id - 1, None


def _bad_link(engine: sa.Engine, event_id: int, kind: str, stored_prev: str, prev_id: int) -> Break:
    """Why ``event_id``'s ``prev_hash`` is not the hash it should follow."""
    if event_id > prev_id + 1:
        before = f"the last event retention deleted after event {prev_id}"
    else:
        before = f"event {prev_id}" if prev_id else "the start of the log"
    claimed = 0 if stored_prev == event_chain.GENESIS else _claimed_by(engine, stored_prev)
    if claimed is not None and claimed < prev_id:
        where = f"event {claimed}" if claimed else "the start of the log"
        detail = (
            f"it claims to follow {where}, a place an earlier event holds already (a duplicate "
            f"position); it should follow {before}"
        )
    elif claimed is not None and claimed > event_id:
        detail = (
            f"it claims to follow event {claimed}, which comes after it; it should follow {before}"
        )
    else:
        detail = (
            f"its prev_hash is not the hash of {before}: it was slipped in, or the event "
            "before it was replaced or rewritten with a new hash"
        )
    return Break(id=event_id, kind=kind, what=INSERTED, detail=detail)
