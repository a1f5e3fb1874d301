"""``rollout tracker``: the initdata file and the sandbox's status."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge import records
from bridge.rt_setup import initialdata
from repo_daemon import cli
from repo_daemon.cli import tracker


def test_initdata_prints_the_shipped_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tracker", "initdata"]) == 0
    assert capsys.readouterr().out == initialdata.render("sw-rel")
    out = tmp_path / "data.pl"
    assert cli.main(["tracker", "initdata", "--queue", "releases", "-o", str(out)]) == 0
    assert "Name => 'releases'" in out.read_text()


def test_a_stopped_sandbox_status_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tracker", "sandbox", "status", "--dir", str(tmp_path)]) == 1
    assert f"no sandbox in {tmp_path}" in capsys.readouterr().out


def test_tracker_show_prints_each_field_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-unused")
    ticket = records.Ticket(
        id=7,
        queue="sw-rel",
        subject="arc-ce 7.1.2",
        status="open",
        custom_fields={"RolloutProgress": ("Unverified",), "ReleaseType": ("minor",)},
    )

    class FakeClient:
        def __init__(self, _settings: object) -> None:
            pass

        def __enter__(self) -> FakeClient:
            return self

        def __exit__(self, *_exc: object) -> None:
            pass

        def get_ticket(self, ticket_id: int) -> records.Ticket:
            assert ticket_id == 7
            return ticket

        def total_round_trips(self) -> int:
            return 1

    monkeypatch.setattr(tracker, "TrackerClient", FakeClient)
    assert cli.main(["tracker", "show", "7"]) == 0
    out = capsys.readouterr().out
    assert out == (
        "ticket 7: 'arc-ce 7.1.2' in sw-rel, open\n"
        "  RolloutProgress: Unverified\n"
        "  ReleaseType: minor\n"
        "  Cc: -\n"
        "  AdminCc: -\n"
        "  (1 RT round trips)\n"
    )
