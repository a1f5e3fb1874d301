"""The bridge's record of early adopters: which team accepted which release's staged rollout,
who added the team and when (RT's actor and time), and withdrawals.

All SQL on ``early_adopter_acceptances`` lives here, and the counts the provisioning metrics
need (teams per release, releases per team and per NGI per month). It decides nothing: which
team a name means and what an acceptance does to the ticket are the workflow's business. Times
are naive UTC.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.store import event_log, tables
from bridge.store import events as eventlog
from bridge.store.queue import Clock, utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Acceptance:
    """One team's acceptance of one release; ``withdrawn_at`` is None while it stands."""

    ticket_id: int
    team: str
    ngi: str
    major_release: str | None
    accepted_by: str
    accepted_at: datetime
    transaction_id: int
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None


def _acceptance(row: sa.Row[Any]) -> Acceptance:
    m = row._mapping
    return Acceptance(
        ticket_id=int(m["ticket_id"]),
        team=str(m["team"]),
        ngi=str(m["ngi"]),
        major_release=m["major_release"],
        accepted_by=str(m["accepted_by"]),
        accepted_at=m["accepted_at"],
        transaction_id=int(m["transaction_id"]),
        withdrawn_by=m["withdrawn_by"],
        withdrawn_at=m["withdrawn_at"],
    )


def month(at: datetime) -> str:
    """The calendar month of a time, as the metrics name it: ``2026-12``."""
    return f"{at:%Y-%m}"


class AcceptanceStore:
    """Early adopters' acceptances on one database engine (the queue's)."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def accept(
        self,
        *,
        ticket_id: int,
        team: str,
        ngi: str,
        major_release: str | None,
        actor: str,
        at: datetime,
        transaction_id: int,
    ) -> bool:
        """Record that ``team`` accepted the release (RT's ``actor`` added it at ``at`` in
        ``transaction_id``). False, and nothing changed, when the team's acceptance stands
        already or this transaction was recorded before (a job run again)."""
        acc = tables.early_adopter_acceptances
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    acc.insert().values(
                        ticket_id=ticket_id,
                        team=team,
                        ngi=ngi,
                        major_release=major_release,
                        accepted_by=actor,
                        accepted_at=at,
                        transaction_id=transaction_id,
                    )
                )
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.ACCEPTANCE_RECORDED,
                            ticket_id=ticket_id,
                            actor=actor,
                            transaction_id=transaction_id,
                            data={"detail": f"{team} ({ngi}) accepted the staged rollout",
                                  "team": team, "ngi": ngi, "major_release": major_release},
                        )
                    ],
                    now=self.clock(),
                )  # fmt: skip
        except sa.exc.IntegrityError:
            logger.debug("team %s's acceptance of #%s stands already", team, ticket_id)
            return False
        return True

    def withdraw(
        self, *, ticket_id: int, team: str, actor: str, at: datetime, transaction_id: int
    ) -> bool:
        """Mark the team's standing acceptance of the release withdrawn; False when none
        stands."""
        acc = tables.early_adopter_acceptances
        with self.engine.begin() as conn:
            result = conn.execute(
                acc.update()
                .where(
                    acc.c.ticket_id == ticket_id,
                    acc.c.team == team,
                    acc.c.withdrawn_at.is_(None),
                )
                .values(
                    withdrawn_by=actor, withdrawn_at=at, withdrawn_transaction_id=transaction_id
                )
            )
            if result.rowcount:
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.ACCEPTANCE_WITHDRAWN,
                            ticket_id=ticket_id,
                            actor=actor,
                            transaction_id=transaction_id,
                            data={"detail": f"{team} withdrew from the staged rollout",
                                  "team": team},
                        )
                    ],
                    now=self.clock(),
                )  # fmt: skip
        return bool(result.rowcount)

    def of_release(self, ticket_id: int, *, standing_only: bool = True) -> tuple[Acceptance, ...]:
        """The release's acceptances, oldest first (only those that stand, unless asked)."""
        acc = tables.early_adopter_acceptances
        stmt = sa.select(acc).where(acc.c.ticket_id == ticket_id).order_by(acc.c.id)
        if standing_only:
            stmt = stmt.where(acc.c.withdrawn_at.is_(None))
        with self.engine.begin() as conn:
            return tuple(_acceptance(r) for r in conn.execute(stmt).all())

    # -- metrics ---------------------------------------------------------------------------

    def _standing_between(self, since: datetime | None, until: datetime | None) -> list[Acceptance]:
        acc = tables.early_adopter_acceptances
        stmt = sa.select(acc).where(acc.c.withdrawn_at.is_(None)).order_by(acc.c.accepted_at)
        if since is not None:
            stmt = stmt.where(acc.c.accepted_at >= since)
        if until is not None:
            stmt = stmt.where(acc.c.accepted_at < until)
        with self.engine.begin() as conn:
            return [_acceptance(r) for r in conn.execute(stmt).all()]

    def teams_per_release(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Mapping[int, tuple[str, ...]]:
        """Ticket → the teams whose acceptance stands, in the order they accepted (accepted
        in ``[since, until)`` when given)."""
        teams: dict[int, list[str]] = defaultdict(list)
        for acceptance in self._standing_between(since, until):
            teams[acceptance.ticket_id].append(acceptance.team)
        return {ticket: tuple(names) for ticket, names in teams.items()}

    def releases_per_team_per_month(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Mapping[tuple[str, str], int]:
        """(team, month) → how many releases the team accepted that month."""
        return self._count(lambda a: a.team, since, until)

    def releases_per_ngi_per_month(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> Mapping[tuple[str, str], int]:
        """(NGI, month) → how many releases teams of the NGI accepted that month (a release
        two teams of one NGI accepted counts once)."""
        return self._count(lambda a: a.ngi, since, until)

    def _count(
        self, key: Callable[[Acceptance], str], since: datetime | None, until: datetime | None
    ) -> Mapping[tuple[str, str], int]:
        releases: dict[tuple[str, str], set[int]] = defaultdict(set)
        for acceptance in self._standing_between(since, until):
            releases[(key(acceptance), month(acceptance.accepted_at))].add(acceptance.ticket_id)
        return {k: len(v) for k, v in sorted(releases.items())}
