"""``rollout tracker``: the initdata file and the sandbox's status."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.rt_setup import initialdata
from repo_daemon import cli


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
