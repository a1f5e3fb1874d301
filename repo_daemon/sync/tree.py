"""Walking and deleting a tree the provider filled, whatever it holds: names taken from the
file system as they are (bytes that are not UTF-8 included), any depth, any path length.

``walk`` lists every entry below a directory through directory file descriptors (never an
absolute path, so ``PATH_MAX`` does not matter; never following a symlink), without recursion,
and refuses what ``release_xml.limits`` does not allow (a name that is not UTF-8 or holds a
hidden character, a name, path or depth beyond the limits), naming each entry escaped
(``bridge.printable``); it does not descend into a refused directory, so it stays bounded
however deep the tree is. ``remove_tree`` and ``remove_entry`` delete with two descriptors
at most, at any depth. It fetches nothing and decides nothing about a release.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from bridge import printable
from repo_daemon.release_xml import limits

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One entry below the walked directory: its relative path (``/``, valid UTF-8, within
    the limits) and its ``lstat`` result."""

    path: str
    info: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.info.st_mode)


@dataclass(frozen=True, kw_only=True)
class Refused:
    """An entry whose name or place the limits refuse: ``shown`` is its path escaped (safe to
    print), ``reason`` says why."""

    shown: str
    reason: str

    def describe(self) -> str:
        return f"{self.shown} ({self.reason})"


@dataclass(kw_only=True)
class Listing:
    """What ``walk`` found: the acceptable entries (directories included), in sorted order,
    and the refused ones."""

    entries: list[Entry] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def walk(top: Path) -> Listing:
    """Every entry below ``top`` (which must be a directory, not a symlink), sorted by name
    within each directory, directories before what they hold. Raises ``OSError`` when
    ``top`` cannot be opened."""
    listing = Listing()
    fd = os.open(top, DIR_FLAGS)
    # (directory descriptor, its relative path with a trailing "/", its sorted names)
    stack: list[tuple[int, str, Iterator[str]]] = [(fd, "", iter(names_in(fd)))]
    try:
        while stack:
            dir_fd, prefix, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(dir_fd)
                stack.pop()
                continue
            try:
                info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:  # gone since it was listed
                continue
            rel = prefix + name
            problem = limits.entry_problem(name, rel)
            if problem is not None:
                listing.refused.append(Refused(shown=printable.escape(rel), reason=problem))
                continue
            listing.entries.append(Entry(path=rel, info=info))
            if stat.S_ISDIR(info.st_mode):
                child = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
                stack.append((child, rel + "/", iter(names_in(child))))
    finally:
        for dir_fd, *_ in stack:
            os.close(dir_fd)
    return listing


def entry_kind(mode: int) -> str:
    """``symlink``, ``fifo``, ``socket``, ``device`` … for a mode that is not a regular file."""
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special file"


def describe_refused(refused: list[Refused], limit: int = 20) -> str:
    """``a\\x1b.rpm (holds a control character …), …`` for a message: the first ``limit``."""
    shown = ", ".join(r.describe() for r in refused[:limit])
    more = len(refused) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything below it, never following a symlink, at any depth and
    path length. Nothing there: nothing to do."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        path.unlink()
        return
    _empty(os.open(path, DIR_FLAGS))
    path.rmdir()


def remove_entry(dir_fd: int, name: str) -> None:
    """Delete ``name`` in the directory ``dir_fd`` (a file, or a directory and everything
    below it)."""
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISDIR(info.st_mode):
        _empty(os.open(name, DIR_FLAGS, dir_fd=dir_fd))
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _empty(fd: int) -> None:
    """Delete everything in the directory ``fd`` (and close it), going down and back up by
    ``..`` so that no more than two descriptors are open, however deep it is."""
    below: list[str] = []  # names of the directories from the top down to where ``fd`` is
    try:
        while True:
            subdir = None
            for name in names_in(fd):
                if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    subdir = name
                    break
                os.unlink(name, dir_fd=fd)
            if subdir is not None:
                child = os.open(subdir, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                below.append(subdir)
                continue
            if not below:
                return
            parent = os.open("..", DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(below.pop(), dir_fd=fd)
    finally:
        with suppress(OSError):
            os.close(fd)


def names_in(fd: int) -> list[str]:
    """The names in the directory ``fd``, sorted (as ``os.fsdecode`` gives them: a byte that
    is not UTF-8 is a surrogate, shown as ``\\xNN`` by ``printable.escape``)."""
    with os.scandir(fd) as entries:
        return sorted(entry.name for entry in entries)
