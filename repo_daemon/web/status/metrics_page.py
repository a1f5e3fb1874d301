"""The metrics page's data: the form (``from``, ``to``, ``major_release``, the same parameters
as ``GET /api/metrics``) read and checked, the report of ``repo_daemon.metrics.compute`` for
it, its plots (``plots``) with the text that describes each, and the download links.

It computes no metric and reads no period itself (``repo_daemon.metrics``' ``compute`` and
``period`` do) and renders no HTML (the template does).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

import sqlalchemy as sa

from repo_daemon.metrics import compute, period, report
from repo_daemon.web.status import display, plots

API_PATH = "/api/metrics"
# The monthly counts, in the page's order, with what each counts.
MONTHLY: Mapping[str, str] = {
    "M.REPO-1": "delivered",
    "M.REPO-2": "passed verification",
    "M.REPO-3": "passed staged rollout",
    "M.SA1.3-2": "success in staged rollout",
    "M.SA1.3-3": "rejected in staged rollout",
}
PLOTTED = ("M.REPO-1", "M.REPO-2", "M.REPO-3")
MAX_MAJOR_RELEASE = 100


@dataclass(frozen=True, kw_only=True)
class Form:
    """What the form asked for, as typed (shown back in the form) and as a period."""

    since_text: str = ""
    until_text: str = ""
    major_release: str = ""
    since: datetime | None = None
    until: datetime | None = None
    problems: tuple[str, ...] = ()

    @classmethod
    def read(cls, params: Mapping[str, str]) -> Form:
        """The form from the query parameters; every problem is collected in ``problems``."""
        since_text = params.get("from", "").strip()
        until_text = params.get("to", "").strip()
        major = params.get("major_release", "").strip()
        problems: list[str] = []
        since = until = None
        for name, text, read in (
            ("From", since_text, period.parse_from),
            ("To", until_text, period.parse_to),
        ):
            if not text:
                continue
            try:
                moment = read(text)
            except period.PeriodInvalid as exc:
                problems.append(f"{name}: {exc}")
                continue
            if read is period.parse_to:
                until = moment
            else:
                since = moment
        try:
            period.check_order(since, until, what="From to To")
        except period.PeriodInvalid as exc:
            problems.append(str(exc))
        if len(major) > MAX_MAJOR_RELEASE:
            problems.append(f"Major release: longer than {MAX_MAJOR_RELEASE} characters")
        return cls(
            since_text=since_text,
            until_text=until_text,
            major_release=major,
            since=since,
            until=until,
            problems=tuple(problems),
        )

    def query(self) -> report.Query:
        return report.Query(
            since=self.since, until=self.until, major_release=self.major_release or None
        )

    def download(self, format: str) -> str:
        """The metrics API's URL for this period in ``format`` (csv or json)."""
        params = {"from": self.since_text, "to": self.until_text,
                  "major_release": self.major_release}  # fmt: skip
        kept = {k: v for k, v in params.items() if v}
        return f"{API_PATH}?{urlencode({**kept, 'format': format})}"


@dataclass(frozen=True, kw_only=True)
class MetricsView:
    """The page: the report, its two plots with their descriptions, and the downloads."""

    report: report.MetricsReport
    monthly_svg: str
    monthly_summary: str
    states_svg: str
    states_summary: str
    downloads: Mapping[str, str]


def build(engine: sa.Engine, form: Form, *, now: datetime) -> MetricsView:
    """The metrics for ``form``'s period, with plots."""
    found = compute.compute(engine, form.query(), now=now)
    monthly_summary = _monthly_summary(found)
    states_summary = _states_summary(found)
    series = {f"{key} {MONTHLY[key]}": found.monthly.get(key, {}) for key in PLOTTED}
    return MetricsView(
        report=found,
        monthly_svg=plots.monthly_bars(
            found.months,
            series,
            key="monthly",
            title="Releases per month",
            desc=monthly_summary,
        ),
        monthly_summary=monthly_summary,
        states_svg=plots.duration_boxes(
            {state: d.samples for state, d in found.time_in_state.items()},
            key="states",
            title="Time spent in each state",
            desc=states_summary,
        ),
        states_summary=states_summary,
        downloads={"CSV": form.download("csv"), "JSON": form.download("json")},
    )


def _monthly_summary(found: report.MetricsReport) -> str:
    months = found.months
    if not months:
        return "The period has no month."
    parts = []
    for key in PLOTTED:
        counts = found.monthly.get(key, {})
        total = sum(counts.get(m, 0) for m in months)
        text = f"{total} {MONTHLY[key]}"
        if total:
            best = max(months, key=lambda m: counts.get(m, 0))
            text += f" (most in {best}: {counts.get(best, 0)})"
        parts.append(text)
    period = months[0] if len(months) == 1 else f"{months[0]} to {months[-1]}"
    return f"{len(months)} month(s), {period}: " + "; ".join(parts) + "."


def _states_summary(found: report.MetricsReport) -> str:
    parts = [
        f"{state} median {display.duration(d.median_seconds)}, p90 "
        f"{display.duration(d.p90_seconds)} (n={d.n})"
        for state, d in found.time_in_state.items()
        if d.n
    ]
    if not parts:
        return "No stay in any state ended in the period."
    return "Stays that ended in the period: " + "; ".join(parts) + "."
