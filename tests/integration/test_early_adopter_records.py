"""The bridge's records of early adopters and of other fields' changes, on SQLite and
PostgreSQL: acceptances once per team and release (withdrawn, accepted anew), the counts the
metrics need, the staged-rollout report's first time, and queued field changes read back as
they were stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from bridge import records
from bridge.store import database, releases
from bridge.store import early_adopters as acceptances
from bridge.store import queue as jobqueue

NOVEMBER, DECEMBER = datetime(2026, 11, 20, 9, 0), datetime(2026, 12, 2, 9, 0)


@pytest.fixture
def store(db_url: str) -> Iterator[acceptances.AcceptanceStore]:
    engine = database.create_engine(db_url)
    yield acceptances.AcceptanceStore(engine)
    engine.dispose()


def _accept(
    store: acceptances.AcceptanceStore, ticket: int, team: str, ngi: str, at: datetime, txn: int
) -> bool:
    return store.accept(
        ticket_id=ticket, team=team, ngi=ngi, major_release="UMD-5", actor="site1", at=at,
        transaction_id=txn,
    )  # fmt: skip


def test_a_team_accepts_a_release_once_until_it_withdraws(
    store: acceptances.AcceptanceStore,
) -> None:
    assert _accept(store, 1, "desy", "NGI_DE", NOVEMBER, 100)
    assert not _accept(store, 1, "desy", "NGI_DE", DECEMBER, 101)  # stands already
    assert not _accept(store, 1, "desy", "NGI_DE", NOVEMBER, 100)  # the same change again
    (standing,) = store.of_release(1)
    assert (standing.accepted_by, standing.accepted_at, standing.transaction_id) == (
        "site1", NOVEMBER, 100,
    )  # fmt: skip
    assert store.withdraw(ticket_id=1, team="desy", actor="sr1", at=DECEMBER, transaction_id=102)
    assert not store.withdraw(
        ticket_id=1, team="desy", actor="sr1", at=DECEMBER, transaction_id=103
    )
    assert store.of_release(1) == ()
    assert _accept(store, 1, "desy", "NGI_DE", DECEMBER, 104)  # accepted anew
    history = store.of_release(1, standing_only=False)
    assert [(a.transaction_id, a.withdrawn_by) for a in history] == [(100, "sr1"), (104, None)]


def test_the_counts_for_the_metrics(store: acceptances.AcceptanceStore) -> None:
    _accept(store, 1, "desy", "NGI_DE", NOVEMBER, 100)
    _accept(store, 1, "kit", "NGI_DE", NOVEMBER, 101)  # a second team of the same NGI
    _accept(store, 2, "desy", "NGI_DE", DECEMBER, 102)
    _accept(store, 2, "infn", "NGI_IT", DECEMBER, 103)
    _accept(store, 3, "infn", "NGI_IT", DECEMBER, 104)
    store.withdraw(ticket_id=3, team="infn", actor="sr1", at=DECEMBER, transaction_id=105)
    assert store.teams_per_release() == {1: ("desy", "kit"), 2: ("desy", "infn")}
    assert store.teams_per_release(since=DECEMBER) == {2: ("desy", "infn")}
    assert store.releases_per_team_per_month() == {
        ("desy", "2026-11"): 1, ("desy", "2026-12"): 1, ("infn", "2026-12"): 1,
        ("kit", "2026-11"): 1,
    }  # fmt: skip
    assert store.releases_per_ngi_per_month(until=DECEMBER) == {("NGI_DE", "2026-11"): 1}
    assert store.releases_per_ngi_per_month() == {
        ("NGI_DE", "2026-11"): 1, ("NGI_DE", "2026-12"): 1, ("NGI_IT", "2026-12"): 1,
    }  # fmt: skip


def test_the_report_time_is_the_first_one(db_url: str) -> None:
    engine = database.create_engine(db_url)
    store = releases.ReleaseStore(engine)
    store.ensure(
        7, state=records.RolloutState.STAGE_ROLLOUT, major_release="UMD-5", emergency=False
    )
    assert store.record_stage_report(7, at=NOVEMBER)
    assert not store.record_stage_report(7, at=DECEMBER)
    release = store.get(7)
    assert release is not None and release.stage_report_at == NOVEMBER
    engine.dispose()


def test_a_field_change_is_queued_and_read_back_as_it_was(db_url: str) -> None:
    engine = database.create_engine(db_url)
    jobs = jobqueue.Queue(engine)
    change = records.ReleaseRequest.field_change(
        ticket_id=9, transaction_id=500, field=records.TrackedField.STAGE_ROLLOUT_REPORT,
        old_value="", new_value="https://wiki.example.org/" + "r" * 900, actor="sr1",
        changed_at=DECEMBER,
    )  # fmt: skip
    move = records.ReleaseRequest(
        ticket_id=9, transaction_id=501, current=records.RolloutState.PRODUCTION,
        previous=records.RolloutState.STAGE_ROLLOUT, actor="sr1",
    )  # fmt: skip
    jobs.enqueue_many([change, move])
    (first,) = jobs.claim("w")
    assert first.request == change
    jobs.complete(first.id, "w")
    (second,) = jobs.claim("w")
    assert second.request == move and second.request.is_move
    engine.dispose()
