"""The repositories a snapshot's metadata is built for: the ``Repository`` shape read from a
release (``release_xml``'s ``RepositorySpec`` or publish's ``manifest.RepositoryEntry``), each
checked and paired with its directory, and the files a release must not have put there.

It reads the tree (to refuse symlinks and existing metadata) but never writes it and runs no
tool; ``yum``, ``apt`` and ``build`` do. Also holds the small helpers both index builders use.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from repo_daemon.metadata import errors

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Repository(Protocol):
    """A repository to index: ``release_xml.model.RepositorySpec`` or publish's
    ``manifest.RepositoryEntry``. ``relative_path`` is below the tree's root (the area's
    root), ``""`` for the root."""

    @property
    def identifier(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...  # "YUM" or "APT"
    @property
    def relative_path(self) -> str: ...


def parts(relative_path: str) -> list[str]:
    """The non-empty components of a ``/``-separated path."""
    return [p for p in relative_path.split("/") if p]


def slug(text: str) -> str:
    """``text`` as one file-name-safe word (for repository ids, file and cache names)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")


def one_line(text: str) -> str:
    """``text`` without control characters or runs of blanks, for one-line fields."""
    return " ".join(_CONTROL.sub(" ", text).split())


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (a newline would break a field)."""
    return _CONTROL.search(text) is not None


def plan(tree: Path, repositories: Sequence[Repository]) -> list[tuple[Repository, Path]]:
    """Each repository with its directory (which may not exist yet: a repository the release
    put nothing in gets empty metadata), checked: a known type, below ``tree`` with no
    symlink on the way, not nested in another repository of its type (the tools index every
    package below their directory)."""
    planned: list[tuple[Repository, Path]] = []
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for repository in repositories:
        name = f"repository {repository.identifier}"
        if repository.type not in ("YUM", "APT"):
            raise errors.MetadataFailed(f"{name} has type {repository.type!r}; expected YUM or APT")
        found = tuple(parts(repository.relative_path))
        if any(p in (".", "..") for p in found):
            raise errors.MetadataFailed(
                f"{name}: path {repository.relative_path!r} leaves the tree"
            )
        if (repository.type, found) in seen:
            continue  # the same directory twice: one index serves both
        for (kind, other), other_id in seen.items():
            shorter = min(len(found), len(other))
            if kind == repository.type and found[:shorter] == other[:shorter]:
                raise errors.MetadataFailed(
                    f"{name} ({'/'.join(found) or '.'}) and repository {other_id} "
                    f"({'/'.join(other) or '.'}) are {kind} repositories inside one another; "
                    "their packages would be indexed twice"
                )
        seen[(repository.type, found)] = repository.identifier
        directory = tree
        for part in found:
            directory = directory / part
            if directory.is_symlink():
                raise errors.MetadataFailed(
                    f"{name}: {directory} is a symlink; refusing to follow it"
                )
        planned.append((repository, directory))
    return planned


def refuse_existing(tree: Path, directory: Path, names: Sequence[str]) -> None:
    """Metadata is generated for the whole area (every release in it), never taken from a
    release: a release that ships ``repodata/`` or ``Release`` is refused, by name, rather
    than having its files replaced (publish checks that payload files are left as linked)."""
    found = [
        str((directory / name).relative_to(tree))
        for name in names
        if (directory / name).exists() or (directory / name).is_symlink()
    ]
    if found:
        raise errors.MetadataFailed(
            f"the snapshot already holds {', '.join(found)}: repository metadata is generated "
            "by the bridge for the whole area; the release must leave it out of release.xml"
        )


def link_previous(source: Path, target: Path) -> None:
    """Hard-link ``source`` (of the previous snapshot) as ``target``; copy across filesystems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def packages_phrase(count: int) -> str:
    """``1 package``, ``2 packages``."""
    return f"{count} package{'' if count == 1 else 's'}"
