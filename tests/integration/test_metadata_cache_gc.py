"""The metadata tools' per-area caches and the garbage collection, through the real
publication code (``steps.repository``: createrepo_c, apt-ftparchive) in the tree layout: each
shared area keeps its cache (``.metadata-cache/<name>/``, with ``apt-packages/`` holding hard
links to the area's packages); when an operator removes an area, ``collect_garbage`` removes
its cache in the same pass, before the pool sweep, and keeps every other area's."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import model as settings_model
from repo_daemon import cli
from repo_daemon.metadata import apt, caches
from repo_daemon.publish import areas
from repo_daemon.release_xml import parse
from repo_daemon.workflow import steps
from tests.support import packages, repo_clients

MISSING = packages.tools_missing() + repo_clients.tools_missing("createrepo_c", "apt-ftparchive")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"apt-get install {' '.join(MISSING)}")

MAJOR = "GC-9"


def _settings(tmp_path: Path) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt.invalid/"),
        data_dir=tmp_path / "data",
        repository=settings_model.RepositorySettings(
            root=tmp_path / "repo", base_url="http://repo.invalid/", unsigned=True,
            area_layout="tree",
        ),
    )  # fmt: skip


def test_the_cache_of_a_removed_area_goes_with_the_next_gc_and_the_others_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _settings(tmp_path)
    repo = steps.repository(settings)
    built = packages.build_pair(tmp_path / "build", "gc-tool")
    provider = packages.layout_provider_tree(
        tmp_path / "provider", built, short_name="gc-tool", release_type="Incremental",
        major_release=MAJOR,
    )  # fmt: skip
    info = parse.parse_release(provider.release_xml)
    repo.publish_unverified(7, info, provider.root)
    repo.promote_to_stagerollout(7, info, MAJOR)
    repo.promote_to_production(7, info, MAJOR, "Incremental")
    root = repo.root
    cache_root = root / caches.CACHE_DIR
    staged = areas.Area.stagerollout(MAJOR)
    production = f"production/{MAJOR}/updates"
    staged_cache = cache_root / caches.cache_name(staged.path)
    production_cache = cache_root / caches.cache_name(production)
    assert (production_cache / apt.LINKS_DIR).is_dir()
    assert staged_cache.is_dir()  # the emptied stagerollout area stays, and so does its cache
    assert repo.collect_garbage().caches_removed == 0

    (root / staged.path).unlink()  # an operator retires the area
    report = repo.collect_garbage()

    assert report.caches_removed == 1
    assert not staged_cache.exists()
    linked = [p for p in (production_cache / apt.LINKS_DIR).rglob("*.deb")]
    assert linked and all(p.stat().st_nlink > 1 for p in linked)  # the live area's: kept
    assert sorted(p.name for p in cache_root.iterdir()) == [production_cache.name]

    # ``rollout repo gc`` does the same and says so
    (root / production).unlink()
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(root))
    assert cli.main(["repo", "gc"]) == 0
    assert (
        capsys.readouterr()
        .out.rstrip()
        .endswith("removed the metadata caches of 1 areas that are gone")
    )
    assert not production_cache.exists()
