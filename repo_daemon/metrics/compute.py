"""The provisioning metrics computed from the bridge's records (``compute``): the stays of
``state_history``, ``releases`` (major release, the staged-rollout report's time), the
standing ``early_adopter_acceptances`` and the ``release_fetches``, read in four queries of
the columns needed, then counted in Python by ``rules`` and ``stats``.

It only reads, and never the event log (a million events must not slow the metrics down).
The rules are in ``rules``; docs/metrics.md says them in words. Times are naive UTC.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.store import tables
from repo_daemon.metrics import period, report, rules, stats

logger = logging.getLogger(__name__)

STATES: tuple[str, ...] = tuple(s.label for s in records.RolloutState)


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _of_major(query: report.Query) -> sa.Select[Any] | None:
    """The tickets of the query's major release (None: every release counts)."""
    if query.major_release is None:
        return None
    rel = tables.releases
    return sa.select(rel.c.ticket_id).where(rel.c.major_release == query.major_release)


def _stays(conn: sa.Connection, tickets: sa.Select[Any] | None) -> Sequence[Any]:
    sh = tables.state_history
    stmt = sa.select(sh.c.ticket_id, sh.c.state, sh.c.entered_at, sh.c.left_at).order_by(
        sh.c.ticket_id, sh.c.entered_at, sh.c.id
    )
    if tickets is not None:
        stmt = stmt.where(sh.c.ticket_id.in_(tickets))
    return conn.execute(stmt).all()


class _Counter:
    """Month → releases for one metric, over the period's months (zeros included)."""

    def __init__(self, since: datetime, until: datetime, months: tuple[str, ...]) -> None:
        self.since, self.until = since, until
        self.counts: dict[str, int] = dict.fromkeys(months, 0)

    def inside(self, at: datetime | None) -> bool:
        return at is not None and self.since <= at < self.until

    def add(self, at: datetime | None) -> None:
        if at is not None and self.since <= at < self.until:
            self.counts[period.month_of(at)] += 1


def compute(
    engine: sa.Engine, query: report.Query, *, now: datetime | None = None
) -> report.MetricsReport:
    """Every metric of ``query``'s period and major release from the records in ``engine``
    (docs/metrics.md). ``now`` (naive UTC; default the clock) ends a period without
    ``until`` with the current month. Raises ``period.PeriodInvalid`` for an empty period
    given by both bounds."""
    period.check_order(query.since, query.until, what="the period")
    now = now if now is not None else _utcnow()
    tickets = _of_major(query)
    rel, acc, fetched = tables.releases, tables.early_adopter_acceptances, tables.release_fetches
    with engine.connect() as conn:
        stay_rows = _stays(conn, tickets)
        release_stmt = sa.select(rel.c.ticket_id, rel.c.major_release, rel.c.stage_report_at)
        acc_stmt = sa.select(acc.c.ticket_id, acc.c.team, acc.c.ngi, acc.c.accepted_at).where(
            acc.c.withdrawn_at.is_(None)
        )
        if query.major_release is not None:
            release_stmt = release_stmt.where(rel.c.major_release == query.major_release)
        if tickets is not None:
            acc_stmt = acc_stmt.where(acc.c.ticket_id.in_(tickets))
        release_rows = conn.execute(release_stmt).all()
        acceptance_rows = conn.execute(acc_stmt.order_by(acc.c.accepted_at, acc.c.id)).all()
        earliest = min((r.entered_at for r in stay_rows), default=None)
        since, until = period.resolve(query.since, query.until, earliest=earliest, now=now)
        # Only the releases that may have entered StageRollout in the period have uptake.
        sh = tables.state_history
        staged = sa.select(sh.c.ticket_id).where(
            sh.c.state == rules.STAGE_ROLLOUT, sh.c.entered_at >= since, sh.c.entered_at < until
        )
        fetch_rows = conn.execute(
            sa.select(fetched.c.ticket_id, fetched.c.teams, fetched.c.first_at).where(
                fetched.c.ticket_id.in_(staged)
            )
        ).all()
    months = period.months(since, until)
    resolved = report.Query(since=since, until=until, major_release=query.major_release)
    return _count(
        resolved, months, stay_rows, release_rows, acceptance_rows, fetch_rows
    )  # fmt: skip


def _count(
    query: report.Query,
    months: tuple[str, ...],
    stay_rows: Sequence[Any],
    release_rows: Sequence[Any],
    acceptance_rows: Sequence[Any],
    fetch_rows: Sequence[Any],
) -> report.MetricsReport:
    assert query.since is not None and query.until is not None
    since, until = query.since, query.until
    counters = {m: _Counter(since, until, months) for m in report.MONTHLY_METRICS}
    majors: dict[int, str | None] = {}
    report_at: dict[int, datetime] = {}
    for ticket_id, major, stage_report_at in release_rows:
        majors[ticket_id] = major
        if stage_report_at is not None:
            report_at[ticket_id] = stage_report_at
    in_state: dict[str, list[float]] = {s: [] for s in STATES}
    stage_to_production: list[float] = []
    production_to_report: list[float] = []
    lead: list[float] = []
    entered_stage: dict[int, datetime] = {}
    current: int | None = None
    timeline: list[rules.Stay] = []

    def close(ticket_id: int, stays: list[rules.Stay]) -> None:
        found = rules.milestones(stays)
        counters[report.REPO_1].add(found.delivered)
        counters[report.REPO_2].add(found.verified)
        counters[report.REPO_3].add(found.passed_stage)
        counters[report.SA_2].add(found.passed_stage)
        counters[report.SA_3].add(found.rejected_in_stage)
        passed, passed_from = found.passed_stage, found.passed_stage_from
        if passed is not None and passed_from is not None and since <= passed < until:
            stage_to_production.append((passed - passed_from).total_seconds())
            if ticket_id in report_at:
                production_to_report.append(rules.report_delay(passed, report_at[ticket_id]))
        production = found.first_production
        if production is not None and found.delivered is not None and since <= production < until:
            lead.append((production - found.delivered).total_seconds())
        if found.entered_stage is not None and since <= found.entered_stage < until:
            entered_stage[ticket_id] = found.entered_stage

    for ticket_id, state, entered_at, left_at in stay_rows:
        if ticket_id != current:
            if current is not None:
                close(current, timeline)
            current, timeline = ticket_id, []
        timeline.append((state, entered_at))
        if left_at is not None and since <= left_at < until:
            in_state.setdefault(state, []).append((left_at - entered_at).total_seconds())
    if current is not None:
        close(current, timeline)

    accepted: dict[int, dict[str, datetime]] = defaultdict(dict)
    team_releases: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    ngi_releases: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for ticket_id, team, ngi, accepted_at in acceptance_rows:
        if ticket_id in entered_stage:
            accepted[ticket_id].setdefault(team, accepted_at)
        if since <= accepted_at < until:
            month = period.month_of(accepted_at)
            team_releases[team][month].add(ticket_id)
            ngi_releases[ngi][month].add(ticket_id)
    fetched: dict[int, dict[str, datetime]] = defaultdict(dict)
    for ticket_id, teams, first_at in fetch_rows:
        if ticket_id not in entered_stage:
            continue
        by_team = fetched[ticket_id]
        for team in (t for t in str(teams).split(",") if t):
            if team not in by_team or first_at < by_team[team]:
                by_team[team] = first_at
    uptake = tuple(
        report.ReleaseUptake(
            ticket_id=ticket_id,
            major_release=majors.get(ticket_id),
            entered_stage_rollout=at,
            teams_accepted=dict(accepted.get(ticket_id, {})),
            teams_fetched=dict(sorted(fetched.get(ticket_id, {}).items(), key=_by_time)),
        )
        for ticket_id, at in sorted(entered_stage.items())
    )
    return report.MetricsReport(
        query=query,
        months=months,
        monthly={m: dict(c.counts) for m, c in counters.items()},
        uptake=uptake,
        stage_to_production=stats.durations(stage_to_production),
        production_to_report=stats.durations(production_to_report),
        per_team=_grid(team_releases, months),
        per_ngi=_grid(ngi_releases, months),
        time_in_state={s: stats.durations(v) for s, v in in_state.items()},
        lead_time=stats.durations(lead),
    )


def _by_time(item: tuple[str, datetime]) -> tuple[datetime, str]:
    return item[1], item[0]


def _grid(
    found: Mapping[str, Mapping[str, set[int]]], months: tuple[str, ...]
) -> Mapping[str, Mapping[str, int]]:
    """Name → month → distinct releases, every month of the period listed, names sorted."""
    return {name: {m: len(found[name].get(m, ())) for m in months} for name in sorted(found)}
