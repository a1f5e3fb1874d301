"""Reading the event log as a feed: filters, pages by id (keyset), the newest events of a
filter, and the named readers' cursors ("since I last looked").

A page is the events after an id, oldest first, so a reader that pages on from the last id it
saw gets every event exactly once, however many are appended meanwhile (ids follow commit
order: ``event_log.append``). A time window becomes a range of ids through the ``at`` index
(times never go backwards along ids), so no filter needs a date window and no query scans
the log by time. Reads only: it never writes an event (only the ``event_readers`` cursors)
and knows nothing of formats (``repo_daemon.history.exports``) nor of HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store import event_log, tables
from bridge.store import events as eventlog

# A reader's name: what `--since-last NAME` and `?reader=NAME` take.
READER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_RELATIVE = re.compile(r"(\d{1,6})\s*([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, kw_only=True)
class Filters:
    """Which events a feed shows; every filter given must hold (``kinds``: any of them).

    Times are naive UTC, as stored: ``since`` is inclusive, ``until`` exclusive. ``area``
    matches the area itself and any path under it (``production/UMD-5`` holds
    ``production/UMD-5/updates``).
    """

    since: datetime | None = None
    until: datetime | None = None
    ticket_id: int | None = None
    kinds: tuple[eventlog.EventKind, ...] = ()
    actor: str | None = None
    major_release: str | None = None
    area: str | None = None
    cause: eventlog.Cause | None = None

    def as_query(self) -> list[tuple[str, str]]:
        """The filters as the query parameters of ``GET /api/events`` (for links, feed ids
        and titles), in a fixed order."""
        pairs: list[tuple[str, str]] = []
        if self.since is not None:
            pairs.append(("since", self.since.isoformat() + "Z"))
        if self.until is not None:
            pairs.append(("until", self.until.isoformat() + "Z"))
        if self.ticket_id is not None:
            pairs.append(("ticket", str(self.ticket_id)))
        pairs += [("kind", k.value) for k in self.kinds]
        for key, value in (
            ("actor", self.actor),
            ("major_release", self.major_release),
            ("area", self.area),
        ):
            if value is not None:
                pairs.append((key, value))
        if self.cause is not None:
            pairs.append(("cause", self.cause.label))
        return pairs

    def title(self) -> str:
        """A feed's title for these filters: ``Rollout events (kind=job_dead, ...)``."""
        described = ", ".join(f"{k}={v}" for k, v in self.as_query())
        return f"Rollout events ({described})" if described else "Rollout events"


@dataclass(frozen=True)
class Page:
    """Events oldest first, and the id to page on from (``after=``); ``next_after`` is None
    when no further event matches now (a follower asks again later after its last event)."""

    events: tuple[eventlog.Event, ...]
    next_after: int | None


def parse_time(text: str, *, now: datetime) -> datetime:
    """A time as the feed takes it, as naive UTC: ISO 8601 (``2026-05-04``,
    ``2026-05-04T08:00``, with ``Z`` or an offset; no offset means UTC), ``now``, ``today`` /
    ``yesterday`` (midnight UTC), or a time ago: ``90s``, ``30m``, ``8h``, ``2d``, ``1w``.
    ``now`` is the current time (aware, or naive UTC). Raises ``ValueError`` saying what is
    accepted."""
    current = _naive_utc(now)
    word = text.strip().lower()
    if word == "now":
        return current
    if word in ("today", "yesterday"):
        midnight = current.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=1 if word == "yesterday" else 0)
    relative = _RELATIVE.fullmatch(word.removesuffix(" ago").strip())
    if relative is not None:
        amount, unit = int(relative.group(1)), relative.group(2)
        return current - timedelta(**{_UNITS[unit]: amount})
    try:
        return _naive_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: give an ISO 8601 time (2026-05-04T08:00Z), today, "
            "yesterday, now, or a time ago such as 30m, 8h, 2d, 1w"
        ) from None


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _id_bounds(conn: sa.Connection, filters: Filters) -> tuple[int, int | None] | None:
    """The ids the time window can hold, as (first, last or None for no upper bound); None
    when it holds no event. Two index look-ups on ``at`` each, never a scan."""
    log = tables.event_log
    first, last = 1, None
    if filters.since is not None:
        at = conn.execute(
            sa.select(log.c.at).where(log.c.at >= filters.since).order_by(log.c.at).limit(1)
        ).scalar()
        if at is None:
            return None
        first = int(
            conn.execute(
                sa.select(log.c.id).where(log.c.at == at).order_by(log.c.id).limit(1)
            ).scalar_one()
        )
    if filters.until is not None:
        at = conn.execute(
            sa.select(log.c.at).where(log.c.at < filters.until).order_by(log.c.at.desc()).limit(1)
        ).scalar()
        if at is None:
            return None
        last = int(
            conn.execute(
                sa.select(log.c.id).where(log.c.at == at).order_by(log.c.id.desc()).limit(1)
            ).scalar_one()
        )
        if last < first:
            return None
    return first, last


def _conditions(filters: Filters, bounds: tuple[int, int | None]) -> list[Any]:
    log = tables.event_log
    first, last = bounds
    where: list[Any] = []
    if first > 1:
        where.append(log.c.id >= first)
    if last is not None:
        where.append(log.c.id <= last)
    # The bounds come from the times; the times themselves are checked too, so a window never
    # shows an event outside it even where old (migrated) times were out of order.
    if filters.since is not None:
        where.append(log.c.at >= filters.since)
    if filters.until is not None:
        where.append(log.c.at < filters.until)
    if filters.ticket_id is not None:
        where.append(log.c.ticket_id == filters.ticket_id)
    if len(filters.kinds) == 1:
        where.append(log.c.kind == filters.kinds[0].value)
    elif filters.kinds:
        where.append(log.c.kind.in_([k.value for k in filters.kinds]))
    if filters.actor is not None:
        where.append(log.c.actor == filters.actor)
    if filters.major_release is not None:
        where.append(log.c.major_release == filters.major_release)
    if filters.area is not None:
        area = filters.area.rstrip("/")
        under = sa.func.substr(log.c.area, 1, len(area) + 1) == area + "/"
        where.append(sa.or_(log.c.area == area, under))
    if filters.cause is not None:
        where.append(log.c.cause == filters.cause.label)
    return where


def page(
    engine: sa.Engine, filters: Filters, *, after: int | None = None, limit: int = 100
) -> Page:
    """Up to ``limit`` events matching ``filters`` with ids above ``after``, oldest first.
    Raises ``ValueError`` for a ``limit`` below 1 or a negative ``after``."""
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")
    if after is not None and after < 0:
        raise ValueError(f"after must be 0 or more, got {after}")
    log = tables.event_log
    with engine.connect() as conn:
        bounds = _id_bounds(conn, filters)
        if bounds is None:
            return Page((), None)
        stmt = sa.select(log).where(*_conditions(filters, bounds))
        if after:
            stmt = stmt.where(log.c.id > after)
        # A release's events are numbered in id order: ordering them by their sequence lets
        # the database walk the (ticket_id, seq) index instead of a kind's or an actor's.
        order = log.c.seq if filters.ticket_id is not None else log.c.id
        rows = conn.execute(stmt.order_by(order).limit(limit + 1)).all()
    events = tuple(event_log.event_of(r) for r in rows[:limit])
    return Page(events, events[-1].id if len(rows) > limit else None)


def latest(engine: sa.Engine, filters: Filters, *, limit: int = 100) -> tuple[eventlog.Event, ...]:
    """The newest ``limit`` events matching ``filters``, oldest first (what a subscribed feed
    shows)."""
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")
    log = tables.event_log
    with engine.connect() as conn:
        bounds = _id_bounds(conn, filters)
        if bounds is None:
            return ()
        stmt = sa.select(log).where(*_conditions(filters, bounds))
        rows = conn.execute(stmt.order_by(log.c.id.desc()).limit(limit)).all()
    return tuple(event_log.event_of(r) for r in reversed(rows))


def head(engine: sa.Engine) -> int:
    """The id of the newest event (0 for an empty log)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(tables.event_log.c.id))).scalar() or 0)


# -- readers' cursors -------------------------------------------------------------------------


def check_reader(name: str) -> str:
    """``name`` if it is a reader's name (letters, digits, ``. _ @ -``, up to 100, starting
    with a letter or digit); ``ValueError`` otherwise."""
    if not READER_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a reader's name: 1-100 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def cursor(engine: sa.Engine, reader: str) -> int:
    """The id of the last event ``reader`` has seen; 0 for a reader never seen (so it has
    seen nothing yet)."""
    check_reader(reader)
    readers = tables.event_readers
    with engine.connect() as conn:
        value = conn.execute(sa.select(readers.c.last_id).where(readers.c.name == reader)).scalar()
    return int(value or 0)


def advance(engine: sa.Engine, reader: str, last_id: int, *, now: datetime | None = None) -> int:
    """Record that ``reader`` has seen the events up to ``last_id``; returns its cursor now.
    A cursor never goes back: a lower ``last_id`` (an older page fetched again) leaves it."""
    check_reader(reader)
    readers = tables.event_readers
    when = _naive_utc(now or datetime.now(UTC))
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    stmt = insert(readers).values(name=reader, last_id=last_id, updated_at=when)
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "last_id": sa.case(
                (stmt.excluded.last_id > readers.c.last_id, stmt.excluded.last_id),
                else_=readers.c.last_id,
            ),
            "updated_at": stmt.excluded.updated_at,
        },
    )
    with engine.begin() as conn:
        conn.execute(stmt)
        return int(
            conn.execute(sa.select(readers.c.last_id).where(readers.c.name == reader)).scalar_one()
        )


def readers(engine: sa.Engine) -> Mapping[str, tuple[int, datetime]]:
    """Every reader's cursor and when it last moved."""
    table = tables.event_readers
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.name)).all()
    return {r.name: (int(r.last_id), r.updated_at) for r in rows}


def walk(
    engine: sa.Engine, columns: Sequence[sa.ColumnElement[Any]], *, batch: int = 5000
) -> Iterator[sa.Row[Any]]:
    """Every event's ``columns`` in id order, ``batch`` rows per query (keyset on id), so a
    million events are never in memory at once (``chain_check``, ``rebuild``)."""
    log = tables.event_log
    after = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(log.c.id, *columns)
                .where(log.c.id > after)
                .order_by(log.c.id)
                .limit(batch)
            ).all()
        if not rows:
            return
        yield from rows
        after = int(rows[-1].id)
