"""verify(): every difference between a tree and release.xml, all at once."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import tree as tree_walk
from repo_daemon.sync import verify

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


def _file(tree: Path, rel: str, data: bytes) -> release_model.PackageFile:
    path = tree / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return release_model.PackageFile(
        path=rel, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )


def _spy_on_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the name of every file verify hashes is appended to the returned list."""
    hashed: list[str] = []
    real = verify._sha256

    def spy(handle: object, **kwargs: object) -> str | None:
        hashed.append(str(getattr(handle, "name", "")))
        return real(handle, **kwargs)  # type: ignore[arg-type, call-overload, no-any-return]

    monkeypatch.setattr(verify, "_sha256", spy)
    return hashed


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    root.mkdir()
    return root


def test_a_tree_as_promised_passes(tree: Path) -> None:
    packages = [
        _file(tree, "rpms/noarch/a-1.0-1.noarch.rpm", b"a" * 10),
        _file(tree, "debs/b_1.0-1_all.deb", b"b" * 20),
        _file(tree, "empty.deb", b""),
    ]
    verify.verify(tree, packages)
    verify.verify(tree, packages, workers=1)


def test_upper_case_digests_in_release_xml_are_accepted(tree: Path) -> None:
    package = _file(tree, "a.rpm", b"data")
    upper = release_model.PackageFile(
        path=package.path, size=package.size, sha256=package.sha256.upper()
    )
    verify.verify(tree, [upper])


class _CountingReader(io.FileIO):
    """A file that records the size of every chunk read into a buffer."""

    def __init__(self, fd: int, reads: list[int]) -> None:
        super().__init__(fd, "rb")
        self.reads = reads

    def readinto(self, buffer: WriteableBuffer) -> int:
        count = super().readinto(buffer)
        self.reads.append(count)
        return count


def test_large_files_are_hashed_in_chunks(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(verify.CHUNK * 2 + 12345)
    package = _file(tree, "big.rpm", data)
    reads: list[int] = []
    opened = verify._open_regular

    def open_counting(root: Path, rel: str) -> io.FileIO:
        with opened(root, rel) as handle:  # the same checks, then the same file, counted
            return _CountingReader(os.dup(handle.fileno()), reads)

    monkeypatch.setattr(verify, "_open_regular", open_counting)
    verify.verify(tree, [package])  # the digest of all the chunks is the file's
    assert reads == [verify.CHUNK, verify.CHUNK, 12345, 0]  # never the whole file at once


def test_missing_extra_size_and_hash_are_all_listed_at_once(tree: Path) -> None:
    good = _file(tree, "good.rpm", b"good")
    wrong_hash = _file(tree, "b.deb", b"promised")
    (tree / "b.deb").write_bytes(b"PROMISED")  # same size, other bytes
    wrong_size = _file(tree, "c.rpm", b"12345")
    (tree / "c.rpm").write_bytes(b"1234")
    missing = [
        release_model.PackageFile(path="a.rpm", size=1, sha256="0" * 64),
        release_model.PackageFile(path="sub/d.rpm", size=1, sha256="0" * 64),
    ]
    (tree / "junk.txt").write_bytes(b"junk")
    (tree / "more").mkdir()
    (tree / "more" / "junk2.txt").write_bytes(b"junk")

    with pytest.raises(verify.ChecksumMismatch) as caught:
        verify.verify(tree, [good, wrong_hash, wrong_size, *missing])

    err = caught.value
    assert not err.transient
    assert [(p.kind, p.path) for p in err.problems] == [
        (verify.ProblemKind.MISSING, "a.rpm"),
        (verify.ProblemKind.MISSING, "sub/d.rpm"),
        (verify.ProblemKind.EXTRA, "junk.txt"),
        (verify.ProblemKind.EXTRA, "more/junk2.txt"),
        (verify.ProblemKind.WRONG_SIZE, "c.rpm"),
        (verify.ProblemKind.WRONG_SHA256, "b.deb"),
    ]
    actual = hashlib.sha256(b"PROMISED").hexdigest()
    assert str(err) == (
        "6 files differ from release.xml: missing: a.rpm, sub/d.rpm; "
        "extra: junk.txt, more/junk2.txt; wrong size: c.rpm (expected 5 bytes, got 4); "
        f"wrong SHA-256: b.deb (expected {wrong_hash.sha256}, got {actual})"
    )


def test_one_difference_reads_well(tree: Path) -> None:
    with pytest.raises(verify.ChecksumMismatch, match=r"^1 file differs from release.xml: "):
        verify.verify(tree, [release_model.PackageFile(path="a.rpm", size=1, sha256="0" * 64)])


def test_size_is_checked_before_hashing(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = _file(tree, "a.rpm", b"12345")
    (tree / "a.rpm").write_bytes(b"123456")
    hashed: list[object] = []
    real = hashlib.sha256

    def spy(*args: object) -> object:
        hashed.append(args)
        return real()

    monkeypatch.setattr(hashlib, "sha256", spy)  # the module verify uses
    with pytest.raises(verify.ChecksumMismatch) as caught:
        verify.verify(tree, [package])
    assert [p.kind for p in caught.value.problems] == [verify.ProblemKind.WRONG_SIZE]
    assert hashed == []


def test_symlinks_and_special_files_are_problems_never_followed(tree: Path) -> None:
    outside = tree.parent / "outside.rpm"
    outside.write_bytes(b"secret")
    package = release_model.PackageFile(
        path="a.rpm", size=6, sha256=hashlib.sha256(b"secret").hexdigest()
    )
    (tree / "a.rpm").symlink_to(outside)  # would pass if followed
    os.mkfifo(tree / "pipe")
    (tree / "dir").mkdir()
    (tree / "dir-link").symlink_to(tree / "dir")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tree / "sock"))
        with pytest.raises(verify.ChecksumMismatch) as caught:
            verify.verify(tree, [package])
    problems = {(p.kind, p.path, p.actual) for p in caught.value.problems}
    assert problems == {
        (verify.ProblemKind.NOT_REGULAR, "a.rpm", "symlink"),
        (verify.ProblemKind.NOT_REGULAR, "dir-link", "symlink"),
        (verify.ProblemKind.NOT_REGULAR, "pipe", "fifo"),
        (verify.ProblemKind.NOT_REGULAR, "sock", "socket"),
    }
    assert "not a regular file: a.rpm (symlink), dir-link (symlink)" in str(caught.value)


def test_check_file_does_not_follow_a_symlink_swapped_in(tree: Path) -> None:
    target = tree.parent / "target"
    target.write_bytes(b"x")
    (tree / "a.rpm").symlink_to(target)
    package = release_model.PackageFile(
        path="a.rpm", size=1, sha256=hashlib.sha256(b"x").hexdigest()
    )
    problem = verify.check_file(tree, package)
    assert problem is not None and problem.kind is verify.ProblemKind.NOT_REGULAR


def test_prehash_digests_are_reused_for_the_same_file_only(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _file(tree, "a.rpm", b"a" * 5000)
    b = _file(tree, "b.rpm", b"b" * 5000)
    with verify.Prehash(tree, [a, b]) as prehash:
        prehash.file_done("a.rpm")
        prehash.file_done("b.rpm")
        prehash.file_done("not-in-release.txt")  # ignored
    # b.rpm is replaced after it was hashed (a new file, same size): its digest is not reused
    (tree / "b.new").write_bytes(b"B" * 5000)
    (tree / "b.new").replace(tree / "b.rpm")

    hashed = _spy_on_hashing(monkeypatch)
    with pytest.raises(verify.ChecksumMismatch) as caught:
        verify.verify(tree, [a, b], prehash=prehash, workers=1)
    assert [(p.kind, p.path) for p in caught.value.problems] == [
        (verify.ProblemKind.WRONG_SHA256, "b.rpm")
    ]
    assert len(hashed) == 1  # only b.rpm was hashed again


def test_prehash_never_follows_symlinks_or_raises(tree: Path) -> None:
    outside = tree.parent / "outside"
    outside.write_bytes(b"x")
    (tree / "a.rpm").symlink_to(outside)
    package = release_model.PackageFile(
        path="a.rpm", size=1, sha256=hashlib.sha256(b"x").hexdigest()
    )
    with verify.Prehash(tree, [package]) as prehash:
        prehash.file_done("a.rpm")
        prehash.file_done("a.rpm")
    with pytest.raises(verify.ChecksumMismatch, match=r"not a regular file: a\.rpm"):
        verify.verify(tree, [package], prehash=prehash)


def test_a_trusted_digest_is_not_hashed_and_only_holds_for_its_inode(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _file(tree, "a.rpm", b"a" * 5000)
    b = _file(tree, "b.rpm", b"b" * 5000)
    prehash = verify.Prehash(tree, [a, b])
    for package in (a, b):  # as a placement from the pool vouches for them
        info = (tree / package.path).stat()
        identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        prehash.trust(package.path, identity, package.sha256.upper())
    prehash.close()
    (tree / "b.new").write_bytes(b"B" * 5000)  # b.rpm replaced: another inode
    (tree / "b.new").replace(tree / "b.rpm")
    hashed = _spy_on_hashing(monkeypatch)
    with pytest.raises(verify.ChecksumMismatch) as caught:
        verify.verify(tree, [a, b], prehash=prehash, workers=1)
    assert [(p.kind, p.path) for p in caught.value.problems] == [
        (verify.ProblemKind.WRONG_SHA256, "b.rpm")
    ]
    assert len(hashed) == 1  # a.rpm was taken on trust


def test_closing_with_cancel_stops_a_file_mid_hash_and_verify_hashes_it(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _file(tree, "a.rpm", os.urandom(3 * 4096))
    monkeypatch.setattr(verify, "CHUNK", 4096)
    started, go = threading.Event(), threading.Event()
    real_open = verify._open_regular

    def held_open(root: Path, rel: str) -> io.FileIO:
        handle = real_open(root, rel)
        if threading.current_thread().name.startswith("prehash"):
            started.set()
            go.wait(10)  # until the hashing has been told to stop
        return handle

    monkeypatch.setattr(verify, "_open_regular", held_open)
    prehash = verify.Prehash(tree, [a])
    prehash.file_done("a.rpm")
    assert started.wait(10)
    closer = threading.Thread(target=prehash.close, kwargs={"cancel": True})
    closer.start()
    deadline = time.monotonic() + 10
    while not prehash._stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.001)
    go.set()
    closer.join(10)
    assert not closer.is_alive()
    info = (tree / "a.rpm").stat()
    identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    assert prehash.lookup("a.rpm", identity) is None  # stopped: no digest kept
    hashed = _spy_on_hashing(monkeypatch)
    verify.verify(tree, [a], prehash=prehash, workers=1)
    assert len(hashed) == 1


def test_a_tampered_file_is_refused_although_the_background_hashing_was_stopped(
    tree: Path,
) -> None:
    a = _file(tree, "a.rpm", b"a" * 5000)
    (tree / "a.rpm").write_bytes(b"A" * 5000)  # other bytes than declared, same size
    with verify.Prehash(tree, [a]) as prehash:
        prehash.file_done("a.rpm")
        prehash.close(cancel=True)
    with pytest.raises(verify.ChecksumMismatch, match=r"wrong SHA-256: a\.rpm"):
        verify.verify(tree, [a], prehash=prehash)


def test_verify_checks_against_the_walk_it_is_given_instead_of_walking_again(tree: Path) -> None:
    a = _file(tree, "a.rpm", b"a" * 100)
    listing = tree_walk.walk(tree)
    (tree / "junk.txt").write_text("added after the walk")
    verify.verify(tree, [a], listing=listing)  # the given walk has no junk.txt
    with pytest.raises(verify.ChecksumMismatch, match=r"extra: junk\.txt"):
        verify.verify(tree, [a])
