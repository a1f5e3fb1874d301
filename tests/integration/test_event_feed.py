"""The feed's reading side on real databases (SQLite and PostgreSQL): each filter narrows to
exactly its events, time windows become id ranges, keyset pages give every event once while
events are appended between pages, and readers' cursors move only forward."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import database, event_feed, event_log
from bridge.store import events as ev
from tests.support import events_fill

K = ev.EventKind
T0 = datetime(2026, 5, 4, 8, 0, 0)


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


def _append(engine: sa.Engine, at: datetime, *drafts: event_log.Draft) -> list[int]:
    with engine.begin() as conn:
        return event_log.append(conn, list(drafts), now=at)


def _draft(kind: ev.EventKind, **kw: Any) -> event_log.Draft:
    kw.setdefault("actor", "alice")
    kw.setdefault("cause", ev.Cause.HOOK)
    return event_log.draft(kind, **kw)


@pytest.fixture
def sample(engine: sa.Engine) -> dict[str, int]:
    """Eight events through the real append path, each telling itself apart by one field.
    Releases 10 and 12 are recorded (their events carry the major release), 11 is not."""
    from bridge.store import tables

    with engine.begin() as conn:
        conn.execute(
            tables.releases.insert(),
            [
                {"ticket_id": t, "state": "Unverified", "major_release": m, "emergency": False,
                 "updated_at": T0}
                for t, m in ((10, "UMD-4"), (12, "UMD-5"))
            ],
        )  # fmt: skip
    ids: dict[str, int] = {}
    rows: list[tuple[str, datetime, event_log.Draft]] = [
        ("queued", T0, _draft(K.JOB_QUEUED, ticket_id=10)),
        ("claimed", T0 + timedelta(hours=1), _draft(K.JOB_CLAIMED, ticket_id=10, actor="bob")),
        (
            "published",
            T0 + timedelta(hours=2),
            _draft(K.RELEASE_PUBLISHED, ticket_id=10, data={"area": "production/UMD-4/updates"}),
        ),
        (
            "other_area",
            T0 + timedelta(hours=2),
            _draft(K.RELEASE_PUBLISHED, ticket_id=11, data={"area": "production/UMD-40"}),
        ),
        (
            "retried",
            T0 + timedelta(hours=3),
            _draft(K.JOB_CLAIMED, ticket_id=11, cause=ev.Cause.AUTOMATIC_RETRY),
        ),
        (
            "refused",
            T0 + timedelta(hours=4),
            _draft(K.HOOK_REFUSED, actor="", data={"http_status": 401}),
        ),
        (
            "umd5",
            T0 + timedelta(days=1),
            _draft(K.RELEASE_RECORDED, ticket_id=12, data={"major_release": "UMD-5"}),
        ),
        ("done", T0 + timedelta(days=2), _draft(K.JOB_DONE, ticket_id=12, actor="carol")),
    ]
    for name, at, item in rows:
        (ids[name],) = _append(engine, at, item)
    return ids


def _all(engine: sa.Engine, filters: event_feed.Filters, *, limit: int = 3) -> list[int]:
    found: list[int] = []
    after = None
    while True:
        page = event_feed.page(engine, filters, after=after, limit=limit)
        found += [e.id for e in page.events]
        if page.next_after is None:
            return found
        after = page.next_after


FILTERS: list[tuple[str, event_feed.Filters, list[str]]] = [
    ("nothing", event_feed.Filters(), ["queued", "claimed", "published", "other_area",
                                       "retried", "refused", "umd5", "done"]),
    ("since", event_feed.Filters(since=T0 + timedelta(hours=2)),
     ["published", "other_area", "retried", "refused", "umd5", "done"]),
    ("until", event_feed.Filters(until=T0 + timedelta(hours=2)), ["queued", "claimed"]),
    ("window", event_feed.Filters(since=T0 + timedelta(hours=1), until=T0 + timedelta(days=1)),
     ["claimed", "published", "other_area", "retried", "refused"]),
    ("empty window", event_feed.Filters(since=T0 + timedelta(days=3)), []),
    ("window before everything", event_feed.Filters(until=T0), []),
    ("ticket", event_feed.Filters(ticket_id=11), ["other_area", "retried"]),
    ("one kind", event_feed.Filters(kinds=(K.JOB_CLAIMED,)), ["claimed", "retried"]),
    ("two kinds", event_feed.Filters(kinds=(K.JOB_DONE, K.HOOK_REFUSED)), ["refused", "done"]),
    ("actor", event_feed.Filters(actor="bob"), ["claimed"]),
    ("major release", event_feed.Filters(major_release="UMD-5"), ["umd5", "done"]),
    ("area and under it", event_feed.Filters(area="production/UMD-4"), ["published"]),
    ("area exactly", event_feed.Filters(area="production/UMD-40"), ["other_area"]),
    ("cause", event_feed.Filters(cause=ev.Cause.AUTOMATIC_RETRY), ["retried"]),
    ("all at once", event_feed.Filters(since=T0, until=T0 + timedelta(hours=5), ticket_id=10,
                                       kinds=(K.JOB_CLAIMED,), actor="bob",
                                       major_release="UMD-4", cause=ev.Cause.HOOK),
     ["claimed"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("filters", "expected"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS]
)
def test_each_filter_narrows_to_exactly_its_events(
    engine: sa.Engine, sample: dict[str, int], filters: event_feed.Filters, expected: list[str]
) -> None:
    assert _all(engine, filters) == [sample[name] for name in expected]


def test_a_window_is_turned_into_an_id_range_through_the_at_index(
    engine: sa.Engine, sample: dict[str, int]
) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        filters = event_feed.Filters(since=T0 + timedelta(hours=2), until=T0 + timedelta(days=1))
        page = event_feed.page(engine, filters)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert [e.id for e in page.events] == [sample[n] for n in ("published", "other_area",
                                                                "retried", "refused")]  # fmt: skip
    (query,) = [s for s in statements if "event_log.data" in s]
    # The page itself is bounded by ids (found by the look-ups on `at` before it).
    assert "event_log.id >=" in query and "event_log.id <=" in query


def test_keyset_pages_give_every_event_once_in_order_while_events_are_appended(
    engine: sa.Engine,
) -> None:
    events_fill.fill(engine, 25, start=T0)
    seen: list[int] = []
    after = None
    appended = 0
    while True:
        page = event_feed.page(engine, event_feed.Filters(), after=after, limit=7)
        seen += [e.id for e in page.events]
        if appended < 3:  # new events land between pages, some at the very time of the last
            events_fill.fill(engine, 4, start=T0)
            appended += 1
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == list(range(1, 25 + 3 * 4 + 1))
    assert event_feed.head(engine) == seen[-1]


def test_a_page_ends_with_next_after_none_exactly_at_the_end(engine: sa.Engine) -> None:
    events_fill.fill(engine, 6, start=T0)
    first = event_feed.page(engine, event_feed.Filters(), limit=3)
    assert ([e.id for e in first.events], first.next_after) == ([1, 2, 3], 3)
    last = event_feed.page(engine, event_feed.Filters(), after=3, limit=3)
    assert ([e.id for e in last.events], last.next_after) == ([4, 5, 6], None)
    assert event_feed.page(engine, event_feed.Filters(), after=6).events == ()


def test_latest_gives_the_newest_matching_events_oldest_first(
    engine: sa.Engine, sample: dict[str, int]
) -> None:
    newest = event_feed.latest(
        engine, event_feed.Filters(kinds=(K.JOB_CLAIMED, K.JOB_DONE)), limit=2
    )
    assert [e.id for e in newest] == [sample["retried"], sample["done"]]


def test_events_come_back_as_they_were_written(engine: sa.Engine, sample: dict[str, int]) -> None:
    (event,) = event_feed.page(engine, event_feed.Filters(actor="bob")).events
    assert (event.kind, event.ticket_id, event.seq, event.cause) == (
        K.JOB_CLAIMED, 10, 2, ev.Cause.HOOK
    )  # fmt: skip
    assert event.at == T0 + timedelta(hours=1)


def test_a_reader_cursor_starts_at_zero_and_only_moves_forward(engine: sa.Engine) -> None:
    assert event_feed.cursor(engine, "ops") == 0
    assert event_feed.advance(engine, "ops", 7, now=T0) == 7
    assert event_feed.advance(engine, "ops", 3, now=T0) == 7  # an older page fetched again
    assert event_feed.advance(engine, "ops", 12, now=T0 + timedelta(hours=1)) == 12
    assert event_feed.cursor(engine, "ops") == 12
    assert event_feed.cursor(engine, "audit") == 0  # readers are independent
    assert event_feed.readers(engine) == {"ops": (12, T0 + timedelta(hours=1))}


def test_since_last_shows_only_what_the_reader_has_not_seen(engine: sa.Engine) -> None:
    events_fill.fill(engine, 5, start=T0)

    def unseen(reader: str) -> list[int]:
        page = event_feed.page(
            engine, event_feed.Filters(), after=event_feed.cursor(engine, reader), limit=100
        )
        if page.events:
            event_feed.advance(engine, reader, page.events[-1].id)
        return [e.id for e in page.events]

    assert unseen("ops") == [1, 2, 3, 4, 5]
    assert unseen("ops") == []
    events_fill.fill(engine, 2, start=T0)
    assert unseen("ops") == [6, 7]
    assert unseen("audit") == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("name", ["", "-dash-first", "has space", "x" * 101, "a/b"])
def test_a_bad_reader_name_is_refused(engine: sa.Engine, name: str) -> None:
    with pytest.raises(ValueError, match="is not a reader's name"):
        event_feed.advance(engine, name, 1)


def test_the_filler_writes_a_valid_chain(engine: sa.Engine) -> None:
    from bridge.store import event_chain, tables

    events_fill.fill(engine, 50, start=T0)
    events_fill.fill(engine, 10, start=T0 - timedelta(days=1))  # never before the head's time
    with engine.connect() as conn:
        rows = conn.execute(sa.select(tables.event_log).order_by(tables.event_log.c.id)).all()
    previous = event_chain.GENESIS
    times = []
    for row in rows:
        m = row._mapping
        assert m["prev_hash"] == previous
        assert m["hash"] == event_chain.hash_of_row(m)
        previous = m["hash"]
        times.append(m["at"])
    assert times == sorted(times) and len(rows) == 60
