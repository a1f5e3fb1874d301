"""The records of the tree layout: release entries (``<root>/.releases/<sha256>.json``, one
release's files, content-addressed and never rewritten) and the format-2 manifest of a
metadata snapshot (its releases by reference to their entries, and its metadata links).

Reading a format-2 manifest is O(releases); the files of a release are read from its entry
only when needed. ``read_any`` reads either format into the full ``AreaManifest`` for callers
that need every file (the GC, mirrors, ``Repository.manifest``); ``snapshot_links`` gives a
snapshot's metadata links for mirrors and serving. It writes only entries (``Entries.write``);
it never decides what an area holds nor touches the payload tree.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from repo_daemon.publish import errors, fsops, names
from repo_daemon.publish import manifest as area_manifest

RELEASES_DIR = names.RELEASES_DIR
K = TypeVar("K")
V = TypeVar("V")
ENTRY_FORMAT = 1
MANIFEST_FORMAT = 2
LAYOUT = "tree"


@dataclass(frozen=True, kw_only=True)
class ReleaseRef:
    """A release of a format-2 manifest: who brought it and where its files are listed."""

    ticket_id: int
    short_name: str
    version: str
    repositories: tuple[area_manifest.RepositoryEntry, ...]
    entry: str  # SHA-256 of its ``.releases/<entry>.json``
    files: int
    bytes: int

    @property
    def label(self) -> str:
        """How messages name the release."""
        return f"{self.short_name} {self.version} (ticket #{self.ticket_id})"


@dataclass(frozen=True, kw_only=True)
class TreeManifest:
    """The ``.rollout-manifest.json`` of a metadata snapshot of a tree-layout area."""

    area: str
    snapshot: str
    created: str
    releases: tuple[ReleaseRef, ...] = ()
    links: tuple[str, ...] = ()  # paths of the metadata links the snapshot needs in the tree

    def to_json(self) -> bytes:
        """One release and one link per line, so people can read and diff it."""
        head = {"format": MANIFEST_FORMAT, "layout": LAYOUT, "area": self.area}
        head |= {"snapshot": self.snapshot, "created": self.created}
        lines = [json.dumps(head, ensure_ascii=False)[:-1] + ","]
        lines.append(' "releases": [')
        lines.append(",\n".join("  " + json.dumps(_ref_json(r)) for r in self.releases))
        lines.append(" ],")
        lines.append(' "links": [')
        lines.append(",\n".join("  " + json.dumps(link, ensure_ascii=False) for link in self.links))
        lines.append(" ]")
        lines.append("}")
        return ("\n".join(line for line in lines if line) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, area: str) -> TreeManifest:
        """Read a format-2 manifest; ``SnapshotInvalid`` if it is not one of ``area``.

        The same bytes give the same (immutable) manifest, so a parsed one is kept in memory
        by the bytes' SHA-256 (``_PARSED``): every change of an area reads its live manifest,
        whose parse and checks cost ~45 µs a release; hashing the bytes costs ~1 % of that."""
        key = (area, hashlib.sha256(data).digest())
        return _PARSED.get_or_make(key, lambda: cls._parse(data, area=area))

    def written(self) -> bytes:
        """``to_json()`` for the manifest this process writes: ``from_json`` of those bytes
        gives this manifest back without parsing them (the next change reads it)."""
        data = self.to_json()
        _PARSED.put((self.area, hashlib.sha256(data).digest()), self)
        return data

    @classmethod
    def _parse(cls, data: bytes, *, area: str) -> TreeManifest:
        try:
            document = json.loads(data)
            if document.get("format") != MANIFEST_FORMAT or document.get("area") != area:
                raise ValueError("another format or another area")
            releases = tuple(_ref_from(r) for r in document["releases"])
            links = tuple(_check_link(link) for link in document["links"])
            return cls(
                area=area,
                snapshot=str(document["snapshot"]),
                created=str(document["created"]),
                releases=releases,
                links=links,
            )
        except errors.PublishFailed as exc:
            raise errors.SnapshotInvalid(area, [f"manifest: {exc}"]) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise errors.SnapshotInvalid(area, [f"manifest unreadable ({exc})"]) from exc


def _check_link(value: object) -> str:
    """A metadata link's path: relative, plain components (hidden ones allowed: the
    manifest and serial are), never ``.meta`` itself nor one of its swap links."""
    if not isinstance(value, str):
        raise errors.PathRefused("metadata link", value, "not a string")
    parts = value.split("/")
    if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts) or (
        parts[0] == names.META_LINK or parts[0].startswith(names.META_LINK + ".")
    ):
        raise errors.PathRefused("metadata link", value, "not a plain relative path")
    return value


def is_format_2(data: bytes) -> bool:
    """Whether manifest bytes are a format-2 (tree layout) manifest, from its first line."""
    return b'"format": 2' in data[:200]


def _ref_json(r: ReleaseRef) -> dict[str, Any]:
    return {
        "ticket_id": r.ticket_id,
        "short_name": r.short_name,
        "version": r.version,
        "repositories": [vars(x) for x in r.repositories],
        "entry": r.entry,
        "files": r.files,
        "bytes": r.bytes,
    }


def _ref_from(raw: dict[str, Any]) -> ReleaseRef:
    ticket = raw["ticket_id"]
    if not isinstance(ticket, int) or isinstance(ticket, bool):
        raise ValueError("ticket_id is not a number")
    return ReleaseRef(
        ticket_id=ticket,
        short_name=names.check_component("short name", raw["short_name"]),
        version=names.check_version(raw["version"]),
        repositories=tuple(_repository(x) for x in raw.get("repositories", [])),
        entry=names.check_sha256(raw["entry"]),
        files=int(raw["files"]),
        bytes=int(raw["bytes"]),
    )


def _repository(x: dict[str, Any]) -> area_manifest.RepositoryEntry:
    return area_manifest.RepositoryEntry(
        identifier=str(x["identifier"]),
        name=str(x["name"]),
        type=str(x["type"]),
        relative_path=names.check_relative_path(
            "repository path", x["relative_path"], allow_empty=True
        ),
    )


def entry_bytes(release: area_manifest.ReleaseEntry) -> bytes:
    """The bytes of a release entry: its head on the first line, then one file per line."""
    head = {
        "format": ENTRY_FORMAT,
        "ticket_id": release.ticket_id,
        "short_name": release.short_name,
        "version": release.version,
        "repositories": [vars(x) for x in release.repositories],
    }
    lines = [json.dumps(head, ensure_ascii=False)[:-1] + ', "files": [']
    lines.append(",\n".join(" " + json.dumps(vars(f), ensure_ascii=False) for f in release.files))
    lines.append("]}")
    return ("\n".join(line for line in lines if line) + "\n").encode("utf-8")


class Entries:
    """The release entries below ``root`` (an already resolved repository root)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / RELEASES_DIR

    def path(self, sha256: str) -> Path:
        """Where the entry with ``sha256`` lives."""
        return self.dir / f"{names.check_sha256(sha256)}.json"

    def write(self, release: area_manifest.ReleaseEntry) -> ReleaseRef:
        """Store ``release``'s entry (once: an existing one has the same bytes by its name)
        and return the reference a manifest keeps. Durable before it returns."""
        data = entry_bytes(release)
        sha = hashlib.sha256(data).hexdigest()
        path = self.path(sha)
        if not path.exists():
            self.dir.mkdir(mode=0o755, exist_ok=True)
            tmp = self.dir / f".tmp-{sha[:16]}-{os.getpid()}"
            tmp.unlink(missing_ok=True)
            fsops.write_new(tmp, data)
            tmp.rename(path)  # the name appears only for complete bytes
            fsops.fsync_dir(self.dir)
        return ReleaseRef(
            ticket_id=release.ticket_id,
            short_name=release.short_name,
            version=release.version,
            repositories=release.repositories,
            entry=sha,
            files=len(release.files),
            bytes=sum(f.size for f in release.files),
        )

    def read(self, ref: ReleaseRef, *, area: str) -> area_manifest.ReleaseEntry:
        """The full release ``ref`` names; ``SnapshotInvalid`` if its entry is gone or does
        not hash to its name.

        An entry is immutable by its name, so a parsed one is kept in memory (``_READ``) and
        given again while its file is the same (device, inode, size, mtime: one ``stat``):
        a daemon's next change of the area parses only the new release's entry."""
        path = self.path(ref.entry)
        try:
            st = path.stat()
        except OSError as exc:
            raise _unreadable(ref, area, exc) from exc
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        return _READ.get_or_make(key, lambda: self._read(ref, area=area))

    def _read(self, ref: ReleaseRef, *, area: str) -> area_manifest.ReleaseEntry:
        try:
            data = self.path(ref.entry).read_bytes()
        except OSError as exc:
            raise _unreadable(ref, area, exc) from exc
        if hashlib.sha256(data).hexdigest() != ref.entry:
            raise errors.SnapshotInvalid(
                area, [f"the entry {RELEASES_DIR}/{ref.entry}.json does not match its name"]
            )
        try:
            return area_manifest.release_from_json(json.loads(data))
        except errors.PublishFailed as exc:
            raise errors.SnapshotInvalid(area, [f"entry {ref.entry}: {exc}"]) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise errors.SnapshotInvalid(area, [f"entry {ref.entry} unreadable ({exc})"]) from exc

    def claims(self, ref: ReleaseRef, *, area: str) -> dict[str, str]:
        """The paths ``ref``'s release claims, each with its SHA-256: for telling which paths
        a removal frees or who owns a clashing path. The entry's bytes are checked against
        its name, but not every path again (``read`` does). Immutable by its name, so the
        last few are kept in memory: a daemon's next change of the area parses none again."""
        return dict(_claims(str(self.path(ref.entry)), ref.entry, area, ref.label))

    def full(self, manifest: TreeManifest) -> area_manifest.AreaManifest:
        """The full manifest (every release with its files): reads every entry."""
        return area_manifest.AreaManifest(
            area=manifest.area,
            releases=tuple(self.read(r, area=manifest.area) for r in manifest.releases),
        )


def _unreadable(ref: ReleaseRef, area: str, exc: OSError) -> errors.PublishFailed:
    """What ``Entries.read`` raises when ``ref``'s entry cannot be read: ``SnapshotInvalid``
    when it is gone (permanent), ``StorageFailed`` otherwise (transient)."""
    if isinstance(exc, FileNotFoundError):
        return errors.SnapshotInvalid(
            area, [f"the entry {RELEASES_DIR}/{ref.entry}.json of {ref.label} is gone"]
        )
    return errors.StorageFailed("cannot read", f"{RELEASES_DIR}/{ref.entry}.json", exc)


class _Memo(Generic[K, V]):
    """Parsed records by a key that names their bytes, least recently used dropped first
    once their ``weight`` in all passes ``most``; safe across a daemon's worker threads."""

    def __init__(self, most: int, weight: Callable[[V], int]) -> None:
        self._kept: collections.OrderedDict[K, V] = collections.OrderedDict()
        self._most = most
        self._weight = weight
        self._total = 0  # the kept values' weight, kept up to date under the lock
        self._lock = threading.Lock()

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for ``key``, else ``make()``'s (kept; not called under the lock, so
        two threads may both make it: the records are equal)."""
        with self._lock:
            value = self._kept.get(key)
            if value is not None:
                self._kept.move_to_end(key)
                return value
        value = make()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._total = 0

    def put(self, key: K, value: V) -> None:
        with self._lock:
            replaced = self._kept.pop(key, None)
            if replaced is not None:
                self._total -= self._weight(replaced)
            self._kept[key] = value
            self._total += self._weight(value)
            while self._total > self._most and len(self._kept) > 1:
                _, gone = self._kept.popitem(last=False)
                self._total -= self._weight(gone)


# ``Entries.read``'s parsed entries, weighed by their files (~350 bytes of memory a file, so at
# most ~100 MB): every area of 300,000 files in all stays parsed, whether they come in 100
# releases or 30,000 (a bound counted in releases made a change of a 10,000-release area
# parse every entry again: a scan in LRU order drops each entry just before it is needed).
_READ: _Memo[tuple[str, int, int, int, int], area_manifest.ReleaseEntry] = _Memo(
    300_000, lambda entry: len(entry.files) + 1
)
# ``TreeManifest.from_json``'s parsed manifests, weighed by the releases they list (a
# reference is a few hundred bytes: 50,000 are tens of megabytes).
_PARSED: _Memo[tuple[str, bytes], TreeManifest] = _Memo(
    50_000, lambda manifest: len(manifest.releases) + 1
)


@functools.lru_cache(maxsize=16)
def _claims(path: str, sha: str, area: str, label: str) -> tuple[tuple[str, str], ...]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise errors.SnapshotInvalid(
            area, [f"the entry {RELEASES_DIR}/{sha}.json of {label} is gone"]
        ) from exc
    if hashlib.sha256(data).hexdigest() != sha:
        raise errors.SnapshotInvalid(
            area, [f"the entry {RELEASES_DIR}/{sha}.json does not match its name"]
        )
    try:
        return tuple((str(f["path"]), str(f["sha256"])) for f in json.loads(data)["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.SnapshotInvalid(area, [f"entry {sha} unreadable ({exc})"]) from exc


def read_any(root: Path, area: str, snapshot_dir: Path) -> area_manifest.AreaManifest:
    """The full manifest of a snapshot of either layout (format 1, or 2 with its entries read
    from ``root``'s ``.releases/``). ``SnapshotInvalid`` if unreadable."""
    data = (snapshot_dir / area_manifest.MANIFEST_NAME).read_bytes()
    if is_format_2(data):
        return Entries(root).full(TreeManifest.from_json(data, area=area))
    return area_manifest.AreaManifest.from_json(data, area=area)


def snapshot_links(snapshot_dir: Path, area: str) -> tuple[str, ...]:
    """The metadata links a tree-layout snapshot needs in its area's payload tree (paths
    relative to the area, from its manifest); () for a snapshot of the snapshots layout."""
    data = (snapshot_dir / area_manifest.MANIFEST_NAME).read_bytes()
    return TreeManifest.from_json(data, area=area).links if is_format_2(data) else ()
