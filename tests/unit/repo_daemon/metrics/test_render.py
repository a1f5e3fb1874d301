"""The renderings of a report: formula-safe CSV (one table, or a row per figure), JSON with
the period, durations in the text table."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest

from repo_daemon.metrics import render, report, stats

T = datetime(2026, 1, 8, 9, 0)


def _report() -> report.MetricsReport:
    months = ("2026-01", "2026-02")
    return report.MetricsReport(
        query=report.Query(since=datetime(2026, 1, 1), until=datetime(2026, 3, 1)),
        months=months,
        monthly={m: {"2026-01": 2, "2026-02": 0} for m in report.MONTHLY_METRICS},
        uptake=(
            report.ReleaseUptake(
                ticket_id=7,
                major_release="UMD-5",
                entered_stage_rollout=T,
                teams_accepted={"=cmd|' /C calc'!A0": T},
                teams_fetched={},
            ),
        ),
        stage_to_production=stats.durations([3600.0, 90_000.0]),
        production_to_report=stats.durations([]),
        per_team={"=cmd|' /C calc'!A0": {"2026-01": 1, "2026-02": 0}},
        per_ngi={"NGI_DE": {"2026-01": 1, "2026-02": 0}},
        time_in_state={"Submitted": stats.durations([60.0])},
        lead_time=stats.durations([]),
    )


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_cells_no_spreadsheet_runs() -> None:
    teams = _csv(render.csv_text(_report(), "teams"))
    assert teams[0] == ["team", "month", "releases"]
    assert teams[1] == ["'=cmd|' /C calc'!A0", "2026-01", "1"]
    uptake = _csv(render.csv_text(_report(), "uptake"))
    assert uptake[1][-2] == "'=cmd|' /C calc'!A0=2026-01-08T09:00:00Z"


def test_the_whole_report_as_csv_is_a_row_per_figure() -> None:
    rows = _csv(render.csv_text(_report()))
    assert tuple(rows[0]) == render.LONG_HEADER
    assert ["monthly", "M.REPO-1", "", "2026-01", "releases", "2"] in rows
    assert ["uptake", "M.SA1.3-1", "7", "2026-01", "teams_accepted", "1"] in rows
    assert ["durations", "M.SA1.3-4", "", "", "median_seconds", "46800.0"] in rows
    assert ["durations", "M.SA1.3-5", "", "", "median_seconds", ""] in rows
    assert ["durations", "time_in_state", "Submitted", "", "n", "1"] in rows


@pytest.mark.parametrize("table", render.TABLES)
def test_each_table_is_a_rectangle(table: str) -> None:
    rows = _csv(render.csv_text(_report(), table))
    assert len({len(r) for r in rows}) == 1


def test_json_holds_the_period_and_exact_seconds() -> None:
    whole = json.loads(render.json_text(_report()))
    assert whole["query"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z",
                              "major_release": None}  # fmt: skip
    assert whole["stage_to_production"] == {
        "n": 2, "median_seconds": 46_800.0, "p90_seconds": 90_000.0, "samples": [3600.0, 90_000.0]
    }  # fmt: skip
    assert whole["uptake"][0]["teams_accepted"] == {"=cmd|' /C calc'!A0": "2026-01-08T09:00:00Z"}
    assert set(json.loads(render.json_text(_report(), "teams"))) == {"query", "months", "per_team"}


def test_an_unknown_table_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="no metrics table 'x'"):
        render.table_rows(_report(), "x")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.0, "00:00:00"), (59.6, "00:01:00"), (90_061.0, "1d 01:01:01")],
)
def test_durations_read_as_days_and_hours(seconds: float | None, text: str) -> None:
    assert render.duration_text(seconds) == text


def test_the_text_table_escapes_names_from_outside() -> None:
    r = _report()
    r = report.MetricsReport(
        **{**r.__dict__, "per_ngi": {"NGI\x1b[31m": {"2026-01": 1, "2026-02": 0}}}
    )
    text = render.table_text(r)
    assert "\x1b" not in text and "NGI\\x1b[31m" in text
