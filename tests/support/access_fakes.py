"""In-memory stand-ins for RT in the access check's unit tests: a clock, RT's login check and
group members (``FakeLogins``, ``FakeGroups``), and a ``CredentialChecker`` on them
(``make_checker``). qc1 (password ``good-qc``) is in sw-rel-qc, ea1 (``good-ea``) in the
default early-adopter group."""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping

from bridge import errors
from bridge.settings import model
from repo_daemon.serving import credentials

PASSWORDS = {"qc1": "good-qc", "ea1": "good-ea"}
GROUPS = {"sw-rel-qc": frozenset({"qc1"}), "sw-rel-early-adopters": frozenset({"ea1"})}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeLogins:
    """RT's answer to a login check; ``down`` makes RT unreachable; ``gate`` holds calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.down = False
        self.gate: threading.Event | None = None

    def who(self, login: str, secret: str) -> str | None:
        self.calls.append((login, secret))
        if self.gate is not None:
            self.gate.wait(5)
        if self.down:
            raise errors.TrackerUnavailable("connection refused", operation="login")
        return login if PASSWORDS.get(login) == secret else None


class FakeGroups:
    def __init__(self) -> None:
        self.reads = 0
        self.down = False

    def members_of(self, groups: Collection[str]) -> Mapping[str, frozenset[str]]:
        self.reads += 1
        if self.down:
            raise errors.TrackerUnavailable("connection refused", operation="members_of")
        return {g: GROUPS.get(g, frozenset()) for g in groups}


def make_checker(
    clock: Clock, **access: float
) -> tuple[credentials.CredentialChecker, FakeLogins, FakeGroups]:
    logins, groups = FakeLogins(), FakeGroups()
    settings = model.AccessSettings(**access)  # type: ignore[arg-type]
    roles = dict(model.DEFAULT_ROLES)
    teams = model.DEFAULT_EARLY_ADOPTERS
    directory = credentials.GroupDirectory(
        groups,
        credentials.CredentialChecker.groups_for(roles, teams),
        fresh_seconds=settings.groups_seconds,
        stale_seconds=settings.stale_seconds,
        clock=clock,
    )
    checker = credentials.CredentialChecker(
        logins, directory, roles=roles, teams=teams, settings=settings, clock=clock
    )
    return checker, logins, groups
