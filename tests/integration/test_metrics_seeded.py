"""The Must-show of issue 18: the ten metrics (and time in state, lead time) on the seeded
history of ``tests.support.metrics_seed`` (200 releases over 14 months) equal its hand-worked
``EXPECTED`` figures, on SQLite and PostgreSQL, for the whole period and for UMD-5 alone; and
``rollout metrics --format json`` says the same."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import database
from repo_daemon import cli
from repo_daemon.metrics import compute, report
from tests.support import metrics_figures
from tests.support import metrics_seed as seed


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    seed.write_records(engine, seed.seeded_history())
    yield engine
    engine.dispose()


def _query(major_release: str | None = None) -> report.Query:
    since, until = seed.PERIOD
    return report.Query(since=since, until=until, major_release=major_release)


def test_every_figure_equals_the_hand_worked_table(engine: sa.Engine) -> None:
    found = compute.compute(engine, _query())
    assert metrics_figures.figures_of(found, seed.EXPECTED) == seed.EXPECTED


def test_one_major_release_alone_equals_its_table(engine: sa.Engine) -> None:
    found = compute.compute(engine, _query("UMD-5"))
    assert metrics_figures.figures_of(found, seed.EXPECTED_UMD5) == seed.EXPECTED_UMD5
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
