"""The names and relative paths publication accepts: one path component, a version, a SHA-256,
a relative path inside an area, a snapshot's directory name.

The limits of paths and the reserved names are ``release_xml.limits``'s, the same validation
checks, so a release validation accepted is never refused here for its names. Pure: every
check here runs before ``pool`` or ``repository`` turns a value into a path below the
repository root; nothing in this module reads or writes files. A refused value raises
``errors.PathRefused`` naming what it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from repo_daemon.publish import errors
from repo_daemon.release_xml import limits

# One path component of an area or a snapshot key. "~" is left out on purpose: area keys join
# components with it, so a key names exactly one area.
_COMPONENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
# Each number at most release_xml.limits.MAX_VERSION_NUMBER (nine digits), as validation says.
_VERSION = re.compile(r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
SNAPSHOT_NAME = re.compile(r"([0-9]{6,})-([0-9]{8}T[0-9]{6}Z)")
BUILDING = ".building-"  # a snapshot directory being built: never served, deleted if stale
DELETING = ".deleting-"  # a snapshot directory being deleted
SWAP = ".swap-"  # ".<area name>.swap-<random>": an area's next symlink, before its rename
# The tree layout (docs/publication.md): ``.trees/<area-key>/`` is an area's payload tree,
# ``.trees/<area-key>/.meta`` the symlink to its live metadata snapshot (the switch),
# ``.releases/<sha256>.json`` the release entries its snapshots' manifests name.
TREES_DIR = ".trees"
RELEASES_DIR = ".releases"
META_LINK = ".meta"


SWAP_NAME = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\.swap-[0-9a-f]{8}")


def swap_prefix(area_name: str) -> str:
    """How the temporary symlinks of a swap of the area called ``area_name`` (the last
    component of its path) begin, beside the area."""
    return f".{area_name}{SWAP}"


def check_component(what: str, value: object) -> str:
    """``value`` if it is safe as one path component (letters, digits, ``._+-``, not starting
    with a dot, at most 128 characters); else ``PathRefused``."""
    if not isinstance(value, str) or not _COMPONENT.fullmatch(value):
        raise errors.PathRefused(
            what, value, "use letters, digits and . _ + - (not first), one component"
        )
    return value


def check_version(value: object) -> str:
    """``value`` if it is ``Major.Minor.Revision`` in digits; else ``PathRefused``."""
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        raise errors.PathRefused("version", value, "expected Major.Minor.Revision in digits")
    return value


def check_sha256(value: object) -> str:
    """``value`` if it is 64 lower-case hex digits; else ``PathRefused``."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise errors.PathRefused("SHA-256", value, "expected 64 lower-case hex digits")
    return value


def check_relative_path(what: str, value: object, *, allow_empty: bool = False) -> str:
    """``value`` if it is a relative ``/``-separated path that stays where it is put and fits
    the shared limits (``release_xml.limits.path_problems``: no leading ``/``, no ``..``,
    ``.``, empty or hidden components, no backslash or hidden characters, names, length and
    depth within the limits); else ``PathRefused`` saying what is wrong."""
    if not isinstance(value, str):
        raise errors.PathRefused(what, value, "not a string")
    if value == "" and allow_empty:
        return value
    found = limits.path_problems(value)
    if found:
        raise errors.PathRefused(what, value, "; ".join(found))
    return value


def check_not_reserved(value: str, repository_dirs: Iterable[str]) -> str:
    """``value`` (a package path) if it takes none of the names the bridge keeps for its own
    metadata and keys (``release_xml.limits.reserved_problems``); else ``PathRefused``."""
    found = limits.reserved_problems(value, repository_dirs)
    if found:
        raise errors.PathRefused("package path", value, "; ".join(found))
    return value


def snapshot_number(name: str) -> int | None:
    """The sequence number of a complete snapshot's directory name, else None."""
    match = SNAPSHOT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None
