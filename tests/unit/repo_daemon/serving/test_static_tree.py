"""The embedded server's rule for a tree-layout area (``served_paths.resolve``), on a tree built by
hand as the spec lays it out: the payload and the live metadata at exactly the URL's path are
served, every planted link is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon.serving import served_paths
from tests.support import tree_layout

AREA = "production/7/updates"
KEY = "production~7~updates"
KEPT = "000001-20261205T000000Z"
LIVE = "000002-20261206T000000Z"
RPM = "el9/x86_64/Packages/a.rpm"
REPOMD = "el9/x86_64/repodata/repomd.xml"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in (KEPT, LIVE):
        metadata = tree_layout.sample_metadata(AREA, name, repomd=name.encode())
        tree_layout.build_tree_area(root, AREA, {RPM: b"rpm"}, metadata, name)
    tree_layout.switch(root, AREA, LIVE)
    other = tree_layout.sample_metadata("production/8/updates", LIVE, repomd=b"other")
    tree_layout.build_tree_area(root, "production/8/updates", {RPM: b"x"}, other, LIVE)
    return root.resolve()


def test_the_payload_and_the_live_metadata_are_served(root: Path) -> None:
    assert served_paths.resolve(root, f"/{AREA}/{RPM}") == root / ".trees" / KEY / RPM
    live = root / ".snapshots" / KEY / LIVE
    assert served_paths.resolve(root, f"/{AREA}/{REPOMD}") == live / REPOMD
    assert served_paths.resolve(root, f"/{AREA}/.rollout-serial") == live / ".rollout-serial"
    assert served_paths.resolve(root, f"/{AREA}/") == root / ".trees" / KEY
    repodata = live / REPOMD.rsplit("/", 1)[0]
    assert served_paths.resolve(root, f"/{AREA}/el9/x86_64/repodata/") == repodata


@pytest.mark.parametrize(
    ("where", "target", "url"),
    [
        ("pool.rpm", "../../.pool", "pool.rpm"),
        ("etc", "/etc", "etc/passwd"),
        ("other", "../production~8~updates", f"other/{RPM}"),
        ("othermeta", f"../../.snapshots/production~8~updates/{LIVE}", "othermeta/index.json"),
        ("el9/x86_64/rd2", "../../.meta/el9/x86_64/repodata", "el9/x86_64/rd2/repomd.xml"),
        ("serial", ".meta/.rollout-serial", "serial"),
        ("kept", f"../../.snapshots/{KEY}/{KEPT}", "kept/index.json"),
    ],
)  # fmt: skip
def test_a_link_planted_in_the_tree_is_refused(
    root: Path, where: str, target: str, url: str
) -> None:
    (root / ".trees" / KEY / where).symlink_to(target)
    with pytest.raises(served_paths.NotServed):
        served_paths.resolve(root, f"/{AREA}/{url}")


def test_a_metadata_link_into_a_kept_snapshot_is_refused(root: Path) -> None:
    link = root / ".trees" / KEY / "el9/x86_64/repodata"
    link.unlink()
    link.symlink_to(f"../../../../.snapshots/{KEY}/{KEPT}/el9/x86_64/repodata")
    with pytest.raises(served_paths.NotServed):
        served_paths.resolve(root, f"/{AREA}/{REPOMD}")


def test_meta_at_another_areas_snapshot_is_refused(root: Path) -> None:
    meta = root / ".trees" / KEY / ".meta"
    meta.unlink()
    meta.symlink_to(f"../../.snapshots/production~8~updates/{LIVE}")
    for url in (REPOMD, "index.json"):
        with pytest.raises(served_paths.NotServed):
            served_paths.resolve(root, f"/{AREA}/{url}")


def test_a_link_inside_the_metadata_snapshot_is_refused(root: Path) -> None:
    (root / ".snapshots" / KEY / LIVE / "el9/x86_64/repodata/alias.xml").symlink_to("repomd.xml")
    with pytest.raises(served_paths.NotServed):
        served_paths.resolve(root, f"/{AREA}/el9/x86_64/repodata/alias.xml")


@pytest.mark.parametrize(
    "url",
    [
        f"/.trees/{KEY}/{RPM}",
        f"/{AREA}/.meta/index.json",
        f"/{AREA}/.meta",
        f"/{AREA}/.meta.swap-0123abcd/index.json",
        f"/.snapshots/{KEY}/{LIVE}/index.json",
    ],
)
def test_trees_and_the_switch_are_hidden(root: Path, url: str) -> None:
    with pytest.raises(served_paths.NotServed):
        served_paths.resolve(root, url)
