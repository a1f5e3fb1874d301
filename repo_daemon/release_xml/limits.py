"""The one set of limits and reserved names for what a provider names: file and directory
names, paths, depth, version numbers, the names the bridge keeps for its own metadata and keys,
and the characters never accepted. Validation (``paths``), the sync (``sync.scratch``,
``sync.tree``, ``sync.sftp``) and publication (``publish.names``) all check against this
module, so what validation accepts, the sync can write and publication can publish.

The rules (docs/release-xml.md, "Limits", says the same for providers):

- A name (one path component) is at most ``MAX_NAME_BYTES`` (249) bytes of UTF-8: the file
  system's ``NAME_MAX`` of 255 less what the sync adds to a file while it arrives
  (``temp_name``: ``.NAME.part``; rsync truncates its own temporary names to fit).
- A path is at most ``MAX_PATH_BYTES`` (3,072) bytes: ``PATH_MAX`` (4,096, counting its final
  NUL) less ``PREFIX_BUDGET`` (1,024) bytes kept for the bridge's own prefix (the data or
  repository directory, ``.snapshots/<area>/.building-<snapshot>/``). The bridge refuses to
  sync into a directory whose own path leaves less room (``check_prefix``).
- A path has at most ``MAX_DEPTH`` (32) components (31 directories and the file).
- A version number (Major, Minor, Revision) is at most ``MAX_VERSION_NUMBER`` (999,999,999,
  nine digits): publication orders and names versions by it, and it fits every database's
  integer.
- No character that does not show as itself (``bridge.printable.is_hidden``: control, format
  and bidirectional, invisible, line and paragraph separators, unassigned), nor bytes that
  are not UTF-8.
- Reserved: ``AREA_ROOT_NAMES`` at the top of the release (the mirror index, the client
  configuration and the public keys the bridge writes there) and ``REPOSITORY_NAMES``
  directly inside each of the release's repository directories (the yum and apt metadata).

Pure: strings in, problems (words for a provider) out. It reads no file and raises nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from bridge import printable

NAME_MAX = 255
"""The longest name (path component) Linux file systems take, in bytes."""
PATH_MAX = 4096
"""The longest path a system call takes, in bytes, counting its final NUL."""

TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"
"""A file being fetched is written as ``.NAME.part`` beside where it will be (``temp_name``)."""

MAX_NAME_BYTES = NAME_MAX - len(TEMP_PREFIX) - len(TEMP_SUFFIX)
"""The longest name a release may have, in bytes of UTF-8 (249): its temporary name fits."""

PREFIX_BUDGET = 1024
"""Bytes of every absolute path kept for the bridge's own directories."""

MAX_PATH_BYTES = PATH_MAX - PREFIX_BUDGET
"""The longest path below a release's root, in bytes of UTF-8 (3,072)."""

MAX_PREFIX_BYTES = PATH_MAX - 1 - MAX_PATH_BYTES - len(TEMP_PREFIX + TEMP_SUFFIX) - 1
"""The longest directory of the bridge's own a release's paths may go below (1,016 bytes):
with ``/``, the longest path, a temporary name's extra bytes and the final NUL it fits."""

MAX_DEPTH = 32
"""The most components a path below a release's root may have (31 directories and a file)."""

MAX_VERSION_NUMBER = 999_999_999
"""The largest MajorVersion, MinorVersion or RevisionVersion (nine digits)."""

AREA_ROOT_NAMES = frozenset(
    {
        "index.json",  # the mirror index (publish.index)
        "index.html",
        "rollout.repo",  # client configuration (metadata.clients)
        "rollout.list",
        "rollout.sources",
        "rollout-archive-keyring.asc",  # the public signing key (metadata.signing)
        "RPM-GPG-KEY-rollout",
    }
)
"""Names the bridge writes at the top of every area: a release may not use them there."""

REPOSITORY_NAMES = frozenset(
    {
        "repodata",  # yum (metadata.yum)
        "Packages",  # apt (metadata.apt)
        "Packages.gz",
        "Packages.xz",
        "Release",
        "InRelease",
        "Release.gpg",
        "by-hash",
    }
)
"""Names the bridge's metadata takes directly inside a repository directory."""


def temp_name(name: str) -> str:
    """The name a file called ``name`` has while it is being fetched."""
    return f"{TEMP_PREFIX}{name}{TEMP_SUFFIX}"


def hidden_characters(value: str) -> list[str]:
    """Each distinct character of ``value`` that does not show as itself, described
    (``U+202E RIGHT-TO-LEFT OVERRIDE``), in order of appearance."""
    if value.isascii() and value.isprintable():  # the usual name: nothing hidden, said fast
        return []
    found: list[str] = []
    for char in value:
        if printable.is_hidden(char):
            words = _describe(char)
            if words not in found:
                found.append(words)
    return found


def is_utf8(value: str) -> bool:
    """Whether ``value`` carries no surrogate (a byte of a name that was not valid UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_problems(name: str) -> list[str]:
    """What makes ``name`` (one component, as read from a file system or a listing) unusable:
    bytes that are not UTF-8, hidden characters, more than ``MAX_NAME_BYTES``. Empty: none."""
    if not is_utf8(name):
        return ["is not valid UTF-8"]
    found = _character_problems(name)
    size = len(name.encode())
    if size > MAX_NAME_BYTES:
        found.append(f"is {size} bytes long (a name has at most {MAX_NAME_BYTES})")
    return found


def entry_problem(name: str, path: str) -> str | None:
    """Why an entry found in a provider's tree (by a walk or a listing) is not accepted, or
    None: its ``name`` (``name_problems``), its ``path`` below the root too long or too deep."""
    found = name_problems(name)
    if found:
        return "its name " + " and ".join(found)
    size = len(path.encode("utf-8", "surrogateescape"))
    if size > MAX_PATH_BYTES:
        return f"its path is {size} bytes long (at most {MAX_PATH_BYTES})"
    depth = path.count("/") + 1
    if depth > MAX_DEPTH:
        return f"it lies {depth} levels deep (at most {MAX_DEPTH})"
    return None


def path_problems(path: str, *, directory: bool = False) -> list[str]:
    """What makes ``path`` unsafe as a relative path below the release's root (empty: none).

    ``directory`` allows the empty path (the root itself) and one trailing ``/``.
    """
    if directory and path.endswith("/") and path != "/":
        path = path[:-1]
    if not path:
        return [] if directory else ["is empty"]
    if not is_utf8(path):
        return ["is not valid UTF-8"]
    found: list[str] = []
    if path.startswith("/"):
        found.append("starts with '/' (it must be relative to the release's root)")
    if "\\" in path:
        found.append("contains a backslash (separate directories with '/')")
    found.extend(_character_problems(path))
    parts = path.split("/")
    if path.startswith("/"):
        parts = parts[1:]
    if ".." in parts:
        found.append("contains '..' (it must stay below the release's root)")
    if "." in parts:
        found.append("contains a '.' component")
    if "" in parts:
        found.append("has an empty component ('//' or a '/' at the end)")
    hidden = [p for p in parts if p.startswith(".") and p not in (".", "..")]
    if hidden:
        found.append(f"has a hidden component '{printable.escape(hidden[0])}' (starting with '.')")
    longest = max(len(p.encode()) for p in parts)
    if longest > MAX_NAME_BYTES:
        found.append(f"has a component of {longest} bytes (at most {MAX_NAME_BYTES})")
    size = len(path.encode())
    if size > MAX_PATH_BYTES:
        found.append(f"is {size} bytes long (at most {MAX_PATH_BYTES})")
    if len(parts) > MAX_DEPTH:
        found.append(f"has {len(parts)} components (at most {MAX_DEPTH} levels)")
    return found


def reserved_problems(path: str, repository_dirs: Iterable[str]) -> list[str]:
    """What in the package path ``path`` takes a name the bridge keeps for itself: a name of
    ``AREA_ROOT_NAMES`` as its first component, or a name of ``REPOSITORY_NAMES`` directly
    inside one of ``repository_dirs`` (the release's ``RelativePath``s, "" for the root)."""
    parts = path.split("/")
    found: list[str] = []
    if parts[0] in AREA_ROOT_NAMES:
        found.append(
            f"uses the name {parts[0]!r}, which the bridge writes at the top of every area"
        )
    for directory in {d.strip("/") for d in repository_dirs}:
        inside = directory.split("/") if directory else []
        if len(parts) > len(inside) and parts[: len(inside)] == inside:
            name = parts[len(inside)]
            if name in REPOSITORY_NAMES:
                where = f"repository directory {directory!r}" if directory else "the root"
                found.append(
                    f"uses the name {name!r} in {where}, which the bridge's repository "
                    "metadata takes"
                )
    return found


def version_problem(value: int) -> str | None:
    """Why ``value`` cannot be a version number, or None."""
    if value > MAX_VERSION_NUMBER:
        return f"is larger than {MAX_VERSION_NUMBER:,} (at most nine digits)"
    return None


def check_prefix(prefix: str) -> str | None:
    """Why the bridge's own directory ``prefix`` (absolute), below which a release's paths go,
    leaves too little room for them (``MAX_PREFIX_BYTES``), or None."""
    size = len(prefix.encode("utf-8", "surrogateescape"))
    if size > MAX_PREFIX_BYTES:
        return (
            f"the directory {printable.escape(prefix)} is {size} bytes long; a directory a "
            f"release is written into may have at most {MAX_PREFIX_BYTES} bytes, so that "
            f"every path of {MAX_PATH_BYTES} bytes below it fits in {PATH_MAX}"
        )
    return None


def _character_problems(value: str) -> list[str]:
    controls = [c for c in hidden_characters(value) if c.startswith("a control")]
    others = [c for c in hidden_characters(value) if not c.startswith("a control")]
    found = [f"contains {c}" for c in controls[:1]]
    if others:
        found.append(f"contains {others[0]}")
    return found


def _describe(char: str) -> str:
    code = f"U+{ord(char):04X}"
    category = unicodedata.category(char)
    if category == "Cc":
        return f"a control character ({code})"
    name = unicodedata.name(char, "")
    kind = "a bidirectional control" if _is_bidi_control(char) else "an invisible character"
    return f"{kind} ({code}{' ' + name if name else ''})"


_BIDI_CLASSES = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
_BIDI_MARKS = "\u200e\u200f\u061c"  # LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK, ARABIC LETTER MARK


def _is_bidi_control(char: str) -> bool:
    return unicodedata.bidirectional(char) in _BIDI_CLASSES or char in _BIDI_MARKS
