"""One release's timeline → the moments each metric counts it at: first entries, the
previous-stay rules (Production or Rejected straight from StageRollout), the report's delay."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from repo_daemon.metrics import rules

T0 = datetime(2026, 3, 1, 9, 0)


def _stays(*states: str) -> list[rules.Stay]:
    """Submitted at T0, then each state a day after the one before."""
    return [(s, T0 + timedelta(days=n)) for n, s in enumerate(("Submitted", *states))]


def _day(n: int | None) -> datetime | None:
    return None if n is None else T0 + timedelta(days=n)


# (states after Submitted) -> days of (verified, entered_stage, passed_stage, passed_from,
# rejected_in_stage, first_production)
CASES = [
    ("regular", ("Unverified", "InVerification", "StageRollout", "Production"),
     (3, 3, 4, 3, None, 4)),
    ("deferred-first", ("Unverified", "InVerification", "Deferred", "StageRollout", "Production"),
     (3, 4, 5, 4, None, 5)),
    ("emergency-no-rollout", ("Unverified", "InVerification", "Production"),
     (3, None, None, None, None, 3)),
    ("rejected-in-rollout", ("Unverified", "InVerification", "StageRollout", "Rejected"),
     (3, 3, None, None, 4, None)),
    ("rejected-in-verification", ("Unverified", "InVerification", "Rejected"),
     (None, None, None, None, None, None)),
    ("failed-in-rollout-then-retried",
     ("Unverified", "InVerification", "StageRollout", "Failed", "StageRollout", "Production"),
     (3, 3, 6, 5, None, 6)),
    ("failed-promotion-then-rejected",
     ("Unverified", "InVerification", "StageRollout", "Failed", "Rejected"),
     (3, 3, None, None, None, None)),
    ("withdrawn-after-production",
     ("Unverified", "InVerification", "StageRollout", "Production", "Withdrawn"),
     (3, 3, 4, 3, None, 4)),
    ("still-submitted", (), (None, None, None, None, None, None)),
]  # fmt: skip


@pytest.mark.parametrize(("states", "days"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_moments_each_metric_counts(
    states: tuple[str, ...], days: tuple[int | None, ...]
) -> None:
    found = rules.milestones(_stays(*states))
    assert found.delivered == T0
    assert (
        found.verified,
        found.entered_stage,
        found.passed_stage,
        found.passed_stage_from,
        found.rejected_in_stage,
        found.first_production,
    ) == tuple(_day(d) for d in days)


def test_only_the_first_entry_counts() -> None:
    # StageRollout twice straight into Production (a withdrawn release brought back): the
    # first entry into StageRollout and the first Production from it are what count.
    stays = _stays(
        "Unverified", "InVerification", "StageRollout", "Production", "Withdrawn",
        "StageRollout", "Production",
    )  # fmt: skip
    found = rules.milestones(stays)
    assert (found.entered_stage, found.passed_stage) == (_day(3), _day(4))


def test_a_production_entry_not_straight_from_stage_rollout_is_not_a_pass() -> None:
    # Emergency first, staged rollout later: the Production that followed StageRollout counts.
    stays = _stays("Unverified", "InVerification", "Production", "Withdrawn", "StageRollout",
                   "Production")  # fmt: skip
    found = rules.milestones(stays)
    assert (found.first_production, found.passed_stage, found.passed_stage_from) == (
        _day(3), _day(6), _day(5),
    )  # fmt: skip


def test_no_stay_no_moment() -> None:
    assert rules.milestones([]) == rules.Milestones(
        delivered=None, verified=None, entered_stage=None, passed_stage=None,
        passed_stage_from=None, rejected_in_stage=None, first_production=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("report_after", "seconds"),
    [(timedelta(days=3), 259_200.0), (timedelta(0), 0.0), (-timedelta(days=1), 0.0)],
    ids=["after", "at-once", "before-the-acceptance-counts-0"],
)
def test_report_delay(report_after: timedelta, seconds: float) -> None:
    assert rules.report_delay(T0, T0 + report_after) == seconds
