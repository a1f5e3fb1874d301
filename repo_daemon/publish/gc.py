"""Garbage collection of the published trees: what interrupted changes left (half-built and
half-deleted snapshots, swap symlinks, the emptied snapshot folder of an area that is gone) and
pool files no snapshot's manifest references, in one serialised pass under the global lock.

``GarbageCollection`` is a base of ``repository.Repository`` and uses its root, locks, pool
and snapshot readers; it publishes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.publish import areas, locks, names, pool
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


class GarbageCollection:
    """``collect_garbage`` and its helpers, for ``Repository``."""

    root: Path
    locks: locks.Locks
    pool: pool.Pool

    def _read(self, area: areas.Area, name: str) -> area_manifest.AreaManifest:
        raise NotImplementedError  # Repository's

    def _clear_leftovers(self, area: areas.Area) -> int:
        raise NotImplementedError  # Repository's

    def _area_path(self, area: areas.Area, *, create: bool) -> Path:
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
                    try:
                        stale += self._clear_leftovers(area)
                    except publish_errors.PathConflict as exc:
                        logger.warning("%s; its swap links are left alone", exc)
                    for entry in sorted(key_dir.iterdir()):
                        if names.snapshot_number(entry.name) is not None:
                            found = self._read(area, entry.name)
                            referenced.update(f.sha256 for r in found.releases for f in r.files)
                            snapshots += 1
                    with contextlib.suppress(publish_errors.PathConflict):  # warned above
                        stale += self._drop_if_gone(area, key_dir)
                stale += self._clear_orphan_swaps()
            except OSError as exc:
                raise publish_errors.StorageFailed("cannot read", SNAPSHOT_DIR, exc) from exc
            held.verify()  # still exclusive after the long read, before anything is deleted
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
        )

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
