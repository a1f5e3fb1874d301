"""The record of who fetched which release first from a protected area (``release_fetches``):
written in batches by the access check, read by the metrics (staged-rollout uptake).

All SQL on ``release_fetches`` lives here. It decides nothing: which release a path names and
who is asking are the serving side's business. Times are naive UTC.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bridge.store import tables

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Fetch:
    """The first allowed fetch of release ``ticket_id`` by ``person`` (RT's name), a member of
    the early-adopter ``teams`` then, from ``area`` at ``first_at``."""

    ticket_id: int
    person: str
    teams: tuple[str, ...]
    area: str
    first_at: datetime


class FetchStore:
    """``release_fetches`` on ``engine`` (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def record_first(self, fetches: Iterable[Fetch]) -> int:
        """Record the fetches whose (release, person) has none yet, in one transaction; the
        earliest of a batch wins, and an existing row is kept. Returns how many were new."""
        rows: dict[tuple[int, str], Fetch] = {}
        for fetch in sorted(fetches, key=lambda f: f.first_at):
            rows.setdefault((fetch.ticket_id, fetch.person), fetch)
        if not rows:
            return 0
        t = tables.release_fetches
        stmt = self._insert(t).on_conflict_do_nothing(index_elements=["ticket_id", "person"])
        values = [
            {
                "ticket_id": f.ticket_id,
                "person": f.person[:200],
                "teams": ",".join(f.teams)[:1000],
                "area": f.area[:1000],
                "first_at": f.first_at,
            }
            for f in rows.values()
        ]
        with self.engine.begin() as conn:
            before = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            conn.execute(stmt, values)
            after = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        return int(after) - int(before)

    def first_fetches(
        self,
        *,
        ticket_ids: Sequence[int] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Fetch]:
        """The first fetches recorded, oldest first: of these releases, and/or first made in
        [``since``, ``until``)."""
        t = tables.release_fetches
        query = sa.select(t).order_by(t.c.first_at, t.c.ticket_id, t.c.person)
        if ticket_ids is not None:
            query = query.where(t.c.ticket_id.in_(list(ticket_ids)))
        if since is not None:
            query = query.where(t.c.first_at >= since)
        if until is not None:
            query = query.where(t.c.first_at < until)
        with self.engine.connect() as conn:
            found = conn.execute(query).all()
        return [
            Fetch(
                ticket_id=int(row.ticket_id),
                person=str(row.person),
                teams=tuple(x for x in str(row.teams).split(",") if x),
                area=str(row.area),
                first_at=row.first_at,
            )
            for row in found
        ]

    def teams_that_fetched(self, ticket_id: int) -> dict[str, datetime]:
        """Early-adopter team → when one of its members first fetched the release."""
        first: dict[str, datetime] = {}
        for fetch in self.first_fetches(ticket_ids=[ticket_id]):
            for team in fetch.teams:
                if team not in first or fetch.first_at < first[team]:
                    first[team] = fetch.first_at
        return first
