"""Proof that a synced tree is exactly what release.xml promises: every file present, nothing
else, each with the promised size and SHA-256. Reports every difference at once, never only
the first. It reads the tree and nothing else: it never fetches, repairs or deletes."""

from __future__ import annotations

import enum
import errno
import hashlib
import io
import logging
import os
import stat
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from bridge import printable
from repo_daemon import errors
from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import tree as tree_walk

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024  # bytes read and hashed at a time


class ProblemKind(enum.Enum):
    """How a file differs from release.xml; the value is the words used in messages."""

    MISSING = "missing"
    EXTRA = "extra"
    NOT_REGULAR = "not a regular file"
    NAME_REFUSED = "name not accepted"
    WRONG_SIZE = "wrong size"
    WRONG_SHA256 = "wrong SHA-256"


@dataclass(frozen=True, kw_only=True)
class Problem:
    """One file that differs from release.xml. ``expected``/``actual`` are set for sizes (in
    bytes) and hashes (lower-case hex), name the kind of entry for ``NOT_REGULAR`` and say why
    for ``NAME_REFUSED`` (whose ``path`` is already escaped: it may not be valid UTF-8)."""

    kind: ProblemKind
    path: str
    expected: str | None = None
    actual: str | None = None

    def describe(self) -> str:
        """The path, with what was expected and found where that helps."""
        if self.kind is ProblemKind.WRONG_SIZE:
            return f"{self.path} (expected {self.expected} bytes, got {self.actual})"
        if self.kind is ProblemKind.WRONG_SHA256:
            return f"{self.path} (expected {self.expected}, got {self.actual})"
        if self.kind in (ProblemKind.NOT_REGULAR, ProblemKind.NAME_REFUSED) and self.actual:
            return f"{printable.escape(self.path)} ({self.actual})"
        return printable.escape(self.path)


class ChecksumMismatch(errors.DaemonError):
    """The synced files differ from release.xml (permanent: the provider must fix the tree or
    release.xml). ``problems`` lists every difference, sorted by kind and path."""

    transient = False
    provider_can_fix = True

    def __init__(self, problems: Sequence[Problem]) -> None:
        order = list(ProblemKind)
        self.problems = tuple(sorted(problems, key=lambda p: (order.index(p.kind), p.path)))
        super().__init__(describe_problems(self.problems))


def describe_problems(problems: Sequence[Problem]) -> str:
    """``3 files differ from release.xml: missing: a.rpm; extra: junk.txt; wrong SHA-256: …``."""
    count = len({p.path for p in problems})
    parts = []
    for kind in ProblemKind:
        found = [p.describe() for p in problems if p.kind is kind]
        if found:
            parts.append(f"{kind.value}: {', '.join(found)}")
    noun = "file differs" if count == 1 else "files differ"
    return f"{count} {noun} from release.xml: " + "; ".join(parts)


def verify(
    tree: Path,
    packages: Sequence[release_model.PackageFile],
    *,
    workers: int | None = None,
    prehash: Prehash | None = None,
    listing: tree_walk.Listing | None = None,
) -> None:
    """Check ``tree`` against ``packages``; raise ``ChecksumMismatch`` listing every file that
    is missing, extra, not a regular file (a symlink, device, fifo or socket), of the wrong
    size or of the wrong SHA-256.

    Entries whose names the limits refuse (``sync.tree``) are listed too, escaped.
    Sizes are compared before anything is hashed; files are hashed in 1 MiB chunks, by up to
    ``workers`` threads (default: one per CPU, at most 4: hashing releases the GIL), except
    those ``prehash`` already hashed while they arrived. Files are opened with ``O_NOFOLLOW``,
    so a file swapped for a symlink meanwhile is not followed. ``listing`` is a walk of
    ``tree`` taken since it last changed (the sync's own, ``SyncResult.listing``), used
    instead of walking again.
    """
    expected = {p.path: p for p in packages}
    problems: list[Problem] = []
    present: set[str] = set()
    if listing is None:
        listing = tree_walk.walk(tree)
    for refused in listing.refused:
        problems.append(
            Problem(kind=ProblemKind.NAME_REFUSED, path=refused.shown, actual=refused.reason)
        )
    for entry in listing.entries:
        mode = entry.info.st_mode
        if stat.S_ISREG(mode):
            present.add(entry.path)
        elif not stat.S_ISDIR(mode):
            problems.append(
                Problem(kind=ProblemKind.NOT_REGULAR, path=entry.path, actual=entry_kind(mode))
            )
    odd = {p.path for p in problems}
    problems.extend(
        Problem(kind=ProblemKind.MISSING, path=p)
        for p in expected
        if p not in present and p not in odd
    )
    problems.extend(Problem(kind=ProblemKind.EXTRA, path=p) for p in present if p not in expected)
    checked = [expected[p] for p in sorted(present) if p in expected]
    # A file ``prehash`` has the digest of (hashed as it arrived, or placed from the pool),
    # as the walk's lstat shows it, needs neither a thread nor another open.
    infos = {entry.path: entry.info for entry in listing.entries}
    to_check = [p for p in checked if not _known(p, infos[p.path], prehash)]
    workers = workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(to_check) > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
            found = list(pool.map(lambda p: check_file(tree, p, prehash), to_check))
    else:
        found = [check_file(tree, p, prehash) for p in to_check]
    problems.extend(p for p in found if p is not None)
    if problems:
        raise ChecksumMismatch(problems)
    logger.info(
        "verified %d files (%d bytes) in %s against release.xml",
        len(checked),
        sum(p.size for p in checked),
        tree,
        extra={"action": "sync_packages"},  # verification is part of the sync action
    )


entry_kind = tree_walk.entry_kind


def _known(
    package: release_model.PackageFile, info: os.stat_result, prehash: Prehash | None
) -> bool:
    """Whether ``prehash`` holds the promised digest for the very file whose ``lstat`` is
    ``info`` (a regular file of the promised size): nothing left to check."""
    if prehash is None or info.st_size != package.size:
        return False
    return prehash.lookup(package.path, _identity(info)) == package.sha256.lower()


def check_file(
    tree: Path, package: release_model.PackageFile, prehash: Prehash | None = None
) -> Problem | None:
    """The problem with ``package``'s file below ``tree`` (missing, not a regular file, wrong
    size, wrong SHA-256), or None when it is as promised. A digest ``prehash`` took of this
    very file (same device, inode, size and modification time) is used instead of hashing."""
    try:
        handle = _open_regular(tree, package.path)
    except FileNotFoundError:  # removed since the walk
        return Problem(kind=ProblemKind.MISSING, path=package.path)
    except _NotRegular as exc:
        return Problem(kind=ProblemKind.NOT_REGULAR, path=package.path, actual=str(exc))
    with handle:
        info = os.fstat(handle.fileno())
        if info.st_size != package.size:
            return Problem(
                kind=ProblemKind.WRONG_SIZE,
                path=package.path,
                expected=str(package.size),
                actual=str(info.st_size),
            )
        actual = prehash.lookup(package.path, _identity(info)) if prehash else None
        if actual is None:
            actual = _sha256(handle)
    if actual != package.sha256.lower():
        return Problem(
            kind=ProblemKind.WRONG_SHA256,
            path=package.path,
            expected=package.sha256.lower(),
            actual=actual,
        )
    return None


class Prehash:
    """Hashes a release's files in the background as a sync completes them (``file_done``, a
    ``sync`` ``on_file`` callback), so that ``verify`` afterwards only hashes what it has no
    digest of: the hashing overlaps the transfer. A digest is only reused for the very file it
    was taken of (same device, inode, size and modification time, unchanged while hashed).
    Use as a context manager; leaving it waits for queued work (or drops it on an error)."""

    def __init__(
        self, tree: Path, packages: Sequence[release_model.PackageFile], *, workers: int = 1
    ) -> None:
        self.tree = tree
        self._expected = {p.path: p for p in packages}
        self._digests: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prehash")

    def file_done(self, path: str) -> None:
        """``path`` (relative, ``/``) is complete below the tree; hash it if it is a package
        of the release. Thread-safe; never raises."""
        package = self._expected.get(path)
        if package is not None:
            self._pool.submit(self._hash, package)

    def trust(self, path: str, identity: tuple[int, int, int, int], sha256: str) -> None:
        """Take ``sha256`` as the digest of the file with ``identity`` at ``path``, unhashed:
        for a file placed from the pool, whose name is its SHA-256 (``sync.placing``). Still
        only for that very inode, size and time: a file replaced meanwhile is hashed."""
        with self._lock:
            self._digests[path] = (identity, sha256.lower())

    def lookup(self, path: str, identity: tuple[int, int, int, int]) -> str | None:
        with self._lock:
            found = self._digests.get(path)
        return found[1] if found and found[0] == identity else None

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the hashing to finish; with ``cancel``, drop what has not started and
        stop a file being hashed at its next chunk (its digest is not kept: ``verify``
        hashes it on threads of normal priority)."""
        if cancel:
            self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self) -> Prehash:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close(cancel=exc_type is not None)

    def _hash(self, package: release_model.PackageFile) -> None:
        try:
            with _open_regular(self.tree, package.path) as handle:
                before = _identity(os.fstat(handle.fileno()))
                if before[2] != package.size:
                    return
                digest = _sha256(handle, stop=self._stop)
                if digest is None:
                    return  # stopped: verify hashes it
                if _identity(os.fstat(handle.fileno())) != before:
                    return  # written to while hashed: verify hashes it again
        except (OSError, _NotRegular):
            return  # verify looks at it again and reports what is wrong
        with self._lock:
            self._digests[package.path] = (before, digest)


class _NotRegular(Exception):
    """The path is not a regular file; the message is its kind."""


def _open_regular(tree: Path, rel: str) -> io.FileIO:
    """``tree/rel`` opened for reading, never through a symlink; ``_NotRegular`` otherwise."""
    path = tree.joinpath(*rel.split("/"))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _NotRegular("symlink") from None
        raise
    handle = io.FileIO(fd, "rb")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # swapped since the walk
        handle.close()
        raise _NotRegular(entry_kind(mode))
    return handle


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


@overload
def _sha256(handle: io.FileIO) -> str: ...
@overload
def _sha256(handle: io.FileIO, *, stop: threading.Event) -> str | None: ...
def _sha256(handle: io.FileIO, *, stop: threading.Event | None = None) -> str | None:
    """The SHA-256 of the rest of ``handle``, read in ``CHUNK``s; None when ``stop`` is set
    before the end."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    while count := handle.readinto(buffer):
        if stop is not None and stop.is_set():
            return None
        digest.update(view[:count])
    return digest.hexdigest()
