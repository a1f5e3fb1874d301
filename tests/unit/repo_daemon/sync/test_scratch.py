"""The scratch directory: the tree check, pruning leftovers, refusing a dest that is no
directory."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from repo_daemon.sync import errors, scratch


def test_check_tree_counts_regular_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.rpm").write_bytes(b"123")
    (tmp_path / "y.deb").write_bytes(b"45")
    (tmp_path / "empty").mkdir()
    assert scratch.check_tree(tmp_path) == scratch.TreeSummary(files=2, bytes=5)


def test_check_tree_refuses_symlinks_and_special_files_naming_all(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "passwd").symlink_to("/etc/passwd")
    (tmp_path / "dirlink").symlink_to(tmp_path / "sub")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(tmp_path / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "sock"))
        with pytest.raises(errors.SyncRefused) as caught:
            scratch.check_tree(tmp_path)
    assert not caught.value.transient
    assert caught.value.paths == ("dangling", "dirlink", "fifo", "sock", "sub/passwd")
    assert "sub/passwd (symlink)" in str(caught.value)
    assert "fifo (fifo)" in str(caught.value)


def test_prune_removes_leftovers_only(tmp_path: Path) -> None:
    (tmp_path / "keep" / "deep").mkdir(parents=True)
    (tmp_path / "keep" / "deep" / "a.rpm").write_bytes(b"a")
    (tmp_path / "keep" / ".a.rpm.part").write_bytes(b"partial")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "b.rpm").write_bytes(b"b")
    (tmp_path / "link").symlink_to(tmp_path / "old")
    scratch.prune(tmp_path, {"keep/deep/a.rpm"})
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert left == ["keep", "keep/deep", "keep/deep/a.rpm"]


def test_dest_that_is_not_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.SyncError):
        scratch.prepare_dest(tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(errors.SyncError):
        scratch.prepare_dest(tmp_path / "link")


def test_a_full_scratch_disk_is_the_bridges_trouble_said_plainly(tmp_path: Path) -> None:
    """ENOSPC while a release arrives (a real full disk is hard to make on demand): transient,
    not replied to the provider, with what the release needs and what is free."""
    failure = scratch.write_failed(
        OSError(errno.ENOSPC, "No space left on device"), tmp_path, 5_000_000
    )
    assert isinstance(failure, scratch.ScratchFull)
    assert failure.transient and not failure.provider_can_fix
    assert str(failure).startswith(
        "the bridge's scratch disk is full (No space left on device); the release needs "
        "5,000,000 bytes, "
    )
    other = scratch.write_failed(OSError(errno.EIO, "Input/output error"), tmp_path, None)
    assert other.transient and str(other) == (
        "writing the release into the scratch directory failed: Input/output error"
    )
