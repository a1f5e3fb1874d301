"""``rollout workflow show`` prints a definition and checks it as the daemon does."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon import cli


def test_workflow_show_prints_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["workflow", "show", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2\n")
    assert cli.main(["workflow", "show", "--template", "direct"]) == 0
    assert "workflow direct:" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ninitial = "Submitted"\nterminal = []\ntransitions = ["nonsense"]\n'
        '[states]\nSubmitted = "new"\n'
    )
    assert cli.main(["workflow", "show", "--file", str(bad)]) == 2
    assert "row 1: cannot read 'nonsense'" in capsys.readouterr().err
