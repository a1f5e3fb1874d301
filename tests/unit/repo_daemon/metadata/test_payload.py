"""Reading packages from a payload tree (``metadata.payload``) and what ``build_metadata``
passes the tools in the tree layout: plain files, hard links and symlinks in ``tmp_path``, the
fake runner for the tools."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import errors, incremental, payload, yum
from tests.support.metadata_runner import FakeRunner, apt_repository, yum_repository


def _file(path: Path, data: bytes = b"package") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_files_below_takes_the_repositorys_packages_relative_to_it() -> None:
    listed = ["rpms/a.rpm", "rpms/el9/b.rpm", "rpms/notes.txt", "rpmsx/c.rpm", "debs/d.deb"]
    assert payload.files_below("rpms", listed, (".rpm",)) == ["a.rpm", "el9/b.rpm"]
    assert payload.files_below("", listed, (".deb",)) == ["debs/d.deb"]


def test_inodes_refuses_missing_files_symlinks_and_linked_directories(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    good = _file(tree / "rpms/a.rpm")
    (tree / "rpms/link.rpm").symlink_to(good)
    _file(tmp_path / "elsewhere/b.rpm")
    (tree / "rpms/sub").symlink_to(tmp_path / "elsewhere")
    assert payload.inodes(tree, ["rpms"], ["a.rpm"]) == {"a.rpm": good.stat().st_ino}
    with pytest.raises(errors.MetadataFailed) as raised:
        payload.inodes(tree, ["rpms"], ["a.rpm", "gone.rpm", "link.rpm", "sub/b.rpm"])
    message = str(raised.value)
    assert "gone.rpm is missing" in message
    assert "link.rpm is not a regular file" in message
    assert "rpms/sub (holding sub/b.rpm) is not a directory of the payload" in message


def test_source_walks_the_repository_once_and_shares_the_walk_with_the_live_area(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "tree"
    a, b = _file(tree / "rpms/a.rpm"), _file(tree / "rpms/el9/b.rpm")
    _file(tree / "rpms/leftover.rpm")
    (tmp_path / "area").symlink_to(tree)  # the area's link leads to the payload tree
    listed = ["rpms/a.rpm", "rpms/el9/b.rpm", "debs/c.deb"]
    found = payload.source(
        tree, "rpms", listed, (".rpm",), work=tmp_path / "w1", live=tmp_path / "area/rpms"
    )
    assert found.files == {"a.rpm": a.stat().st_ino, "el9/b.rpm": b.stat().st_ino}
    assert found.found == incremental.scan(tree / "rpms", (".rpm",))  # leftover.rpm too
    elsewhere = payload.source(
        tree, "rpms", listed, (".rpm",), work=tmp_path / "w2", live=tmp_path / "other"
    )
    assert elsewhere.files == found.files
    assert elsewhere.found is None
    with pytest.raises(errors.MetadataFailed, match=r"gone\.rpm is missing"):
        payload.source(tree, "rpms", ["rpms/gone.rpm"], (".rpm",), work=tmp_path / "w3", live=None)


def test_previous_metadata_is_the_resolved_directory_below_the_snapshots(tmp_path: Path) -> None:
    snapshots = tmp_path / ".snapshots"
    live = snapshots / "k/000001-20261206T000000Z"
    (live / "rpms/repodata").mkdir(parents=True)
    tree = tmp_path / ".trees/k"
    (tree / "rpms").mkdir(parents=True)
    (tree / ".meta").symlink_to("../../.snapshots/k/000001-20261206T000000Z")
    (tree / "rpms/repodata").symlink_to("../.meta/rpms/repodata")
    (tree / "debs").mkdir()
    (tree / "debs/repodata").symlink_to(tmp_path / "planted")
    (tmp_path / "planted").mkdir()
    found = payload.previous_metadata(tree, "rpms", "repodata", within=snapshots)
    assert found == live / "rpms"
    assert payload.previous_metadata(tree, "debs", "repodata", within=snapshots) is None
    assert payload.previous_metadata(tree, "other", "repodata", within=snapshots) is None


def test_link_exactly_gives_the_same_inodes_in_a_directory_of_their_own(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _file(tree / "debs/a.deb")
    _file(tree / "debs/pool/b.deb")
    _file(tree / "debs/leftover.deb")
    files = payload.inodes(tree, ["debs"], ["a.deb", "pool/b.deb"])
    linked = payload.link_exactly(tree / "debs", files, tmp_path / "links")
    assert incremental.scan(linked, incremental.DEB_SUFFIXES) == files


def test_keep_linked_makes_exactly_the_listed_links_and_leaves_the_right_ones_alone(
    tmp_path: Path,
) -> None:
    source = tmp_path / "tree/debs"
    for name in ("a.deb", "sub/b.deb", "c.deb", "sub/d.deb"):
        _file(source / name, name.encode())
    target = tmp_path / "cache/apt-packages"
    first = {n: (source / n).stat().st_ino for n in ("a.deb", "sub/b.deb", "c.deb")}
    payload.keep_linked(source, first, target)
    kept = (target / "a.deb").stat().st_ctime_ns  # a link made or removed changes the ctime
    # what a crash or a removed release leaves: a stale file, a link, a file of other bytes
    (target / "c.deb").unlink()
    _file(target / "c.deb", b"other bytes")
    _file(target / "old/gone.deb")
    (target / "sub/link.deb").symlink_to(source / "sub/d.deb")

    wanted = {n: (source / n).stat().st_ino for n in ("a.deb", "c.deb", "sub/d.deb")}
    assert payload.keep_linked(source, wanted, target) == target

    found = {
        str(p.relative_to(target)): p.lstat().st_ino
        for p in target.rglob("*")
        if not p.is_dir() or p.is_symlink()
    }
    assert found == wanted
    assert not (target / "old").exists()  # emptied directories go
    assert (target / "a.deb").stat().st_ctime_ns == kept


def test_keep_linked_links_a_package_where_a_directory_of_an_earlier_release_was(
    tmp_path: Path,
) -> None:
    source = tmp_path / "tree/debs"
    _file(source / "tool.deb/inner.deb")
    target = tmp_path / "cache/apt-packages"
    payload.keep_linked(source, {"tool.deb/inner.deb": _ino(source / "tool.deb/inner.deb")}, target)
    (source / "tool.deb/inner.deb").unlink()
    (source / "tool.deb").rmdir()
    _file(source / "tool.deb")

    payload.keep_linked(source, {"tool.deb": _ino(source / "tool.deb")}, target)

    assert (target / "tool.deb").is_file()
    assert (target / "tool.deb").stat().st_ino == _ino(source / "tool.deb")


def _ino(path: Path) -> int:
    return path.stat().st_ino


def test_createrepo_argv_reads_a_list_and_writes_elsewhere(tmp_path: Path) -> None:
    argv = yum.createrepo_argv(
        tmp_path / "tree/rpms", output=tmp_path / "snap/rpms", pkglist=tmp_path / "list"
    )
    assert f"--pkglist={tmp_path / 'list'}" in argv
    assert f"--outputdir={tmp_path / 'snap/rpms'}" in argv
    assert argv[-2:] == ["--", str(tmp_path / "tree/rpms")]


@dataclass(frozen=True)
class _File:
    path: str


@dataclass(frozen=True)
class _Entry:
    repositories: tuple[object, ...]
    files: tuple[_File, ...]


@dataclass(frozen=True)
class _Contents:
    area: str
    releases: tuple[_Entry, ...]


def test_the_step_indexes_the_listed_packages_of_the_payload_into_the_snapshot(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    tree = root / ".trees/production~7~updates"
    for path in ("rpms/a.rpm", "rpms/el9/b.rpm", "rpms/leftover.rpm", "debs/c.deb"):
        _file(tree / path)
    snapshot = root / ".snapshots/production~7~updates/.building-1"
    snapshot.mkdir(parents=True)
    runner = FakeRunner()
    listed = (_File("rpms/a.rpm"), _File("rpms/el9/b.rpm"), _File("debs/c.deb"))
    contents = _Contents(
        "production/7/updates", (_Entry((yum_repository(), apt_repository()), listed),)
    )
    seen: dict[str, object] = {}

    def createrepo(argv: list[str], cwd: Path) -> object:
        pkglist = next(a for a in argv if a.startswith("--pkglist="))
        seen["pkglist"] = Path(pkglist.removeprefix("--pkglist=")).read_text()
        del runner.answers["createrepo_c"]
        return runner._answer(argv, cwd)

    def packages(argv: list[str], cwd: Path) -> object:
        seen["indexed"] = sorted(p.relative_to(cwd).as_posix() for p in cwd.rglob("*"))
        seen["inode"] = (cwd / "c.deb").stat().st_ino
        del runner.answers["packages"]
        return runner._answer(argv, cwd)

    runner.answers.update(createrepo_c=createrepo, packages=packages)  # type: ignore[dict-item]
    step = metadata.metadata_step(root, "http://m/", runner=runner)
    step(snapshot, contents, payload_dir=tree)

    assert seen["pkglist"] == "a.rpm\nel9/b.rpm\n"
    assert seen["indexed"] == ["c.deb"]
    assert seen["inode"] == (tree / "debs/c.deb").stat().st_ino
    argv = next(a for a, _ in runner.calls if a[0] == "createrepo_c")
    assert argv[-1] == str(tree / "rpms")
    assert f"--outputdir={snapshot / 'rpms'}" in argv
    assert (snapshot / "rpms/repodata/repomd.xml").is_file()
    assert (snapshot / "debs/Packages").is_file()
    assert not [p for p in snapshot.rglob("*") if p.name.startswith(payload.WORK_PREFIX)]
    assert not (tree / "rpms/repodata").exists()
    assert not os.path.lexists(tree / "debs/Packages")


def test_yum_update_in_the_tree_compares_the_listed_packages_with_the_live_trees(
    tmp_path: Path,
) -> None:
    previous = tmp_path / "snapshot/rpms"  # the previous metadata only
    (previous / "repodata").mkdir(parents=True)
    (previous / "repodata/repomd.xml").write_text("<repomd/>")
    tree = tmp_path / "tree/rpms"
    _file(tree / "a.rpm", b"aaaa")
    os.utime(tree / "a.rpm", (1_700_000_000, 1_700_000_000))
    current = payload.inodes(tree, [], ["a.rpm"])
    assert incremental.yum_update(tree, previous, current=current, previous_packages=tree).reuse
    # The same name at another path of the live tree, other bytes, same size and mtime.
    _file(tree / "old/a.rpm", b"bbbb")
    os.utime(tree / "old/a.rpm", (1_700_000_000, 1_700_000_000))
    decision = incremental.yum_update(tree, previous, current=current, previous_packages=tree)
    assert not decision.reuse
    assert "two packages named a.rpm" in decision.reason
