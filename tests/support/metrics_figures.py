"""A metrics report in the shape of ``metrics_seed.EXPECTED``, so a test compares every figure
with one assertion: ``assert figures_of(found, expected) == expected``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repo_daemon.metrics import report


def _three(d: report.Durations) -> tuple[int, float | None, float | None]:
    return d.n, d.median_seconds, d.p90_seconds


def _nonzero(grid: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """EXPECTED lists only the months with at least one release; the report lists them all."""
    return {name: {m: n for m, n in counts.items() if n} for name, counts in grid.items()}


def figures_of(found: report.MetricsReport, expected: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of ``found`` that ``expected`` names, as ``metrics_seed`` writes them."""
    every: dict[str, Any] = {
        "months": found.months,
        "monthly": {
            metric: tuple(found.monthly[metric][m] for m in found.months)
            for metric in expected.get("monthly", ())
        },
        "M.SA1.3-1": {
            u.ticket_id: (len(u.teams_accepted), len(u.teams_fetched)) for u in found.uptake
        },
        "M.SA1.3-4": _three(found.stage_to_production),
        "M.SA1.3-5": _three(found.production_to_report),
        "M.SA1.3-6": _nonzero(found.per_team),
        "M.SA1.3-7": _nonzero(found.per_ngi),
        "time_in_state": {s: _three(d) for s, d in found.time_in_state.items() if d.n},
        "lead_time": _three(found.lead_time),
    }
    return {key: every[key] for key in expected}
