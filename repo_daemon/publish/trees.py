"""The payload tree of a tree-layout area (``<root>/.trees/<area-key>/``) on disk: hard links
from the pool at the releases' paths, the metadata links into ``.meta``, and the switch
itself (``.meta`` -> ``../../.snapshots/<area-key>/<snapshot>``, replaced by one rename).

File-system steps only, each O(what it is given): it never reads manifests or entries and
never decides what an area holds (``tree_changes`` does, under the area's lock); a clash it
cannot settle alone is handed back to the caller as a ``Clash``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.publish import errors, fsops, names, pool
from repo_daemon.publish import manifest as area_manifest

SNAPSHOT_DIR = ".snapshots"  # gc.SNAPSHOT_DIR (gc imports this module)
META_SWAP = names.swap_prefix(names.META_LINK.lstrip("."))  # ".meta.swap-"


@dataclass(frozen=True, kw_only=True)
class Clash:
    """A path of a release that the tree already holds with something else: ``at`` is the
    path in the way (the file itself, or a parent that is not a directory)."""

    path: str
    at: str


def meta_target(area_key: str, snapshot: str) -> str:
    """The target of ``.trees/<area_key>/.meta`` for ``snapshot`` (relative)."""
    return f"../../{SNAPSHOT_DIR}/{area_key}/{snapshot}"


def link_target(path: str) -> str:
    """The target of the metadata link at ``path`` (relative to the tree)."""
    return "../" * path.count("/") + f"{names.META_LINK}/{path}"


def live_meta(tree: Path, area_key: str) -> str | None:
    """The snapshot ``tree``'s ``.meta`` points at; None without one. ``PathConflict`` if it
    is not a link the bridge made."""
    try:
        target = str((tree / names.META_LINK).readlink())
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            target = ""
        else:
            raise
    prefix = meta_target(area_key, "")
    name = target[len(prefix) :] if target.startswith(prefix) else ""
    if names.snapshot_number(name) is None:
        raise errors.PathConflict(
            area_key.replace("~", "/"),
            [f"{names.TREES_DIR}/{area_key}/{names.META_LINK} is not a link to one of the "
             f"area's snapshots ({prefix}<n>-<time>); the bridge did not make it"],
        )  # fmt: skip
    return name


def switch(tree: Path, area_key: str, snapshot: str) -> None:
    """Point ``tree``'s ``.meta`` at ``snapshot`` in one rename of a fresh symlink, then make
    the tree's entries durable."""
    temporary = tree / f"{META_SWAP}{secrets.token_hex(4)}"
    temporary.symlink_to(meta_target(area_key, snapshot))
    try:
        temporary.replace(tree / names.META_LINK)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise
    fsops.fsync_dir(tree)


def clear_swaps(tree: Path) -> int:
    """Delete the ``.meta.swap-*`` links an interrupted switch left; how many."""
    if not tree.is_dir():
        return 0
    with os.scandir(tree) as entries:
        found = [e.name for e in entries if e.name.startswith(META_SWAP) and e.is_symlink()]
    for name in found:
        (tree / name).unlink()
    return len(found)


def link_files(
    tree: Path, the_pool: pool.Pool, files: Iterable[area_manifest.FileEntry]
) -> list[Clash]:
    """Hard-link each of ``files`` from the pool to its path in ``tree`` (parents made 0755).
    A path already holding the same pool inode is fine; any other clash is returned, not
    settled. ``ContentMissing`` if a pool file is gone."""
    base = str(tree)
    made: set[str] = set()
    clashes: list[Clash] = []
    for f in files:
        parent = f.path.rpartition("/")[0]
        if parent and parent not in made:
            blocked = _make_dirs(base, parent)
            if blocked is not None:
                clashes.append(Clash(path=f.path, at=blocked))
                continue
            parts = parent.split("/")
            made.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        source = the_pool.file(f.sha256)
        try:
            os.link(source, f"{base}/{f.path}")
        except FileExistsError:
            st = os.lstat(f"{base}/{f.path}")
            here = os.lstat(source)
            if (st.st_dev, st.st_ino) != (here.st_dev, here.st_ino):
                clashes.append(Clash(path=f.path, at=f.path))
        except FileNotFoundError as exc:
            gone = f"{f.path} (SHA-256 {f.sha256[:12]}…) left the pool"
            raise errors.ContentMissing("the payload tree cannot be linked", [gone]) from exc
    return clashes


def _make_dirs(base: str, parent: str) -> str | None:
    """Make directory ``parent`` below ``base``; the first component in the way (a file or
    a symlink where a directory must be), else None."""
    current = base
    done = ""
    for part in parent.split("/"):
        current = f"{current}/{part}"
        done = f"{done}/{part}" if done else part
        try:
            os.mkdir(current, 0o755)  # noqa: PTH102 (plain strings: once per release directory)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return done
    return None


def remove_leftover(tree: Path, path: str) -> None:
    """Delete what lies at ``path`` in ``tree`` (a file, a symlink or a whole directory) that
    no live release or metadata names: the leftover of an interrupted change."""
    full = tree / path
    st = os.lstat(full)
    if stat.S_ISDIR(st.st_mode):
        fsops.delete_tree(full)
    else:
        full.unlink()


def check_files(
    tree: Path, files: Iterable[area_manifest.FileEntry], pooled: Mapping[str, tuple[int, int]]
) -> list[str]:
    """A problem for each of ``files`` the tree does not hold as its pool inode."""
    problems: list[str] = []
    base = str(tree)
    for f in files:
        try:
            st = os.lstat(f"{base}/{f.path}")
        except FileNotFoundError:
            problems.append(f"{f.path} is missing from the payload tree")
            continue
        if (st.st_dev, st.st_ino) != pooled.get(f.sha256):
            problems.append(f"{f.path} in the payload tree is not linked to the pool")
    return problems


def metadata_links(snapshot_dir: Path, tree: Path, *, area: str) -> list[str]:
    """The metadata links the snapshot in ``snapshot_dir`` needs in ``tree``: walking the
    snapshot top-down, each entry whose path is not a payload directory of the tree (and
    below which nothing is payload). ``PathConflict`` where metadata and payload meet in
    other ways (a metadata file where the tree has payload)."""
    links: list[str] = []
    conflicts: list[str] = []

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = prefix + entry.name
                try:
                    st = os.lstat(tree / path)
                except FileNotFoundError:
                    links.append(path)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    links.append(path)
                elif stat.S_ISDIR(st.st_mode) and entry.is_dir(follow_symlinks=False):
                    walk(entry.path, path + "/")
                else:
                    conflicts.append(f"{path} is metadata and payload at once")

    walk(str(snapshot_dir), "")
    if conflicts:
        raise errors.PathConflict(area, conflicts)
    return links


def make_links(tree: Path, links: Iterable[str]) -> int:
    """Make each metadata link of ``links`` that ``tree`` lacks or has with another target
    (replaced by a rename); their parents are payload directories. How many it made."""
    made = 0
    for path in links:
        full = tree / path
        target = link_target(path)
        try:
            if str(full.readlink()) == target:
                continue
        except FileNotFoundError:
            full.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            full.symlink_to(target)
            made += 1
            continue
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            remove_leftover(tree, path)  # a file or directory nothing live names
            full.symlink_to(target)
            made += 1
            continue
        temporary = full.with_name(f".{full.name}.link-{secrets.token_hex(4)}")
        temporary.symlink_to(target)
        temporary.replace(full)
        made += 1
    if made:
        fsops.fsync_dir(tree)
    return made


def drop_links(tree: Path, links: Iterable[str]) -> int:
    """Remove the metadata links of ``links`` (those the live snapshot no longer has)."""
    dropped = 0
    for path in links:
        full = tree / path
        if full.is_symlink():
            full.unlink()
            dropped += 1
            _prune_parents(tree, full.parent)
    return dropped


def unlink_payload(tree: Path, paths: Iterable[str]) -> int:
    """Unlink the payload files at ``paths`` (no live metadata names them any more), then
    remove the directories left empty, never the tree itself. How many files it unlinked."""
    removed = 0
    parents: set[Path] = set()
    for path in paths:
        full = tree / path
        with contextlib.suppress(FileNotFoundError):
            full.unlink()
            removed += 1
            parents.add(full.parent)
    for parent in sorted(parents, key=lambda p: -len(p.parts)):
        _prune_parents(tree, parent)
    return removed


def _prune_parents(tree: Path, directory: Path) -> None:
    while directory != tree and directory.is_relative_to(tree):
        try:
            directory.rmdir()
        except OSError:
            return  # not empty (or gone): its parents are not empty either
        directory = directory.parent


def prune(tree: Path, claimed: set[str], links: set[str]) -> int:
    """For the GC: delete the regular files of ``tree`` at no path of ``claimed``, the
    symlinks at no path of ``links`` (never ``.meta``), and the directories left empty. Every
    lock is held. How many entries it deleted."""
    removed = 0
    for directory, dirs, files in os.walk(tree, topdown=False):
        relative = os.path.relpath(directory, tree)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in files + dirs:
            path = prefix + name
            full = Path(directory, name)
            st = full.lstat()
            if path == names.META_LINK:
                continue
            if stat.S_ISLNK(st.st_mode):
                if path not in links:
                    full.unlink()
                    removed += 1
            elif stat.S_ISREG(st.st_mode):
                if path not in claimed:
                    full.unlink()
                    removed += 1
            elif stat.S_ISDIR(st.st_mode) and not any(full.iterdir()):
                full.rmdir()
                removed += 1
    return removed
