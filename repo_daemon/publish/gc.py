"""Garbage collection of the published trees: what interrupted changes left (half-built and
half-deleted snapshots, swap symlinks, the emptied snapshot folder of an area that is gone),
and in the tree layout the payload-tree files and links no kept snapshot names, the payload
trees no area points at and the release entries no kept snapshot names; the per-area caches
(``AreaCaches``) of areas that are gone; then the pool files no snapshot's manifest
references, in one serialised pass under the global lock.

``GarbageCollection`` is a base of ``repository.Repository`` and uses its root, locks, pool
and snapshot readers; it publishes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from repo_daemon.publish import areas, fsops, locks, names, pool, release_entries, trees
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import manifest as area_manifest

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = ".snapshots"


@dataclass(frozen=True, kw_only=True)
class GcReport:
    """What ``Repository.collect_garbage`` did."""

    snapshots: int  # complete snapshots whose manifests were read
    # leftovers of interrupted changes removed: half-built or half-deleted snapshot
    # directories, swap symlinks, emptied snapshot folders of areas that are gone
    stale_removed: int
    pool_removed: int
    pool_removed_bytes: int
    pool_kept: int
    pool_held_elsewhere: int
    pool_repaired: int = 0  # pool files found writable and made read-only
    caches_removed: int = 0  # per-area caches of areas that are gone (``AreaCaches``)


class AreaCaches(Protocol):
    """Per-area directories another part keeps below the root (the metadata tools' caches),
    which may hold hard links to pool files: the GC removes those of areas that are gone
    before it sweeps the pool, so their links hold nothing."""

    def forget_all_but(self, areas: Iterable[str]) -> int: ...


class GarbageCollection:
    """``collect_garbage`` and its helpers, for ``Repository``."""

    root: Path
    locks: locks.Locks
    pool: pool.Pool
    caches: AreaCaches | None

    def _read(self, area: areas.Area, name: str) -> area_manifest.AreaManifest:
        raise NotImplementedError  # Repository's

    def _clear_leftovers(self, area: areas.Area) -> int:
        raise NotImplementedError  # Repository's

    def _area_path(self, area: areas.Area, *, create: bool) -> Path:
        raise NotImplementedError  # Repository's

    def _area_target(self, area: areas.Area) -> str | None:
        raise NotImplementedError  # Repository's

    def collect_garbage(self) -> GcReport:
        """Delete what interrupted changes left (half-built and half-deleted snapshot
        directories, swap symlinks beside the areas, the emptied snapshot folder of an area
        that is gone) and pool files no snapshot's manifest references; make the pool files
        it keeps read-only where a crash left them writable.

        Holds the global lock exclusively, which every change holds shared from its first
        step to its last: no publication is running, so every ``.building-…`` directory and
        swap link found is stale, never one being made. One serialised pass, for the daemon's
        housekeeping job, not for every publish. No pool file is deleted if any snapshot's
        manifest cannot be read (``SnapshotInvalid``)."""
        with self.locks.everything() as held:
            referenced: set[str] = set()
            kept_entries: set[str] = set()
            claimed: dict[str, set[str]] = {}  # area key -> payload paths kept snapshots name
            parsed: list[areas.Area] = []  # the areas of the bridge's snapshot folders
            snapshots = stale = 0
            top = self.root / SNAPSHOT_DIR
            try:
                keys = sorted(p for p in top.iterdir() if p.is_dir()) if top.is_dir() else []
                for key_dir in keys:
                    try:
                        area = areas.Area.parse(key_dir.name.replace("~", "/"))
                    except publish_errors.PathRefused:
                        logger.warning(
                            "%s/%s is not the bridge's: left alone", top.name, key_dir.name
                        )
                        continue  # its links, if any, keep their pool files (st_nlink > 1)
                    parsed.append(area)
                    try:
                        stale += self._clear_leftovers(area)
                    except publish_errors.PathConflict as exc:
                        logger.warning("%s; its swap links are left alone", exc)
                    for entry in sorted(key_dir.iterdir()):
                        if names.snapshot_number(entry.name) is not None:
                            found = self._read(area, entry.name)
                            referenced.update(f.sha256 for r in found.releases for f in r.files)
                            snapshots += 1
                            tree_manifest = self._tree_manifest_of(area, entry)
                            if tree_manifest is not None:
                                kept_entries.update(r.entry for r in tree_manifest.releases)
                                paths = claimed.setdefault(key_dir.name, set())
                                paths.update(f.path for r in found.releases for f in r.files)
                    with contextlib.suppress(publish_errors.PathConflict):  # warned above
                        stale += self._drop_if_gone(area, key_dir)
                stale += self._clear_orphan_swaps()
                present = [a for a in parsed if os.path.lexists(self._area_path(a, create=False))]
            except OSError as exc:
                raise publish_errors.StorageFailed("cannot read", SNAPSHOT_DIR, exc) from exc
            held.verify()  # still exclusive after the long read, before anything is deleted
            try:
                stale += self._collect_trees(claimed)
                stale += self._collect_entries(kept_entries)
            except OSError as exc:
                raise publish_errors.StorageFailed("cannot clean", names.TREES_DIR, exc) from exc
            caches_removed = 0
            if self.caches is not None:  # before the sweep: their links then hold nothing
                try:
                    caches_removed = self.caches.forget_all_but(a.path for a in present)
                except OSError as exc:
                    raise publish_errors.StorageFailed(
                        "cannot clean", "the per-area caches", exc
                    ) from exc
            sweep = self.pool.sweep(referenced)
        logger.info(
            "garbage collection: %d snapshots read, %d leftovers of interrupted changes removed",
            snapshots,
            stale,
            extra={"action": "collect_garbage"},
        )
        return GcReport(
            snapshots=snapshots,
            stale_removed=stale,
            pool_removed=sweep.removed,
            pool_removed_bytes=sweep.removed_bytes,
            pool_kept=sweep.kept,
            pool_held_elsewhere=sweep.held_elsewhere,
            pool_repaired=sweep.repaired,
            caches_removed=caches_removed,
        )

    def _tree_manifest_of(
        self, area: areas.Area, snapshot: Path
    ) -> release_entries.TreeManifest | None:
        data = (snapshot / area_manifest.MANIFEST_NAME).read_bytes()
        if not release_entries.is_format_2(data):
            return None
        return release_entries.TreeManifest.from_json(data, area=area.path)

    def _collect_trees(self, claimed: dict[str, set[str]]) -> int:
        """Delete the payload trees no area points at, and in the others the files no kept
        snapshot names and the links the live one does not have. Every lock is held."""
        top = self.root / names.TREES_DIR
        removed = 0
        for tree in sorted(top.iterdir()) if top.is_dir() else []:
            try:
                area = areas.Area.parse(tree.name.replace("~", "/"))
            except publish_errors.PathRefused:
                logger.warning("%s/%s is not the bridge's: left alone", top.name, tree.name)
                continue
            target = "../" * area.depth + f"{names.TREES_DIR}/{area.key}"
            try:
                points = self._area_target(area) == target
            except publish_errors.PathConflict:
                continue  # below something not the bridge's: leave it alone
            if not points:
                fsops.delete_tree(tree)
                removed += 1
                continue
            live = trees.live_meta(tree, area.key)
            if live is None:
                logger.warning("%s has no %s link: left alone", tree, names.META_LINK)
                continue
            snapshot = self.root / SNAPSHOT_DIR / area.key / live
            links = set(release_entries.snapshot_links(snapshot, area.path))
            removed += trees.clear_swaps(tree)
            removed += trees.prune(tree, claimed.get(area.key, set()), links)
        return removed

    def _collect_entries(self, kept: set[str]) -> int:
        """Delete the release entries no kept snapshot names (and unfinished writes)."""
        top = self.root / names.RELEASES_DIR
        removed = 0
        for entry in sorted(top.iterdir()) if top.is_dir() else []:
            sha = entry.name.removesuffix(".json")
            if entry.name.startswith(".tmp-") or (
                entry.name.endswith(".json") and len(sha) == 64 and sha not in kept
            ):
                entry.unlink()
                removed += 1
        return removed

    def _clear_orphan_swaps(self) -> int:
        """Delete swap symlinks beside areas that have no snapshots any more (removed by
        hand after the crash that left the link): every symlink below the root, outside its
        bookkeeping folders, named like one (``.<name>.swap-<8 hex digits>``) and pointing
        into ``.snapshots/``. Every lock is held. Returns how many it deleted."""
        removed = 0
        for directory, dirs, files in os.walk(self.root):
            if directory == str(self.root):
                dirs[:] = [d for d in dirs if not d.startswith(".")]  # .pool, .snapshots, …
            for name in files + dirs:
                path = Path(directory, name)
                if not names.SWAP_NAME.fullmatch(name) or not path.is_symlink():
                    continue
                if f"{SNAPSHOT_DIR}/" in str(path.readlink()):
                    path.unlink()
                    removed += 1
        return removed

    def _drop_if_gone(self, area: areas.Area, snaps: Path) -> int:
        """Remove the snapshot folder of ``area`` if it is empty and the area has no symlink
        (a crash while the area was being removed, or before its first snapshot was begun);
        1 if it did. Every lock is held."""
        if os.path.lexists(self._area_path(area, create=False)) or any(snaps.iterdir()):
            return 0
        snaps.rmdir()
        return 1
