"""``rollout daemon``, ``serve`` and ``run``: their options, short of running them (the
integration tests run them as processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon import cli


def test_a_bad_processor_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-unused")
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["daemon", "--processor", "no_such_module_xyz:make"]) == 2
    assert "Invalid value for '--processor': cannot import 'no_such_module_xyz'" in (
        capsys.readouterr().err
    )
