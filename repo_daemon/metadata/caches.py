"""The metadata tools' per-area caches below the repository root (``.metadata-cache/<name>``):
the name of an area's cache, and the removal of the caches of areas that are gone.

A cache outlives its area otherwise: apt-ftparchive's database, createrepo_c's record and, in
the tree layout, the directory of hard links to the area's packages (``apt.LINKS_DIR``), whose
links would keep the pool's files from its GC for ever. It builds nothing and never decides
which areas exist: ``publish``'s garbage collection says so, under its global lock.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.metadata import repository_dirs

logger = logging.getLogger(__name__)

CACHE_DIR = ".metadata-cache"
"""The tools' caches, below the repository root (one directory per area): on the trees' file
system, shared by every daemon that publishes there, never served (a hidden name)."""


def cache_name(area: str) -> str:
    """The name of ``area``'s cache directory (``production/7/updates`` ->
    ``production-7-updates``)."""
    return repository_dirs.slug(area)


@dataclass(frozen=True, kw_only=True)
class AreaCaches:
    """The per-area caches below ``directory`` (``<root>/.metadata-cache``)."""

    directory: Path

    @classmethod
    def of_root(cls, root: Path) -> AreaCaches:
        """The caches of the repository at ``root``."""
        return cls(directory=root / CACHE_DIR)

    def forget_all_but(self, areas: Iterable[str]) -> int:
        """Remove every cache directory that is not the cache of one of ``areas`` (the areas
        that exist); how many. The caller holds every publication off (``publish``'s global
        lock), so no metadata step is using one. Anything that is not a directory is left."""
        if not self.directory.is_dir():
            return 0
        kept = {cache_name(area) for area in areas}
        removed = 0
        for entry in sorted(self.directory.iterdir()):
            if entry.name in kept or entry.is_symlink() or not entry.is_dir():
                continue
            shutil.rmtree(entry)
            removed += 1
            logger.info(
                "%s/%s: its area is gone; its metadata cache removed", CACHE_DIR, entry.name,
                extra={"action": "collect_garbage"},
            )  # fmt: skip
        return removed
