"""``yum`` without the tool: the createrepo_c argument list."""

from __future__ import annotations

from pathlib import Path

from repo_daemon.metadata import yum


def test_createrepo_argv_is_deterministic_and_fails_on_a_bad_rpm() -> None:
    assert yum.createrepo_argv(Path("/t/rpms")) == [
        "createrepo_c",
        "--no-database",
        "--unique-md-filenames",
        "--checksum=sha256",
        "--general-compress-type=gz",
        "--error-exit-val",
        "--",
        "/t/rpms",
    ]
    pinned = yum.createrepo_argv(Path("/t/rpms"), timestamp=1700000000, cache_dir=Path("/c"))
    assert pinned[-5:] == [
        "--revision=1700000000",
        "--set-timestamp-to-revision",
        "--cachedir=/c",
        "--",
        "/t/rpms",
    ]
