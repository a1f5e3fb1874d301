"""Small release histories for the metrics' unit tests, in an in-memory SQLite database
written by the seed's ``write_records`` (the records the bridge keeps)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from bridge.store import database
from tests.support import metrics_seed as seed

T0 = datetime(2026, 1, 5, 9, 0)
Write = Callable[..., seed.Story]


def story(
    ticket: int,
    *states: str,
    major: str = "UMD-5",
    start: datetime = T0,
    step: timedelta = timedelta(days=1),
    acceptances: tuple[seed.TeamAcceptance, ...] = (),
    fetches: tuple[seed.TeamFetch, ...] = (),
    report_at: datetime | None = None,
) -> seed.Story:
    """Release ``ticket`` created at ``start``, entering each state ``step`` after the one
    before."""
    moves = tuple(
        seed.Move(at=start + step * (n + 1), state=s, actor="sr-bob") for n, s in enumerate(states)
    )
    return seed.Story(
        ticket_id=ticket, created_at=start, major_release=major, emergency=False, moves=moves,
        acceptances=acceptances, fetches=fetches, report_at=report_at,
    )  # fmt: skip


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    database.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def write(engine: sa.Engine) -> Callable[..., None]:
    def write_stories(*stories: seed.Story) -> None:
        seed.write_records(engine, stories)

    return write_stories
