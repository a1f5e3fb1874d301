"""Which file a URL path of the embedded server (``static``) names below the repository root,
under the one symlink rule nginx applies too (docs/serving.md, "Symlinks"): only the bridge's
own links are followed, each to exactly the URL's path.

Pure path logic: it reads the file system (``realpath``, ``lstat``) but serves, opens and
writes nothing; ``static`` answers the request.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

from repo_daemon.publish import names
from repo_daemon.serving import policy


class NotServed(Exception):
    """The request names nothing the server shows (answered 404)."""


def resolve(root: Path, url_path: str) -> Path:
    """The file or directory that ``url_path`` names below ``root`` (resolved), or
    ``NotServed``: a hidden component (except the two an area shows), a NUL or backslash, or
    a path that goes through any symlink other than an area's own.

    The only symlinks followed are the bridge's: the path resolves either to itself (plain
    directories, no symlink on the way) or, through an area, to exactly the URL's rest in
    the area's snapshot, payload tree or live metadata snapshot (``_through_an_area``). A
    link planted in a snapshot or a tree, beside an area, a metadata link to another path,
    ``.meta`` or an area pointing at another area's snapshot, out of the root, into
    ``.pool/`` or ``.locks/``: all refused. nginx applies the same rule
    (``nginx.render_nginx``)."""
    try:
        parts = url_parts(url_path)
    except UnicodeDecodeError as exc:
        raise NotServed from exc
    for n, part in enumerate(parts):
        if "\x00" in part or "\\" in part:
            raise NotServed
        if part.startswith(".") and not (n == len(parts) - 1 and part in policy.VISIBLE_HIDDEN):
            raise NotServed  # ".", "..", ".pool", ".snapshots", ".locks", …
    try:
        real = Path(os.path.realpath(root.joinpath(*parts), strict=True))
    except (OSError, ValueError) as exc:
        raise NotServed from exc
    if not real.is_relative_to(root):
        raise NotServed
    inside = real.relative_to(root).parts
    if inside == tuple(parts) or _through_an_area(root, tuple(parts), inside):
        return real
    raise NotServed


def _through_an_area(root: Path, parts: tuple[str, ...], inside: tuple[str, ...]) -> bool:
    """Whether ``inside`` (the real path below ``root``) is where the URL ``parts`` leads
    through an area's own links: ``.trees/<key>/<rest>`` (a tree-layout area's payload),
    ``.snapshots/<key>/<snapshot>/<rest>`` where the area's symlink points at that snapshot
    (snapshots layout) or the area is its tree and the tree's ``.meta`` points at it (the
    live metadata of a tree-layout area). ``<key>`` is the URL's first components joined by
    ``~``, ``<rest>`` exactly the rest of the URL."""
    if len(inside) < 2:
        return False
    area = tuple(inside[1].split("~"))
    if parts[: len(area)] != area:
        return False
    rest = parts[len(area) :]
    if inside[0] == policy.TREES:
        return inside[2:] == rest
    if inside[0] != policy.SNAPSHOTS or len(inside) < 3 or inside[3:] != rest:
        return False
    if not names.SNAPSHOT_NAME.fullmatch(inside[2]):
        return False  # .building-…, .deleting-…
    snapshot = root.joinpath(*inside[:3])
    through = Path(os.path.realpath(root.joinpath(*area)))
    if through == snapshot:
        return True
    tree = root / policy.TREES / inside[1]
    live = Path(os.path.realpath(tree / policy.META))
    return through == tree and live == snapshot


def url_parts(url_path: str) -> list[str]:
    """The non-empty components of a URL path, percent-decoded (``UnicodeDecodeError`` for
    bytes that are not UTF-8)."""
    # "." segments are harmless (apt's flat sources ask for ".../debs/./Packages"); ".." is
    # refused by the caller.
    return [p for p in unquote(url_path, errors="strict").split("/") if p and p != "."]
