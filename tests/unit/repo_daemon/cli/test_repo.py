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


def test_nginx_conf_guards_the_protected_areas_with_the_configured_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    monkeypatch.setenv("ROLLOUT_ACCESS_CHECK_PORT", "9123")
    assert cli.main(["repo", "nginx-conf"]) == 0
    conf = capsys.readouterr().out
    assert "proxy_pass http://127.0.0.1:9123/access-check;" in conf
    assert "location ^~ /unverified/" in conf and "location ^~ /stagerollout/" in conf
    monkeypatch.setenv("ROLLOUT_AREA_ROLES", "stagerollout=anyone")
    assert cli.main(["repo", "nginx-conf", "--access-check", "10.0.0.1:80"]) == 0
    conf = capsys.readouterr().out
    assert "proxy_pass http://10.0.0.1:80/access-check;" in conf
    assert "location ^~ /stagerollout/" not in conf


def test_access_check_needs_rt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "access-check"]) == 2
    assert "rt_url is not set" in capsys.readouterr().err


def test_rsyncd_conf_offers_protected_areas_to_the_roles_with_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "rsyncd-conf", "--secrets-file", "/etc/r.secrets"]) == 0
    conf = capsys.readouterr().out
    assert "[repo-unverified]" in conf and "auth users = qc, sr, admin" in conf
    assert "auth users = early-adopters, sr, qc, admin" in conf
    assert "secrets file = /etc/r.secrets" in conf
    monkeypatch.setenv("ROLLOUT_AREA_ROLES", "production=qc")
    assert cli.main(["repo", "rsyncd-conf"]) == 2
    assert "production is protected" in capsys.readouterr().err


def test_repo_gc_says_how_many_writable_pool_files_it_made_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The repair itself is the publish tests'; this is what the command prints of it.
    from repo_daemon.publish import repository

    report = repository.GcReport(
        snapshots=1, stale_removed=0, pool_removed=0, pool_removed_bytes=0, pool_kept=3,
        pool_held_elsewhere=0, pool_repaired=2,
    )  # fmt: skip
    monkeypatch.setattr(repository.Repository, "collect_garbage", lambda self: report)
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "gc"]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("kept 3 pool files; made 2 writable pool files read-only")
    )
