"""Placing a release's files from the repository's pool into scratch before a sync: each file
of release.xml whose SHA-256 the pool already holds (``<root>/.pool/<sha[:2]>/<sha>``) is hard-
linked into scratch under its path, so that the transfer fetches only what is new. A placed
file is the pool's own read-only inode: it is vouched for by the pool's name and size (the
pool is content-addressed and only ever filled from verified files), not hashed again.

It never copies bytes, never writes to, chmods or creates anything in the pool (it only links
from it and reads its ``lstat``), never places a pool file that is not a read-only regular
file of the declared size, and never fetches. When scratch is on another file system than
the pool (or links are refused), it places nothing and the sync fetches everything, as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import tree as tree_walk

logger = logging.getLogger(__name__)

POOL_MODE = 0o444  # a pool file's mode (``publish.pool.MODE``); any other is not placed
# link(2) cannot join scratch and the pool: give up placing (the sync fetches everything).
_CANNOT_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP})
_SHA256 = re.compile(r"[0-9a-f]{64}")


class PoolFiles(Protocol):
    """Where the pool keeps the bytes with a SHA-256 (``publish.pool.Pool`` is one)."""

    def file(self, sha256: str) -> str: ...


@dataclass(frozen=True, kw_only=True)
class Placed:
    """What ``place`` linked into scratch: each placed path with the identity of its inode
    (device, inode, size, modification time in ns) and the SHA-256 it stands for."""

    files: Mapping[str, tuple[tuple[int, int, int, int], str]] = field(default_factory=dict)

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self.files)

    @property
    def count(self) -> int:
        return len(self.files)

    @property
    def bytes(self) -> int:
        return sum(identity[2] for identity, _sha in self.files.values())


NOTHING = Placed()


def place(
    pool: PoolFiles | None,
    dest: Path,
    packages: Sequence[release_model.PackageFile],
) -> Placed:
    """Hard-link into ``dest`` every package whose SHA-256 ``pool`` holds as a read-only
    regular file of the declared size; what is there already under that path is replaced
    (an earlier attempt's download). ``dest`` must exist. Nothing is placed without a pool,
    or at all when the first link shows that scratch and pool cannot share an inode.
    Placing is an optimisation: a file it cannot place for any reason is simply fetched."""
    if pool is None or not packages:
        return NOTHING
    found: dict[str, tuple[tuple[int, int, int, int], str]] = {}
    with _Dirs(dest) as dirs:
        _place_all(pool, dirs, packages, found)
    return Placed(files=found)


def _place_all(
    pool: PoolFiles,
    dirs: _Dirs,
    packages: Sequence[release_model.PackageFile],
    found: dict[str, tuple[tuple[int, int, int, int], str]],
) -> None:
    for package in packages:
        sha = package.sha256.lower()
        if not _SHA256.fullmatch(sha) or not _safe_path(package.path):
            continue
        source = pool.file(sha)
        try:
            info = os.lstat(source)
        except OSError:
            continue  # not pooled (or unreadable): fetched
        if (
            not stat.S_ISREG(info.st_mode)
            or stat.S_IMODE(info.st_mode) != POOL_MODE
            or info.st_size != package.size
        ):
            continue  # not what a pool file must be: fetched, and the pool is left alone
        try:
            linked = _link(source, info, dirs, package.path)
        except OSError as exc:
            if exc.errno in _CANNOT_LINK:
                logger.info(
                    "not placing files from the pool into %s: %s (fetching everything)",
                    dirs.top, exc.strerror or exc, extra={"action": "sync_packages"},
                )  # fmt: skip
                return
            continue
        if linked:
            found[package.path] = (
                (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns),
                sha,
            )


def _safe_path(rel: str) -> bool:
    """A plain relative path (release.xml's were checked already; this is belt and braces,
    as the path becomes a link's name)."""
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts)


class _Dirs:
    """Descriptors of the directories below ``top`` that placing links into, each opened
    (created if need be) once, never through a symlink; closed on leaving."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self._fds: dict[str, int] = {}

    def __enter__(self) -> _Dirs:
        self._fds[""] = os.open(self.top, tree_walk.DIR_FLAGS)
        return self

    def __exit__(self, *_: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def fd(self, rel: str) -> int | None:
        """The descriptor of directory ``rel`` ("" is ``top``), or None when something
        that is not a directory (a symlink, a file) is in the way."""
        found = self._fds.get(rel)
        if found is not None:
            return found
        parent_rel, _, name = rel.rpartition("/")
        parent = self.fd(parent_rel)
        if parent is None:
            return None
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        try:
            fd = os.open(name, tree_walk.DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                return None
            raise
        self._fds[rel] = fd
        return fd


def _link(source: str, pooled: os.stat_result, dirs: _Dirs, rel: str) -> bool:
    """Link ``source`` (whose ``lstat`` is ``pooled``) to ``rel`` below ``dirs.top``, never
    through a symlink (a symlink or file in the way of a directory: not placed). True when
    linked (or already that inode)."""
    parent, _, name = rel.rpartition("/")
    fd = dirs.fd(parent)
    if fd is None:
        return False
    try:
        os.link(source, name, dst_dir_fd=fd, follow_symlinks=False)
        return True
    except FileExistsError:
        pass
    there = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if (there.st_dev, there.st_ino) == (pooled.st_dev, pooled.st_ino):
        return True  # placed by an earlier attempt
    if stat.S_ISDIR(there.st_mode):
        return False
    os.unlink(name, dir_fd=fd)  # an earlier attempt's download: the pool's copy wins
    os.link(source, name, dst_dir_fd=fd, follow_symlinks=False)
    return True
