"""File-system steps that make publication durable and snapshots immutable: fsync a directory,
write a new read-only file, seal a finished snapshot read-only, discard or delete a snapshot
tree.

It knows nothing of areas, releases or the pool: callers pass the paths and hold the locks.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from repo_daemon.publish import names


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes) -> None:
    """Write a new read-only file and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(top: Path) -> None:
    """Make a finished snapshot read-only (files 0444: metadata tools write theirs with the
    umask's mode; directories 0555) and fsync every directory."""
    for directory, _, files in os.walk(top, topdown=False):
        for name in files:
            path = Path(directory, name)
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o222:
                path.chmod(0o444)
        fsync_dir(Path(directory))
        Path(directory).chmod(0o555)  # read-only: nobody edits a snapshot


def discard(path: Path) -> None:
    """Delete a snapshot: first rename it out of the snapshot names, so a half-deleted one
    never looks complete, then delete the tree."""
    doomed = path.with_name(f"{names.DELETING}{path.name}")
    path.rename(doomed)
    delete_tree(doomed)


def delete_tree(path: Path) -> None:
    """Delete a directory tree, read-only directories included."""
    if not path.exists():
        return
    for directory, _, _ in os.walk(path):
        Path(directory).chmod(0o755)  # writable again, to delete
    shutil.rmtree(path)
