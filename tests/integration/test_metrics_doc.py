"""docs/metrics.md's worked example stays true: its four releases are written into a fresh
database (SQLite), ``rollout metrics --from 2026-01 --to 2026-02`` is run, and its output must
equal the block the page shows."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from bridge.store import database
from repo_daemon import cli
from tests.support import metrics_seed as seed
from tests.support import paths

DOC = paths.ROOT / "docs" / "metrics.md"
COMMAND = ("metrics", "--from", "2026-01", "--to", "2026-02")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _story(ticket: int, created: str, moves: str, **kw: object) -> seed.Story:
    """``moves`` as ``State@YYYY-MM-DD HH:MM`` separated by spaces-and-commas."""
    parsed = [m.split("@") for m in moves.split(", ")]
    return seed.Story(
        ticket_id=ticket, created_at=_at(created), major_release="UMD-5",
        emergency=bool(kw.pop("emergency", False)),
        moves=tuple(seed.Move(at=_at(at), state=s, actor="sr-bob") for s, at in parsed),
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def _accept(team: str, ngi: str, at: str, withdrawn: str | None = None) -> seed.TeamAcceptance:
    return seed.TeamAcceptance(
        team=team, ngi=ngi, at=_at(at), actor=f"{team}-lead",
        withdrawn_at=_at(withdrawn) if withdrawn else None,
    )  # fmt: skip


# The page's table of the example, as records.
EXAMPLE = (
    _story(101, "2026-01-05 09:00",
           "Unverified@2026-01-05 10:00, InVerification@2026-01-06 09:00, "
           "StageRollout@2026-01-08 09:00, Production@2026-01-15 09:00",
           acceptances=(_accept("de-kit", "NGI_DE", "2026-01-08 12:00"),
                        _accept("it-infn", "NGI_IT", "2026-01-09 09:00")),
           fetches=(seed.TeamFetch(team="de-kit", person="kit-admin", at=_at("2026-01-08 13:00")),),
           report_at=_at("2026-01-18 09:00")),
    _story(102, "2026-01-12 09:00",
           "Unverified@2026-01-12 11:00, InVerification@2026-01-13 09:00, "
           "StageRollout@2026-01-20 09:00, Rejected@2026-01-23 09:00",
           acceptances=(_accept("de-desy", "NGI_DE", "2026-01-20 10:00", "2026-01-21 10:00"),
                        _accept("de-kit", "NGI_DE", "2026-01-20 15:00"))),
    _story(103, "2026-01-20 09:00",
           "Unverified@2026-01-20 10:00, InVerification@2026-01-20 12:00, "
           "Production@2026-01-21 09:00", emergency=True),
    _story(104, "2026-02-02 09:00",
           "Unverified@2026-02-02 10:00, InVerification@2026-02-03 09:00, "
           "Deferred@2026-02-05 09:00, StageRollout@2026-02-06 09:00, Production@2026-02-10 09:00",
           acceptances=(_accept("it-infn", "NGI_IT", "2026-02-06 11:00"),),
           report_at=_at("2026-02-09 09:00")),
)  # fmt: skip


def documented_output() -> str:
    """The block after ``$ rollout metrics --from 2026-01 --to 2026-02`` on the page."""
    text = DOC.read_text()
    found = re.search(r"```text\n\$ rollout " + " ".join(COMMAND) + r"\n(.*?)```", text, re.S)
    assert found, "docs/metrics.md shows no worked example's output"
    return found.group(1)


def test_the_worked_example_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = database.default_url(tmp_path)
    engine = database.create_engine(url)
    database.migrate(engine)
    seed.write_records(engine, EXAMPLE)
    engine.dispose()
    for name in [k for k in os.environ if k.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(list(COMMAND)) == 0
    assert capsys.readouterr().out == documented_output()
