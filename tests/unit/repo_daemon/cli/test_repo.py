"""``rollout repo``: garbage collection and the printed nginx and rsyncd configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon import cli


def test_repo_gc_on_an_empty_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "gc"]) == 0
    assert "removed 0 pool files" in capsys.readouterr().out


def test_repo_prints_nginx_and_rsyncd_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "nginx-conf", "--listen", "0.0.0.0:80"]) == 0
    nginx = capsys.readouterr().out
    assert "listen 0.0.0.0:80" in nginx and str(tmp_path / "repo") in nginx
    assert cli.main(["repo", "rsyncd-conf", "--port", "8873"]) == 0
    rsyncd = capsys.readouterr().out
    assert "port = 8873" in rsyncd and "read only = yes" in rsyncd
