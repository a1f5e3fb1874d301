"""The record of first fetches (``release_fetches``, migration 0007) on SQLite and PostgreSQL:
one row per release and person, the first kept (also across two writers), read back by
release and time, and per team."""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge.store import database
from bridge.store.fetches import Fetch, FetchStore

T0 = datetime(2026, 12, 1, 10, 0, 0)


def fetch(ticket: int, person: str, minutes: int, teams: tuple[str, ...] = ()) -> Fetch:
    return Fetch(
        ticket_id=ticket,
        person=person,
        teams=teams,
        area="stagerollout/UMD-5",
        first_at=T0 + timedelta(minutes=minutes),
    )


def test_the_first_fetch_per_release_and_person_is_kept(db_url: str) -> None:
    engine = database.create_engine(db_url)
    other = database.create_engine(db_url)
    try:
        store, second = FetchStore(engine), FetchStore(other)
        assert (
            store.record_first([fetch(1, "ea1", 5, ("desy",)), fetch(1, "ea1", 3, ("desy",))]) == 1
        )
        # Another access check, later, with the same pair: the first stays first.
        assert (
            second.record_first([fetch(1, "ea1", 1), fetch(1, "qc1", 9), fetch(2, "ea1", 7)]) == 2
        )
        found = store.first_fetches()
        assert [(f.ticket_id, f.person, f.first_at) for f in found] == [
            (1, "ea1", T0 + timedelta(minutes=3)),
            (2, "ea1", T0 + timedelta(minutes=7)),
            (1, "qc1", T0 + timedelta(minutes=9)),
        ]
        assert found[0].teams == ("desy",) and found[0].area == "stagerollout/UMD-5"
        assert [f.person for f in store.first_fetches(ticket_ids=[1])] == ["ea1", "qc1"]
        window = store.first_fetches(
            since=T0 + timedelta(minutes=4), until=T0 + timedelta(minutes=9)
        )
        assert [(f.ticket_id, f.person) for f in window] == [(2, "ea1")]
        assert store.teams_that_fetched(1) == {"desy": T0 + timedelta(minutes=3)}
        assert store.record_first([]) == 0
    finally:
        engine.dispose()
        other.dispose()
