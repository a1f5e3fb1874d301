"""Placing pooled files into scratch (``sync.placing``): what is placed, what is left to the
sync, and that the pool is only ever linked from (tmp_path only)."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
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


def test_start_plans_and_makes_the_directories_before_it_returns_and_links_on_a_thread(
    tmp_path: Path, pool: DirPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = [_as(pool.add(f"file {i}".encode()), f"d{i % 3}/sub/f{i}.rpm") for i in range(30)]
    dest = tmp_path / "dest"
    dest.mkdir()
    linked_by: set[str] = set()
    real_link = placing._link

    def spy(*args: object) -> bool:
        linked_by.add(threading.current_thread().name)
        return real_link(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(placing, "_link", spy)
    pending = placing.start(pool, dest, packages)
    assert pending.planned == {p.path for p in packages}
    assert pending.planned_bytes == sum(p.size for p in packages)
    assert all((dest / f"d{i}/sub").is_dir() for i in range(3))
    placed = pending.wait()
    assert placed.paths == pending.planned
    assert linked_by == {threading.current_thread().name, "placing"}  # the first, the rest
    for p in packages:
        assert (dest / p.path).stat().st_ino == Path(pool.file(p.sha256)).stat().st_ino
    assert pending.wait() == placed  # again: the same answer


def test_start_plans_nothing_when_scratch_cannot_share_an_inode_with_the_pool(
    tmp_path: Path, pool: DirPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = [_as(pool.add(f"file {i}".encode()), f"f{i}.rpm") for i in range(5)]
    dest = tmp_path / "dest"
    dest.mkdir()

    def cross_device(src: str, dst: str, **_kw: object) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(placing.os, "link", cross_device)
    pending = placing.start(pool, dest, packages)
    assert pending.planned == frozenset()  # the transfer excludes nothing: fetches it all
    assert pending.wait() is placing.NOTHING


def test_a_link_refused_on_the_thread_leaves_the_rest_planned_but_not_placed(
    tmp_path: Path, pool: DirPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``wait`` does not list although it was planned is for the transfer to fetch
    afterwards (``rsync.sync_rsync`` runs rsync again for it)."""
    packages = [_as(pool.add(f"file {i}".encode()), f"f{i}.rpm") for i in range(6)]
    dest = tmp_path / "dest"
    dest.mkdir()
    real_link = os.link

    def too_many_links(src: str, dst: str, **kw: object) -> None:
        if dst == "f3.rpm":
            raise OSError(errno.EMLINK, os.strerror(errno.EMLINK))
        real_link(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(placing.os, "link", too_many_links)
    pending = placing.start(pool, dest, packages)
    placed = pending.wait()
    assert pending.planned == {p.path for p in packages}
    assert placed.paths == {"f0.rpm", "f1.rpm", "f2.rpm"}
    assert not (dest / "f4.rpm").exists()
