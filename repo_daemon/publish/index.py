"""The mirror index of a snapshot: ``index.json`` (what the area holds, every file with its size
and SHA-256), ``index.html`` (the same for people, with links) and ``.rollout-serial`` (one line
naming the snapshot, for mirrors to poll), written into a snapshot being built.

``write_index`` is a ``publish.MetadataStep``: it runs inside the new snapshot before it is
checked and swapped in, so the index and the serial change atomically with the tree. It runs
after the repository metadata (``compose``), so it lists those files too. It writes only the
three files above, never touches payload files and makes no symlinks.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import html
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from repo_daemon.publish import areas, errors, fsops, manifest, names

logger = logging.getLogger(__name__)

INDEX_JSON = "index.json"
INDEX_HTML = "index.html"
SERIAL_NAME = ".rollout-serial"
INDEX_FORMAT = 1
# Names the index writes at the top of an area. A release's own file by one of these names
# is refused (release paths cannot be hidden, so only the first two can clash).
WRITTEN = (INDEX_JSON, INDEX_HTML, SERIAL_NAME)
# Files a mirror must have that ``index.json`` cannot list (itself, and the page made from it).
UNLISTED = frozenset({INDEX_JSON, INDEX_HTML})

_CHUNK = 1024 * 1024

Step = Callable[..., None]
"""A metadata step: ``step(snapshot_dir, contents)``, and with ``payload_dir=`` for an area
of the tree layout (``publish.MetadataStep``)."""
LAYOUT_TREE = "tree"
"""``index.json``'s ``"layout"`` of a tree-layout area (absent for the snapshots layout): a
snapshot's directory then holds the metadata only, the payload is in the area's tree."""


@dataclass(frozen=True, kw_only=True)
class Index:
    """What ``index.json`` says about one snapshot of an area."""

    area: str
    snapshot: str  # the snapshot's directory name, e.g. "000042-20261124T101500Z"
    generated: str  # ISO 8601 UTC, the snapshot's creation time
    releases: tuple[manifest.ReleaseEntry, ...]
    metadata_files: tuple[manifest.FileEntry, ...]  # every other file: repository metadata, …
    layout: str = "snapshots"  # or LAYOUT_TREE

    @property
    def serial(self) -> str:
        """The content of ``.rollout-serial``: ``<area-key>/<snapshot>``, the snapshot's path
        below ``.snapshots/``. Its name starts with its sequence number and UTC time, so the
        serials of one area sort in publication order."""
        return f"{areas.Area.parse(self.area).key}/{self.snapshot}"

    def files(self) -> tuple[manifest.FileEntry, ...]:
        """Every file a complete copy holds besides ``index.json`` and ``index.html``."""
        payload = manifest.union_files(self.releases, area=self.area)
        return tuple(sorted((*payload, *self.metadata_files), key=lambda f: f.path))

    @functools.cached_property
    def totals(self) -> tuple[int, int]:
        """How many payload files the area holds and their bytes (a path two releases
        share counted once). Raises ``PathConflict`` as ``manifest.union_files`` does.

        In the tree layout, where the payload tree cannot hold one path as a file and a
        directory at once, releases that share no path are counted from their cached sums
        (``_rendered``): no loop over every file but one set of the paths."""
        if self.layout == LAYOUT_TREE:
            counted = sum(len(r.files) for r in self.releases)
            if len({f.path for r in self.releases for f in r.files}) == counted:
                return counted, sum(_rendered(r).bytes for r in self.releases)
        union = manifest.union_files(self.releases, area=self.area)
        return len(union), sum(f.size for f in union)


def compose(*steps: Step) -> Step:
    """One metadata step running ``steps`` in order (e.g. the repository metadata, then
    ``write_index`` so the index lists the metadata files too)."""

    def run(
        snapshot_dir: Path, contents: manifest.AreaManifest, *, payload_dir: Path | None = None
    ) -> None:
        for step in steps:
            if payload_dir is None:  # steps written before the tree layout keep working
                step(snapshot_dir, contents)
            else:
                step(snapshot_dir, contents, payload_dir=payload_dir)

    return run


def write_index(
    snapshot_dir: Path, contents: manifest.AreaManifest, *, payload_dir: Path | None = None
) -> None:
    """Write ``.rollout-serial``, ``index.json`` and ``index.html`` into ``snapshot_dir``.

    The snapshot's name and time come from its ``.rollout-manifest.json`` (written by
    ``publish`` before any metadata step); without one, from the directory's name and the
    clock. Files other than the releases' are read and hashed; payload files are not (the
    manifest has their SHA-256 and ``publish`` checks their sizes and inodes afterwards).

    ``payload_dir`` (a tree-layout area: the payload is there, not in ``snapshot_dir``): the
    same index, with ``"layout": "tree"``, its metadata files being every file of
    ``snapshot_dir`` (the payload tree is not read) except ``.rollout-manifest.json``: publish
    writes that one again after the metadata steps (it names the links they made), so a hash
    taken here would not hold.

    Raises ``errors.PathConflict`` if a release brought a file named ``index.json`` or
    ``index.html`` at the top of the area, ``errors.StorageFailed`` if the disk refuses.
    """
    area = contents.area
    if payload_dir is None:
        clash = [name for name in WRITTEN if os.path.lexists(snapshot_dir / name)]
    else:  # the tree's own index.json is a link to the live one: the releases' paths tell
        claimed = {f.path for release in contents.releases for f in release.files}
        clash = [
            name for name in WRITTEN if name in claimed or os.path.lexists(snapshot_dir / name)
        ]
    if clash:
        raise errors.PathConflict(
            area,
            [f"{name} is already in the tree (from a release?); the mirror index needs that name"
             for name in clash],
        )  # fmt: skip
    try:
        snapshot, generated = _identity(snapshot_dir, area)
        payload = (
            {f.path for f in contents.files()}
            if payload_dir is None
            else {manifest.MANIFEST_NAME}  # rewritten by publish after this step
        )
        fsops.write_new(
            snapshot_dir / SERIAL_NAME,
            (f"{areas.Area.parse(area).key}/{snapshot}\n").encode("ascii"),
        )
        others = tuple(_metadata_files(snapshot_dir, payload))
        index = Index(
            area=area,
            snapshot=snapshot,
            generated=generated,
            releases=contents.releases,
            metadata_files=others,
            layout="snapshots" if payload_dir is None else LAYOUT_TREE,
        )
        fsops.write_new(snapshot_dir / INDEX_JSON, render_json(index))
        fsops.write_new(snapshot_dir / INDEX_HTML, render_html(index))
    except OSError as exc:
        raise errors.StorageFailed("cannot write the mirror index of", area, exc) from exc
    logger.info(
        "index of %s: %d releases, %d files",
        area,
        len(index.releases),
        index.totals[0] + len(index.metadata_files),
        extra={"action": "index"},
    )


def _identity(snapshot_dir: Path, area: str) -> tuple[str, str]:
    """The snapshot's name and creation time, from its manifest when it has one."""
    try:
        document = json.loads((snapshot_dir / manifest.MANIFEST_NAME).read_bytes())
        return str(document["snapshot"]), str(document["created"])
    except FileNotFoundError:
        name = snapshot_dir.name.removeprefix(names.BUILDING)
        return name, datetime.now(UTC).isoformat()
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.SnapshotInvalid(area, [f"manifest unreadable ({exc})"]) from exc


def _metadata_files(top: Path, payload: set[str]) -> Iterable[manifest.FileEntry]:
    """Every regular file below ``top`` that is not payload nor unlisted, hashed."""
    for directory, dirs, filenames in os.walk(top):
        dirs.sort()
        relative = os.path.relpath(directory, top)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in sorted(filenames):
            path = prefix + name
            if path in payload or path in UNLISTED:
                continue
            full = f"{directory}/{name}"
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                continue  # publish's own check refuses symlinks and the like
            yield manifest.FileEntry(path=path, size=st.st_size, sha256=_sha256(full))


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:  # noqa: PTH123 (a str path on a hot loop)
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- rendering (pure)


def render_json(index: Index) -> bytes:
    """``index.json``: one file entry per line, keys in a fixed order, UTF-8."""
    releases = index.releases
    packages, total_bytes = index.totals
    head: dict[str, Any] = {"format": INDEX_FORMAT}
    if index.layout != "snapshots":
        head["layout"] = index.layout
    head |= {
        "area": index.area,
        "snapshot": index.snapshot,
        "serial": index.serial,
        "generated": index.generated,
        "packages": packages,
        "bytes": total_bytes,
    }
    lines = [_open(head) + ","]
    lines.append(' "releases": [')
    for n, r in enumerate(releases):
        rendered = _rendered(r)
        release = {
            "ticket_id": r.ticket_id,
            "short_name": r.short_name,
            "version": r.version,
            "packages": len(r.files),
            "bytes": rendered.bytes,
        }
        lines.append("  " + _open(release) + ', "files": [')
        if rendered.json_lines:
            lines.append(rendered.json_lines)
        lines.append("  ]}" + ("," if n < len(releases) - 1 else ""))
    lines.append(" ],")
    lines.append(' "metadata_files": [')
    lines.extend(_entries(index.metadata_files, "  "))
    lines.append(" ]")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True, kw_only=True)
class _Rendered:
    """One release's part of the index, rendered once per files tuple (``_rendered``)."""

    files: tuple[manifest.FileEntry, ...]  # what it was rendered from (kept: the cache's key)
    json_lines: str  # its file lines of index.json, joined by newlines ("" for no files)
    html_table: str  # its table of index.html
    bytes: int


# Releases rendered lately, by the identity of their files tuple, least recently used first:
# a release read again from its cached entry (``release_entries.Entries.read``) keeps its
# tuple, so a change of a tree-layout area renders only the files of the release it adds.
# Keyed by ``id``, checked by ``is`` (the entry keeps the tuple alive, so the id is not reused).
_RENDERED: collections.OrderedDict[int, _Rendered] = collections.OrderedDict()
_RENDERED_MAX_FILES = 250_000  # about 100 MB of rendered text at most
_RENDERED_LOCK = threading.Lock()
_rendered_files = 0


def _rendered(release: manifest.ReleaseEntry) -> _Rendered:
    """``release``'s lines of index.json and table of index.html, from the cache when its
    files tuple was rendered before: the same bytes a fresh rendering gives (pure)."""
    global _rendered_files
    key = id(release.files)
    with _RENDERED_LOCK:
        hit = _RENDERED.get(key)
        if hit is not None and hit.files is release.files:
            _RENDERED.move_to_end(key)
            return hit
    made = _Rendered(
        files=release.files,
        json_lines="\n".join(_entries(release.files, "   ")),
        html_table="\n".join(_file_table(release.files)),
        bytes=sum(f.size for f in release.files),
    )
    with _RENDERED_LOCK:
        old = _RENDERED.pop(key, None)
        _rendered_files -= len(old.files) if old is not None else 0
        _RENDERED[key] = made
        _rendered_files += len(made.files)
        while _rendered_files > _RENDERED_MAX_FILES and len(_RENDERED) > 1:
            _rendered_files -= len(_RENDERED.popitem(last=False)[1].files)
    return made


def _open(fields: dict[str, Any]) -> str:
    """A JSON object without its closing brace, to append more members to."""
    return json.dumps(fields, ensure_ascii=False)[:-1]


def _entries(files: Sequence[manifest.FileEntry], indent: str) -> list[str]:
    text = [indent + json.dumps(vars(f), ensure_ascii=False) for f in files]
    return [line + ("," if n < len(text) - 1 else "") for n, line in enumerate(text)]


def read_json(data: bytes) -> Index:
    """Read an ``index.json`` (for mirrors' checks and the tests); ``ValueError`` if it is not
    one of this format."""
    try:
        document = json.loads(data)
        if document.get("format") != INDEX_FORMAT:
            raise ValueError(f"index format {document.get('format')!r}")
        releases = tuple(
            manifest.ReleaseEntry(
                ticket_id=int(r["ticket_id"]),
                short_name=str(r["short_name"]),
                version=str(r["version"]),
                files=tuple(_file(f) for f in r["files"]),
            )
            for r in document["releases"]
        )
        return Index(
            area=str(document["area"]),
            snapshot=str(document["snapshot"]),
            generated=str(document["generated"]),
            releases=releases,
            metadata_files=tuple(_file(f) for f in document["metadata_files"]),
            layout=str(document.get("layout", "snapshots")),
        )
    except (KeyError, TypeError, AttributeError, errors.PublishFailed) as exc:
        raise ValueError(f"not a mirror index: {exc}") from exc


def _file(raw: dict[str, Any]) -> manifest.FileEntry:
    path = raw["path"]
    parts = path.split("/") if isinstance(path, str) else [""]
    if any(part in ("", ".", "..") or "\\" in part for part in parts):
        raise ValueError(f"unsafe path {path!r}")
    return manifest.FileEntry(
        path=path, size=int(raw["size"]), sha256=names.check_sha256(raw["sha256"])
    )


def render_html(index: Index) -> bytes:
    """``index.html``: the releases and their files as tables, each file a relative link.
    Every value is escaped, even those checked to be safe."""
    e = html.escape
    title = f"{index.area}: snapshot {index.snapshot}"
    packages, total_bytes = index.totals
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:1em 2em}table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{padding:.15em .8em;text-align:left;border-bottom:1px solid "
        "#ddd}td.n{text-align:right}code{font-size:90%}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(index.area)}</h1>",
        f"<p>Snapshot <code>{e(index.snapshot)}</code>, generated {e(index.generated)}. "
        f"{len(index.releases)} release(s), {packages} package file(s), "
        f"{e(_human(total_bytes))}. "
        f'Machine-readable: <a href="{INDEX_JSON}">{INDEX_JSON}</a>; serial: '
        f'<a href="{SERIAL_NAME}"><code>{e(index.serial)}</code></a>.</p>',
        "<h2>Releases</h2>",
        "<table>",
        "<tr><th>Release</th><th>Version</th><th>Ticket</th><th>Packages</th><th>Size</th></tr>",
    ]
    for r in index.releases:
        out.append(
            f'<tr><td><a href="#{e(_anchor(r), quote=True)}">{e(r.short_name)}</a></td>'
            f"<td>{e(r.version)}</td><td>#{r.ticket_id}</td><td class=n>{len(r.files)}</td>"
            f"<td class=n>{e(_human(_rendered(r).bytes))}</td></tr>"
        )
    out.append("</table>")
    for r in index.releases:
        out.append(
            f'<h2 id="{e(_anchor(r), quote=True)}">{e(r.short_name)} {e(r.version)} '
            f"(ticket #{r.ticket_id})</h2>"
        )
        out.append(_rendered(r).html_table)
    if index.metadata_files:
        out.append("<h2>Repository files</h2>")
        out.extend(_file_table(index.metadata_files))
    out += ["</body>", "</html>"]
    return ("\n".join(out) + "\n").encode("utf-8")


def _file_table(files: Sequence[manifest.FileEntry]) -> list[str]:
    e = html.escape
    rows = ["<table>", "<tr><th>File</th><th>Size</th><th>SHA-256</th></tr>"]
    for f in files:
        href = e(quote(f.path, safe="/"), quote=True)
        rows.append(
            f'<tr><td><a href="{href}">{e(f.path)}</a></td><td class=n>{f.size}</td>'
            f"<td><code>{e(f.sha256)}</code></td></tr>"
        )
    rows.append("</table>")
    return rows


def _anchor(release: manifest.ReleaseEntry) -> str:
    return f"release-{release.short_name}-{release.version}-{release.ticket_id}"


def _human(size: int) -> str:
    """``size`` bytes for people: 1023 B, 1.0 KiB, 12.3 MiB, …"""
    if size < 1024:
        return f"{size} B"
    units = ("KiB", "MiB", "GiB", "TiB")
    value, n = size / 1024, 0
    while value >= 1024 and n < len(units) - 1:
        value, n = value / 1024, n + 1
    return f"{value:.1f} {units[n]}"
