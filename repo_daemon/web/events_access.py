"""Who may read the audit feed's API: the roles of ``events_api_roles`` (release managers by
default), each caller known by their own RT login (HTTP basic with a password or an RT auth
token, or a bearer token), checked and cached by ``serving.credentials`` exactly as the
tree-access check does (``FeedAccess``, built from ``Settings`` by ``feed_access``).

It decides only admitted or not; it serves nothing and never logs a header or a secret.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Collection

from bridge.settings import model as settings_model
from bridge.tracker import logins, memberships
from repo_daemon.serving import credentials, guard

logger = logging.getLogger(__name__)

API_PATH = "/api/events"
REALM = "Rollout events"


class FeedAccess:
    """Who may read the feed: people with one of ``roles`` (``anyone``: no login asked), as
    ``checker`` says (their RT login, password or auth token, by HTTP basic or bearer).
    Without a checker (no RT configured) nobody is admitted unless ``anyone`` is."""

    def __init__(
        self,
        roles: Collection[str],
        checker: credentials.CredentialChecker | None,
        *,
        closers: Collection[Callable[[], object]] = (),
        realm: str = REALM,
    ) -> None:
        self.roles = frozenset(roles)
        # What a browser's login prompt names; plain text (no quote or backslash).
        self.challenge = f'Basic realm="{realm}", charset="UTF-8"'
        self.checker = checker
        self._closers = list(closers)

    @property
    def public(self) -> bool:
        return settings_model.ANYONE in self.roles

    def check(self, authorization: str | None) -> guard.Answer:
        """204 (admitted), 401 (no or bad credentials), 403 (no role that may read the feed)
        or 503 (RT cannot be asked now and the person is not remembered)."""
        if self.public:
            return guard.Answer(204)
        found = guard.read_credentials(authorization)
        if found is None:
            return guard.Answer(401, {"WWW-Authenticate": self.challenge})
        if self.checker is None:
            return guard.Answer(403)
        try:
            person = self.checker.person(*found)
        except credentials.CheckUnavailable:
            return guard.Answer(503, {"Retry-After": str(guard.RETRY_AFTER_SECONDS)})
        if person is None:
            return guard.Answer(401, {"WWW-Authenticate": self.challenge})
        if person.roles & self.roles:
            return guard.Answer(204, person=person)
        return guard.Answer(403, person=person)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def feed_access(
    settings: settings_model.Settings,
    *,
    roles: Collection[str] | None = None,
    what: str = API_PATH,
    realm: str = REALM,
) -> FeedAccess:
    """The feed's access from ``settings``: RT login checks (no retries, at most 10 s each,
    cached as the access check's are) for the groups of ``roles`` (default
    ``events_api_roles``; ``what`` names what they guard in the log). Connects to nothing
    before the first request; close it after serving. ``realm`` names the login prompt."""
    roles = tuple(settings.access.events_api_roles if roles is None else roles)
    tracker = settings.tracker
    has_rt = bool(tracker.url) and (
        tracker.token is not None or (tracker.user is not None and tracker.password is not None)
    )
    if settings_model.ANYONE in roles or not roles:
        return FeedAccess(roles, None, realm=realm)
    if not has_rt:
        logger.warning(
            "no RT configured (ROLLOUT_RT_URL and credentials): nobody may read %s", what,
            extra={"action": "start"},
        )  # fmt: skip
        return FeedAccess(roles, None, realm=realm)
    tracker = dataclasses.replace(tracker, retries=0, timeout=min(tracker.timeout, 10.0))
    login_checker = logins.LoginChecker(tracker)
    groups = memberships.Memberships(tracker)
    role_groups = {r: g for r, g in settings.workflow.roles.items() if r in roles}
    directory = credentials.GroupDirectory(
        groups,
        frozenset(role_groups.values()),
        fresh_seconds=settings.access.groups_seconds,
        stale_seconds=settings.access.stale_seconds,
    )
    checker = credentials.CredentialChecker(
        login_checker, directory, roles=role_groups, teams=(), settings=settings.access
    )
    return FeedAccess(roles, checker, closers=[login_checker.close, groups.close], realm=realm)
