"""The provisioning metrics computed from the bridge's records (``compute``): the stays of
``state_history``, ``releases`` (major release, the staged-rollout report's time), the
standing ``early_adopter_acceptances`` and the ``release_fetches``, read in four queries of
the columns needed, then counted in Python by ``rules`` and ``stats``.

It only reads, and never the event log (a million events must not slow the metrics down).
The rules are in ``rules``; docs/metrics.md says them in words. Times are naive UTC.
"""

from __future__ import annotations

import bisect
import logging
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def _plain(conn: sa.Connection, stmt: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``stmt`` as the driver gives them: plain tuples, no SQLAlchemy ``Row`` and no
    result processing (SQLite's times come as their stored text: see ``_times``)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _times(conn: sa.Connection) -> Callable[[Any], Any]:
    """How a time column's raw value becomes a naive UTC datetime on ``conn``'s database:
    SQLite stores ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text (``datetime.fromisoformat``, in C);
    PostgreSQL's driver gives datetimes already. None stays None."""
    if conn.dialect.name != "sqlite":
        return lambda value: value
    parse = datetime.fromisoformat
    return lambda value: parse(value) if value is not None else None


def _stays(
    conn: sa.Connection, tickets: sa.Select[Any] | None
) -> list[tuple[int, datetime, int, str, datetime | None]]:
    """Every stay as ``(ticket_id, entered_at, id, state, left_at)``, ordered by ticket, then
    time, then id (sorted here: cheaper than SQLite's ORDER BY without an index for it)."""
    sh = tables.state_history
    stmt = sa.select(sh.c.ticket_id, sh.c.entered_at, sh.c.id, sh.c.state, sh.c.left_at)
    if tickets is not None:
        stmt = stmt.where(sh.c.ticket_id.in_(tickets))
    raw = _plain(conn, stmt)
    if conn.dialect.name == "sqlite":
        parse = datetime.fromisoformat
        rows = [(t, parse(e), i, s, parse(left) if left is not None else None)
                for t, e, i, s, left in raw]  # fmt: skip
    else:
        rows = raw
    rows.sort()
    return rows


class _Months:
    """Counts of moments per month of the period (zeros included), by bisecting the sorted
    moments at the months' bounds: no call per moment."""

    def __init__(self, since: datetime, until: datetime, months: tuple[str, ...]) -> None:
        self.months = months
        starts = [datetime(int(m[:4]), int(m[5:7]), 1) for m in months[1:]]
        self.bounds = [since, *starts, until]

    def counts(self, moments: Iterable[datetime]) -> dict[str, int]:
        ordered = sorted(moments)
        at = [bisect.bisect_left(ordered, b) for b in self.bounds]
        return {m: at[k + 1] - at[k] for k, m in enumerate(self.months)}

    def month(self, moment: datetime) -> str:
        """The month of a moment inside the period."""
        return self.months[bisect.bisect_right(self.bounds, moment) - 1]


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
        time = _times(conn)
        stay_rows = _stays(conn, tickets)
        release_stmt = sa.select(rel.c.ticket_id, rel.c.major_release, rel.c.stage_report_at)
        acc_stmt = sa.select(acc.c.ticket_id, acc.c.team, acc.c.ngi, acc.c.accepted_at).where(
            acc.c.withdrawn_at.is_(None)
        )
        if query.major_release is not None:
            release_stmt = release_stmt.where(rel.c.major_release == query.major_release)
        if tickets is not None:
            acc_stmt = acc_stmt.where(acc.c.ticket_id.in_(tickets))
        release_rows = [(t, major, time(at)) for t, major, at in _plain(conn, release_stmt)]
        acceptance_rows = [
            (t, team, ngi, time(at))
            for t, team, ngi, at in _plain(conn, acc_stmt.order_by(acc.c.accepted_at, acc.c.id))
        ]
        earliest = min(map(operator.itemgetter(1), stay_rows), default=None)
        since, until = period.resolve(query.since, query.until, earliest=earliest, now=now)
        # Only the releases that may have entered StageRollout in the period have uptake.
        sh = tables.state_history
        staged = sa.select(sh.c.ticket_id).where(
            sh.c.state == rules.STAGE_ROLLOUT, sh.c.entered_at >= since, sh.c.entered_at < until
        )
        fetch_stmt = sa.select(fetched.c.ticket_id, fetched.c.teams, fetched.c.first_at).where(
            fetched.c.ticket_id.in_(staged)
        )
        fetch_rows = [(t, teams, time(at)) for t, teams, at in _plain(conn, fetch_stmt)]
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
    per_month = _Months(since, until, months)
    majors: dict[int, str | None] = {}
    report_at: dict[int, datetime] = {}
    for ticket_id, major, stage_report_at in release_rows:
        majors[ticket_id] = major
        if stage_report_at is not None:
            report_at[ticket_id] = stage_report_at
    found = rules.moments(stay_rows)
    passed = {t: moment for t, moment in found.passed_stage.items() if since <= moment[0] < until}
    stage_to_production = [(at - start).total_seconds() for at, start in passed.values()]
    production_to_report = [
        rules.report_delay(at, report_at[t]) for t, (at, _) in passed.items() if t in report_at
    ]
    delivered = found.delivered
    lead = [
        (at - delivered[t]).total_seconds()
        for t, at in found.first_production.items()
        if since <= at < until
    ]
    entered_stage = {t: at for t, at in found.entered_stage.items() if since <= at < until}
    passed_at = [at for at, _ in found.passed_stage.values()]
    monthly = {
        report.REPO_1: per_month.counts(_inside(delivered.values(), since, until)),
        report.REPO_2: per_month.counts(_inside(found.verified.values(), since, until)),
        report.REPO_3: per_month.counts(_inside(passed_at, since, until)),
        report.SA_2: per_month.counts(_inside(passed_at, since, until)),
        report.SA_3: per_month.counts(_inside(found.rejected_in_stage.values(), since, until)),
    }
    in_state: dict[str, list[float]] = {s: [] for s in STATES}
    for _, entered_at, _, state, left_at in stay_rows:
        if left_at is not None and since <= left_at < until:
            in_state.setdefault(state, []).append((left_at - entered_at).total_seconds())

    accepted: dict[int, dict[str, datetime]] = defaultdict(dict)
    team_releases: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    ngi_releases: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for ticket_id, team, ngi, accepted_at in acceptance_rows:
        if ticket_id in entered_stage:
            accepted[ticket_id].setdefault(team, accepted_at)
        if since <= accepted_at < until:
            month = per_month.month(accepted_at)
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
        monthly={m: monthly[m] for m in report.MONTHLY_METRICS},
        uptake=uptake,
        stage_to_production=stats.durations(stage_to_production),
        production_to_report=stats.durations(production_to_report),
        per_team=_grid(team_releases, months),
        per_ngi=_grid(ngi_releases, months),
        time_in_state={s: stats.durations(v) for s, v in in_state.items()},
        lead_time=stats.durations(lead),
    )


def _inside(moments: Iterable[datetime], since: datetime, until: datetime) -> list[datetime]:
    return [at for at in moments if since <= at < until]


def _by_time(item: tuple[str, datetime]) -> tuple[datetime, str]:
    return item[1], item[0]


def _grid(
    found: Mapping[str, Mapping[str, set[int]]], months: tuple[str, ...]
) -> Mapping[str, Mapping[str, int]]:
    """Name → month → distinct releases, every month of the period listed, names sorted."""
    return {name: {m: len(found[name].get(m, ())) for m in months} for name in sorted(found)}
