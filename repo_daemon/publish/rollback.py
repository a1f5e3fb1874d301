"""Rollback: make a kept snapshot of an area live again, in either layout (a full snapshot by
swapping the area's symlink; a tree-layout metadata snapshot by relinking from the pool what
the payload tree lacks, making its metadata links and switching ``.meta``). For
``rollout repo rollback`` and operators.

``Rollback`` is a base of ``repository.Repository``; it holds the area's lock for the whole
change and never builds a new snapshot nor deletes one.
"""

from __future__ import annotations

import logging

from repo_daemon.publish import areas, names, tree_changes, trees
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import locks as publish_locks

logger = logging.getLogger(__name__)


class Rollback(tree_changes.TreeChanges):
    """``rollback`` and its tree-layout half, for ``Repository``."""

    def rollback(self, area: areas.Area, snapshot: str) -> tree_changes.PublishedArea:
        """Make the kept ``snapshot`` of ``area`` live again, in either layout: a full
        snapshot by swapping the area's symlink; a tree-layout one by relinking from the pool
        what the payload tree lacks, making its metadata links and switching ``.meta``.
        ``SnapshotInvalid`` if the area has no such complete snapshot, ``PathConflict`` if a
        live file must change its bytes in place (roll back in two steps)."""
        if names.snapshot_number(snapshot) is None:
            raise publish_errors.PathRefused(
                "snapshot", snapshot, "expected <n>-<time>, e.g. 000042-20261206T120000Z"
            )
        try:
            with self.locks.area(area) as held:
                live = self._live(area)
                self._clear_leftovers(area)
                if not (self._snapshots(area) / snapshot).is_dir():
                    kept = sorted(
                        p.name
                        for p in (self._snapshots(area).iterdir() if live else ())
                        if names.snapshot_number(p.name) is not None
                    )
                    raise publish_errors.SnapshotInvalid(
                        area.path,
                        [f"it has no kept snapshot {snapshot} (kept: {', '.join(kept) or 'none'})"],
                    )
                if live == snapshot and (
                    self._area_target(area) == self.tree_link(area)
                    or not self._is_tree_snapshot(area, snapshot)
                ):
                    return self._result(area, snapshot, changed=False)
                if self._is_tree_snapshot(area, snapshot):
                    self._rollback_tree(area, snapshot, held)
                else:
                    held.verify()
                    self._swap(area, snapshot)
                logger.info("%s rolled back to snapshot %s (was %s)", area, snapshot, live,
                            extra={"action": "rollback"})  # fmt: skip
                return self._result(area, snapshot, changed=True)
        except OSError as exc:
            raise publish_errors.StorageFailed("cannot roll back", area.path, exc) from exc

    def _rollback_tree(self, area: areas.Area, name: str, held: publish_locks.Held) -> None:
        """Make tree-layout snapshot ``name`` live again: relink from the pool what the tree
        lacks, make its links, switch ``.meta`` (and point the area at the tree), then drop
        what only the snapshot before named."""
        tree = self.tree_dir(area)
        target = self._tree_manifest(area, name)
        tree.mkdir(mode=0o755, parents=True, exist_ok=True)
        points = self._area_target(area) == self.tree_link(area)
        meta = trees.live_meta(tree, area.key) if points else None
        before = self._tree_manifest(area, meta) if meta is not None else None
        files = list(self.entries.full(target).files())
        pooled, missing = self.pool.identities(files)
        if missing:
            raise publish_errors.ContentMissing(f"{area} cannot be rolled back to {name}", missing)
        state = tree_changes.TreeState(live=before, source=None, area_points_at_tree=points)
        self._link_in(
            area, tree, files, before.releases if before else (), state, tree_changes.Edit()
        )
        problems = trees.check_files(tree, files, pooled)
        if problems:
            raise publish_errors.SnapshotInvalid(area.path, problems)
        trees.make_links(tree, target.links)
        held.verify()
        trees.switch(tree, area.key, name)
        if not points:
            self._swap_link(area, self.tree_link(area))
        old_links = set(before.links) if before is not None else tree_changes.all_links(tree)
        trees.drop_links(tree, sorted(old_links - set(target.links)))
        if before is not None:
            kept = set(target.releases)
            gone = [r for r in before.releases if r not in kept]
            self._unlink_released(area, tree, gone, target.releases)
