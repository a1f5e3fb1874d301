"""The one atomic write: whole files only, private when asked, nothing left behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bridge import files


def test_writes_bytes_and_text_creating_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "release.xml"
    files.write_atomically(target, b"<release/>")
    assert target.read_bytes() == b"<release/>"
    files.write_atomically(target, "é\n")
    assert target.read_text(encoding="utf-8") == "é\n"
    assert [p.name for p in target.parent.iterdir()] == ["release.xml"]


def test_a_private_file_is_for_its_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "hook-secret"
    target.write_text("old")
    target.chmod(0o644)
    files.write_atomically(target, "whsec_x\n", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "whsec_x\n"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "state"
    target.write_text("old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        files.write_atomically(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state"]
