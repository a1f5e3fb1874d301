"""When the metadata tools may reuse what they learnt about a package instead of reading it
again: createrepo_c ``--update`` from the previous snapshot's ``repodata/``, apt-ftparchive's
``--db`` checksum cache. Both tools trust a file whose name, size and whole-second mtime match
what they recorded; this module checks that this trust is deserved before they are allowed to.

In a snapshot every package is a hard link into the content-addressed pool, so *the same
inode means the same bytes*. A file whose inode differs from the one the tool recorded under
that name, while its size and mtime match (a re-signed package with the provider's mtime kept
by the sync, for instance), would get stale metadata: then the tool must read everything.

It reads directories (``readdir``'s inode numbers, a ``stat`` only for files whose inode
changed) and the small record of what apt-ftparchive's cache holds (``KNOWN``); it runs no
tool and writes nothing but that record (``write_known``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.metadata import errors

# Next to apt-ftparchive's database in the area's cache: every file name the database may hold
# an entry for, with the inode, size and mtime it had when it was indexed. Written before the
# database moves on, so it always covers at least what the database holds.
KNOWN = "apt-ftparchive.files"
RPM_SUFFIXES = (".rpm",)
DEB_SUFFIXES = (".deb", ".udeb", ".ddeb")
# Directories the tools write (never packages): not walked.
_SKIPPED = frozenset({"repodata", ".repodata", "by-hash"})
# The known-file record may hold names long gone from the area (the database keeps their
# entries too); past this many times the area's size the cache starts afresh, which bounds both.
MAX_KNOWN_FACTOR = 2


@dataclass(frozen=True, kw_only=True)
class FileState:
    """What the tools compare (size, whole-second mtime) and what proves identity (inode)."""

    inode: int
    size: int
    mtime: int


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Whether the tool may reuse what it recorded; ``reason`` says why not, for the log."""

    reuse: bool
    reason: str = ""


def scan(directory: Path, suffixes: tuple[str, ...]) -> dict[str, int]:
    """Every regular file below ``directory`` whose name ends in one of ``suffixes``: its path
    relative to ``directory`` (``/``-separated) → its inode, as ``readdir`` gives it (no
    ``stat``). Symlinks are not followed (a snapshot has none); the tools' own output
    directories are skipped."""
    found: dict[str, int] = {}
    pending = [(directory, "")]
    while pending:
        current, prefix = pending.pop()
        try:
            entries = list(os.scandir(current))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIPPED:
                    pending.append((Path(entry.path), f"{prefix}{entry.name}/"))
            elif entry.name.endswith(suffixes) and entry.is_file(follow_symlinks=False):
                found[prefix + entry.name] = entry.inode()
    return found


def state(path: Path) -> FileState:
    """``path``'s inode, size and whole-second mtime (one ``stat``)."""
    st = path.stat()
    return FileState(inode=st.st_ino, size=st.st_size, mtime=int(st.st_mtime))


def _masquerades(new: Path, new_inode: int, recorded: FileState) -> bool:
    """Whether ``new`` is other bytes than ``recorded`` that a tool would take for them:
    another inode, but the same size and mtime."""
    if new_inode == recorded.inode:
        return False
    now = state(new)
    if now.inode == recorded.inode:  # readdir's d_ino differed from st_ino (overlay fs)
        return False
    return (now.size, now.mtime) == (recorded.size, recorded.mtime)


def yum_update(
    directory: Path,
    previous: Path | None,
    *,
    current: Mapping[str, int] | None = None,
    previous_packages: Path | None = None,
    previous_found: Mapping[str, int] | None = None,
) -> Decision:
    """Whether createrepo_c may index ``directory`` with ``--update`` from the metadata in
    ``previous`` (the same repository in the snapshot being replaced).

    createrepo_c looks an old entry up by *file name* (without directory) and reuses it when
    size and mtime match. So: no two packages of one name (in either tree), and no package
    whose bytes differ from the one of its name in ``previous`` while size and mtime match.

    The tree layout: ``current`` is the packages to index (``payload.inodes``, instead of
    every package found in ``directory``), ``previous_packages`` the live area's directory of
    the repository, where the packages the previous metadata names are (``previous`` then
    holds the metadata only). That directory may hold more (this publication's new files,
    leftovers): more names only make the check refuse more often, never trust wrongly, and a
    path the live metadata names is never rewritten in the tree while that metadata is live.
    ``previous_found``: ``scan(previous_packages, RPM_SUFFIXES)`` when the caller walked that
    directory already (the live area's link leads to the payload tree being indexed).
    """
    if previous is None:
        return Decision(reuse=False, reason="no previous snapshot")
    if not (previous / "repodata" / "repomd.xml").is_file() or previous.is_symlink():
        return Decision(reuse=False, reason="the previous snapshot has no repodata/repomd.xml")
    packages = previous if previous_packages is None else previous_packages
    old: dict[str, tuple[str, int]] = {}
    found = scan(packages, RPM_SUFFIXES) if previous_found is None else previous_found
    for relative, inode in found.items():
        name = relative.rpartition("/")[2]
        if name in old:
            return Decision(reuse=False, reason=f"two packages named {name} in the previous one")
        old[name] = (relative, inode)
    names: set[str] = set()
    now = scan(directory, RPM_SUFFIXES) if current is None else current
    for relative, inode in now.items():
        name = relative.rpartition("/")[2]
        if name in names:
            return Decision(reuse=False, reason=f"two packages named {name}")
        names.add(name)
        if name not in old:
            continue
        old_relative, old_inode = old[name]
        if inode == old_inode:
            continue
        try:
            recorded = state(packages / old_relative)
        except FileNotFoundError:
            return Decision(reuse=False, reason=f"{old_relative} vanished from the previous one")
        if _masquerades(directory / relative, inode, recorded):
            return Decision(
                reuse=False,
                reason=f"{relative} has other bytes than in the previous snapshot "
                "under the same name, size and mtime",
            )
    return Decision(reuse=True)


Known = Mapping[str, tuple[FileState, ...]]
"""``read_known``'s record: each name → the states the database may hold an entry of."""


def apt_cache(directory: Path, current: Mapping[str, int], known: Known | None) -> Decision:
    """Whether apt-ftparchive may use its database (entries keyed by ``./<path>`` and checked
    against size and mtime only) to index ``current`` (``scan`` of ``directory``).

    ``known`` is ``read_known``'s record of what the database may hold (None: no record, so
    nothing is known of the database: it is not used)."""
    if known is None:
        return Decision(reuse=False, reason="no record of what the cache holds")
    if len(known) > MAX_KNOWN_FACTOR * len(current) + 1000:
        return Decision(reuse=False, reason=f"the cache holds {len(known)} names, mostly gone")
    for relative, inode in current.items():
        for recorded in known.get(relative, ()):
            if recorded.inode != inode and _masquerades(directory / relative, inode, recorded):
                return Decision(
                    reuse=False,
                    reason=f"{relative} has other bytes than the cache recorded "
                    "under the same name, size and mtime",
                )
    return Decision(reuse=True)


def indexed(
    directory: Path, current: Mapping[str, int], known: Known
) -> tuple[dict[str, tuple[FileState, ...]], dict[str, tuple[FileState, ...]]]:
    """The records around the database's move after apt-ftparchive indexed ``current``:
    ``pending`` (written before: every earlier state *and* the new one of each file, since the
    database may hold either until it has moved) and ``final`` (written after: each file of
    ``current`` with its state now; other names as they were). A ``stat`` only where the
    inode is not the one last recorded."""
    pending = dict(known)
    final = dict(known)  # a name not indexed now keeps every state its entry may be from
    for relative, inode in current.items():
        states = known.get(relative, ())
        if states and states[-1].inode == inode:
            final[relative] = states[-1:]  # re-indexed now: its entry is of this state
            continue
        now = state(directory / relative)
        pending[relative] = (*states, now)
        final[relative] = (now,)
    return pending, final


def read_known(path: Path) -> dict[str, tuple[FileState, ...]] | None:
    """The record written by ``write_known``; None when there is none or it is damaged (a
    damaged record means the database is not trusted). The last record this process wrote
    or read at ``path`` is kept in memory and given again (a copy) while the file is the
    same (device, inode, size, mtime: one ``stat``); ``write_known`` replaces the file, so
    any other writer's record is read afresh."""
    try:
        key = _file_key(path)
    except OSError:
        return None
    with _KNOWN_LOCK:
        kept = _KNOWN.get(str(path))
    if kept is not None and kept[0] == key:
        return dict(kept[1])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if text and not text.endswith("\n"):
        return None  # a partial write: never trusted
    known: dict[str, tuple[FileState, ...]] = {}
    for line in text.splitlines():
        fields = line.split("\t", 3)
        if len(fields) != 4 or not all(f.isdigit() for f in fields[:3]):
            return None
        found = FileState(inode=int(fields[0]), size=int(fields[1]), mtime=int(fields[2]))
        known[fields[3]] = (*known.get(fields[3], ()), found)
    _keep(path, key, known)
    return known


# The last record read or written at each path (by ``str(path)``), with its file's key: an
# area's record is tens of thousands of lines, parsed once per daemon instead of per run.
_KNOWN: dict[str, tuple[tuple[int, ...], dict[str, tuple[FileState, ...]]]] = {}
_KNOWN_LOCK = threading.Lock()


def _file_key(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _keep(path: Path, key: tuple[int, ...], known: Known) -> None:
    with _KNOWN_LOCK:
        _KNOWN[str(path)] = (key, dict(known))


def write_known(path: Path, known: Known) -> None:
    """Replace the record at ``path`` in one rename (a crash leaves the old or the new one)."""
    temporary = path.with_name(f".{path.name}.new")
    with temporary.open("w", encoding="utf-8") as out:
        for name in sorted(known):
            if "\n" in name or "\t" in name:
                raise errors.MetadataFailed(f"a package path holds a tab or newline: {name!r}")
            out.writelines(f"{s.inode}\t{s.size}\t{s.mtime}\t{name}\n" for s in known[name])
        out.flush()
        os.fsync(out.fileno())
        key = os.fstat(out.fileno())
    temporary.replace(path)  # the same inode, size and mtime under its final name
    _keep(path, (key.st_dev, key.st_ino, key.st_size, key.st_mtime_ns), known)
