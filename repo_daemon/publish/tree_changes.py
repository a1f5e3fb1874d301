"""Changes of tree-layout areas (``RepositorySettings.area_layout = "tree"``, the shared areas
only): add or remove one release at a cost in proportion to the release, not the area;
migrate an area from full snapshots on its first change; roll back to a kept snapshot.

The order is what keeps readers safe (docs/publication.md, "The tree layout of shared
areas"): new payload is linked in before any metadata names it; the metadata snapshot is
built, sealed and renamed complete, its links made, then ``.meta`` is switched by one rename;
only then are payload files and links that the live metadata no longer names removed. A crash
at any step leaves the old state live plus harmless extras the next change or the GC clears.

``TreeChanges`` is a base of ``repository.Repository`` and uses its root, pool, locks, clock,
metadata step and snapshot helpers; it owns no lock of its own (callers hold the area's).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from repo_daemon.publish import areas, fsops, names, pool, snapshot_dirs, trees
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import locks as publish_locks
from repo_daemon.publish import manifest as area_manifest
from repo_daemon.publish import release_entries as entries_mod

if TYPE_CHECKING:
    from bridge.settings import model as settings_model

logger = logging.getLogger(__name__)


class MetadataStep(Protocol):
    """Writes repository metadata into a new snapshot directory before it is checked and
    switched in. With ``payload_dir`` (tree layout) the packages are read there and only
    metadata is written into ``snapshot_dir``; without, the payload is in ``snapshot_dir``."""

    def __call__(
        self,
        snapshot_dir: Path,
        contents: area_manifest.AreaManifest,
        *,
        payload_dir: Path | None = None,
    ) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Edit:
    """One change of an area: add (or replace) the release ``add``, or remove ``remove``'s."""

    add: area_manifest.ReleaseEntry | None = None
    remove: int | None = None

    def apply(self, current: area_manifest.AreaManifest) -> area_manifest.AreaManifest:
        """The change on a full manifest (the snapshots layout)."""
        if self.add is not None:
            return current.with_release(self.add)
        return current.without_ticket(self.remove) if self.remove is not None else current


@dataclass(frozen=True, kw_only=True)
class TreeState:
    """What a tree-layout change starts from."""

    live: entries_mod.TreeManifest | None  # the manifest .meta points at
    source: area_manifest.AreaManifest | None  # a full snapshot to migrate from
    area_points_at_tree: bool


@dataclass(frozen=True, kw_only=True)
class PublishedArea:
    """Where an area is after an operation: its path below the root and its URL."""

    area: areas.Area  # e.g. Area("stagerollout/7")
    url: str  # RepositorySettings.base_url + area + "/"
    snapshot: str | None  # the live snapshot's name; None when the area was removed
    changed: bool  # False when the area already held what was asked (a repeated step)


class TreeChanges:
    """The tree layout's changes, for ``Repository``."""

    root: Path
    pool: pool.Pool
    locks: publish_locks.Locks
    settings: settings_model.RepositorySettings
    _metadata: MetadataStep | None
    _clock: Callable[[], datetime]

    # Repository's
    def _snapshots(self, area: areas.Area) -> Path:
        raise NotImplementedError

    def _newest(self, area: areas.Area) -> str | None:
        raise NotImplementedError

    def _retain(self, area: areas.Area, live: str) -> None:
        raise NotImplementedError

    def _swap_link(self, area: areas.Area, target: str) -> None:
        raise NotImplementedError

    def _area_target(self, area: areas.Area) -> str | None:
        raise NotImplementedError

    def _live(self, area: areas.Area) -> str | None:
        raise NotImplementedError

    def _clear_leftovers(self, area: areas.Area) -> int:
        raise NotImplementedError

    def _swap(self, area: areas.Area, name: str) -> None:
        raise NotImplementedError

    def _result(self, area: areas.Area, snapshot: str | None, *, changed: bool) -> PublishedArea:
        raise NotImplementedError

    def _run_metadata(
        self,
        area: areas.Area,
        building: Path,
        contents: area_manifest.AreaManifest,
        payload_dir: Path | None = None,
    ) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ paths

    def uses_tree(self, area: areas.Area) -> bool:
        """Whether ``area`` is (to be) kept in the tree layout: a shared area while the
        repository's ``area_layout`` is ``tree``."""
        return self.settings.area_layout == "tree" and area.kind != "unverified"

    def tree_dir(self, area: areas.Area) -> Path:
        """``<root>/.trees/<area-key>``, the area's payload tree."""
        return self.root / names.TREES_DIR / area.key

    @staticmethod
    def tree_link(area: areas.Area) -> str:
        """The target of the area's symlink in the tree layout (relative)."""
        return "../" * area.depth + f"{names.TREES_DIR}/{area.key}"

    @property
    def entries(self) -> entries_mod.Entries:
        return entries_mod.Entries(self.root)

    def _tree_manifest(self, area: areas.Area, name: str) -> entries_mod.TreeManifest:
        path = self._snapshots(area) / name / area_manifest.MANIFEST_NAME
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise publish_errors.SnapshotInvalid(
                area.path, [f"snapshot {name} has no manifest"]
            ) from exc
        return entries_mod.TreeManifest.from_json(data, area=area.path)

    def _is_tree_snapshot(self, area: areas.Area, name: str) -> bool:
        path = self._snapshots(area) / name / area_manifest.MANIFEST_NAME
        with path.open("rb") as reader:
            return entries_mod.is_format_2(reader.read(200))

    def _tree_state(self, area: areas.Area, live: str | None) -> TreeState:
        """Where a change starts: the tree's live manifest, or a full snapshot to migrate."""
        points = self._area_target(area) == self.tree_link(area)
        meta = trees.live_meta(self.tree_dir(area), area.key)
        if points and meta is not None:
            return TreeState(live=self._tree_manifest(area, meta), source=None,
                             area_points_at_tree=True)  # fmt: skip
        base = live or self._newest(area)
        if base is None:
            return TreeState(live=None, source=None, area_points_at_tree=False)
        full = entries_mod.read_any(self.root, area.path, self._snapshots(area) / base)
        return TreeState(live=None, source=full, area_points_at_tree=False)

    # ------------------------------------------------------------------ one change

    def _update_tree(
        self, area: areas.Area, edit: Edit, held: publish_locks.Held, live: str | None
    ) -> tuple[str | None, bool]:
        """Apply ``edit`` to tree-layout ``area`` (its lock is held; leftovers cleared).
        Returns the live snapshot afterwards and whether anything changed."""
        state = self._tree_state(area, live)
        tree = self.tree_dir(area)
        if state.live is not None:
            refs = state.live.releases
        elif state.source is not None:
            refs = tuple(self.entries.write(r) for r in state.source.releases)
        else:
            refs = ()
        old = next((r for r in refs if edit.add and r.ticket_id == edit.add.ticket_id), None)
        if edit.add is not None:
            area_manifest.refuse_same_release(area.path, refs, edit.add)
            if state.source is not None:
                state.source.with_release(edit.add)  # PathConflict, as the snapshots layout
            new_ref = self.entries.write(edit.add)
            if old is not None and old.entry == new_ref.entry:
                if state.live is not None:
                    return state.live.snapshot, False
                if live is not None:  # unchanged: no migration before the first change
                    return live, False
            if old is not None and _rewrites(self.entries.read(old, area=area.path), edit.add):
                # a path keeps its name but changes its bytes: take the old release out
                # first, so no live metadata ever names a file whose bytes changed under it
                self._update_tree(area, Edit(remove=edit.add.ticket_id), held, live)
                return self._update_tree(area, edit, held, live)
            new_refs = (*(r for r in refs if r.ticket_id != edit.add.ticket_id), new_ref)
        else:
            if not any(r.ticket_id == edit.remove for r in refs):
                if state.live is not None:
                    return state.live.snapshot, False
                return live, False
            new_refs = tuple(r for r in refs if r.ticket_id != edit.remove)
        tree.mkdir(mode=0o755, parents=True, exist_ok=True)
        brought: list[area_manifest.FileEntry] = []
        if state.source is not None:  # migration: the area's files enter the tree once
            brought = list(state.source.files())
        if edit.add is not None:
            brought.extend(edit.add.files)
        pooled, missing = self.pool.identities(brought)
        if missing:
            raise publish_errors.ContentMissing(f"{area} cannot be built", missing)
        live_refs = refs if state.live is not None else ()
        self._link_in(area, tree, brought, live_refs, state, edit)
        problems = trees.check_files(tree, brought, pooled)
        if problems:
            raise publish_errors.SnapshotInvalid(area.path, problems)
        name, manifest = self._build_meta(area, new_refs, edit)
        trees.make_links(tree, manifest.links)
        held.verify()  # still ours, right before readers see the change
        trees.switch(tree, area.key, name)
        if not state.area_points_at_tree:
            self._swap_link(area, self.tree_link(area))
        self._retain(area, name)
        old_links = set(state.live.links) if state.live is not None else all_links(tree)
        trees.drop_links(tree, sorted(old_links - set(manifest.links)))
        kept = set(new_refs)  # a set: a tuple's `in` made this quadratic in the area's releases
        gone = [r for r in refs if r not in kept]
        if gone:
            self._unlink_released(area, tree, gone, new_refs)
        return name, True

    def _link_in(
        self,
        area: areas.Area,
        tree: Path,
        files: list[area_manifest.FileEntry],
        live_refs: Iterable[entries_mod.ReleaseRef],
        state: TreeState,
        edit: Edit,
    ) -> None:
        """Link ``files`` into the tree; settle clashes: another live release's claim or a
        live metadata link is a ``PathConflict``; anything else is a leftover, replaced."""
        clashes = trees.link_files(tree, self.pool, files)
        if not clashes:
            return
        claims: dict[str, tuple[str, str]] = {}  # path (and its parents) -> (sha256, label)
        for ref in live_refs:
            for path, sha in self.entries.claims(ref, area=area.path).items():
                claims[path] = (sha, ref.label)
                parts = path.split("/")
                for i in range(1, len(parts)):
                    claims.setdefault("/".join(parts[:i]), ("", ref.label))
        live_links = set(state.live.links) if state.live is not None else set()
        ours = {f.path: f.sha256 for f in files}
        label = edit.add.label if edit.add is not None else "the migration"
        conflicts: list[str] = []
        for clash in clashes:
            claim = claims.get(clash.at)
            if claim is not None and claim[0] != ours.get(clash.at):
                if clash.at != clash.path:
                    said = f"{clash.at} is a file in {claim[1]} and a directory in {label}"
                elif not claim[0]:
                    said = f"{clash.at} is a directory in {claim[1]} and a file in {label}"
                else:
                    said = f"{clash.path} differs between {claim[1]} and {label}"
                conflicts.append(said)
            elif clash.at in live_links or any(x.startswith(clash.at + "/") for x in live_links):
                conflicts.append(f"{clash.path} of {label} takes the metadata path {clash.at}")
        if conflicts:
            raise publish_errors.PathConflict(area.path, conflicts)
        for clash in clashes:
            if os.path.lexists(tree / clash.at):
                trees.remove_leftover(tree, clash.at)
        logger.info("%s: replaced %d leftovers in the payload tree", area, len(clashes))
        again = trees.link_files(tree, self.pool, [f for f in files if f.path in
                                                   {c.path for c in clashes}])  # fmt: skip
        if again:
            raise publish_errors.PathConflict(
                area.path,
                [f"{c.path}: {c.at} is in the way and could not be cleared" for c in again],
            )

    def _build_meta(
        self, area: areas.Area, refs: tuple[entries_mod.ReleaseRef, ...], edit: Edit
    ) -> tuple[str, entries_mod.TreeManifest]:
        """Build, check, seal and rename into place the metadata snapshot of ``refs``."""
        now = self._clock().astimezone(UTC)
        with snapshot_dirs.new_snapshot(self._snapshots(area), now) as (name, building):
            manifest = entries_mod.TreeManifest(
                area=area.path, snapshot=name, created=now.isoformat(), releases=refs
            )
            target = building / area_manifest.MANIFEST_NAME
            fsops.write_new(target, manifest.to_json())
            if self._metadata is not None:
                full = tuple(
                    edit.add if edit.add is not None and r.ticket_id == edit.add.ticket_id
                    else self.entries.read(r, area=area.path)
                    for r in refs
                )  # fmt: skip
                contents = area_manifest.AreaManifest(area=area.path, releases=full)
                self._run_metadata(area, building, contents, self.tree_dir(area))
            links = trees.metadata_links(building, self.tree_dir(area), area=area.path)
            manifest = entries_mod.TreeManifest(
                area=area.path, snapshot=name, created=manifest.created, releases=refs,
                links=tuple(links),
            )  # fmt: skip
            target.unlink()  # the final manifest names the links the metadata step made
            fsops.write_new(target, manifest.written())
            problems = [f"{p} is a symlink" for p in pool._symlinks(str(building), "")]
            if problems:
                raise publish_errors.SnapshotInvalid(area.path, problems)
        return name, manifest

    def _unlink_released(
        self,
        area: areas.Area,
        tree: Path,
        gone: Iterable[entries_mod.ReleaseRef],
        remaining: Iterable[entries_mod.ReleaseRef],
    ) -> None:
        """After the switch: unlink the payload only ``gone`` releases brought (no remaining
        release claims the path)."""
        claimed: set[str] = set()
        for r in remaining:
            claimed.update(self.entries.claims(r, area=area.path))
        doomed = {
            names.check_relative_path("package path", path)  # it becomes a path to unlink
            for r in gone
            for path in self.entries.claims(r, area=area.path)
            if path not in claimed
        }
        trees.unlink_payload(tree, sorted(doomed))
        fsops.fsync_dir(tree)


def _rewrites(old: area_manifest.ReleaseEntry, new: area_manifest.ReleaseEntry) -> bool:
    """Whether ``new`` gives a path of ``old`` other bytes, or turns a file of one into a
    directory of the other."""
    before = {f.path: f.sha256 for f in old.files}
    if any(before.get(f.path, f.sha256) != f.sha256 for f in new.files):
        return True
    after = {f.path for f in new.files}
    return bool(_parents(after) & before.keys() or _parents(before.keys()) & after)


def _parents(paths: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        parts = path.split("/")
        found.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return found


def all_links(tree: Path) -> set[str]:
    """Every symlink below ``tree`` except ``.meta`` (a migration's walk, once)."""
    found: set[str] = set()
    for directory, dirs, files in os.walk(tree):
        relative = os.path.relpath(directory, tree)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for entry in files + dirs:
            path = prefix + entry
            if path != names.META_LINK and Path(directory, entry).is_symlink():
                found.add(path)
    return found
