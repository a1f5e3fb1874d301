"""``ROLLOUT_AREA_LAYOUT`` and ``rollout repo rollback`` for both layouts, in-process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bridge import errors as bridge_errors
from bridge.settings import load as settings_load
from bridge.settings.model import RepositorySettings
from repo_daemon import cli
from repo_daemon.publish import areas
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import release_info

STAGE = areas.Area.stagerollout("7")


def test_the_area_layout_setting_reads_snapshots_or_tree_and_refuses_others() -> None:
    base = {"ROLLOUT_RT_URL": "http://rt.example/", "ROLLOUT_RT_TOKEN": "1-2-3"}
    assert settings_load.load_settings(base).repository.area_layout == "snapshots"
    tree = settings_load.load_settings({**base, "ROLLOUT_AREA_LAYOUT": "Tree"})
    assert tree.repository.area_layout == "tree"
    with pytest.raises(bridge_errors.ConfigError, match="area_layout: 'trees' is not a layout"):
        settings_load.load_settings({**base, "ROLLOUT_AREA_LAYOUT": "trees"})


def _stage(repo: publish.Repository, scratch: Path, ticket: int, short: str) -> None:
    data = short.encode()
    (scratch / short).mkdir(parents=True)
    (scratch / short / f"{short}.rpm").write_bytes(data)
    package = release_model.PackageFile(
        path=f"{short}.rpm", size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    info = release_info(short, "1.0.0", [package])
    repo.publish_unverified(ticket, info, scratch / short)
    repo.promote_to_stagerollout(ticket, info, "7")


@pytest.mark.parametrize("layout", ["snapshots", "tree"])
def test_repo_rollback_makes_a_kept_snapshot_live(
    layout: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "repo"
    repo = publish.Repository(RepositorySettings(root=root, area_layout=layout))
    _stage(repo, tmp_path / "scratch", 1, "Alpha")
    first = repo.live_snapshot(STAGE)
    _stage(repo, tmp_path / "scratch", 2, "Beta")
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(root))
    monkeypatch.setenv("ROLLOUT_AREA_LAYOUT", layout)

    assert cli.main(["repo", "rollback", "stagerollout/7", str(first)]) == 0

    out = capsys.readouterr().out
    assert f"stagerollout/7 now at snapshot {first} (was 000002-" in out
    assert repo.live_snapshot(STAGE) == first
    assert (root / "stagerollout/7/Alpha.rpm").exists()
    assert not (root / "stagerollout/7/Beta.rpm").exists()
    assert cli.main(["repo", "rollback", "stagerollout/7", "000009-20261206T000000Z"]) == 1
    assert "no kept snapshot 000009-20261206T000000Z" in capsys.readouterr().err
