"""``rollout release validate`` says valid, or lists the problems and exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon import cli
from tests.support import paths

FIXTURES = paths.ROOT / "fixtures"


def test_release_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["release", "validate", str(FIXTURES / "release_valid.xml")]) == 0
    out = capsys.readouterr().out
    assert "arc-ce 7.1.2" in out and "4 packages, 3,453,638 bytes" in out
    assert cli.main(["release", "validate", str(FIXTURES / "release_dotdot_path.xml")]) == 1
    assert "contains '..'" in capsys.readouterr().err
    assert cli.main(["release", "validate", str(tmp_path / "missing.xml")]) == 1
    assert "release.xml is invalid" in capsys.readouterr().err
