"""The audit feed's access on an in-memory RT: people, passwords and role groups
(``FakeLogins``, ``FakeGroups``) behind the real ``CredentialChecker``, as ``feed_access``
builds it. ada (``good-ada``) is a release manager (sw-rel-admin), quinn (``good-quinn``) is in
QC (sw-rel-qc); ``ADA`` / ``QUINN`` are their Authorization headers."""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping

from bridge import errors
from bridge.settings import model
from repo_daemon.serving import credentials
from repo_daemon.web import events_access

PASSWORDS = {"ada": "good-ada", "quinn": "good-quinn"}
GROUPS = {"sw-rel-admin": frozenset({"ada"}), "sw-rel-qc": frozenset({"quinn"})}


def basic(login: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{login}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ADA = basic("ada", "good-ada")
QUINN = basic("quinn", "good-quinn")


class FakeLogins:
    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    def who(self, login: str, secret: str) -> str | None:
        self.calls += 1
        if self.down:
            raise errors.TrackerUnavailable("connection refused", operation="login")
        return login if PASSWORDS.get(login) == secret else None


class FakeGroups:
    def members_of(self, groups: Collection[str]) -> Mapping[str, frozenset[str]]:
        return {g: GROUPS.get(g, frozenset()) for g in groups}


def feed_access(
    roles: Collection[str] = ("admin",),
    logins: FakeLogins | None = None,
    *,
    realm: str = events_access.REALM,
) -> events_access.FeedAccess:
    """The feed's access for ``roles`` on the in-memory RT."""
    settings = model.AccessSettings()
    role_groups = {r: g for r, g in model.DEFAULT_ROLES.items() if r in roles}
    directory = credentials.GroupDirectory(
        FakeGroups(), frozenset(role_groups.values()), fresh_seconds=60, stale_seconds=60
    )
    checker = credentials.CredentialChecker(
        logins or FakeLogins(), directory, roles=role_groups, teams=(), settings=settings
    )
    return events_access.FeedAccess(roles, checker, realm=realm)
