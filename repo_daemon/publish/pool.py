"""Bytes and links on disk: the content-addressed pool, ``<root>/.pool/<sha256[:2]>/<sha256>``
(one read-only copy of each file's bytes), and the snapshot directories made of hard links
into it.

It fills the pool from a verified scratch tree (a hard link when scratch is on the same file
system, else a copy that is hashed, fsynced and linked into place), links a snapshot's files
from the pool and checks the result, deletes the pool files nothing references. A pool file
gets its name only once its inode is read-only (0444), so no crash leaves a writable one; one
found writable anyway (left by an older version) is made read-only when it is used or swept.
It never
decides what an area holds or when a snapshot goes live (``repository`` does), takes no locks
(the caller holds them) and leaves sealing and deleting snapshots to ``fsops``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Set
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.publish import areas, errors, fsops, manifest, names

logger = logging.getLogger(__name__)

POOL_DIR = ".pool"
TMP_DIR = ".tmp"
MODE = 0o444  # every pool file: nobody rewrites bytes that snapshots share
# link(2) cannot join these two files: copy instead.
_CANNOT_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP})
_CHUNK = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class PoolFill:
    """What filling the pool from a scratch tree did, in files."""

    linked: int = 0
    copied: int = 0
    present: int = 0


@dataclass(frozen=True, kw_only=True)
class PoolSweep:
    """What a garbage collection of the pool did."""

    removed: int = 0
    removed_bytes: int = 0
    kept: int = 0
    held_elsewhere: int = 0  # unreferenced by any manifest, but still hard-linked somewhere
    repaired: int = 0  # kept files that were writable and were made read-only


class Pool:
    """The pool below ``root`` (an already resolved repository root)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / POOL_DIR
        self._dir = str(self.dir)

    def file(self, sha256: str) -> str:
        """Where the bytes with ``sha256`` live (a string: this is on every hot path)."""
        names.check_sha256(sha256)
        return f"{self._dir}/{sha256[:2]}/{sha256}"

    def path(self, sha256: str) -> Path:
        """Where the bytes with ``sha256`` live."""
        return Path(self.file(sha256))

    @staticmethod
    def relative(sha256: str) -> str:
        """The pool path of ``sha256`` relative to the root, for messages."""
        return f"{POOL_DIR}/{sha256[:2]}/{sha256}"

    def identities(
        self, files: Iterable[manifest.FileEntry]
    ) -> tuple[dict[str, tuple[int, int]], list[str]]:
        """The (device, inode) of each pool file ``files`` need, and a problem for each the
        pool lacks or holds with another size. A pool file found writable is made read-only
        (``StorageFailed`` if it cannot be): no snapshot links a writable one."""
        found: dict[str, tuple[int, int]] = {}
        problems: list[str] = []
        for f in files:
            if f.sha256 in found:
                continue
            try:
                st = os.lstat(self.file(f.sha256))
            except FileNotFoundError:
                problems.append(f"{f.path} (SHA-256 {f.sha256[:12]}…) is not in the pool")
                continue
            except OSError as exc:
                raise errors.StorageFailed("cannot read", self.relative(f.sha256), exc) from exc
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{self.relative(f.sha256)} is not a regular file")
            elif st.st_size != f.size:
                problems.append(
                    f"{self.relative(f.sha256)} has {st.st_size} bytes, {f.path} needs {f.size}"
                )
            else:
                self._make_read_only(self.path(f.sha256), st)
                found[f.sha256] = (st.st_dev, st.st_ino)
        return found, problems

    @staticmethod
    def _make_read_only(path: Path, st: os.stat_result) -> bool:
        """Give the pool file at ``path`` (whose ``lstat`` is ``st``) its mode, 0444, if it has
        another; True when it had to. Only a crash of an older version between ``link`` and
        ``chmod``, or a person, leaves a pool file writable."""
        if stat.S_IMODE(st.st_mode) == MODE:
            return False
        where = f"{POOL_DIR}/{path.parent.name}/{path.name}"
        try:
            path.chmod(MODE)
        except OSError as exc:
            raise errors.StorageFailed("cannot make read-only", where, exc) from exc
        logger.warning(
            "%s had mode %o; made read-only (%o)",
            where,
            stat.S_IMODE(st.st_mode),
            MODE,
            extra={"action": "publish"},
        )
        return True

    def missing(self, files: Iterable[manifest.FileEntry]) -> list[str]:
        """A problem for each of ``files`` the pool lacks or holds with another size."""
        return self.identities(files)[1]

    def fill(self, scratch: Path, files: Iterable[manifest.FileEntry]) -> PoolFill:
        """Put the bytes of ``files`` into the pool, taking them from ``scratch`` where the
        pool lacks them.

        ``scratch`` is a tree verified by the sync (sizes and SHA-256 match the release): a
        file linked from it is not hashed again, a copied one is (the bytes are read anyway).
        Linking makes the scratch file read-only (before the link, so the pool file is born
        read-only) and part of the pool: scratch must not be rewritten in place afterwards.
        Raises ``PathRefused`` for symlinks or non-regular files in scratch,
        ``ContentMissing`` listing every absent or mismatched file, ``StorageFailed`` for
        file-system errors.
        """
        wanted = {f.sha256: f for f in files}
        absent: list[manifest.FileEntry] = []
        problems: list[str] = []
        for f in wanted.values():
            if not os.path.lexists(self.path(f.sha256)):
                absent.append(f)
            else:
                problems.extend(self.missing([f]))
        if problems:
            raise errors.ContentMissing("the pool is damaged", problems)
        if not absent:
            return PoolFill(present=len(wanted))
        try:
            base = scratch.resolve(strict=True)
        except OSError as exc:
            raise errors.ContentMissing(
                "the scratch tree", ["is gone; sync the release again"]
            ) from exc
        sources: list[tuple[manifest.FileEntry, Path, int]] = []
        for f in absent:
            source = base / names.check_relative_path("package path", f.path)
            try:
                st = os.lstat(source)
                real = Path(os.path.realpath(source))
            except FileNotFoundError:
                problems.append(f"{f.path} is not in the scratch tree")
                continue
            except OSError as exc:
                raise errors.StorageFailed("cannot read scratch file", f.path, exc) from exc
            if real != source or stat.S_ISLNK(st.st_mode):
                raise errors.PathRefused("scratch file", f.path, "is or lies below a symlink")
            if not stat.S_ISREG(st.st_mode):
                raise errors.PathRefused("scratch file", f.path, "is not a regular file")
            if st.st_size != f.size:
                problems.append(f"{f.path} has {st.st_size} bytes in scratch, expected {f.size}")
                continue
            sources.append((f, source, st.st_mode))
        if problems:
            raise errors.ContentMissing("the scratch tree does not hold the release", problems)
        linked = copied = 0
        shards: set[Path] = set()
        for f, source, mode in sources:
            target = self.path(f.sha256)
            shards.add(target.parent)
            try:
                target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                if self._link(source, target, mode):
                    linked += 1
                else:
                    self._copy(source, target, f)
                    copied += 1
            except OSError as exc:
                raise errors.StorageFailed("cannot add to the pool", f.path, exc) from exc
        try:
            for shard in shards:
                fsops.fsync_dir(shard)
        except OSError as exc:
            raise errors.StorageFailed("cannot sync", POOL_DIR, exc) from exc
        return PoolFill(linked=linked, copied=copied, present=len(wanted) - len(sources))

    def _link(self, source: Path, target: Path, mode: int) -> bool:
        """Link ``source`` (whose mode was ``mode``) into the pool; False when it must be
        copied instead.

        The inode is made read-only and fsynced *before* it gets its pool name: a crash
        between two steps leaves a read-only scratch file or a complete read-only pool file,
        never a writable pool file (which every later snapshot would serve writable).
        """
        source.chmod(MODE)
        fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            os.fsync(fd)  # the bytes, not only the name, must survive a crash
        finally:
            os.close(fd)
        try:
            os.link(source, target)
        except FileExistsError:
            return True  # another publisher pooled the same bytes meanwhile
        except OSError as exc:
            if exc.errno in _CANNOT_LINK:
                with contextlib.suppress(OSError):  # it stays the sync's: give its mode back
                    source.chmod(stat.S_IMODE(mode))
                return False
            raise
        return True

    def _copy(self, source: Path, target: Path, f: manifest.FileEntry) -> None:
        """Copy ``source`` beside the pool, check its SHA-256, fsync, then link it into place
        (never replacing a pool file: existing snapshots keep pointing at the same inode)."""
        tmp_dir = self.dir / TMP_DIR
        tmp_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix=f.sha256[:12])
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
                os.fchmod(fd, MODE)  # read-only from the start; writing through ``fd`` works
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
            if digest.hexdigest() != f.sha256:
                raise errors.ContentMissing(
                    "the scratch tree", [f"{f.path} does not match its SHA-256"]
                )
            with contextlib.suppress(FileExistsError):  # pooled meanwhile by someone else
                os.link(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def link_tree(
        self, area: areas.Area, building: Path, files: tuple[manifest.FileEntry, ...]
    ) -> None:
        """Hard-link each of ``files`` from the pool to its path below ``building``."""
        base = str(building)  # plain strings: pathlib costs more than link(2) here
        made: set[str] = set()
        for f in files:
            parent = f.path.rpartition("/")[0]
            if parent and parent not in made:
                Path(base, parent).mkdir(mode=0o755, parents=True, exist_ok=True)
                parts = parent.split("/")
                made.update("/".join(parts[: i + 1]) for i in range(len(parts)))
            try:
                os.link(self.file(f.sha256), f"{base}/{f.path}")
            except FileNotFoundError as exc:
                gone = f"{f.path} (SHA-256 {f.sha256[:12]}…) left the pool"
                raise errors.ContentMissing(f"{area} cannot be built", [gone]) from exc
            except OSError as exc:
                if exc.errno == errno.EMLINK:
                    raise errors.StorageFailed(
                        "too many snapshots link", Pool.relative(f.sha256), exc
                    ) from exc
                raise errors.StorageFailed(
                    "cannot link into a snapshot of", area.path, exc
                ) from exc

    def check_tree(
        self,
        building: Path,
        files: tuple[manifest.FileEntry, ...],
        pooled: dict[str, tuple[int, int]],
    ) -> list[str]:
        """Every problem of a built snapshot: a file missing, not a regular file, not linked
        to its pool file, of the wrong size; any symlink anywhere in it."""
        problems: list[str] = []
        base = str(building)
        for f in files:
            try:
                st = os.lstat(f"{base}/{f.path}")
            except FileNotFoundError:
                problems.append(f"{f.path} is missing")
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{f.path} is not a regular file")
            elif (st.st_dev, st.st_ino) != pooled.get(f.sha256):
                problems.append(f"{f.path} is not linked to the pool")
            elif st.st_size != f.size:
                problems.append(f"{f.path} has {st.st_size} bytes, expected {f.size}")
        problems.extend(f"{where} is a symlink" for where in _symlinks(base, ""))
        return problems

    def sweep(self, referenced: Set[str]) -> PoolSweep:
        """Delete pool files whose SHA-256 is not in ``referenced`` and that no other hard link
        holds (a scratch tree, a snapshot without a manifest); make the files it keeps
        read-only where they are not; clear copy leftovers. The caller holds every lock
        (``Locks.everything``)."""
        removed = removed_bytes = kept = held = repaired = 0
        if not self.dir.is_dir():
            return PoolSweep()
        try:
            for shard in sorted(self.dir.iterdir()):
                if shard.name == TMP_DIR:
                    for leftover in shard.iterdir():
                        leftover.unlink(missing_ok=True)
                    continue
                if not shard.is_dir() or shard.is_symlink():
                    continue
                for entry in shard.iterdir():
                    st = os.lstat(entry)
                    if not stat.S_ISREG(st.st_mode) or entry.name[:2] != shard.name:
                        continue  # not ours: leave it for a person
                    if entry.name in referenced or st.st_nlink > 1:
                        repaired += self._make_read_only(entry, st)
                        if entry.name in referenced:
                            kept += 1
                        else:
                            held += 1
                        continue
                    entry.unlink()
                    removed += 1
                    removed_bytes += st.st_size
                fsops.fsync_dir(shard)
        except OSError as exc:
            raise errors.StorageFailed("cannot sweep", POOL_DIR, exc) from exc
        logger.info(
            "pool sweep: %d removed (%d bytes), %d kept, %d held elsewhere, %d made read-only",
            removed,
            removed_bytes,
            kept,
            held,
            repaired,
            extra={"action": "collect_garbage"},
        )
        return PoolSweep(
            removed=removed,
            removed_bytes=removed_bytes,
            kept=kept,
            held_elsewhere=held,
            repaired=repaired,
        )


def _symlinks(top: str, prefix: str) -> list[str]:
    """Every symlink below directory ``top`` (never following one), relative to it."""
    found: list[str] = []
    with os.scandir(top) as entries:
        for entry in entries:
            if entry.is_symlink():
                found.append(prefix + entry.name)
            elif entry.is_dir(follow_symlinks=False):
                found.extend(_symlinks(entry.path, f"{prefix}{entry.name}/"))
    return found
