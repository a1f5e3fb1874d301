"""The snapshot folders of an area (``.snapshots/<area-key>/``): retention after a swap, the
newest complete snapshot, removal of an area with its snapshots, and clearing what a crash
left (half-built or half-deleted snapshots, swap links beside the area and in its payload
tree).

``SnapshotDirs`` is a base of ``repository.Repository``; its callers hold the area's lock (or
every lock). It decides nothing about what an area holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from bridge.settings import model as settings_model
from repo_daemon.publish import areas, fsops, names, trees

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def new_snapshot(snaps: Path, now: datetime) -> Iterator[tuple[str, Path]]:
    """A new snapshot of an area's folder ``snaps``: yields its name (numbered after every
    snapshot there, and ``now``, in UTC) and the ``.building-<name>`` folder to fill. When the
    block ends normally the folder is sealed read-only and renamed complete in one step
    (fsynced); on any failure it is deleted, and the error goes on."""
    snaps.mkdir(mode=0o755, parents=True, exist_ok=True)
    numbers = (names.snapshot_number(p.name) for p in snaps.iterdir())
    number = 1 + max((n for n in numbers if n is not None), default=0)
    name = f"{number:06d}-{now:%Y%m%dT%H%M%SZ}"
    building = snaps / f"{names.BUILDING}{name}"
    building.mkdir(mode=0o755)
    try:
        yield name, building
        fsops.seal(building)
        building.rename(snaps / name)
        fsops.fsync_dir(snaps)
    except BaseException:
        try:
            fsops.delete_tree(building)
        except OSError:
            logger.exception("could not delete the unfinished snapshot %s", building.name)
        raise


class SnapshotDirs:
    """Retention, removal and leftovers of an area's snapshot folder, for ``Repository``."""

    settings: settings_model.RepositorySettings
    root: Path

    def _snapshots(self, area: areas.Area) -> Path:
        raise NotImplementedError  # Repository's

    def _area_path(self, area: areas.Area, *, create: bool) -> Path:
        raise NotImplementedError  # Repository's

    def _retain(self, area: areas.Area, live: str) -> None:
        """Keep the live snapshot and the ``keep_snapshots`` before it; delete the rest. A
        failure here is logged, not raised: the publication itself succeeded."""
        snaps = self._snapshots(area)
        live_number = names.snapshot_number(live) or 0
        keep = max(self.settings.keep_snapshots, 0)
        try:
            found = sorted(
                (n, p.name)
                for p in snaps.iterdir()
                if (n := names.snapshot_number(p.name)) is not None and p.name != live
            )
            older = [name for n, name in found if n < live_number]
            doomed = older[: max(len(older) - keep, 0)]
            for name in doomed:
                fsops.discard(snaps / name)
        except OSError:
            logger.exception("retention of %s failed; the next publication retries", area)

    def _remove_area(self, area: areas.Area) -> None:
        """Unlink the area's symlink (one atomic step for readers), then its snapshots."""
        path = self._area_path(area, create=False)
        path.unlink(missing_ok=True)
        fsops.fsync_dir(path.parent)
        snaps = self._snapshots(area)
        for entry in sorted(snaps.iterdir()):
            fsops.discard(entry)
        snaps.rmdir()

    def _newest(self, area: areas.Area) -> str | None:
        """The newest complete snapshot of ``area``, if any."""
        snaps = self._snapshots(area)
        found = (
            (n, p.name)
            for p in (snaps.iterdir() if snaps.is_dir() else ())
            if (n := names.snapshot_number(p.name)) is not None
        )
        return max(found, default=(0, None))[1]

    def _clear_leftovers(self, area: areas.Area) -> int:
        """Delete what a crash left of an earlier change of ``area`` (its lock, or every
        lock, is held): half built or half deleted snapshots, temporary symlinks of a swap.
        Returns how many it deleted."""
        removed = 0
        snaps = self._snapshots(area)
        if snaps.is_dir():
            for entry in snaps.iterdir():
                if entry.name.startswith((names.BUILDING, names.DELETING)):
                    fsops.delete_tree(entry)
                    removed += 1
        removed += trees.clear_swaps(self.root / names.TREES_DIR / area.key)
        path = self._area_path(area, create=False)  # PathConflict: not the bridge's
        if path.parent.is_dir() and not path.parent.is_symlink():
            prefix = names.swap_prefix(path.name)
            with os.scandir(path.parent) as entries:
                swaps = [e.name for e in entries if e.name.startswith(prefix) and e.is_symlink()]
            for swap in swaps:
                (path.parent / swap).unlink()
                removed += 1
            if swaps:
                fsops.fsync_dir(path.parent)
        if removed:
            logger.info(
                "%s: removed %d leftovers of an interrupted change",
                area,
                removed,
                extra={"action": "publish"},
            )
        return removed
