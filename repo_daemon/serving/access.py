"""Who may read what in the published trees: a URL path → the area it lies in → the roles that
may read that area → allow, ask for a login, or forbid (``AccessPolicy.decide``).

Pure: no I/O, no clock, no RT. Who a person is and which roles they have is the credential
checker's (``credentials``); serving is nginx's and ``static``'s. The same decision serves
nginx's ``auth_request`` (``repo_daemon.web.access_check``) and the embedded server, so the
two can never disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from bridge.settings import model as settings_model

ANYONE = settings_model.ANYONE
EARLY_ADOPTERS = settings_model.EARLY_ADOPTERS
KINDS = settings_model.AREA_KINDS


class Verdict(enum.Enum):
    """What the server does with a request."""

    ALLOW = "allow"  # serve it (204 from the check)
    LOGIN = "login"  # no or bad credentials, and the area is not public (401)
    FORBIDDEN = "forbidden"  # a known person without a role that may read it (403)
    NOT_FOUND = "not found"  # a path no area can hold (404: "..", NUL, not UTF-8)

    @property
    def status(self) -> int:
        return {"allow": 204, "login": 401, "forbidden": 403, "not found": 404}[self.value]


@dataclass(frozen=True, kw_only=True)
class Target:
    """Where a request points: the ``kind`` of area (``unverified``, ``stagerollout``,
    ``production``: everything else, as ``areas.Area.kind`` says), its ``major_release`` for
    stagerollout, and the ``area`` path when the request reaches into one release's or major
    release's area (``unverified/<short>/<version>``, ``stagerollout/<major>``)."""

    kind: str
    parts: tuple[str, ...]
    major_release: str | None = None
    area: str | None = None


@dataclass(frozen=True, kw_only=True)
class Person:
    """Someone the tracker knows: RT's name, their roles (``WorkflowSettings.roles`` names)
    and the early-adopter teams they are in (team names)."""

    name: str
    roles: frozenset[str] = frozenset()
    teams: frozenset[str] = frozenset()


def url_parts(url_path: str) -> tuple[str, ...] | None:
    """The components of a request's path as a server normalises it (nginx's ``$uri``): the
    query cut off, percent-decoded, empty and ``.`` components dropped, ``..`` taking one
    away. None when it climbs above the root or is not UTF-8 or holds a NUL."""
    path = url_path.split("?", 1)[0].split("#", 1)[0]
    try:
        text = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if "\x00" in text:
        return None
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return tuple(parts)


def target_of(parts: Sequence[str]) -> Target:
    """The area ``parts`` (from ``url_parts``) lie in."""
    parts = tuple(parts)
    top = parts[0] if parts else ""
    if top == "unverified":
        area = "/".join(parts[:3]) if len(parts) >= 3 else None
        return Target(kind="unverified", parts=parts, area=area)
    if top == "stagerollout":
        major = parts[1] if len(parts) >= 2 else None
        return Target(
            kind="stagerollout",
            parts=parts,
            major_release=major,
            area=f"stagerollout/{major}" if major else None,
        )
    return Target(kind="production", parts=parts)


@dataclass(frozen=True)
class Requirement:
    """Who may read a target: ``anyone``, or a person with one of ``roles`` or in one of
    ``teams``."""

    anyone: bool
    roles: frozenset[str]
    teams: frozenset[str]

    def admits(self, person: Person) -> bool:
        return bool(self.roles & person.roles or self.teams & person.teams)


class AccessPolicy:
    """The areas' rules (``AccessSettings.area_roles``) with the early-adopter teams
    (``WorkflowSettings.early_adopters``): ``early_adopters`` in a rule means the teams that
    adopt the area's major release (every team at ``/stagerollout/`` itself)."""

    def __init__(
        self,
        area_roles: Mapping[str, Sequence[str]],
        teams: Sequence[settings_model.EarlyAdopterTeam] = (),
    ) -> None:
        self.area_roles = {kind: tuple(area_roles.get(kind, ())) for kind in KINDS}
        self.teams = tuple(teams)

    @classmethod
    def from_settings(cls, settings: settings_model.Settings) -> AccessPolicy:
        return cls(settings.access.area_roles, settings.workflow.early_adopters)

    def is_public(self, kind: str) -> bool:
        return ANYONE in self.area_roles.get(kind, ())

    @property
    def protected_kinds(self) -> tuple[str, ...]:
        """The kinds of area that need a login, in ``KINDS`` order."""
        return tuple(kind for kind in KINDS if not self.is_public(kind))

    def requirement(self, target: Target) -> Requirement:
        rule = self.area_roles.get(target.kind, ())
        teams: frozenset[str] = frozenset()
        if EARLY_ADOPTERS in rule:
            teams = frozenset(
                t.name
                for t in self.teams
                if target.major_release is None or t.adopts(target.major_release)
            )
        roles = frozenset(r for r in rule if r not in (ANYONE, EARLY_ADOPTERS))
        return Requirement(anyone=ANYONE in rule, roles=roles, teams=teams)

    def decide(self, target: Target | None, person: Person | None) -> Verdict:
        """Allow, ask for a login (no person: no or bad credentials) or forbid. A request
        whose path is not one (``None``) is not found, whoever asks."""
        if target is None:
            return Verdict.NOT_FOUND
        needed = self.requirement(target)
        if needed.anyone:
            return Verdict.ALLOW
        if person is None:
            return Verdict.LOGIN
        return Verdict.ALLOW if needed.admits(person) else Verdict.FORBIDDEN

    def decide_path(self, url_path: str, person: Person | None) -> Verdict:
        """``decide`` for a request's raw path (normalised as ``url_parts`` does)."""
        parts = url_parts(url_path)
        return self.decide(None if parts is None else target_of(parts), person)

    def needs_login(self, url_path: str) -> bool:
        """Whether the path lies in an area that is not public (then check credentials)."""
        parts = url_parts(url_path)
        return parts is not None and not self.is_public(target_of(parts).kind)

    def rsync_users(self, kind: str) -> tuple[str, ...]:
        """The rsync users of ``kind``'s module: its roles, and for ``early_adopters`` every
        team's name (rsync cannot tell the major releases apart within one module)."""
        users: list[str] = []
        for role in self.area_roles.get(kind, ()):
            if role == EARLY_ADOPTERS:
                users += [t.name for t in self.teams]
            elif role != ANYONE:
                users.append(role)
        return tuple(dict.fromkeys(users))
