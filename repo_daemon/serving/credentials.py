"""Who is asking, and with which roles: people's RT logins checked against RT with a bounded
cache (``CredentialChecker.person``), and the members of the role groups read once for
everybody (``GroupDirectory``).

Bounded whatever the load: one RT call per login (user and password, or token) per
``cache_seconds``, the same answer for the requests that arrive while it is being asked
(single flight); at most ``rt_calls_per_second`` login checks per second (a token bucket);
when RT cannot answer or the bucket is empty, people seen within ``stale_seconds`` keep their
last answer, anybody else gets ``CheckUnavailable`` (503). The cache is keyed on a keyed hash
of (login, secret), never on the secret itself, and holds at most ``cache_entries`` logins.

It decides nothing about areas (``access`` does) and never logs a password or token.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Protocol

from bridge import errors
from bridge.settings import model as settings_model
from repo_daemon.serving import access

logger = logging.getLogger(__name__)

# After RT failed to answer, answer from the cache this long before asking RT again, so an
# outage costs neither RT calls nor a timeout per request.
RT_RETRY_SECONDS = 15.0


class CheckUnavailable(Exception):
    """RT cannot be asked now (down, or the budget of calls is spent) and nothing usable is
    remembered for this login: answer 503, try again later."""


class LoginSource(Protocol):
    """``bridge.tracker.logins.LoginChecker``."""

    def who(self, login: str, secret: str) -> str | None: ...


class GroupSource(Protocol):
    """``bridge.tracker.memberships.Memberships``."""

    def members_of(self, groups: Collection[str]) -> Mapping[str, frozenset[str]]: ...


Clock = Callable[[], float]


class TokenBucket:
    """At most ``rate`` takes per second on average, ``burst`` at once. Thread-safe."""

    def __init__(self, rate: float, burst: int, *, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """One token if there is one (True), else False; never waits."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str | None  # RT's name, or None: RT refused these credentials
    at: float  # when RT said so (the clock's time)


class GroupDirectory:
    """The members of the role and team groups, read from RT for everybody at once and kept
    ``fresh_seconds``; kept up to ``stale_seconds`` more while RT cannot answer. ``reads``
    counts the reads from RT (each is a few requests: one per group)."""

    def __init__(
        self,
        source: GroupSource,
        groups: Collection[str],
        *,
        fresh_seconds: float,
        stale_seconds: float,
        clock: Clock = time.monotonic,
    ) -> None:
        self.source = source
        self.groups = tuple(sorted(set(groups)))
        self.fresh_seconds = fresh_seconds
        self.stale_seconds = stale_seconds
        self.reads = 0
        self._clock = clock
        self._members: Mapping[str, frozenset[str]] | None = None
        self._at = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def members(self) -> Mapping[str, frozenset[str]]:
        """Group name → user names. Raises ``CheckUnavailable`` when RT cannot answer and
        nothing read within the stale window is left."""
        now = self._clock()
        known = self._members
        if known is not None and now - self._at < self.fresh_seconds:
            return known
        with self._lock:  # one reader at a time; the others wait for its answer
            now = self._clock()
            if self._members is not None and now - self._at < self.fresh_seconds:
                return self._members
            if now >= self._retry_at:
                try:
                    self.reads += 1
                    read = self.source.members_of(self.groups)
                except errors.TrackerError as exc:
                    self._retry_at = now + RT_RETRY_SECONDS
                    logger.warning(
                        "could not read the role groups from RT: %s", exc,
                        extra={"action": "access"},
                    )  # fmt: skip
                else:
                    self._members = {g: frozenset(read.get(g, ())) for g in self.groups}
                    self._at = now
                    return self._members
            if self._members is not None and now - self._at < self.stale_seconds:
                return self._members
            raise CheckUnavailable("RT cannot tell the members of the role groups now")


class CredentialChecker:
    """People's RT logins (``logins``) with their roles (``WorkflowSettings.roles``) and
    early-adopter teams, read from ``directory``. ``login_calls`` counts the login checks
    asked of RT, per login name; ``stale_answers`` the answers given from an expired entry
    because RT could not be asked."""

    def __init__(
        self,
        logins: LoginSource,
        directory: GroupDirectory,
        *,
        roles: Mapping[str, str],
        teams: Sequence[settings_model.EarlyAdopterTeam],
        settings: settings_model.AccessSettings,
        clock: Clock = time.monotonic,
    ) -> None:
        self.logins = logins
        self.directory = directory
        self.roles = dict(roles)
        self.teams = tuple(teams)
        self.fresh_seconds = settings.cache_seconds
        self.stale_seconds = max(settings.stale_seconds, settings.cache_seconds)
        self.max_entries = settings.cache_entries
        self.bucket = TokenBucket(settings.rt_calls_per_second, settings.rt_burst, clock=clock)
        self.login_calls: collections.Counter[str] = collections.Counter()
        self.stale_answers = 0
        self._clock = clock
        self._key = secrets.token_bytes(32)  # the cache's keys mean nothing outside this process
        self._cache: collections.OrderedDict[bytes, _Entry] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._flights: dict[bytes, threading.Lock] = {}
        self._retry_at = 0.0

    @staticmethod
    def groups_for(
        roles: Mapping[str, str], teams: Sequence[settings_model.EarlyAdopterTeam]
    ) -> frozenset[str]:
        """The RT groups whose members give roles or teams."""
        return frozenset(roles.values()) | frozenset(t.group for t in teams)

    @property
    def total_login_calls(self) -> int:
        return sum(self.login_calls.values())

    def person(self, login: str, secret: str) -> access.Person | None:
        """The person logging in as ``login`` with ``secret`` (password or RT auth token;
        ``login`` empty for a bearer token), with their roles and teams; None when RT refused
        the credentials. Raises ``CheckUnavailable`` (see the module)."""
        name = self._name(login, secret)
        if name is None:
            return None
        members = self.directory.members()
        return access.Person(
            name=name,
            roles=frozenset(r for r, g in self.roles.items() if name in members.get(g, ())),
            teams=frozenset(t.name for t in self.teams if name in members.get(t.group, ())),
        )

    def _name(self, login: str, secret: str) -> str | None:
        key = hmac.new(
            self._key, login.encode() + b"\x00" + secret.encode(), hashlib.sha256
        ).digest()
        entry = self._fresh(key)
        if entry is not None:
            return entry.name
        with self._flight(key):
            entry = self._fresh(key)  # asked by another request meanwhile
            if entry is not None:
                return entry.name
            now = self._clock()
            if now >= self._retry_at and self.bucket.take():
                try:
                    with self._lock:
                        self.login_calls[login] += 1
                    name = self.logins.who(login, secret)
                except errors.TrackerError as exc:
                    self._retry_at = now + RT_RETRY_SECONDS
                    logger.warning(
                        "could not check a login with RT: %s", exc, extra={"action": "access"}
                    )
                else:
                    self._store(key, _Entry(name, now))
                    return name
            return self._stale(key, now)

    def _fresh(self, key: bytes) -> _Entry | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or self._clock() - entry.at >= self.fresh_seconds:
                return None
            self._cache.move_to_end(key)
            return entry

    def _stale(self, key: bytes, now: float) -> str | None:
        with self._lock:
            entry = self._cache.get(key)
            if entry is None or now - entry.at >= self.stale_seconds:
                raise CheckUnavailable("RT cannot check this login now; try again later")
            self.stale_answers += 1
            return entry.name

    def _store(self, key: bytes, entry: _Entry) -> None:
        with self._lock:
            self._cache[key] = entry
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)

    @contextlib.contextmanager
    def _flight(self, key: bytes) -> Iterator[None]:
        """One RT call per key at a time: later requests for the same login wait for it."""
        with self._lock:
            lock = self._flights.setdefault(key, threading.Lock())
        with lock:
            try:
                yield
            finally:
                with self._lock:
                    if self._flights.get(key) is lock:
                        del self._flights[key]
