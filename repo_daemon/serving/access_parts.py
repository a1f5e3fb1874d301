"""The access check's parts assembled from ``Settings``: the policy, the login checker and
group directory on RT, the fetch recorder on the database, in one ``AccessGuard``
(``build_guard``), and closed together (``AccessParts.close``).

It only wires; the rules are ``access``'s, the cache ``credentials``', the record
``fetches``'. Nothing here connects before the first request.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa

from bridge.settings import model as settings_model
from bridge.store import database
from bridge.store import fetches as fetch_store
from bridge.tracker import logins, memberships
from repo_daemon.serving import access, credentials, fetches, guard

logger = logging.getLogger(__name__)


@dataclass
class AccessParts:
    """A guard and what it holds open."""

    guard: guard.AccessGuard
    checker: credentials.CredentialChecker | None = None
    recorder: fetches.FetchRecorder | None = None
    _closers: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def build_guard(
    settings: settings_model.Settings,
    *,
    with_tracker: bool = True,
    record_fetches: bool = True,
) -> AccessParts:
    """The guard for ``settings``. Without the tracker (no RT configured) protected areas are
    served to nobody; without the record (or on a database not yet upgraded), first fetches
    are not written."""
    policy = access.AccessPolicy.from_settings(settings)
    parts = AccessParts(guard=guard.AccessGuard(policy, None))
    if with_tracker and policy.protected_kinds:
        # The access check never waits through retries: a cached answer is better.
        tracker = dataclasses.replace(
            settings.tracker, retries=0, timeout=min(settings.tracker.timeout, 10.0)
        )
        login_checker = logins.LoginChecker(tracker)
        groups = memberships.Memberships(tracker)
        parts._closers += [login_checker.close, groups.close]
        roles = settings.workflow.roles
        teams = settings.workflow.early_adopters
        directory = credentials.GroupDirectory(
            groups,
            credentials.CredentialChecker.groups_for(roles, teams),
            fresh_seconds=settings.access.groups_seconds,
            stale_seconds=settings.access.stale_seconds,
        )
        parts.checker = credentials.CredentialChecker(
            login_checker, directory, roles=roles, teams=teams, settings=settings.access
        )
        parts.guard.checker = parts.checker
    if record_fetches and policy.protected_kinds:
        engine = database.create_engine(settings.database())
        try:
            current = database.schema_is_current(engine)
        except sa.exc.SQLAlchemyError as exc:
            logger.warning(
                "first fetches are not recorded: the database cannot be read (%s)",
                type(exc).__name__, extra={"action": "access"},
            )  # fmt: skip
            current = False
        if not current:
            logger.warning(
                "first fetches are not recorded: the database is not at the newest schema "
                "(run `rollout db upgrade`)", extra={"action": "access"},
            )  # fmt: skip
            engine.dispose()
            return parts
        store = fetch_store.FetchStore(engine)
        parts.recorder = fetches.FetchRecorder(settings.repository.root, store.record_first)
        parts.guard.recorder = parts.recorder
        parts._closers += [engine.dispose, parts.recorder.close]
    return parts
