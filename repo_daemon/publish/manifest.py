"""The manifest each snapshot carries (``.rollout-manifest.json``): which releases an area
holds, in the order they arrived, with every file's path, size and SHA-256, and the union of
their files. "Manifest" in this code base means only this record.

Pure: it checks and (de)serialises manifests; ``repository`` reads and writes the file. Two
releases claiming one path with different content raise ``errors.PathConflict``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from repo_daemon.publish import errors, names
from repo_daemon.release_xml import model as release_model

MANIFEST_NAME = ".rollout-manifest.json"
MANIFEST_FORMAT = 1


class NamedRelease(Protocol):
    """What tells two releases apart in an area, whichever record holds them (a manifest's
    ``ReleaseEntry`` or a tree manifest's reference)."""

    @property
    def ticket_id(self) -> int: ...
    @property
    def short_name(self) -> str: ...
    @property
    def version(self) -> str: ...


def refuse_same_release(area: str, present: Iterable[NamedRelease], new: NamedRelease) -> None:
    """``errors.PathConflict`` if ``area`` already holds release ``new`` (same short name and
    version) from another ticket: a person must remove that one first. Both layouts ask this."""
    for r in present:
        if (r.short_name, r.version) == (new.short_name, new.version) and (
            r.ticket_id != new.ticket_id
        ):
            raise errors.PathConflict(
                area,
                [f"{new.short_name} {new.version} is already here from ticket "
                 f"#{r.ticket_id}; remove that release first"],
            )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """A file of an area: its path in the area, size and SHA-256 (its name in the pool)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, kw_only=True)
class RepositoryEntry:
    """A package repository a release declares (for the metadata step)."""

    identifier: str
    name: str
    type: str
    relative_path: str


@dataclass(frozen=True, kw_only=True)
class ReleaseEntry:
    """One release in an area: which ticket brought it and its files."""

    ticket_id: int
    short_name: str
    version: str
    files: tuple[FileEntry, ...]
    repositories: tuple[RepositoryEntry, ...] = ()

    @property
    def label(self) -> str:
        """How messages name the release."""
        return f"{self.short_name} {self.version} (ticket #{self.ticket_id})"

    @classmethod
    def from_info(cls, ticket_id: int, info: release_model.ReleaseInfo) -> ReleaseEntry:
        """The entry for a parsed release; checks every name, path and hash again."""
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool) or ticket_id <= 0:
            raise errors.PathRefused("ticket id", ticket_id, "expected a positive number")
        files = [
            FileEntry(
                path=names.check_relative_path("package path", p.path),
                size=_size(p.size, p.path),
                sha256=names.check_sha256(p.sha256),
            )
            for p in info.packages
        ]
        repos = tuple(
            RepositoryEntry(
                identifier=r.identifier,
                name=r.name,
                type=r.type,
                relative_path=names.check_relative_path(
                    "repository path", r.relative_path, allow_empty=True
                ),
            )
            for r in info.repositories
        )
        for f in files:  # the names the bridge's own metadata and keys take
            names.check_not_reserved(f.path, [r.relative_path for r in repos])
        entry = cls(
            ticket_id=ticket_id,
            short_name=names.check_component("short name", info.short_name),
            version=names.check_version(info.version),
            files=tuple(sorted(set(files), key=lambda f: f.path)),
            repositories=repos,
        )
        union_files([entry], area=f"release {entry.label}")  # a release must agree with itself
        return entry


def _size(value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.PathRefused("size of", path, f"{value!r} is not a size in bytes")
    return value


def union_files(releases: Iterable[ReleaseEntry], *, area: str) -> tuple[FileEntry, ...]:
    """The files of ``releases`` together, sorted by path.

    Raises ``PathConflict`` listing every path two releases claim with different content, and
    every path that is a file in one release and a directory in another.
    """
    owners: dict[str, tuple[FileEntry, ReleaseEntry]] = {}
    conflicts: list[str] = []
    for release in releases:
        for f in release.files:
            seen = owners.get(f.path)
            if seen is None:
                owners[f.path] = (f, release)
            elif (seen[0].sha256, seen[0].size) != (f.sha256, f.size):
                conflicts.append(
                    f"{f.path} differs between {seen[1].label} and {release.label} "
                    f"(SHA-256 {seen[0].sha256[:12]}… vs {f.sha256[:12]}…)"
                )
    directories: dict[str, ReleaseEntry] = {}
    for path, (_, release) in owners.items():
        parts = path.split("/")
        for i in range(1, len(parts)):
            directories.setdefault("/".join(parts[:i]), release)
    for path, (_, release) in owners.items():
        if path in directories:
            conflicts.append(
                f"{path} is a file in {release.label} and a directory in {directories[path].label}"
            )
    if conflicts:
        raise errors.PathConflict(area, conflicts)
    return tuple(f for _, (f, _) in sorted(owners.items()))


@dataclass(frozen=True, kw_only=True)
class AreaManifest:
    """What one snapshot of an area holds: its releases, in the order they arrived."""

    area: str
    releases: tuple[ReleaseEntry, ...] = ()

    def files(self) -> tuple[FileEntry, ...]:
        """Every file of the area (the union of its releases); ``PathConflict`` if they clash."""
        return union_files(self.releases, area=self.area)

    def release_of(self, ticket_id: int) -> ReleaseEntry | None:
        """The entry ``ticket_id`` brought, if any."""
        return next((r for r in self.releases if r.ticket_id == ticket_id), None)

    def with_release(self, entry: ReleaseEntry) -> AreaManifest:
        """This manifest with ``entry`` added, or replacing what the same ticket brought before.

        The same release (short name and version) from another ticket is a ``PathConflict``,
        so is any path the new release claims with other content than a release already here.
        """
        refuse_same_release(self.area, self.releases, entry)
        kept = [r for r in self.releases if r.ticket_id != entry.ticket_id]
        result = replace(self, releases=(*kept, entry))
        result.files()
        return result

    def without_ticket(self, ticket_id: int) -> AreaManifest:
        """This manifest without the release ``ticket_id`` brought (unchanged if absent)."""
        return replace(self, releases=tuple(r for r in self.releases if r.ticket_id != ticket_id))

    def same_content(self, other: AreaManifest) -> bool:
        """Whether both hold the same releases with the same files (order aside)."""
        return {r.ticket_id: r for r in self.releases} == {r.ticket_id: r for r in other.releases}

    def to_json(
        self, *, snapshot: str, created: str, files: tuple[FileEntry, ...] | None = None
    ) -> bytes:
        """The ``.rollout-manifest.json`` of snapshot ``snapshot``: one file entry per line, so
        people can read and diff it and the C encoder still does the work. ``files`` is the
        union if the caller already has it."""
        files = self.files() if files is None else files
        head = {"format": MANIFEST_FORMAT, "area": self.area, "snapshot": snapshot}
        head["created"] = created
        lines = [json.dumps(head, ensure_ascii=False)[:-1] + ","]
        lines.append(' "releases": [')
        for n, r in enumerate(self.releases):
            release = {
                "ticket_id": r.ticket_id,
                "short_name": r.short_name,
                "version": r.version,
                "repositories": [vars(x) for x in r.repositories],
            }
            lines.append("  " + json.dumps(release, ensure_ascii=False)[:-1] + ', "files": [')
            lines.append(_entries(r.files, "   "))
            lines.append("  ]}" + ("," if n < len(self.releases) - 1 else ""))
        lines.append(" ],")
        lines.append(' "files": [')
        lines.append(_entries(files, "  "))
        lines.append(" ]")
        lines.append("}")
        return ("\n".join(line for line in lines if line) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, area: str) -> AreaManifest:
        """Read a manifest written by ``to_json``; ``SnapshotInvalid`` if it is not one."""
        try:
            document = json.loads(data)
            if document.get("format") != MANIFEST_FORMAT or document.get("area") != area:
                raise ValueError("another format or another area")
            releases = tuple(_release_from(r) for r in document["releases"])
        except errors.PublishFailed as exc:
            raise errors.SnapshotInvalid(area, [f"manifest: {exc}"]) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise errors.SnapshotInvalid(area, [f"manifest unreadable ({exc})"]) from exc
        return cls(area=area, releases=releases)


def _entries(files: tuple[FileEntry, ...], indent: str) -> str:
    return ",\n".join(indent + json.dumps(vars(f), ensure_ascii=False) for f in files)


def release_from_json(raw: dict[str, Any]) -> ReleaseEntry:
    """One release read back from its JSON form (a manifest's or a release entry's); raises
    ``PathRefused`` for unsafe names, ``ValueError``/``KeyError`` for a malformed one."""
    return _release_from(raw)


def _release_from(raw: dict[str, Any]) -> ReleaseEntry:
    files = tuple(
        FileEntry(
            path=names.check_relative_path("package path", f["path"]),
            size=_size(f["size"], f["path"]),
            sha256=names.check_sha256(f["sha256"]),
        )
        for f in raw["files"]
    )
    repos = tuple(
        RepositoryEntry(
            identifier=str(x["identifier"]),
            name=str(x["name"]),
            type=str(x["type"]),
            relative_path=names.check_relative_path(
                "repository path", x["relative_path"], allow_empty=True
            ),
        )
        for x in raw.get("repositories", [])
    )
    ticket = raw["ticket_id"]
    if not isinstance(ticket, int) or isinstance(ticket, bool):
        raise ValueError("ticket_id is not a number")
    return ReleaseEntry(
        ticket_id=ticket,
        short_name=names.check_component("short name", raw["short_name"]),
        version=names.check_version(raw["version"]),
        files=files,
        repositories=repos,
    )
