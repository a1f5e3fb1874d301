"""What release.xsd cannot say: names and paths in release.xml that are safe to become
directories and files on disk, publishable (within ``limits``, clear of the names the bridge
keeps for itself), no two that a file system would confuse, and version numbers publication
can order.

Owns the rule for a safe name (``SAFE_NAME``); the limits of paths are ``limits``'s, shared
with the sync and publication. Pure: it looks at strings and at elements already checked by
``xsd``, never at the disk.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from repo_daemon.release_xml import limits, report

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
SAFE_NAME_WORDS = (
    "1 to 64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
    " (it becomes a directory name)"
)
VERSION_TAGS = ("MajorVersion", "MinorVersion", "RevisionVersion")


def path_problems(path: str, *, directory: bool = False) -> list[str]:
    """What makes ``path`` unsafe as a relative path below the release's root (empty: none);
    the rules are ``limits.path_problems``'s.

    ``directory`` allows the empty path (the root itself) and one trailing ``/``.
    """
    return limits.path_problems(path, directory=directory)


def check(root: Any, problems: report.Problems) -> None:
    """Add to ``problems`` the names and paths below ``root`` that are unsafe on disk.

    Elements that already have a problem are skipped. Raises ``report.TooMany`` when
    ``problems`` is full.
    """
    for tag in ("DistributionShortName", "MajorRelease"):
        elem = root.find(tag)
        if elem is not None and not problems.has(elem):
            value = (elem.text or "").strip()
            if not SAFE_NAME.fullmatch(value):
                problems.add(elem, f"{report.quote(value)} must be {SAFE_NAME_WORDS}")
    for tag in VERSION_TAGS:
        elem = root.find(tag)
        value = (elem.text or "").strip() if elem is not None else ""
        if elem is not None and not problems.has(elem) and value.isdigit():
            found = limits.version_problem(int(value))
            if found:
                problems.add(elem, f"{report.quote(value)} {found}")
    directories = list(root.iterfind("Repositories/Repository/RelativePath"))
    for elem in directories:
        if not problems.has(elem):
            _check_path(elem, problems, directory=True)
    identifiers = root.iterfind("Repositories/Repository/Identifier")
    _check_unique(identifiers, "identifier", "identifiers must differ in more than case", problems)
    paths = list(root.iterfind("Packages/Package/Path"))
    repository_dirs = [(e.text or "").strip() for e in directories if not problems.has(e)]
    for elem in paths:
        if not problems.has(elem):
            _check_path(elem, problems, directory=False)
        if not problems.has(elem):
            _check_reserved(elem, repository_dirs, problems)
    _check_unique(paths, "path", "some file systems cannot tell them apart", problems)
    _check_file_not_directory(paths, problems)


def _check_path(elem: Any, problems: report.Problems, *, directory: bool) -> None:
    value = (elem.text or "").strip()
    found = path_problems(value, directory=directory)
    if found:
        problems.add(elem, f"{report.quote(value)} " + _and(found))


def _check_reserved(elem: Any, repository_dirs: list[str], problems: report.Problems) -> None:
    value = (elem.text or "").strip()
    found = limits.reserved_problems(value, repository_dirs)
    if found:
        problems.add(elem, f"{report.quote(value)} " + _and(found))


def _key(value: str) -> str:
    """Equal for values that a case-insensitive, normalising file system confuses."""
    return unicodedata.normalize("NFC", value).casefold()


def _check_unique(elems: Iterable[Any], what: str, why: str, problems: report.Problems) -> None:
    first: dict[str, Any] = {}
    for elem in elems:
        if problems.has(elem):
            continue
        value = (elem.text or "").strip()
        key = _key(value)
        if key not in first:
            first[key] = elem
            continue
        other = first[key]
        other_value = (other.text or "").strip()
        owner = other.getparent()
        where = f"{owner.tag} on line {owner.sourceline}"
        if other_value == value:
            problems.add(elem, f"{report.quote(value)} is also the {what} of the {where}")
        else:
            problems.add(
                elem,
                f"{report.quote(value)} differs only in letter case from "
                f"{report.quote(other_value)}, the {what} of the {where} ({why})",
            )


def _check_file_not_directory(paths: list[Any], problems: report.Problems) -> None:
    """A file's path must not also be a directory in another file's path."""
    valid = [e for e in paths if not problems.has(e)]
    directories: dict[str, Any] = {}
    for elem in valid:
        parts = _key((elem.text or "").strip()).split("/")
        for i in range(1, len(parts)):
            directories.setdefault("/".join(parts[:i]), elem)
    for elem in valid:
        value = (elem.text or "").strip()
        other = directories.get(_key(value))
        if other is not None:
            owner = other.getparent()
            problems.add(
                elem,
                f"{report.quote(value)} is a file here but a directory in the path of the "
                f"{owner.tag} on line {owner.sourceline}",
            )


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
