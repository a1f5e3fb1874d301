"""Where the packages are read from in the tree layout (``docs/publication.md``): a payload tree
beside the snapshot, which may hold more than the area's releases (files of an interrupted
change, a release being removed, the metadata links into the live snapshot). This module says
exactly which files each repository indexes, finds the previous metadata through the live
area's links, and gives apt-ftparchive a directory of exactly those files.

It never writes into the payload tree: what it makes (the tools' package lists, the directory
of hard links) lives in a private work directory inside the snapshot being built, removed
before the metadata step returns, except the directory of hard links ``keep_linked`` keeps
up to date in the area's cache (given by the caller). It runs no tool.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.metadata import errors, incremental, repository_dirs

WORK_PREFIX = ".metadata-work-"
"""A hidden directory in the snapshot being built, gone when the step returns (a crash leaves
it in a ``.building-`` snapshot, which is discarded whole)."""


def files_below(
    relative_path: str, payload_files: Iterable[str], suffixes: tuple[str, ...]
) -> list[str]:
    """The area's files (``/``-separated, below the area) in the repository at
    ``relative_path`` whose names end in one of ``suffixes``, relative to the repository's
    directory, sorted: what the tools would have found walking that directory of a snapshot
    that held only the area's releases."""
    prefix = "/".join(repository_dirs.parts(relative_path))
    prefix = f"{prefix}/" if prefix else ""
    return sorted(
        {
            path[len(prefix) :]
            for path in payload_files
            if path.startswith(prefix) and path.endswith(suffixes)
        }
    )


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where one repository's packages are read in the tree layout (the repository's
    directory in the snapshot is then only where its metadata is written)."""

    directory: Path  # the repository's directory in the payload tree, read only
    files: Mapping[str, int]  # the packages to index, relative to ``directory`` → inode
    work: Path  # a private directory for this repository's list and links (made by ``source``)
    live: Path | None  # the live area's directory of the repository: the previous packages
    # every package ``directory`` holds (``incremental.scan``, one walk): when ``live`` is the
    # same directory (the area's link leads to this tree), the previous packages, unwalked
    found: Mapping[str, int] | None = None


def source(
    payload_dir: Path,
    relative_path: str,
    payload_files: Iterable[str],
    suffixes: tuple[str, ...],
    *,
    work: Path,
    live: Path | None,
) -> Source:
    """The ``Source`` of the repository at ``relative_path``: the packages of
    ``payload_files`` in it (``files_below``), checked as ``inodes`` checks them.

    One walk of the repository's directory (``incremental.scan``: ``readdir``'s inode
    numbers and types, real directories only, no ``stat`` per file) finds them; only when a
    listed package is not found so does ``inodes`` look at each file, for its messages."""
    parts = repository_dirs.parts(relative_path)
    directory = payload_dir.joinpath(*parts)
    wanted = files_below(relative_path, payload_files, suffixes)
    found = _walk(payload_dir, parts, suffixes)
    try:
        files = {name: found[name] for name in wanted}
    except KeyError:
        files = inodes(payload_dir, parts, wanted)  # raises, naming every problem
    work.mkdir()
    same = live is not None and found is not None and _same_directory(live, directory)
    return Source(
        directory=directory, files=files, work=work, live=live, found=found if same else None
    )


def _walk(payload_dir: Path, parts: Sequence[str], suffixes: tuple[str, ...]) -> dict[str, int]:
    """``incremental.scan`` of the repository's directory when it and every directory on the
    way are real directories; else nothing (``inodes`` then says what is wrong)."""
    on_the_way = [payload_dir.joinpath(*parts[:n]) for n in range(len(parts) + 1)]
    for directory in on_the_way:
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                return {}
        except OSError:
            return {}
    return incremental.scan(on_the_way[-1], suffixes)


def _same_directory(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False


def inodes(payload_dir: Path, parts: Sequence[str], relative: Iterable[str]) -> dict[str, int]:
    """Each of ``relative`` (below ``payload_dir/<parts>``) → its inode, from ``lstat``: the
    same mapping ``incremental.scan`` gives for a snapshot that holds exactly these files.

    Raises ``MetadataFailed`` naming every file that is missing or not a regular file, and
    every directory on the way that is not a real directory (a symlink is never followed to a
    package: the payload's directories are plain ones, only metadata is linked)."""
    directory = payload_dir.joinpath(*parts)
    top = f"{directory}/"
    found: dict[str, int] = {}
    problems: list[str] = []
    checked: dict[str, str | None] = {"": None}
    prefix = "/".join(parts)
    for name in relative:
        parent = name.rpartition("/")[0]
        bad = _not_a_directory(
            f"{payload_dir}/", "/".join(p for p in (prefix, parent) if p), checked
        )
        if bad is not None:
            problems.append(f"{bad} (holding {name}) is not a directory of the payload")
            continue
        try:
            st = os.lstat(top + name)
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{name} is not a regular file")
            continue
        found[name] = st.st_ino
    if problems:
        raise errors.MetadataFailed(
            f"the payload tree {directory} does not hold the area's packages as published: "
            + "; ".join(problems[:20])
            + (f" (and {len(problems) - 20} more)" if len(problems) > 20 else "")
        )
    return found


def _not_a_directory(top: str, relative: str, checked: dict[str, str | None]) -> str | None:
    """The first directory on the way to ``relative`` (itself included) that is not a real
    directory below ``top``, or None; each directory is looked at once (``checked``)."""
    if relative not in checked:
        head = relative.rpartition("/")[0]
        bad = _not_a_directory(top, head, checked)
        if bad is None:
            try:
                real = stat.S_ISDIR(os.lstat(top + relative).st_mode)
            except OSError:
                real = False
            bad = None if real else relative
        checked[relative] = bad
    return checked[relative]


def previous_metadata(
    live_area: Path, relative_path: str, marker: str, *, within: Path | None = None
) -> Path | None:
    """The real directory holding a repository's metadata in the area's live tree:
    ``live_area/<relative_path>/<marker>`` (``repodata`` for YUM, ``Release`` for APT) is, in
    the tree layout, a metadata link into the live metadata snapshot (through the area's link
    and ``.meta``); in the snapshots layout a plain entry of the live snapshot. Either way the
    tools get the resolved directory (its parent for ``Release``), never a link. None when the
    area has no such metadata (the first publication, a new repository), or when it does not
    lie below ``within`` (given: where publication keeps snapshots; a link planted in the tree
    would lead elsewhere)."""
    candidate = live_area.joinpath(*repository_dirs.parts(relative_path), marker)
    try:
        real = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError, RuntimeError):
        return None
    if within is not None and not real.is_relative_to(within):
        return None
    return real.parent


@contextlib.contextmanager
def work_directory(snapshot: Path) -> Iterator[Path]:
    """A private directory inside ``snapshot`` for this step's lists and links, removed at
    the end whatever happens."""
    work = snapshot / f"{WORK_PREFIX}{secrets.token_hex(4)}"
    work.mkdir()
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_list(path: Path, relative: Iterable[str]) -> Path:
    """``relative``, one a line (createrepo_c's ``--pkglist``)."""
    with path.open("w", encoding="utf-8") as out:
        out.writelines(f"{name}\n" for name in relative)
    return path


def link_exactly(source: Path, files: Mapping[str, int], target: Path) -> Path:
    """A directory ``target`` holding a hard link of each of ``files`` (relative to
    ``source``, checked by ``inodes``): the same inodes, sizes and mtimes as the payload, so
    apt-ftparchive run in it writes the ``Filename: ./…`` lines and keeps the cache keys it
    would in a snapshot of exactly these files. (The caller holds the area's lock: nothing
    replaces a payload file between ``inodes`` and here.)

    Raises ``MetadataFailed`` when a file cannot be linked (another file system: the snapshot
    and the payload tree must share one, as they share the pool)."""
    target.mkdir()
    made: set[str] = {""}
    top, out = f"{source}/", f"{target}/"
    for name in files:  # strings, not Paths: this runs once per package of the area
        parent = name.rpartition("/")[0]
        if parent not in made:
            (target / parent).mkdir(parents=True, exist_ok=True)
            made.add(parent)
        try:
            os.link(top + name, out + name, follow_symlinks=False)
        except OSError as exc:
            raise _cannot_link(source / name, exc, "the snapshots") from exc
    return target


def _cannot_link(path: Path, exc: OSError, where: str) -> errors.MetadataFailed:
    """The error for a package that could not be linked into ``where`` for indexing."""
    hint = ""
    if exc.errno == errno.EXDEV:
        hint = f": {where} and the payload tree must be on one file system"
    return errors.MetadataFailed(f"cannot link {path} for indexing ({exc.strerror}){hint}")


def keep_linked(source: Path, files: Mapping[str, int], target: Path) -> Path:
    """Make ``target`` (kept between runs: the area's cache) hold exactly a hard link of each
    of ``files`` (relative to ``source``, checked by ``inodes``), as ``link_exactly`` makes
    afresh, changing only what differs: one walk of ``target`` (``readdir``'s inode numbers,
    no ``stat``), then an unlink for every entry that is not one of ``files`` with its inode
    and a link for every file missing. So a publication that adds a release links only the
    release's packages. Whatever a crash left in ``target`` is set right by the next run.

    The links hold their pool files' link counts above one, so the pool's GC keeps a package
    the area dropped until the area's next metadata run unlinks it here."""
    if not target.is_dir() or target.is_symlink():
        if target.is_symlink() or target.exists():
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        return link_exactly(source, files, target)
    present: set[str] = set()
    pending = [(str(target), "")]
    directories: list[str] = []
    while pending:
        current, prefix = pending.pop()
        with os.scandir(current) as entries:
            for entry in entries:
                relative = prefix + entry.name
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, relative + "/"))
                    directories.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and files.get(relative) == entry.inode():
                    present.add(relative)
                else:
                    os.unlink(entry.path)  # noqa: PTH108 (a str path on a hot loop)
    # Emptied directories go before anything is linked: a package may now be named as a
    # directory was (the links below recreate the parents they need).
    for directory in reversed(directories):  # deepest last found first: empty ones go
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # noqa: PTH106 (found as a str)
    missing = {name: inode for name, inode in files.items() if name not in present}
    top, out = f"{source}/", f"{target}/"
    for name in missing:
        try:
            try:
                os.link(top + name, out + name, follow_symlinks=False)
            except FileNotFoundError:  # its directory is not there yet (the source is: inodes)
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                os.link(top + name, out + name, follow_symlinks=False)
        except OSError as exc:
            raise _cannot_link(source / name, exc, "the cache") from exc
    return target
