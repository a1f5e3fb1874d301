"""How the releases' timelines count, pure: the stays of every release in time order → the
moments the metrics count each release at (``moments``: ticket → moment, per metric), and one
release's (``milestones``). One rule per metric, written once (docs/metrics.md).

A stay is ``(state label, entered_at)``; the stays of a release are ordered by
``(entered_at, id)``, and the first one is its Submitted stay (the ticket's creation). No I/O,
no clock, no period: ``compute`` decides which moments fall in the period. ``moments`` works
in comprehensions over all the stays at once (no call per stay): 10,000 releases' ~50,000
stays take milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bridge import records

STAGE_ROLLOUT = records.RolloutState.STAGE_ROLLOUT.label
PRODUCTION = records.RolloutState.PRODUCTION.label
REJECTED = records.RolloutState.REJECTED.label
# Entering one of these means QC's verification was passed (M.REPO-2).
PAST_VERIFICATION = frozenset(
    {STAGE_ROLLOUT, records.RolloutState.DEFERRED.label, PRODUCTION}
)  # fmt: skip

Stay = tuple[str, datetime]
# A stay of any release: (ticket_id, entered_at, ...) with the state label at index 3; rows are
# ordered by (ticket_id, entered_at, id). The other fields are not looked at.
TicketStay = tuple[int, datetime, Any, str, Any]


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


@dataclass(frozen=True, kw_only=True)
class Moments:
    """Per metric, ticket → when the release did what it counts (absent: it never did)."""

    delivered: Mapping[int, datetime]
    verified: Mapping[int, datetime]
    entered_stage: Mapping[int, datetime]
    # ticket → (the Production entry, the start of the StageRollout stay just before it)
    passed_stage: Mapping[int, tuple[datetime, datetime]]
    rejected_in_stage: Mapping[int, datetime]
    first_production: Mapping[int, datetime]


def moments(rows: Sequence[TicketStay]) -> Moments:
    """The moments of every release's timeline; ``rows`` are the stays of all releases ordered
    by ``(ticket_id, entered_at, id)``. Each dict is built over the rows reversed, so that the
    earliest matching stay of a ticket is the one left standing."""
    backwards = rows[::-1]
    # Stays whose previous stay (same ticket) was StageRollout: (ticket, at, from, state).
    after_stage = [
        (cur[0], cur[1], prev[1], cur[3])
        for prev, cur in itertools.pairwise(rows)
        if prev[3] == STAGE_ROLLOUT and prev[0] == cur[0]
    ][::-1]
    return Moments(
        delivered={r[0]: r[1] for r in backwards},
        verified={r[0]: r[1] for r in backwards if r[3] in PAST_VERIFICATION},
        entered_stage={r[0]: r[1] for r in backwards if r[3] == STAGE_ROLLOUT},
        passed_stage={t: (at, since) for t, at, since, state in after_stage if state == PRODUCTION},
        rejected_in_stage={t: at for t, at, _, state in after_stage if state == REJECTED},
        first_production={r[0]: r[1] for r in backwards if r[3] == PRODUCTION},
    )


def milestones(stays: Sequence[Stay]) -> Milestones:
    """The moments of one release's timeline (``stays`` in time order) the metrics count."""
    found = moments([(0, at, i, state, None) for i, (state, at) in enumerate(stays)])
    passed = found.passed_stage.get(0)
    return Milestones(
        delivered=found.delivered.get(0),
        verified=found.verified.get(0),
        entered_stage=found.entered_stage.get(0),
        passed_stage=passed[0] if passed is not None else None,
        passed_stage_from=passed[1] if passed is not None else None,
        rejected_in_stage=found.rejected_in_stage.get(0),
        first_production=found.first_production.get(0),
    )


def report_delay(production: datetime, report_at: datetime) -> float:
    """M.SA1.3-5's seconds from the Production entry to the staged-rollout report; a report
    filled in before the acceptance counts as 0."""
    return max(0.0, (report_at - production).total_seconds())
