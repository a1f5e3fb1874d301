"""``rollout metrics`` on real databases (SQLite and PostgreSQL): the text tables, CSV
(a table, or a row per figure) and JSON; clear errors and exit 2 for a bad --from/--to or an
empty period; exit 1 for a database without the schema."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.store import database
from repo_daemon import cli
from tests.support import metrics_seed as seed


@pytest.fixture
def engine(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[sa.Engine]:
    for name in [k for k in os.environ if k.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    engine = database.create_engine(db_url)
    seed.write_records(engine, seed.seeded_history())
    yield engine
    engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str, status: int = 0) -> tuple[str, str]:
    assert cli.main(["metrics", *argv]) == status
    found = capsys.readouterr()
    return found.out, found.err


def test_the_table_shows_every_part_for_the_period(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = _run(capsys, "--from", "2026-01", "--to", "2026-02", "--major-release", "UMD-5")
    assert out.startswith(
        "Provisioning metrics from 2026-01-01 00:00 to 2026-03-01 00:00 (UTC, end excluded), "
        "major release UMD-5\n"
    )
    # EXPECTED_UMD5's January and February (the fourth and fifth months of the seed).
    monthly = seed.EXPECTED_UMD5["monthly"]
    for n, month in ((3, "2026-01"), (4, "2026-02")):
        cells = "".join(f"  {monthly[m][n]:>9}" for m in monthly)
        assert f"{month:<8}{cells}\n" in out
    for part in ("M.SA1.3-1", "M.SA1.3-6", "M.SA1.3-7", "M.SA1.3-4", "time in StageRollout"):
        assert part in out


def test_csv_one_table_or_a_row_per_figure(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    out, _ = _run(capsys, "--from", "2025-10", "--to", "2026-11", "--format", "csv", "--table",
                  "monthly")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["M.REPO-3"]) for r in rows] == list(seed.EXPECTED["monthly"]["M.REPO-3"])
    out, _ = _run(capsys, "--from", "2025-10", "--to", "2026-11", "--format", "csv")
    long = list(csv.DictReader(io.StringIO(out)))
    teams = {(r["subject"], r["month"]): int(r["value"]) for r in long if r["table"] == "teams"}
    assert teams[("de-kit", "2025-11")] == seed.EXPECTED["M.SA1.3-6"]["de-kit"]["2025-11"]


def test_json_of_one_table(engine: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = _run(capsys, "--from", "2026-03-01", "--to", "2026-03-15", "--format", "json",
                  "--table", "uptake")  # fmt: skip
    body = json.loads(out)
    assert body["query"]["to"] == "2026-03-15T00:00:00Z"
    assert all("2026-03-01" <= u["entered_stage_rollout"] < "2026-03-15" for u in body["uptake"])
    assert body["uptake"]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--from", "2026-13"), "Invalid value for --from: '2026-13' is not a date"),
        (("--to", "March"), "Invalid value for --to: 'March' is not a month (YYYY-MM)"),
        (("--from", "2026-05", "--to", "2026-04-30"), "the period is empty"),
        (("--table", "teams"), "Invalid value for --table: only with --format csv or json"),
    ],
    ids=["bad-from", "bad-to", "empty-period", "table-needs-csv-or-json"],
)
def test_bad_options_say_what_and_exit_2(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    out, err = _run(capsys, *argv, status=2)
    assert says in err and out == ""


def test_a_database_without_the_schema_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", database.default_url(tmp_path))
    _, err = _run(capsys, status=1)
    assert "has no current schema; run `rollout db upgrade`" in err
