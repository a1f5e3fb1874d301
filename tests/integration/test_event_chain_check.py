"""``chain_check.verify`` on a log the real writers made, and on the same log tampered with by
hand in SQL: each edit, deletion and insertion is named by its id (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import chain_check, database, event_chain, retention, tables
from bridge.store import events as eventlog
from tests.support import event_history

LOG = tables.event_log


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def history(engine: sa.Engine) -> event_history.History:
    return event_history.write(engine)


def _row(engine: sa.Engine, event_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(LOG).where(LOG.c.id == event_id)).one()._mapping)


def _ids(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(sa.select(LOG.c.id).order_by(LOG.c.id)).scalars()]


def _sql(engine: sa.Engine, statement: str, **params: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _insert(engine: sa.Engine, row: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(LOG.insert().values(**row))


def _forged(engine: sa.Engine, event_id: int, prev_hash: str, *, like: int) -> dict[str, Any]:
    """A row at ``event_id`` made like event ``like``, with a hash that fits its own columns."""
    row = _row(engine, like) | {"id": event_id, "prev_hash": prev_hash, "seq": None,
                                "data": '{"detail":"forged"}'}  # fmt: skip
    row["hash"] = event_chain.hash_of_row(row)
    return row


def test_a_log_written_by_the_real_writers_verifies_with_its_head(
    engine: sa.Engine, history: event_history.History
) -> None:
    ids = _ids(engine)
    report = chain_check.verify(engine, batch=7)  # several batches
    assert report.ok and report.broken is None
    assert report.checked == len(ids) > 40
    assert ids == list(range(1, len(ids) + 1))
    assert (report.head_id, report.head_hash) == (ids[-1], _row(engine, ids[-1])["hash"])
    anchor = chain_check.Anchor(id=report.head_id, hash=report.head_hash)
    assert chain_check.verify(engine, anchor=anchor).ok


def test_an_event_edited_by_hand_is_named(
    engine: sa.Engine, history: event_history.History
) -> None:
    target = _ids(engine)[20]
    kind = _row(engine, target)["kind"]
    _sql(engine, "UPDATE event_log SET data = :d WHERE id = :i", d='{"detail":"nothing"}', i=target)
    broken = chain_check.verify(engine, batch=8).broken
    assert broken is not None
    assert (broken.id, broken.kind, broken.what) == (target, kind, chain_check.EDITED)


def test_an_edit_with_its_hash_recomputed_breaks_the_next_link(
    engine: sa.Engine, history: event_history.History
) -> None:
    target = _ids(engine)[20]
    row = _row(engine, target) | {"actor": "someone else"}
    _sql(engine, "UPDATE event_log SET actor = :a, hash = :h WHERE id = :i", a=row["actor"],
         h=event_chain.hash_of_row(row), i=target)  # fmt: skip
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.what) == (target + 1, chain_check.INSERTED)
    assert f"not the hash of event {target}" in broken.detail


def test_an_event_deleted_from_the_middle_is_named(
    engine: sa.Engine, history: event_history.History
) -> None:
    target = _ids(engine)[15]
    _sql(engine, "DELETE FROM event_log WHERE id = :i", i=target)
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.kind, broken.what) == (target, None, chain_check.DELETED)
    assert f"missing before event {target + 1}" in broken.detail


def test_an_event_appended_whose_prev_hash_does_not_fit_is_named(
    engine: sa.Engine, history: event_history.History
) -> None:
    head = _ids(engine)[-1]
    _insert(engine, _forged(engine, head + 1, "f" * 64, like=head))
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.what) == (head + 1, chain_check.INSERTED)
    assert f"not the hash of event {head}" in broken.detail


def test_an_event_copying_a_valid_prev_hash_is_a_duplicate_position(
    engine: sa.Engine, history: event_history.History
) -> None:
    head = _ids(engine)[-1]
    # It claims the place the head holds: right after event head - 1.
    _insert(engine, _forged(engine, head + 1, _row(engine, head)["prev_hash"], like=head))
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.what) == (head + 1, chain_check.INSERTED)
    assert f"claims to follow event {head - 1}" in broken.detail
    assert "duplicate position" in broken.detail


def test_an_event_replaced_in_the_middle_breaks_the_link_after_it(
    engine: sa.Engine, history: event_history.History
) -> None:
    target = _ids(engine)[10]
    before = _row(engine, target - 1)["hash"]
    _sql(engine, "DELETE FROM event_log WHERE id = :i", i=target)
    _insert(engine, _forged(engine, target, before, like=target - 1))  # fits the link before
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.what) == (target + 1, chain_check.INSERTED)
    assert f"not the hash of event {target}" in broken.detail


def _prune_old_told(engine: sa.Engine, history: event_history.History) -> retention.Outcome:
    """Retention of the oldest non-state events, a year on."""
    history.clock.advance(400 * 86400)
    rule = retention.Rule(
        kinds=(eventlog.EventKind.ACTION_DONE, eventlog.EventKind.RELEASE_XML_FROZEN,
               eventlog.EventKind.STAGE_REPORT_RECORDED, eventlog.EventKind.JOB_CLAIMED,
               eventlog.EventKind.JOB_QUEUED, eventlog.EventKind.JOB_DONE,
               eventlog.EventKind.RELEASE_RECORDED, eventlog.EventKind.TRANSITION_DONE),
        older_than=timedelta(days=30),
    )  # fmt: skip
    return retention.prune(history.queue, [rule], batch=3, actor="operator")


def test_retention_keeps_the_chain_verifiable_across_its_gaps(
    engine: sa.Engine, history: event_history.History
) -> None:
    outcome = _prune_old_told(engine, history)
    assert outcome.deleted > 5 and any(a < b for a, b, _ in outcome.runs)
    report = chain_check.verify(engine, batch=4)
    assert report.ok, report.broken
    assert report.pruned == outcome.deleted
    assert report.pruned_records == len(
        {e.id for e in history.queue.events(kind=eventlog.EventKind.EVENTS_PRUNED)}
    )


def test_an_event_slipped_into_a_gap_retention_made_is_named(
    engine: sa.Engine, history: event_history.History
) -> None:
    outcome = _prune_old_told(engine, history)
    present = set(_ids(engine))
    first = next(a for a, b, _ in outcome.runs if b > a and a - 1 in present)
    # A valid-looking link to the event before the gap, and a hash that fits: it still breaks
    # the next link, and sits where retention recorded deletions.
    before = _row(engine, first - 1)["hash"]
    _insert(engine, _forged(engine, first, before, like=first - 1))
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.what) == (first, chain_check.INSERTED)
    assert f"run {first}–" in broken.detail


def test_a_gap_retention_did_not_record_is_a_deletion(
    engine: sa.Engine, history: event_history.History
) -> None:
    _prune_old_told(engine, history)
    ids = _ids(engine)
    target = next(b for a, b in itertools.pairwise(ids) if b == a + 1)
    _sql(engine, "DELETE FROM event_log WHERE id = :i", i=target)
    broken = chain_check.verify(engine).broken
    assert broken is not None
    assert (broken.id, broken.what) == (target, chain_check.DELETED)


def test_the_newest_events_deleted_are_found_only_with_an_anchor(
    engine: sa.Engine, history: event_history.History
) -> None:
    report = chain_check.verify(engine)
    anchor = chain_check.Anchor.parse(f"{report.head_id}:{report.head_hash}")
    _sql(engine, "DELETE FROM event_log WHERE id >= :i", i=report.head_id - 2)
    truncated = chain_check.verify(engine)
    assert truncated.ok and truncated.head_id == report.head_id - 3  # what a chain cannot see
    broken = chain_check.verify(engine, anchor=anchor).broken
    assert broken is not None
    assert (broken.id, broken.what) == (report.head_id, chain_check.DELETED)


def test_a_rewritten_head_is_found_with_an_anchor(
    engine: sa.Engine, history: event_history.History
) -> None:
    report = chain_check.verify(engine)
    anchor = chain_check.Anchor(id=report.head_id, hash=report.head_hash)
    row = _row(engine, report.head_id) | {"data": '{"detail":"rewritten"}'}
    _sql(engine, "UPDATE event_log SET data = :d, hash = :h WHERE id = :i", d=row["data"],
         h=event_chain.hash_of_row(row), i=report.head_id)  # fmt: skip
    assert chain_check.verify(engine).ok  # consistent again: only the anchor can tell
    broken = chain_check.verify(engine, anchor=anchor).broken
    assert broken is not None and broken.id == report.head_id
