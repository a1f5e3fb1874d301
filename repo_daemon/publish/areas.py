"""What a published tree is, without touching the disk: the names of the areas clients see,
the manifest each snapshot carries, and the errors publication raises.

Everything here is pure. Every name and path is checked here before ``publish`` and ``pool``
turn it into a path below the repository root; nothing in this module reads or writes files.
"""

from __future__ import annotations

import errno as errno_codes
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from repo_daemon import errors
from repo_daemon.release_xml import model as manifest

MANIFEST_NAME = ".rollout-manifest.json"
MANIFEST_FORMAT = 1

# One path component of an area or a snapshot key. "~" is left out on purpose: area keys join
# components with it, so a key names exactly one area.
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
_VERSION = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SNAPSHOT_NAME = re.compile(r"([0-9]{6,})-([0-9]{8}T[0-9]{6}Z)")

_INCREMENTAL = {"incremental": "updates", "nonincremental": "base"}

# errno values after which a later try may succeed without anybody doing anything: space
# freed by the pool GC or retention, a busy or briefly unreachable shared file system.
TRANSIENT_ERRNOS = frozenset(
    {
        errno_codes.ENOSPC,
        errno_codes.EDQUOT,
        errno_codes.EAGAIN,
        errno_codes.EBUSY,
        errno_codes.EINTR,
        errno_codes.ETIMEDOUT,
        errno_codes.ESTALE,
        errno_codes.ENOLCK,
        errno_codes.EMFILE,
        errno_codes.ENFILE,
        errno_codes.ENOMEM,
    }
)


# --------------------------------------------------------------------------- errors


class PublishFailed(errors.DaemonError):
    """Publication failed. Root of the publication errors; ``transient`` is per instance."""

    def __init__(self, message: str, *, transient: bool = False, ticket_id: int | None = None):
        self.transient = transient
        self.ticket_id = ticket_id
        super().__init__(message)


class PathRefused(PublishFailed):
    """A name or path is unsafe to turn into a path below the root (permanent)."""

    def __init__(self, what: str, value: object, reason: str) -> None:
        self.what = what
        self.value = value
        super().__init__(f"{what} {_show(value)} refused: {reason}")


class PathConflict(PublishFailed):
    """Releases in one area disagree about a path, or an area's path is occupied by something
    the bridge did not make (permanent: a person must decide). ``conflicts`` lists each one."""

    def __init__(self, area: str, conflicts: list[str]) -> None:
        self.area = area
        self.conflicts = list(conflicts)
        shown = self.conflicts[:20]
        more = len(self.conflicts) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"{area}: {text}")


class ContentMissing(PublishFailed):
    """Bytes a release needs are not where they must be: absent from the scratch tree or the
    pool, or of the wrong size or SHA-256 (permanent). ``problems`` lists every file."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"{what}: {text}")


class SnapshotInvalid(PublishFailed):
    """A snapshot failed its checks, or an existing one cannot be read (permanent)."""

    def __init__(self, area: str, problems: list[str]) -> None:
        self.area = area
        self.problems = list(problems)
        shown = self.problems[:20]
        more = len(self.problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"snapshot of {area} is not usable: {text}")


class StorageFailed(PublishFailed):
    """The file system refused an operation. Transient for conditions that may pass (disk full,
    quota, busy or stale shared storage); permanent otherwise (permissions, read-only, I/O
    errors of the disk). Only paths relative to the root appear in the message."""

    def __init__(self, action: str, where: str, exc: OSError) -> None:
        self.errno = exc.errno
        reason = exc.strerror or type(exc).__name__
        super().__init__(f"{action} {where}: {reason}", transient=exc.errno in TRANSIENT_ERRNOS)


class AreaBusy(PublishFailed):
    """An area's lock stayed taken past the timeout (transient: another daemon is at work)."""

    def __init__(self, lock: str, waited: float) -> None:
        self.lock = lock
        super().__init__(f"lock {lock} still taken after {waited:.0f} s", transient=True)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


# --------------------------------------------------------------------------- names


def check_component(what: str, value: object) -> str:
    """``value`` if it is safe as one path component (letters, digits, ``._+-``, not starting
    with a dot, at most 128 characters); else ``PathRefused``."""
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value):
        raise PathRefused(what, value, "use letters, digits and . _ + - (not first), one component")
    return value


def check_version(value: object) -> str:
    """``value`` if it is ``Major.Minor.Revision`` in digits; else ``PathRefused``."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise PathRefused("version", value, "expected Major.Minor.Revision in digits")
    return value


def check_sha256(value: object) -> str:
    """``value`` if it is 64 lower-case hex digits; else ``PathRefused``."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise PathRefused("SHA-256", value, "expected 64 lower-case hex digits")
    return value


def check_relative_path(what: str, value: object, *, allow_empty: bool = False) -> str:
    """``value`` if it is a relative ``/``-separated path that stays where it is put: no leading
    ``/``, no ``..``, ``.``, empty or hidden components, no backslash or control characters."""
    if not isinstance(value, str):
        raise PathRefused(what, value, "not a string")
    if value == "" and allow_empty:
        return value
    if not value or len(value.encode("utf-8", "surrogateescape")) > 4096:
        raise PathRefused(what, value, "empty or longer than 4096 bytes")
    if value.startswith("/"):
        raise PathRefused(what, value, "absolute")
    if "\\" in value or _CONTROL.search(value):
        raise PathRefused(what, value, "contains a backslash or a control character")
    for part in value.split("/"):
        if part in ("", ".", ".."):
            raise PathRefused(what, value, "empty, '.' or '..' component")
        if part.startswith("."):
            raise PathRefused(what, value, "hidden component")
        if len(part.encode("utf-8", "surrogateescape")) > 255:
            raise PathRefused(what, value, "a component is longer than 255 bytes")
    return value


def check_area_path(value: object) -> str:
    """``value`` if every ``/``-separated component passes ``check_component``."""
    if not isinstance(value, str) or not value:
        raise PathRefused("area", value, "empty")
    for part in value.split("/"):
        check_component("area component", part)
    return value


def unverified_area(short_name: str, version: str) -> str:
    """``unverified/<short>/<version>``: one release, waiting for QC."""
    return f"unverified/{check_component('short name', short_name)}/{check_version(version)}"


def stagerollout_area(major: str) -> str:
    """``stagerollout/<major>``: the releases of ``major`` in staged rollout."""
    return f"stagerollout/{check_component('major release', major)}"


def production_area(production_path: str, release_type: str) -> str:
    """``<production_path>/base`` (NonIncremental) or ``/updates`` (Incremental)."""
    check_area_path(production_path)
    norm = release_type.replace("-", "").replace("_", "").replace(" ", "").lower()
    if norm not in _INCREMENTAL:
        raise PathRefused("release type", release_type, "expected Incremental or NonIncremental")
    return f"{production_path}/{_INCREMENTAL[norm]}"


def area_key(area: str) -> str:
    """The one-component name of ``area`` for its snapshots and lock (``/`` becomes ``~``)."""
    return "~".join(check_area_path(area).split("/"))


def snapshot_number(name: str) -> int | None:
    """The sequence number of a complete snapshot's directory name, else None."""
    match = SNAPSHOT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- manifests


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
    def from_info(cls, ticket_id: int, info: manifest.ReleaseInfo) -> ReleaseEntry:
        """The entry for a parsed release; checks every name, path and hash again."""
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool) or ticket_id <= 0:
            raise PathRefused("ticket id", ticket_id, "expected a positive number")
        files = [
            FileEntry(
                path=check_relative_path("package path", p.path),
                size=_size(p.size, p.path),
                sha256=check_sha256(p.sha256),
            )
            for p in info.packages
        ]
        repos = tuple(
            RepositoryEntry(
                identifier=r.identifier,
                name=r.name,
                type=r.type,
                relative_path=check_relative_path(
                    "repository path", r.relative_path, allow_empty=True
                ),
            )
            for r in info.repositories
        )
        entry = cls(
            ticket_id=ticket_id,
            short_name=check_component("short name", info.short_name),
            version=check_version(info.version),
            files=tuple(sorted(set(files), key=lambda f: f.path)),
            repositories=repos,
        )
        union_files([entry], area=f"release {entry.label}")  # a release must agree with itself
        return entry


def _size(value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PathRefused("size of", path, f"{value!r} is not a size in bytes")
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
        raise PathConflict(area, conflicts)
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
        clash = [
            r
            for r in self.releases
            if (r.short_name, r.version) == (entry.short_name, entry.version)
            and r.ticket_id != entry.ticket_id
        ]
        if clash:
            raise PathConflict(
                self.area,
                [f"{entry.short_name} {entry.version} is already here from ticket "
                 f"#{clash[0].ticket_id}; remove that release first"],
            )  # fmt: skip
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
        except PublishFailed as exc:
            raise SnapshotInvalid(area, [f"manifest: {exc}"]) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SnapshotInvalid(area, [f"manifest unreadable ({exc})"]) from exc
        return cls(area=area, releases=releases)


def _entries(files: tuple[FileEntry, ...], indent: str) -> str:
    return ",\n".join(indent + json.dumps(vars(f), ensure_ascii=False) for f in files)


def _release_from(raw: dict[str, Any]) -> ReleaseEntry:
    files = tuple(
        FileEntry(
            path=check_relative_path("package path", f["path"]),
            size=_size(f["size"], f["path"]),
            sha256=check_sha256(f["sha256"]),
        )
        for f in raw["files"]
    )
    repos = tuple(
        RepositoryEntry(
            identifier=str(x["identifier"]),
            name=str(x["name"]),
            type=str(x["type"]),
            relative_path=check_relative_path(
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
        short_name=check_component("short name", raw["short_name"]),
        version=check_version(raw["version"]),
        files=files,
        repositories=repos,
    )
