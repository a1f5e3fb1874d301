"""Locks of the repository's lanes: one ``flock`` lock file per area under ``<root>/.locks/``,
so publications into different areas run in parallel while two daemons (or two threads) never
write one area at once, plus one global lock that publishers hold shared and the pool's
garbage collection holds exclusively.

It only locks; it knows nothing of what is published. ``flock`` locks belong to an open file
description, so each acquisition opens the lock file afresh: threads of one process exclude
each other like processes do. Lock files are never deleted (deleting one would let two
holders lock two different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from repo_daemon.publish import areas, errors

LOCK_DIR = ".locks"
GLOBAL_LOCK = ".global.lock"  # area keys never start with a dot, so never collide with it


class Locks:
    """The lock files of one repository root. ``timeout`` bounds every wait (``AreaBusy``)."""

    def __init__(self, root: Path, *, timeout: float = 600.0) -> None:
        self.dir = root / LOCK_DIR
        self.timeout = timeout

    @contextmanager
    def area(self, area: areas.Area) -> Iterator[None]:
        """Hold ``area`` exclusively (and the global lock shared, to keep the GC out)."""
        lock = f"{area.key}.lock"
        with self._hold(GLOBAL_LOCK, fcntl.LOCK_SH), self._hold(lock, fcntl.LOCK_EX):
            yield

    @contextmanager
    def everything(self) -> Iterator[None]:
        """Hold the global lock exclusively: no area is being written meanwhile."""
        with self._hold(GLOBAL_LOCK, fcntl.LOCK_EX):
            yield

    @contextmanager
    def _hold(self, name: str, mode: int) -> Iterator[None]:
        where = f"{LOCK_DIR}/{name}"
        try:
            self.dir.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(self.dir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise errors.StorageFailed("cannot open lock", where, exc) from exc
        try:
            started = time.monotonic()
            pause = 0.01
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= self.timeout:
                        raise errors.AreaBusy(where, waited) from None
                    time.sleep(min(pause, max(self.timeout - waited, 0.001)))
                    pause = min(pause * 2, 0.25)
                except OSError as exc:
                    raise errors.StorageFailed("cannot lock", where, exc) from exc
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock
