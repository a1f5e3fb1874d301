"""The provisioning metrics' records: the question asked (``Query``) and the answer
(``MetricsReport``, with its ``Durations`` and ``ReleaseUptake``), as frozen records.

Records only: no rule of how a figure is counted (``rules``, ``compute``) and no formatting
(``render``). Times are naive UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

REPO_1 = "M.REPO-1"
REPO_2 = "M.REPO-2"
REPO_3 = "M.REPO-3"
SA_1 = "M.SA1.3-1"
SA_2 = "M.SA1.3-2"
SA_3 = "M.SA1.3-3"
SA_4 = "M.SA1.3-4"
SA_5 = "M.SA1.3-5"
SA_6 = "M.SA1.3-6"
SA_7 = "M.SA1.3-7"
MONTHLY_METRICS: tuple[str, ...] = (REPO_1, REPO_2, REPO_3, SA_2, SA_3)
TITLES: Mapping[str, str] = {
    REPO_1: "releases delivered",
    REPO_2: "releases that passed verification",
    REPO_3: "releases that passed staged rollout",
    SA_1: "early-adopter teams per release",
    SA_2: "releases with success in staged rollout",
    SA_3: "releases rejected in staged rollout",
    SA_4: "StageRollout to Production",
    SA_5: "accepted (Production) to the staged-rollout report",
    SA_6: "releases each early-adopter team accepted per month",
    SA_7: "releases each NGI's teams accepted per month",
}


@dataclass(frozen=True, kw_only=True)
class Query:
    """The period ``[since, until)`` (naive UTC; None: from the earliest record's month,
    through the current month) and the major release to count only (None: all)."""

    since: datetime | None = None
    until: datetime | None = None
    major_release: str | None = None


@dataclass(frozen=True, kw_only=True)
class Durations:
    """Samples in seconds (ascending), their number, median and nearest-rank 90th percentile
    (both None when there is no sample)."""

    n: int
    median_seconds: float | None
    p90_seconds: float | None
    samples: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class ReleaseUptake:
    """M.SA1.3-1 for one release that entered StageRollout in the period: the teams whose
    acceptance stands (team → when it accepted) and the teams whose members fetched it from a
    protected area (team → first fetch)."""

    ticket_id: int
    major_release: str | None
    entered_stage_rollout: datetime
    teams_accepted: Mapping[str, datetime]
    teams_fetched: Mapping[str, datetime]


@dataclass(frozen=True, kw_only=True)
class MetricsReport:
    """Every metric for one ``query``; ``query`` holds the resolved period (never None
    there), ``months`` every month of it (``YYYY-MM``)."""

    query: Query
    months: tuple[str, ...]
    monthly: Mapping[str, Mapping[str, int]]  # metric id -> month -> releases
    uptake: tuple[ReleaseUptake, ...]  # M.SA1.3-1, by ticket id
    stage_to_production: Durations  # M.SA1.3-4
    production_to_report: Durations  # M.SA1.3-5
    per_team: Mapping[str, Mapping[str, int]]  # M.SA1.3-6: team -> month -> releases
    per_ngi: Mapping[str, Mapping[str, int]]  # M.SA1.3-7: NGI -> month -> releases
    time_in_state: Mapping[str, Durations]  # state label -> durations of stays that ended
    lead_time: Durations  # Submitted -> first Production
