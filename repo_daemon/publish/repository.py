"""Publication: puts releases into the areas clients see, as immutable snapshots of hard links
into the content-addressed pool, switched in with one atomic symlink swap.

An area (``unverified/<short>/<version>``, ``stagerollout/<major>``,
``<production path>/base|updates`` or a flat ``<production path>``) is a symlink to
``.snapshots/<area-key>/<n>-<time>/`` (or, for a shared area in the tree layout, to its
payload tree ``.trees/<area-key>``, whose changes are ``tree_changes``'s). Each change
builds a complete new snapshot beside the live one, checks it, fsyncs it and swaps the
symlink with ``rename(2)``: readers see the old snapshot or the new one, never a mix.
Promotion links files from the pool by SHA-256 and never copies bytes. This module decides
what an area holds; ``areas`` names the areas, ``manifest`` is what each snapshot holds,
``pool`` stores bytes, ``fsops`` makes trees durable and read-only, ``locks`` serialises
writers per area. It does not generate repository metadata: a ``MetadataStep`` given to
``Repository`` does, inside the new snapshot before the swap.

The garbage collection (``collect_garbage``) is ``gc``'s, a base of ``Repository``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast
from urllib.parse import quote

from bridge.settings import model as settings_model
from repo_daemon import errors
from repo_daemon.publish import (
    areas,
    fsops,
    gc,
    locks,
    names,
    pool,
    release_entries,
    rollback,
    snapshot_dirs,
    tree_changes,
    trees,
)
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import manifest as area_manifest
from repo_daemon.release_xml import model as release_model

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = gc.SNAPSHOT_DIR
GcReport = gc.GcReport

MetadataStep = tree_changes.MetadataStep
"""Writes repository metadata into a new snapshot directory before it is checked and swapped
in. It may add files and directories, but must not add symlinks or change payload files.
Called with ``payload_dir`` (keyword) for tree-layout areas only."""

LegacyMetadataStep = Callable[[Path, area_manifest.AreaManifest], None]
"""A metadata step without ``payload_dir``: enough while every area uses full snapshots."""

Edit = tree_changes.Edit


PublishedArea = tree_changes.PublishedArea


class Repository(snapshot_dirs.SnapshotDirs, gc.GarbageCollection, rollback.Rollback):
    """The published trees below ``settings.root``.

    Safe to use from several threads and processes at once: every change to an area holds
    that area's lock (``area_locks``, by default ``.locks/<area-key>.lock``). ``lock_timeout``
    bounds the wait (``AreaBusy``). ``metadata`` runs on every new snapshot before its checks
    and swap.
    """

    def __init__(
        self,
        settings: settings_model.RepositorySettings,
        *,
        metadata: MetadataStep | LegacyMetadataStep | None = None,
        lock_timeout: float = 600.0,
        clock: Callable[[], datetime] | None = None,
        area_locks: locks.Locks | None = None,
        caches: gc.AreaCaches | None = None,
    ) -> None:
        """``caches``: per-area caches the GC removes with their area (the metadata tools')."""
        self.settings = settings
        self.caches = caches
        try:
            settings.root.mkdir(mode=0o755, parents=True, exist_ok=True)
            self.root = settings.root.resolve(strict=True)
        except OSError as exc:
            raise publish_errors.StorageFailed("cannot create", "the repository root", exc) from exc
        self.pool = pool.Pool(self.root)
        # ``locks.chosen(settings)``: advisory locks with PostgreSQL; default flock files.
        self.locks = area_locks or locks.FileLocks(self.root, timeout=lock_timeout)
        self._metadata = cast(MetadataStep | None, metadata)
        self._clock = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ the workflow's steps

    def publish_unverified(
        self, ticket_id: int, info: release_model.ReleaseInfo, scratch: Path
    ) -> PublishedArea:
        """Pool the verified ``scratch`` tree and make ``unverified/<short>/<version>/`` hold
        exactly this release. Repeating it changes nothing (scratch is then not needed)."""
        entry = area_manifest.ReleaseEntry.from_info(ticket_id, info)
        area = areas.Area.unverified(entry.short_name, entry.version)
        return self._update(
            area,
            Edit(add=entry),
            ticket_id=ticket_id,
            prepare=lambda: self.pool.fill(scratch, entry.files),
            per_release=True,
        )

    def promote_to_stagerollout(
        self, ticket_id: int, info: release_model.ReleaseInfo, major: str
    ) -> PublishedArea:
        """Add the release to ``stagerollout/<major>/`` from the pool (no bytes copied). It
        stays in unverified until it reaches production or is removed."""
        entry = area_manifest.ReleaseEntry.from_info(ticket_id, info)
        area = areas.Area.stagerollout(major)
        return self._update(area, Edit(add=entry), ticket_id=ticket_id)

    def promote_to_production(
        self, ticket_id: int, info: release_model.ReleaseInfo, major: str, release_type: str
    ) -> PublishedArea:
        """Add the release to the production area of ``major`` (``base`` for NonIncremental,
        ``updates`` for Incremental; the one area of a flat production path), then take it
        out of ``stagerollout/<major>/`` and out of ``unverified/<short>/<version>/``. Each
        step is idempotent, and the release is in production before it leaves the other
        areas, so a repeated call after a crash finishes the job."""
        entry = area_manifest.ReleaseEntry.from_info(ticket_id, info)
        major = names.check_component("major release", major)
        production = areas.Area.production(
            self.settings.production_path(major), release_type, flat=self.settings.is_flat(major)
        )
        stage = areas.Area.stagerollout(major)
        unverified = areas.Area.unverified(entry.short_name, entry.version)
        result = self._update(production, Edit(add=entry), ticket_id=ticket_id)
        self._update(stage, Edit(remove=ticket_id), ticket_id=ticket_id)
        self._update(unverified, Edit(remove=ticket_id), ticket_id=ticket_id, per_release=True)
        return result

    def remove_release(
        self, ticket_id: int, info: release_model.ReleaseInfo, major: str
    ) -> tuple[PublishedArea, PublishedArea]:
        """Take what ``ticket_id`` brought out of ``unverified/<short>/<version>/`` (the area
        disappears) and ``stagerollout/<major>/`` (the area stays, possibly empty). Releases
        of other tickets stay. Idempotent. Returns both areas' states."""
        unverified, staged = self.remove_from(
            ticket_id,
            [areas.Area.unverified(info.short_name, info.version), areas.Area.stagerollout(major)],
        )
        return unverified, staged

    def remove_from(self, ticket_id: int, where: Sequence[areas.Area]) -> list[PublishedArea]:
        """Take what ``ticket_id`` brought out of each area of ``where``, reading only the
        areas' manifests (never the release's input). An ``unverified/`` area holds one release
        and disappears; other areas stay, possibly empty. Releases of other tickets stay.
        Idempotent: an area that never held the release is left as it is."""
        return [
            self._update(
                area,
                Edit(remove=ticket_id),
                ticket_id=ticket_id,
                per_release=area.kind == "unverified",
            )
            for area in where
        ]

    # ------------------------------------------------------------------ reading

    def url(self, area: areas.Area) -> str:
        """The URL clients reach ``area`` at."""
        return self.settings.base_url.rstrip("/") + "/" + quote(area.path) + "/"

    def live_snapshot(self, area: areas.Area) -> str | None:
        """The name of the snapshot ``area`` points at, or None if it is not published."""
        return self._live(area)

    def manifest(self, area: areas.Area) -> area_manifest.AreaManifest | None:
        """What ``area`` holds now, or None if it is not published."""
        live = self.live_snapshot(area)
        return self._read(area, live) if live else None

    # ------------------------------------------------------------------ one change of an area

    def _update(
        self,
        area: areas.Area,
        edit: tree_changes.Edit,
        *,
        ticket_id: int,
        prepare: Callable[[], object] | None = None,
        per_release: bool = False,
    ) -> PublishedArea:
        """Apply ``edit`` to ``area`` under its lock: nothing if the content stays the same;
        otherwise build, check and swap in a new snapshot (or, for a ``per_release`` area
        left empty, remove the area), then apply retention. Tree-layout areas change by
        ``tree_changes``."""
        try:
            with self.locks.area(area) as held:
                live = self._live(area)
                self._clear_leftovers(area)
                if self.uses_tree(area):
                    name, changed = self._update_tree(area, edit, held, live)
                    if changed:
                        logger.info("%s now at metadata snapshot %s", area, name,
                                    extra={"action": "publish", "ticket": ticket_id})  # fmt: skip
                    return self._result(area, name, changed=changed)
                # Without its symlink (a crash before the first swap, a person's mistake) an
                # area's state is its newest complete snapshot, never "empty".
                base = live or self._newest(area)
                current = (
                    self._read(area, base) if base else area_manifest.AreaManifest(area=area.path)
                )
                new = edit.apply(current)
                if not new.releases and (per_release or base is None):
                    if base is None:
                        return self._result(area, None, changed=False)
                    held.verify()  # still ours, right before readers see the change
                    self._remove_area(area)
                    logger.info(
                        "removed %s", area, extra={"action": "publish", "ticket": ticket_id}
                    )
                    return self._result(area, None, changed=True)
                if (
                    new.same_content(current)
                    and base is not None
                    and (live is not None or not self._is_tree_snapshot(area, base))
                ):
                    if live is None:
                        held.verify()
                        self._swap(area, base)
                    return self._result(area, base, changed=live is None)
                files = new.files()
                if prepare is not None:
                    prepare()
                pooled, missing = self.pool.identities(files)
                if missing:
                    raise publish_errors.ContentMissing(f"{area} cannot be built", missing)
                name = self._build(area, new, files, pooled)
                held.verify()
                self._swap(area, name)
                self._retain(area, name)
                logger.info(
                    "%s now at snapshot %s (%d releases, %d files)",
                    area,
                    name,
                    len(new.releases),
                    len(files),
                    extra={"action": "publish", "ticket": ticket_id},
                )
                return self._result(area, name, changed=True)
        except publish_errors.PublishFailed as exc:
            if exc.ticket_id is None:
                exc.ticket_id = ticket_id
            raise
        except OSError as exc:
            raise publish_errors.StorageFailed("cannot publish", area.path, exc) from exc

    def _result(self, area: areas.Area, snapshot: str | None, *, changed: bool) -> PublishedArea:
        return PublishedArea(area=area, url=self.url(area), snapshot=snapshot, changed=changed)

    # ------------------------------------------------------------------ paths

    def _area_path(self, area: areas.Area, *, create: bool) -> Path:
        """The absolute path of ``area``; its parents must be plain directories below the root
        (not symlinks, so never another area), created when ``create``."""
        parts = area.path.split("/")
        current = self.root
        for part in parts[:-1]:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                if not create:
                    break
                with contextlib.suppress(FileExistsError):  # made meanwhile for a sibling area
                    current.mkdir(mode=0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                where = current.relative_to(self.root).as_posix()
                raise publish_errors.PathConflict(
                    area.path, [f"{where} is not a plain directory (an area, or not the bridge's)"]
                )
        path = self.root.joinpath(*parts)
        if create and not path.parent.resolve().is_relative_to(self.root):
            raise publish_errors.PathRefused("area", area.path, "leaves the repository root")
        return path

    def _snapshots(self, area: areas.Area) -> Path:
        return self.root / SNAPSHOT_DIR / area.key

    @staticmethod
    def _link_prefix(area: areas.Area) -> str:
        """The symlink target of ``area`` without the snapshot name (relative, so the root can
        be mounted or served at another path)."""
        return "../" * area.depth + f"{SNAPSHOT_DIR}/{area.key}/"

    def _live(self, area: areas.Area) -> str | None:
        path = self._area_path(area, create=False)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISLNK(st.st_mode):
            kind = "directory" if stat.S_ISDIR(st.st_mode) else "file"
            raise publish_errors.PathConflict(
                area.path, [f"{area} is a {kind} the bridge did not make; move it away"]
            )
        target = str(path.readlink())
        prefix = self._link_prefix(area)
        if target == self.tree_link(area):  # the tree layout: the snapshot is .meta's
            found = trees.live_meta(self.tree_dir(area), area.key)
            if found is None:
                raise publish_errors.SnapshotInvalid(
                    area.path,
                    [f"it points at its payload tree {target}, which has no "
                     f"{names.META_LINK} link to a metadata snapshot; roll it back to a kept "
                     "snapshot (rollout repo rollback)"],
                )  # fmt: skip
            name = found
        else:
            name = target[len(prefix) :] if target.startswith(prefix) else ""
        if names.snapshot_number(name) is None:
            raise publish_errors.PathConflict(
                area.path,
                [f"{area} is a symlink the bridge did not make: it points at {target!r}, "
                 f"neither at a snapshot ({prefix}<n>-<time>) nor at its payload tree "
                 f"({self.tree_link(area)})"],
            )  # fmt: skip
        if not (self._snapshots(area) / name).is_dir():
            raise publish_errors.SnapshotInvalid(
                area.path,
                [f"its live snapshot {name} is gone; point {area} at a snapshot that exists"],
            )
        return name

    def _read(self, area: areas.Area, name: str) -> area_manifest.AreaManifest:
        try:
            return release_entries.read_any(self.root, area.path, self._snapshots(area) / name)
        except FileNotFoundError as exc:
            raise publish_errors.SnapshotInvalid(
                area.path, [f"snapshot {name} has no manifest"]
            ) from exc
        except OSError as exc:
            raise publish_errors.StorageFailed(
                "cannot read the manifest of", area.path, exc
            ) from exc

    # ------------------------------------------------------------------ build, check, swap

    def _build(
        self,
        area: areas.Area,
        contents: area_manifest.AreaManifest,
        files: tuple[area_manifest.FileEntry, ...],
        pooled: dict[str, tuple[int, int]],
    ) -> str:
        """Build the complete snapshot of ``contents`` beside the live one and mark it
        complete in one rename; on any failure delete what was built. Returns its name."""
        now = self._clock().astimezone(UTC)
        with snapshot_dirs.new_snapshot(self._snapshots(area), now) as (name, building):
            self.pool.link_tree(area, building, files)
            document = contents.to_json(snapshot=name, created=now.isoformat(), files=files)
            fsops.write_new(building / area_manifest.MANIFEST_NAME, document)
            if self._metadata is not None:
                self._run_metadata(area, building, contents)
            problems = self.pool.check_tree(building, files, pooled)
            if problems:
                raise publish_errors.SnapshotInvalid(area.path, problems)
        return name

    def _run_metadata(
        self,
        area: areas.Area,
        building: Path,
        contents: area_manifest.AreaManifest,
        payload_dir: Path | None = None,
    ) -> None:
        assert self._metadata is not None
        try:
            if payload_dir is None:  # today's steps need not know the keyword
                cast(LegacyMetadataStep, self._metadata)(building, contents)
            else:
                self._metadata(building, contents, payload_dir=payload_dir)
        except (errors.DaemonError, OSError):
            raise
        except Exception as exc:
            text = str(exc).replace(str(building), "<snapshot>").replace(str(self.root), "<root>")
            raise publish_errors.PublishFailed(
                f"the metadata step for {area} failed: {type(exc).__name__}: {text}"
            ) from exc

    def _swap(self, area: areas.Area, name: str) -> None:
        """Point ``area`` at snapshot ``name`` in one ``rename(2)`` of a fresh symlink."""
        self._swap_link(area, self._link_prefix(area) + name)

    def _area_target(self, area: areas.Area) -> str | None:
        """What the area's symlink points at, or None without one."""
        try:
            return str(self._area_path(area, create=False).readlink())
        except (FileNotFoundError, NotADirectoryError):
            return None

    def _swap_link(self, area: areas.Area, target: str) -> None:
        """Point ``area`` at ``target`` in one ``rename(2)`` of a fresh symlink."""
        path = self._area_path(area, create=True)
        temporary = path.parent / f"{names.swap_prefix(path.name)}{secrets.token_hex(4)}"
        temporary.symlink_to(target)
        try:
            temporary.replace(path)
        except OSError as exc:
            temporary.unlink(missing_ok=True)
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                raise publish_errors.PathConflict(
                    area.path, [f"{area} is a directory the bridge did not make; move it away"]
                ) from exc
            raise
        fsops.fsync_dir(path.parent)
