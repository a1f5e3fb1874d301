"""How one release's timeline counts, pure: its stays in time order → the moments the
metrics count it at (``Milestones``). One rule per metric, written once (docs/metrics.md).

A stay is ``(state label, entered_at)``; the stays of a release are ordered by
``(entered_at, id)``, and the first one is its Submitted stay (the ticket's creation). No I/O,
no clock, no period: ``compute`` decides which moments fall in the period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bridge import records

STAGE_ROLLOUT = records.RolloutState.STAGE_ROLLOUT.label
PRODUCTION = records.RolloutState.PRODUCTION.label
REJECTED = records.RolloutState.REJECTED.label
# Entering one of these means QC's verification was passed (M.REPO-2).
PAST_VERIFICATION = frozenset(
    {STAGE_ROLLOUT, records.RolloutState.DEFERRED.label, PRODUCTION}
)  # fmt: skip

Stay = tuple[str, datetime]


@dataclass(frozen=True, kw_only=True)
class Milestones:
    """When a release did what each metric counts (None: it never did)."""

    delivered: datetime | None  # M.REPO-1: the first stay's entered_at
    verified: datetime | None  # M.REPO-2: first entry into StageRollout, Deferred or Production
    entered_stage: datetime | None  # M.SA1.3-1: first entry into StageRollout
    # M.REPO-3 / M.SA1.3-2/4/5: the first entry into Production straight from StageRollout,
    # and when that StageRollout stay began.
    passed_stage: datetime | None
    passed_stage_from: datetime | None
    rejected_in_stage: datetime | None  # M.SA1.3-3: first Rejected straight from StageRollout
    first_production: datetime | None  # lead time's end: first Production, by any route


def milestones(stays: Sequence[Stay]) -> Milestones:
    """The moments of a release's timeline (``stays`` in time order) the metrics count."""
    verified = entered_stage = passed = passed_from = rejected = production = None
    previous: Stay | None = None
    for stay in stays:
        state, at = stay
        if verified is None and state in PAST_VERIFICATION:
            verified = at
        if state == STAGE_ROLLOUT:
            if entered_stage is None:
                entered_stage = at
        elif state == PRODUCTION:
            if production is None:
                production = at
            if passed is None and previous is not None and previous[0] == STAGE_ROLLOUT:
                passed, passed_from = at, previous[1]
        elif (
            state == REJECTED
            and rejected is None
            and previous is not None
            and previous[0] == STAGE_ROLLOUT
        ):
            rejected = at
        previous = stay
    return Milestones(
        delivered=stays[0][1] if stays else None,
        verified=verified,
        entered_stage=entered_stage,
        passed_stage=passed,
        passed_stage_from=passed_from,
        rejected_in_stage=rejected,
        first_production=production,
    )


def report_delay(production: datetime, report_at: datetime) -> float:
    """M.SA1.3-5's seconds from the Production entry to the staged-rollout report; a report
    filled in before the acceptance counts as 0."""
    return max(0.0, (report_at - production).total_seconds())
