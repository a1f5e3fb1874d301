"""The entry points: what ``sync`` refuses before handing over to a protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records


def test_a_release_larger_than_allowed_is_refused_before_fetching(tmp_path: Path) -> None:
    packages = [release_model.PackageFile(path="a.rpm", size=2000, sha256="0" * 64)]
    with pytest.raises(sync_errors.SyncRefused, match="2000 bytes"):
        sync.sync(
            "rsync",
            "rsync://127.0.0.1:1/rel",
            tmp_path / "dest",
            packages=packages,
            options=records.SyncOptions(max_bytes=1000),
        )
    assert not (tmp_path / "dest").exists()


def test_https_needs_the_list_of_files(tmp_path: Path) -> None:
    with pytest.raises(sync_errors.SyncError, match="list of files"):
        sync.sync("https", "https://dl.example.org/rel/arc", tmp_path / "d")
