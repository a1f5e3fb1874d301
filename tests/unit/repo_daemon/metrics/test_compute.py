"""``compute`` on small histories (in-memory SQLite): what counts and in which month,
withdrawn acceptances, the report before the acceptance, the period's edges, the major release,
teams and NGIs, fetches, time in state and the defaults of the period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from repo_daemon.metrics import compute, report
from tests.support import metrics_seed as seed
from tests.unit.repo_daemon.metrics.conftest import T0, story

DAY = timedelta(days=1)
PASS = ("Unverified", "InVerification", "StageRollout", "Production")
JAN = report.Query(since=datetime(2026, 1, 1), until=datetime(2026, 2, 1))
Q1 = report.Query(since=datetime(2026, 1, 1), until=datetime(2026, 4, 1))


def _accept(
    team: str, ngi: str, at: datetime, withdrawn: datetime | None = None
) -> seed.TeamAcceptance:
    return seed.TeamAcceptance(
        team=team, ngi=ngi, at=at, actor=f"{team}-lead", withdrawn_at=withdrawn
    )


def test_each_release_counts_once_in_the_month_of_its_event(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    # Created 2026-01-05; StageRollout on 01-08; Production 30 days later (in February).
    write(story(1, *PASS[:3], "Production", step=DAY), story(2, *PASS, start=T0 + 10 * DAY))
    later = story(3, "Unverified", "InVerification", "StageRollout", start=datetime(2026, 1, 20),
                  step=timedelta(days=6))  # fmt: skip
    write(later)
    found = compute.compute(engine, Q1)
    assert found.months == ("2026-01", "2026-02", "2026-03")
    assert found.monthly[report.REPO_1] == {"2026-01": 3, "2026-02": 0, "2026-03": 0}
    assert found.monthly[report.REPO_2] == {"2026-01": 2, "2026-02": 1, "2026-03": 0}
    assert found.monthly[report.REPO_3] == {"2026-01": 2, "2026-02": 0, "2026-03": 0}
    assert found.monthly[report.SA_2] == found.monthly[report.REPO_3]


def test_withdrawn_acceptances_do_not_count_and_a_new_acceptance_does(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    sr = T0 + 3 * DAY
    acceptances = (
        _accept("de-kit", "NGI_DE", sr + timedelta(hours=1), withdrawn=sr + timedelta(hours=2)),
        _accept("it-infn", "NGI_IT", sr + timedelta(hours=1), withdrawn=sr + timedelta(hours=2)),
        _accept("it-infn", "NGI_IT", sr + timedelta(hours=5)),  # accepted again
    )
    write(story(1, *PASS, acceptances=acceptances))
    found = compute.compute(engine, JAN)
    assert [dict(u.teams_accepted) for u in found.uptake] == [{"it-infn": sr + timedelta(hours=5)}]
    assert found.per_team == {"it-infn": {"2026-01": 1}}
    assert found.per_ngi == {"NGI_IT": {"2026-01": 1}}


def test_a_release_two_teams_of_one_ngi_accepted_counts_once_for_the_ngi(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    sr = T0 + 3 * DAY
    both = (_accept("de-kit", "NGI_DE", sr), _accept("de-desy", "NGI_DE", sr + DAY))
    write(story(1, *PASS, acceptances=both), story(2, *PASS, acceptances=both[:1]))
    found = compute.compute(engine, JAN)
    assert found.per_team == {"de-desy": {"2026-01": 1}, "de-kit": {"2026-01": 2}}
    assert found.per_ngi == {"NGI_DE": {"2026-01": 2}}
    assert [len(u.teams_accepted) for u in found.uptake] == [2, 1]


def test_the_report_filled_in_before_the_acceptance_counts_zero(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    production = T0 + 4 * DAY
    write(
        story(1, *PASS, report_at=production - DAY),
        story(2, *PASS, report_at=production + 2 * DAY),
        story(3, *PASS),  # no report: no sample
    )
    found = compute.compute(engine, JAN)
    assert found.production_to_report.samples == (0.0, 172_800.0)
    assert found.stage_to_production.samples == (86_400.0,) * 3
    assert found.lead_time.samples == (4 * 86_400.0,) * 3


def test_the_period_includes_its_start_and_excludes_its_end(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    start, end = datetime(2026, 1, 10), datetime(2026, 1, 20)
    write(
        story(1, start=start),  # created at the start: counted
        story(2, start=end),  # created at the end: not counted
        story(3, start=start - timedelta(seconds=1)),
    )
    found = compute.compute(engine, report.Query(since=start, until=end))
    assert found.months == ("2026-01",)
    assert found.monthly[report.REPO_1] == {"2026-01": 1}


def test_a_release_that_entered_stage_rollout_before_the_period_has_no_uptake_in_it(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    write(story(1, *PASS, start=datetime(2025, 12, 10), step=timedelta(days=6)))
    found = compute.compute(engine, JAN)  # StageRollout 2025-12-28, Production 2026-01-03
    assert found.uptake == ()
    assert found.monthly[report.REPO_3] == {"2026-01": 1}
    assert found.stage_to_production.samples == (6 * 86_400.0,)


def test_rejections_count_only_straight_from_stage_rollout(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    write(
        story(1, "Unverified", "InVerification", "StageRollout", "Rejected"),
        story(2, "Unverified", "InVerification", "Rejected"),
        story(3, "Unverified", "InVerification", "StageRollout", "Failed", "Rejected"),
    )
    found = compute.compute(engine, JAN)
    assert found.monthly[report.SA_3] == {"2026-01": 1}
    assert found.monthly[report.REPO_2] == {"2026-01": 2}


def test_the_major_release_filters_every_metric(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    sr = T0 + 3 * DAY
    accepted = (_accept("it-infn", "NGI_IT", sr),)
    write(
        story(1, *PASS, major="UMD-5", acceptances=accepted),
        story(2, *PASS, major="UMD-4", acceptances=accepted, report_at=T0 + 9 * DAY),
        story(3, "Unverified", major="UMD-4"),
    )
    umd5 = compute.compute(
        engine, report.Query(since=JAN.since, until=JAN.until, major_release="UMD-5")
    )
    assert umd5.monthly[report.REPO_1] == {"2026-01": 1}
    assert [u.ticket_id for u in umd5.uptake] == [1]
    assert umd5.per_team == {"it-infn": {"2026-01": 1}}
    assert umd5.production_to_report.n == 0
    assert umd5.time_in_state["Unverified"].n == 1
    umd4 = compute.compute(
        engine, report.Query(since=JAN.since, until=JAN.until, major_release="UMD-4")
    )
    assert umd4.monthly[report.REPO_1] == {"2026-01": 2}
    assert umd4.production_to_report.n == 1
    assert umd4.query.major_release == "UMD-4"


def test_fetches_give_each_team_its_first_fetch_whatever_it_accepted(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    sr = T0 + 3 * DAY
    fetches = (
        seed.TeamFetch(team="de-kit", person="ann", at=sr + timedelta(hours=3)),
        seed.TeamFetch(team="de-kit", person="bea", at=sr + timedelta(hours=1)),
        seed.TeamFetch(team="it-infn", person="cid", at=sr + timedelta(hours=2)),
    )
    write(story(1, *PASS, fetches=fetches))
    # A person in two teams tells both.
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO release_fetches (ticket_id, person, teams, area, first_at) "
            "VALUES (1, 'dan', 'fr-in2p3,de-kit', 'stagerollout/UMD-5', :at)"
        ), {"at": sr})  # fmt: skip
    (uptake,) = compute.compute(engine, JAN).uptake
    assert uptake.teams_accepted == {}
    assert uptake.teams_fetched == {
        "de-kit": sr,
        "fr-in2p3": sr,
        "it-infn": sr + timedelta(hours=2),
    }
    assert uptake.entered_stage_rollout == sr and uptake.major_release == "UMD-5"


def test_time_in_state_counts_the_stays_that_ended_in_the_period(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    write(story(1, "Unverified", "InVerification", start=datetime(2026, 1, 30), step=DAY))
    found = compute.compute(engine, JAN)
    # Submitted ended on 01-31 (in), Unverified on 02-01 (out), InVerification is still open.
    assert found.time_in_state["Submitted"].samples == (86_400.0,)
    assert found.time_in_state["Unverified"].n == 0
    assert found.time_in_state["InVerification"].n == 0
    assert set(found.time_in_state) >= {"Submitted", "Production", "Withdrawn"}


def test_without_bounds_the_period_runs_from_the_earliest_records_month_through_now(
    engine: sa.Engine, write: Callable[..., None]
) -> None:
    write(story(1, start=datetime(2025, 11, 17)))
    found = compute.compute(engine, report.Query(), now=datetime(2026, 1, 3))
    assert found.query.since == datetime(2025, 11, 1)
    assert found.query.until == datetime(2026, 2, 1)
    assert found.months == ("2025-11", "2025-12", "2026-01")
    assert found.monthly[report.REPO_1] == {"2025-11": 1, "2025-12": 0, "2026-01": 0}


def test_an_empty_database_lists_the_months_with_zeros(engine: sa.Engine) -> None:
    found = compute.compute(engine, Q1)
    assert all(set(c.values()) == {0} for c in found.monthly.values())
    assert found.uptake == () and found.per_team == {} and found.lead_time.n == 0
