"""Placing pooled files into scratch (``sync.placing``): what is placed, what is left to the
sync, and that the pool is only ever linked from (tmp_path only)."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import placing


class DirPool:
    """A pool directory laid out as ``publish.pool`` does: ``<dir>/<sha[:2]>/<sha>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, sha256: str) -> str:
        return f"{self.root}/{sha256[:2]}/{sha256}"

    def add(self, data: bytes, mode: int = 0o444) -> release_model.PackageFile:
        sha = hashlib.sha256(data).hexdigest()
        path = Path(self.file(sha))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        return release_model.PackageFile(path="x", size=len(data), sha256=sha)


def _as(
    package: release_model.PackageFile, path: str, **changes: object
) -> release_model.PackageFile:
    values = {"path": path, "size": package.size, "sha256": package.sha256, **changes}
    return release_model.PackageFile(**values)  # type: ignore[arg-type]


@pytest.fixture
def pool(tmp_path: Path) -> DirPool:
    return DirPool(tmp_path / "pool")


def test_pooled_files_are_linked_and_others_left_to_the_sync(tmp_path: Path, pool: DirPool) -> None:
    a = _as(pool.add(b"aaa"), "debs/a.deb")
    b = release_model.PackageFile(path="rpms/b.rpm", size=3, sha256="b" * 64)  # not pooled
    dest = tmp_path / "dest"
    dest.mkdir()
    placed = placing.place(pool, dest, [a, b])
    assert placed.paths == {"debs/a.deb"}
    assert (placed.count, placed.bytes) == (1, 3)
    assert (dest / "debs/a.deb").stat().st_ino == Path(pool.file(a.sha256)).stat().st_ino
    assert not (dest / "rpms").exists()
    identity, sha = placed.files["debs/a.deb"]
    assert sha == a.sha256 and identity[2] == 3
    assert Path(pool.file(a.sha256)).stat().st_mode & 0o777 == 0o444


def test_a_writable_or_wrong_sized_pool_file_is_not_placed(tmp_path: Path, pool: DirPool) -> None:
    writable = _as(pool.add(b"written", mode=0o644), "a.deb")
    other_size = _as(pool.add(b"size"), "b.deb", size=99)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert placing.place(pool, dest, [writable, other_size]).count == 0
    assert Path(pool.file(writable.sha256)).stat().st_mode & 0o777 == 0o644  # left alone
    assert list(dest.iterdir()) == []


def test_an_earlier_download_is_replaced_and_an_earlier_placement_kept(
    tmp_path: Path, pool: DirPool
) -> None:
    a = _as(pool.add(b"aaa"), "a.deb")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "a.deb").write_bytes(b"aaa")  # an earlier attempt's own copy
    assert placing.place(pool, dest, [a]).count == 1
    inode = Path(pool.file(a.sha256)).stat().st_ino
    assert (dest / "a.deb").stat().st_ino == inode
    assert placing.place(pool, dest, [a]).count == 1  # again: already that inode
    assert (dest / "a.deb").stat().st_ino == inode


def test_a_symlink_in_scratch_is_never_followed(tmp_path: Path, pool: DirPool) -> None:
    a = _as(pool.add(b"aaa"), "debs/a.deb")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "debs").symlink_to(outside)
    assert placing.place(pool, dest, [a]).count == 0
    assert list(outside.iterdir()) == []


def test_nothing_is_placed_without_a_pool_or_across_file_systems(
    tmp_path: Path, pool: DirPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _as(pool.add(b"aaa"), "a.deb")
    b = _as(pool.add(b"bbb"), "b.deb")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert placing.place(None, dest, [a]) is placing.NOTHING
    calls: list[str] = []

    def cross_device(src: str, dst: str, **_kw: object) -> None:
        calls.append(dst)
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(placing.os, "link", cross_device)
    assert placing.place(pool, dest, [a, b]).count == 0
    assert len(calls) == 1  # gave up after the first: scratch is elsewhere


def test_unsafe_paths_and_malformed_digests_are_not_placed(tmp_path: Path, pool: DirPool) -> None:
    a = pool.add(b"aaa")
    dest = tmp_path / "dest"
    dest.mkdir()
    bad = [_as(a, "../a.deb"), _as(a, "/a.deb"), _as(a, "a//b.deb"), _as(a, "ok.deb", sha256="zz")]
    assert placing.place(pool, dest, bad).count == 0
    assert list(dest.iterdir()) == []
