"""The repository's locks held in PostgreSQL, for daemons on several hosts sharing one database
and one tree store: each area's lock and the global lock (publishers shared, the pool's garbage
collection exclusive) are **session advisory locks** on a dedicated connection opened for the
hold and closed after it, so a dead holder's locks go with its connection.

Keys live in the single-``bigint`` advisory key space: the top 16 bits are ``NAMESPACE``
(``0x524C``, "RL"), the low 48 bits a SHA-256 hash of the area key (``area_lock_key``). The
bridge's other advisory locks (``bridge.store``: migrations, the event log's appends) are
below 2**32, so they can never meet these. The lock connection carries TCP keepalives and
``tcp_user_timeout`` on both ends, derived from the lease, so the database drops the session of
a host that vanished within about ``lease`` seconds (``connection_parameters``).

It only locks, like ``locks``; it never touches the trees or the bridge's tables.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import sqlalchemy as sa

from repo_daemon.publish import areas, locks
from repo_daemon.publish import errors as publish_errors

logger = logging.getLogger(__name__)

NAMESPACE = 0x524C  # "RL": the top 16 bits of every repository lock key
_HASH_BITS = 48
GLOBAL_NAME = ".global"  # area keys never start with a dot, so never hash this name
KEEPALIVE_COUNT = 3  # unanswered probes before the connection is given up
MIN_LEASE = 5  # seconds: room for the keepalive's idle time and its probes, whole seconds each
APPLICATION_NAME = "rollout-locks"  # what pg_stat_activity shows for lock connections

# Whether the session still holds advisory key %(key)s (a bigint key shows in pg_locks as
# classid = its high 32 bits, objid = its low 32 bits, objsubid = 1).
_HELD = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
  AND (classid::bigint << 32 | objid::bigint) = %(key)s
"""


def lock_key(name: str) -> int:
    """The advisory lock key of ``name`` (an area key, or ``GLOBAL_NAME``): ``NAMESPACE`` in
    the top 16 bits, the first 48 bits of SHA-256(name) below. Stable across processes, hosts
    and versions, always positive, and computable in SQL (docs/publication.md, "Locks")."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return NAMESPACE << _HASH_BITS | int.from_bytes(digest[: _HASH_BITS // 8], "big")


def area_lock_key(area: areas.Area) -> int:
    """The advisory lock key of ``area``'s lock."""
    return lock_key(area.key)


GLOBAL_KEY = lock_key(GLOBAL_NAME)


def connection_parameters(url: str, lease: float) -> dict[str, Any]:
    """libpq parameters of a lock connection to the database of SQLAlchemy URL ``url``.

    The client's keepalives and ``tcp_user_timeout`` make a holder notice a dead server (or
    network) within ``lease``; the same settings sent for the server's end of the socket
    (``options``) make PostgreSQL drop the session, and with it the locks, of a host that
    vanished. The lease is whole seconds, at least ``MIN_LEASE``: keepalives start after
    half of it and ``KEEPALIVE_COUNT`` probes share the rest. ``idle_session_timeout`` is
    switched off for the session: a lock is held idle through long file work."""
    parsed = sa.make_url(url)
    lease_s = max(MIN_LEASE, math.ceil(lease))
    idle = lease_s // 2
    interval = max(1, (lease_s - idle) // KEEPALIVE_COUNT)
    user_timeout_ms = lease_s * 1000
    params: dict[str, Any] = {
        key: str(value if not isinstance(value, tuple) else value[-1])
        for key, value in parsed.query.items()
    }
    for key, value in (
        ("host", parsed.host),
        ("port", parsed.port),
        ("user", parsed.username),
        ("password", parsed.password),
        ("dbname", parsed.database),
    ):
        if value is not None:
            params[key] = str(value)
    server = (
        f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval}"
        f" -c tcp_keepalives_count={KEEPALIVE_COUNT} -c tcp_user_timeout={user_timeout_ms}"
        " -c idle_session_timeout=0"
    )
    params["options"] = f"{params['options']} {server}" if params.get("options") else server
    params.update(
        keepalives="1",
        keepalives_idle=str(idle),
        keepalives_interval=str(interval),
        keepalives_count=str(KEEPALIVE_COUNT),
        tcp_user_timeout=str(user_timeout_ms),
        connect_timeout=str(min(lease_s, 30)),
        application_name=APPLICATION_NAME,
    )
    return params


def _shown(url: str) -> str:
    """Where the database is, for messages: host, port and name only (never credentials)."""
    parsed = sa.make_url(url)
    socket = parsed.query.get("host")
    host = parsed.host or (socket[-1] if isinstance(socket, tuple) else socket) or "a socket"
    return f"PostgreSQL {parsed.database or ''} at {host}{f':{parsed.port}' if parsed.port else ''}"


class _DatabaseHold:
    """A hold of advisory locks on one open session; ``verify`` asks the server."""

    def __init__(self, connection: psycopg.Connection[Any], where: str, key: int) -> None:
        self._connection = connection
        self._where = where
        self._key = key

    def verify(self) -> None:
        try:
            with self._connection.cursor() as cursor:
                row = cursor.execute(_HELD, {"key": self._key}).fetchone()
        except psycopg.Error as exc:
            raise publish_errors.LockLost(
                self._where, f"its database connection broke ({type(exc).__name__})"
            ) from exc
        if row is None or row[0] < 1:
            raise publish_errors.LockLost(self._where, "the database no longer holds it")


class DatabaseLocks:
    """Area and global locks as PostgreSQL session advisory locks (``locks.Locks``).

    Each hold opens its own connection (never a pooled one: the lock lives exactly as long as
    the session), polls ``pg_try_advisory_lock[_shared]`` with back-off up to ``timeout``
    (``AreaBusy``) and closes the connection at the end, which releases everything it held.
    ``connect`` opens a connection from libpq parameters (tests pass their own)."""

    def __init__(
        self,
        url: str,
        *,
        lease: float = 60.0,
        timeout: float = 600.0,
        connect: Callable[..., psycopg.Connection[Any]] | None = None,
    ) -> None:
        self._params = connection_parameters(url, lease)
        self._shown = _shown(url)
        self.lease = lease
        self.timeout = timeout
        self._connect = connect or psycopg.connect

    @contextmanager
    def area(self, area: areas.Area) -> Iterator[locks.Held]:
        """Hold ``area`` exclusively and the global lock shared, on one session."""
        key = area_lock_key(area)
        where = f"area {area.key} (advisory key {key})"
        with self._session(where) as connection:
            self._take(connection, GLOBAL_KEY, shared=True, where="the global lock")
            self._take(connection, key, shared=False, where=where)
            yield _DatabaseHold(connection, where, key)

    @contextmanager
    def everything(self) -> Iterator[locks.Held]:
        """Hold the global lock exclusively: no area is being written meanwhile."""
        where = f"the global lock (advisory key {GLOBAL_KEY})"
        with self._session(where) as connection:
            self._take(connection, GLOBAL_KEY, shared=False, where=where)
            yield _DatabaseHold(connection, where, GLOBAL_KEY)

    @contextmanager
    def _session(self, where: str) -> Iterator[psycopg.Connection[Any]]:
        try:
            connection = self._connect(autocommit=True, **self._params)
        except psycopg.Error as exc:
            raise publish_errors.LockLost(
                where, f"cannot connect to {self._shown} ({type(exc).__name__})"
            ) from exc
        try:
            yield connection
        finally:
            with contextlib.suppress(psycopg.Error):
                connection.close()  # ends the session: PostgreSQL releases its advisory locks

    def _take(
        self, connection: psycopg.Connection[Any], key: int, *, shared: bool, where: str
    ) -> None:
        query = (
            "SELECT pg_try_advisory_lock_shared(%(key)s)"
            if shared
            else "SELECT pg_try_advisory_lock(%(key)s)"
        )

        def attempt() -> bool:
            try:
                row = connection.execute(query, {"key": key}).fetchone()
            except psycopg.Error as exc:
                raise publish_errors.LockLost(
                    where, f"its database connection broke ({type(exc).__name__})"
                ) from exc
            return bool(row and row[0])

        locks.poll(attempt, where, self.timeout)
