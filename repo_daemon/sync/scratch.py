"""The scratch directory a sync fetches into: creating it, pruning an earlier attempt's
leftovers, opening new files there (never through a symlink, under hidden ``.part`` names
until complete), the final check that it holds only directories and regular files whose names
are within ``release_xml.limits``, and removing it, whatever it holds.

It never fetches, and never touches anything outside the directory it is given.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bridge import printable
from repo_daemon import errors as errors_root
from repo_daemon.release_xml import limits
from repo_daemon.sync import errors
from repo_daemon.sync import tree as tree_walk

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # bytes fetched and written at a time (SFTP, HTTPS)


@dataclass(frozen=True, kw_only=True)
class TreeSummary:
    """The regular files below a checked tree and their bytes, and the walk that found them."""

    files: int
    bytes: int
    listing: tree_walk.Listing | None = field(default=None, compare=False, repr=False)


class ScratchFull(errors.SyncError):
    """The bridge's scratch disk is full (or its quota reached) while a release arrives: the
    bridge's trouble, not the provider's (transient: retried, space may be freed by retention
    and the pool GC or an operator; the ticket is told when the bridge gives up)."""

    provider_can_fix = False

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True)


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def write_failed(exc: OSError, dest: Path, promised: int | None) -> errors.SyncError:
    """The error to raise for ``exc``, raised while writing a release into ``dest``: a full
    disk (``ScratchFull``, saying how much the release needs and how much is free) or another
    failure of the bridge's own file system (transient). Never the provider's: their names
    and sizes were checked before anything was written."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _DISK_FULL:
        try:
            disk = os.statvfs(dest)
            free: int | None = disk.f_bavail * disk.f_frsize
        except OSError:
            free = None
        needs = f"; the release needs {promised:,} bytes" if promised is not None else ""
        left = f", {free:,} bytes are free" if free is not None else ""
        return ScratchFull(
            f"the bridge's scratch disk is full ({reason}){needs}{left}; the sync is retried "
            "once space is freed (an operator may need to free or add space)"
        )
    return errors.SyncError(
        f"writing the release into the scratch directory failed: {reason}", transient=True
    )


def check_tree(tree: Path) -> TreeSummary:
    """Count the regular files below ``tree``; raise ``SyncRefused`` naming every symlink,
    device, fifo or socket (never followed) and every entry the limits refuse (a name that is
    not UTF-8 or holds a hidden character, a name, path or depth beyond the limits), whatever
    the protocol promised. Names are shown escaped."""
    files = size = 0
    listing = walk_tree(tree)
    refused = [r.describe() for r in listing.refused]
    for entry in listing.entries:
        if stat.S_ISREG(entry.info.st_mode):
            files += 1
            size += entry.info.st_size
        elif not entry.is_dir:
            refused.append(f"{entry.path} ({tree_walk.entry_kind(entry.info.st_mode)})")
    if refused:
        shown = refused[:20] + ([f"and {len(refused) - 20} more"] if len(refused) > 20 else [])
        raise errors.SyncRefused(
            f"the provider's tree holds {len(refused)} entries that are not accepted (only "
            "directories and regular files with names within the limits of docs/release-xml.md"
            f"; symlinks and special files never): {', '.join(shown)}",
            [r.rsplit(" (", 1)[0] for r in refused],
        )
    return TreeSummary(files=files, bytes=size, listing=listing)


def walk_tree(tree: Path) -> tree_walk.Listing:
    """``tree.walk`` of ``tree``, its failures to read the file system as ``SyncError``."""
    try:
        return tree_walk.walk(tree)
    except OSError as exc:
        raise errors.SyncError(
            f"cannot read the scratch directory: {exc.strerror or exc}", transient=True
        ) from exc


def prepare_dest(dest: Path) -> None:
    """Create ``dest`` (and parents); refuse one that exists as anything but a directory, and
    one whose path leaves too little room for a release's paths (``limits.check_prefix``:
    an operator's setting, never the provider's)."""
    too_long = limits.check_prefix(os.fspath(dest.absolute()))
    if too_long is not None:
        raise errors_root.ProcessingFailed(
            f"the scratch directory is too long for the limits on release paths: {too_long}; "
            "choose a shorter data_dir",
            transient=False,
        )
    try:
        info = dest.lstat()
    except FileNotFoundError:
        dest.mkdir(parents=True)
        return
    if not stat.S_ISDIR(info.st_mode):
        raise errors.SyncError(f"scratch directory {dest} is not a directory", transient=False)


def prune(dest: Path, keep: set[str]) -> None:
    """Remove every entry below ``dest`` that is not a kept regular file or a directory
    leading to one (leftovers of an earlier attempt, whatever their names or depth).
    Symlinks are removed, never followed."""
    needed_dirs = {"/".join(k.split("/")[:i]) for k in keep for i in range(1, k.count("/") + 1)}
    pending = [(os.open(dest, tree_walk.DIR_FLAGS), "")]
    try:
        while pending:
            dir_fd, prefix = pending.pop()
            try:
                for name in tree_walk.names_in(dir_fd):
                    rel = prefix + name
                    mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                    if stat.S_ISDIR(mode) and rel in needed_dirs:
                        child = os.open(name, tree_walk.DIR_FLAGS, dir_fd=dir_fd)
                        pending.append((child, rel + "/"))
                    elif not (stat.S_ISREG(mode) and rel in keep):
                        tree_walk.remove_entry(dir_fd, name)
            finally:
                os.close(dir_fd)
    finally:
        for dir_fd, _prefix in pending:
            os.close(dir_fd)


def remove(dest: Path) -> None:
    """Delete the scratch directory ``dest``, whatever the provider left in it (any depth or
    name); a failure is logged, never raised: a release must always be closable."""
    try:
        tree_walk.remove_tree(dest)
    except OSError as exc:
        logger.warning(
            "could not remove the scratch directory %s: %s",
            printable.escape(os.fspath(dest)),
            exc.strerror or exc,
        )


def open_new(path: Path) -> IO[bytes]:
    """A new file at ``path`` for writing, never through a symlink."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    return open(os.open(path, flags, 0o644), "wb")  # noqa: PTH123  (an fd, not a path)


def part_name(target: Path) -> Path:
    """Where a download goes until complete: hidden, so it can never be a package's name
    (``limits.temp_name``; the limit on names leaves room for it)."""
    return target.with_name(limits.temp_name(target.name))
