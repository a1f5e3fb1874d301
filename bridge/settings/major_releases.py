"""The registry of known major releases: for each, where its production area is (split into
``base/`` and ``updates/``, or one flat area), which workflow template its releases follow and
the ReleaseType they have when neither the ticket nor release.xml says.

``read`` takes what ``load`` parsed from the settings — the ``[major_releases.<name>]`` tables
of the settings file, or the older flat form (``major_releases`` as a list of names,
``production_paths``, ``workflows``, ``release_types``, ``flat_production``) — checks it and
returns one ``Registry``; ``load`` spreads it into ``WorkflowSettings`` and
``RepositorySettings``. Every problem is collected, each naming its setting. Production paths
are checked here, before anything becomes a directory: relative, no ``..`` or hidden names,
never inside ``unverified/`` or ``stagerollout/``, and no two major releases' areas inside one
another. Pure: it reads no environment, file or disk.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RELEASE_TYPES = ("Incremental", "NonIncremental")
# The trees of the earlier stages: no production area may lie in them.
STAGE_TREES = ("unverified", "stagerollout")
TABLE_KEYS = ("production_path", "flat", "workflow", "release_type")
# One path component the bridge will create: no "..", no hidden names, no separators.
# A safe name for a major release or a team: it may become a path or an RT value.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_SAFE_WORDS = "names of letters, digits, '.', '_', '+' and '-' (not first)"


@dataclass(frozen=True, kw_only=True)
class MajorRelease:
    """One major release as the settings describe it."""

    name: str
    production_path: str  # relative to the repository root, without slashes at the ends
    flat: bool = False  # one production area for every ReleaseType (no base/ and updates/)
    workflow: str | None = None  # the workflow template; None: the default one
    release_type: str | None = None  # when nobody says; None: NonIncremental

    @property
    def production_areas(self) -> tuple[str, ...]:
        """The production areas this major release publishes into."""
        if self.flat:
            return (self.production_path,)
        return (f"{self.production_path}/base", f"{self.production_path}/updates")


@dataclass(frozen=True, kw_only=True)
class Registry:
    """The major releases the settings name. ``known`` lists the names a release may have
    (empty: any name); ``entries`` holds every major release something is configured for."""

    known: tuple[str, ...] = ()
    entries: Mapping[str, MajorRelease] = field(default_factory=dict)
    configured_paths: frozenset[str] = frozenset()  # names whose path is set, not default

    def workflows(self) -> dict[str, str]:
        return {n: e.workflow for n, e in self.entries.items() if e.workflow}

    def production_paths(self) -> dict[str, str]:
        return {n: e.production_path for n, e in self.entries.items() if n in self.configured_paths}

    def flat(self) -> frozenset[str]:
        return frozenset(n for n, e in self.entries.items() if e.flat)

    def release_types(self) -> dict[str, str]:
        return {n: e.release_type for n, e in self.entries.items() if e.release_type}


@dataclass
class _Entry:
    """A major release while it is read, with the setting each value came from."""

    name: str
    path: tuple[str, str] | None = None  # (value, setting)
    flat: bool = False
    workflow: str | None = None
    release_type: str | None = None


def read(
    listed: Mapping[str, Any] | Sequence[str],
    *,
    production_paths: Mapping[str, str],
    workflows: Mapping[str, str],
    release_types: Mapping[str, str],
    flat: Sequence[str],
    templates: Sequence[str],
    problems: list[str],
) -> Registry:
    """The registry from ``listed`` (the ``major_releases`` tables, or a list of names) and
    the flat settings, which win over a table's value for the same major release. Appends
    every problem to ``problems``."""
    entries: dict[str, _Entry] = {}
    if isinstance(listed, Mapping):
        known = tuple(str(n) for n in listed)
        for name, table in listed.items():
            entries[str(name)] = _from_table(str(name), table, templates, problems)
    else:
        known = tuple(listed)

    def entry(name: str, setting: str) -> _Entry:
        if known and name not in known:
            problems.append(f"{setting}: {name} is not among major_releases")
        return entries.setdefault(name, _Entry(name=name))

    for name, path in production_paths.items():
        entry(name, "production_paths").path = (path, f"production_paths: {name} = {path!r}")
    for name, template in workflows.items():
        if template not in templates:
            problems.append(f"workflows: {name} = {template!r} is not a template")
        entry(name, "workflows").workflow = template
    for name, kind in release_types.items():
        if kind not in RELEASE_TYPES:
            problems.append(
                f"release_types: {name} = {kind!r} is not a release type "
                f"({', '.join(RELEASE_TYPES)})"
            )
        entry(name, "release_types").release_type = kind
    for name in flat:
        entry(name, "flat_production").flat = True
    for name in known:
        entries.setdefault(name, _Entry(name=name))

    done: dict[str, MajorRelease] = {}
    for name, found in entries.items():
        path, setting = found.path or (f"production/{name}", f"major release {name!r}")
        checked = _check_path(path, setting, problems)
        done[name] = MajorRelease(
            name=name,
            production_path=checked,
            flat=found.flat,
            workflow=found.workflow,
            release_type=found.release_type,
        )
    problems.extend(_overlaps(done, {n: e.path for n, e in entries.items()}))
    return Registry(
        known=known,
        entries=done,
        configured_paths=frozenset(n for n, e in entries.items() if e.path is not None),
    )


def _from_table(name: str, table: Any, templates: Sequence[str], problems: list[str]) -> _Entry:
    where = f"major_releases.{name}"
    found = _Entry(name=name)
    if not SAFE_NAME.match(name):
        problems.append(f"{where}: {name!r} is not a major release name ({_SAFE_WORDS})")
    if not isinstance(table, Mapping):
        problems.append(f"{where}: write a table with {', '.join(TABLE_KEYS)} (each optional)")
        return found
    unknown = sorted(set(table) - set(TABLE_KEYS))
    if unknown:
        problems.append(f"{where}: unknown keys {', '.join(unknown)} ({', '.join(TABLE_KEYS)})")
    if "production_path" in table:
        path = table["production_path"]
        found.path = (str(path), f"{where}.production_path = {path!r}")
    flat = table.get("flat", False)
    if not isinstance(flat, bool):
        problems.append(f"{where}.flat: {flat!r} is not true or false")
    found.flat = flat is True
    if "workflow" in table:
        found.workflow = str(table["workflow"])
        if found.workflow not in templates:
            problems.append(
                f"{where}.workflow: {found.workflow!r} is not a template ({', '.join(templates)})"
            )
    if "release_type" in table:
        found.release_type = str(table["release_type"])
        if found.release_type not in RELEASE_TYPES:
            problems.append(
                f"{where}.release_type: {found.release_type!r} is not a release type "
                f"({', '.join(RELEASE_TYPES)})"
            )
    return found


def _check_path(path: str, setting: str, problems: list[str]) -> str:
    """``path`` without slashes at its end, or a problem naming ``setting``."""
    parts = path.strip("/").split("/")
    if path.startswith("/"):
        why = "must be relative to repo_root, not absolute"
    elif any(p in ("..", ".") for p in parts):
        why = "must not contain '..' or '.'"
    elif not all(SAFE_NAME.match(p) for p in parts):
        why = f"must be a relative path of {_SAFE_WORDS} below repo_root"
    elif parts[0] in STAGE_TREES:
        why = f"must not lie in {parts[0]}/ (the bridge's earlier stages are there)"
    else:
        return "/".join(parts)
    problems.append(f"{setting}: {why}")
    return "/".join(parts)


def _inside(one: str, other: str) -> bool:
    return one == other or one.startswith(other + "/")


def _overlaps(
    done: Mapping[str, MajorRelease], paths: Mapping[str, tuple[str, str] | None]
) -> list[str]:
    """Problems for every two major releases whose production areas lie inside one another
    (or are one): each would publish over the other's snapshots."""
    problems = []
    names = sorted(done)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            clash = next(
                (
                    (a, b)
                    for a in done[first].production_areas
                    for b in done[second].production_areas
                    if _inside(a, b) or _inside(b, a)
                ),
                None,
            )
            if clash is not None:
                setting = (paths[second] or paths[first] or ("", f"major release {second!r}"))[1]
                problems.append(
                    f"{setting}: the production area {clash[1]} of {second} and {clash[0]} of "
                    f"{first} lie inside one another; give each major release its own path"
                )
    return problems
