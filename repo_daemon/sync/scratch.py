"""The scratch directory a sync fetches into: creating it, pruning an earlier attempt's
leftovers, opening new files there (never through a symlink, under hidden ``.part`` names
until complete) and the final check that it holds only directories and regular files.

It never fetches, and never touches anything outside the directory it is given.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from repo_daemon.sync import errors, verify

CHUNK = 1024 * 1024  # bytes fetched and written at a time (SFTP, HTTPS)


@dataclass(frozen=True, kw_only=True)
class TreeSummary:
    """The regular files below a checked tree and their bytes."""

    files: int
    bytes: int


def check_tree(tree: Path) -> TreeSummary:
    """Count the regular files below ``tree``; raise ``SyncRefused`` naming every symlink,
    device, fifo or socket (never followed), whatever the protocol promised."""
    files = size = 0
    refused: list[str] = []
    for rel, info in _lwalk(tree):
        if stat.S_ISREG(info.st_mode):
            files += 1
            size += info.st_size
        else:
            refused.append(f"{rel} ({verify.entry_kind(info.st_mode)})")
    if refused:
        raise errors.SyncRefused(
            f"the provider's tree holds {len(refused)} entries that are neither directories nor "
            f"regular files (symlinks and special files are never accepted): {', '.join(refused)}",
            [r.rsplit(" (", 1)[0] for r in refused],
        )
    return TreeSummary(files=files, bytes=size)


def _lwalk(tree: Path, prefix: str = "") -> Iterator[tuple[str, os.stat_result]]:
    with os.scandir(tree) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                yield from _lwalk(Path(entry.path), prefix + entry.name + "/")
            else:
                yield prefix + entry.name, info


def prepare_dest(dest: Path) -> None:
    """Create ``dest`` (and parents); refuse one that exists as anything but a directory."""
    try:
        info = dest.lstat()
    except FileNotFoundError:
        dest.mkdir(parents=True)
        return
    if not stat.S_ISDIR(info.st_mode):
        raise errors.SyncError(f"scratch directory {dest} is not a directory", transient=False)


def prune(dest: Path, keep: set[str]) -> None:
    """Remove every entry below ``dest`` that is not a kept file or a directory leading to one
    (leftovers of an earlier attempt). Symlinks are removed, never followed."""
    needed_dirs = {"/".join(k.split("/")[:i]) for k in keep for i in range(1, k.count("/") + 1)}
    for rel, _info in list(_lwalk(dest)):
        if rel not in keep:
            (dest / rel).unlink()
    for root, dirs, _files in os.walk(dest, topdown=False):
        for name in dirs:
            rel = os.path.relpath(Path(root, name), dest).replace(os.sep, "/")
            if rel not in needed_dirs:
                shutil.rmtree(Path(root, name))


def open_new(path: Path) -> IO[bytes]:
    """A new file at ``path`` for writing, never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return open(os.open(path, flags, 0o644), "wb")  # noqa: PTH123  (an fd, not a path)


def part_name(target: Path) -> Path:
    """Where a download goes until complete: hidden, so it can never be a package's name."""
    return target.with_name(f".{target.name}.part")
