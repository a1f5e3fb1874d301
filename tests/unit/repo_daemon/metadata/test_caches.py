"""``caches.AreaCaches``: the caches of the areas named stay, every other cache directory goes,
and what is not a directory of its own (a file, a symlink) is left alone."""

from __future__ import annotations

from pathlib import Path

from repo_daemon.metadata import caches


def test_only_the_caches_of_areas_that_exist_stay(tmp_path: Path) -> None:
    directory = tmp_path / caches.CACHE_DIR
    for area in ("production/7/updates", "stagerollout/7", "stagerollout/8"):
        (directory / caches.cache_name(area) / "apt-packages" / "deb").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (directory / "a-link").symlink_to(elsewhere)
    (directory / "notes.txt").write_text("an operator's")

    removed = caches.AreaCaches.of_root(tmp_path).forget_all_but(
        ["production/7/updates", "stagerollout/7"]
    )

    assert removed == 1
    assert sorted(p.name for p in directory.iterdir()) == [
        "a-link", "notes.txt", "production-7-updates", "stagerollout-7",
    ]  # fmt: skip
    assert elsewhere.is_dir()


def test_no_cache_directory_is_nothing_to_do(tmp_path: Path) -> None:
    assert caches.AreaCaches.of_root(tmp_path).forget_all_but([]) == 0
