"""Locks of the repository's lanes: one lock per area, so publications into different areas
run in parallel while two daemons (or two threads) never write one area at once, plus one
global lock that publishers hold shared and the pool's garbage collection holds exclusively.

``Locks`` is the interface ``Repository`` uses; ``chosen`` picks the kind from the settings in
one place: with PostgreSQL, advisory locks in the database (``db_locks``, for daemons on
several hosts); with SQLite, ``FileLocks``: one ``flock`` lock file per area under
``<root>/.locks/``. ``flock`` locks belong to an open file description, so each acquisition
opens the lock file afresh: threads of one process exclude each other like processes do. Lock
files are never deleted (deleting one would let two holders lock two different files of the
same name).

It only locks; it knows nothing of what is published.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from bridge.settings import model as settings_model
from repo_daemon.publish import areas, errors

LOCK_DIR = ".locks"
GLOBAL_LOCK = ".global.lock"  # area keys never start with a dot, so never collide with it


class Held(Protocol):
    """A lock being held."""

    def verify(self) -> None:
        """Raise ``LockLost`` unless the lock is certainly still held: called right before a
        change becomes visible (the swap), after long work under the lock."""


class Locks(Protocol):
    """The repository's locks. ``area`` holds one area exclusively (and keeps the GC out);
    ``everything`` holds the global lock exclusively. Both raise ``AreaBusy`` when the lock
    stays taken past their timeout."""

    def area(self, area: areas.Area) -> AbstractContextManager[Held]: ...

    def everything(self) -> AbstractContextManager[Held]: ...


def chosen(settings: settings_model.Settings, *, timeout: float = 600.0) -> Locks:
    """The locks for ``settings``: advisory locks in the store's database when it is
    PostgreSQL (held by the lock connection, dropped within ``repository.lock_lease`` seconds
    of its host vanishing), else ``flock`` files below the repository root."""
    url = settings.database()
    if sa.make_url(url).get_backend_name() == "postgresql":
        from repo_daemon.publish import db_locks  # psycopg only where PostgreSQL is used

        return db_locks.DatabaseLocks(url, lease=settings.repository.lock_lease, timeout=timeout)
    return FileLocks(settings.repository.root, timeout=timeout)


def poll(attempt: Callable[[], bool], where: str, timeout: float) -> None:
    """Call ``attempt`` (one non-blocking try) until it succeeds, backing off from 10 ms to
    250 ms between tries; ``AreaBusy`` naming ``where`` once ``timeout`` seconds passed."""
    started = time.monotonic()
    pause = 0.01
    while not attempt():
        waited = time.monotonic() - started
        if waited >= timeout:
            raise errors.AreaBusy(where, waited)
        time.sleep(min(pause, max(timeout - waited, 0.001)))
        pause = min(pause * 2, 0.25)


class _FileHold:
    def verify(self) -> None:
        """An ``flock`` lasts as long as its open file: nothing to ask."""


class FileLocks:
    """The lock files of one repository root (``Locks``). ``timeout`` bounds every wait
    (``AreaBusy``)."""

    def __init__(self, root: Path, *, timeout: float = 600.0) -> None:
        self.dir = root / LOCK_DIR
        self.timeout = timeout

    @contextmanager
    def area(self, area: areas.Area) -> Iterator[Held]:
        """Hold ``area`` exclusively (and the global lock shared, to keep the GC out)."""
        lock = f"{area.key}.lock"
        with self._hold(GLOBAL_LOCK, fcntl.LOCK_SH), self._hold(lock, fcntl.LOCK_EX) as held:
            yield held

    @contextmanager
    def everything(self) -> Iterator[Held]:
        """Hold the global lock exclusively: no area is being written meanwhile."""
        with self._hold(GLOBAL_LOCK, fcntl.LOCK_EX) as held:
            yield held

    @contextmanager
    def _hold(self, name: str, mode: int) -> Iterator[Held]:
        where = f"{LOCK_DIR}/{name}"
        try:
            self.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(self.dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise errors.StorageFailed("cannot open lock", where, exc) from exc

        def attempt() -> bool:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError as exc:
                raise errors.StorageFailed("cannot lock", where, exc) from exc
            return True

        try:
            poll(attempt, where, self.timeout)
            yield _FileHold()
        finally:
            os.close(fd)  # closing the last descriptor releases the lock
