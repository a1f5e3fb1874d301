"""The Must-show of issue 18: the ten metrics (and time in state, lead time) on the seeded
history of ``tests.support.metrics_seed`` (200 releases over 14 months) equal its hand-worked
``EXPECTED`` figures, on SQLite and PostgreSQL, for the whole period and for UMD-5 alone; and
``rollout metrics --format json`` says the same."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import database
from repo_daemon import cli
from repo_daemon.metrics import compute, report
from tests.support import metrics_seed as seed


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    seed.write_records(engine, seed.seeded_history())
    yield engine
    engine.dispose()


def _three(d: report.Durations) -> tuple[int, float | None, float | None]:
    return d.n, d.median_seconds, d.p90_seconds


def _nonzero(grid: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
    """EXPECTED lists only the months with at least one release; the report lists them all."""
    return {name: {m: n for m, n in counts.items() if n} for name, counts in grid.items()}


def _query(major_release: str | None = None) -> report.Query:
    since, until = seed.PERIOD
    return report.Query(since=since, until=until, major_release=major_release)


def test_every_figure_equals_the_hand_worked_table(engine: sa.Engine) -> None:
    found = compute.compute(engine, _query())
    expected = seed.EXPECTED
    assert found.months == expected["months"]
    for metric, figures in expected["monthly"].items():
        assert tuple(found.monthly[metric][m] for m in found.months) == figures, metric
    assert {
        u.ticket_id: (len(u.teams_accepted), len(u.teams_fetched)) for u in found.uptake
    } == expected["M.SA1.3-1"]
    assert _three(found.stage_to_production) == expected["M.SA1.3-4"]
    assert _three(found.production_to_report) == expected["M.SA1.3-5"]
    assert _nonzero(found.per_team) == expected["M.SA1.3-6"]
    assert _nonzero(found.per_ngi) == expected["M.SA1.3-7"]
    assert {state: _three(d) for state, d in found.time_in_state.items() if d.n} == expected[
        "time_in_state"
    ]
    assert _three(found.lead_time) == expected["lead_time"]


def test_one_major_release_alone_equals_its_table(engine: sa.Engine) -> None:
    found = compute.compute(engine, _query("UMD-5"))
    expected = seed.EXPECTED_UMD5
    for metric, figures in expected["monthly"].items():
        assert tuple(found.monthly[metric][m] for m in found.months) == figures, metric
    assert _three(found.stage_to_production) == expected["M.SA1.3-4"]
    assert _three(found.production_to_report) == expected["M.SA1.3-5"]
    assert _nonzero(found.per_team) == expected["M.SA1.3-6"]
    assert _nonzero(found.per_ngi) == expected["M.SA1.3-7"]
    assert _three(found.lead_time) == expected["lead_time"]
    assert {u.major_release for u in found.uptake} == {"UMD-5"}


def test_the_command_says_the_same(
    engine: sa.Engine,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [k for k in os.environ if k.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["metrics", "--from", "2025-10", "--to", "2026-11", "--format", "json"]) == 0
    body: dict[str, Any] = json.loads(capsys.readouterr().out)
    expected = seed.EXPECTED
    assert tuple(body["months"]) == expected["months"]
    for metric, figures in expected["monthly"].items():
        assert tuple(body["monthly"][metric].values()) == figures
    assert len(body["uptake"]) == len(expected["M.SA1.3-1"])
    for part, key in (("stage_to_production", "M.SA1.3-4"), ("lead_time", "lead_time")):
        d = body[part]
        assert (d["n"], d["median_seconds"], d["p90_seconds"]) == expected[key]
