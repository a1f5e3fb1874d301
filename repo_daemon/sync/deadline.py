"""A sync's overall deadline, besides its idle timeout: how long a release's sync may take
(``allowed``, pure: a base plus the release's declared size at a minimum rate), the running
``Deadline`` the protocols check, and its watchdog, which cuts the connection when the time is
up even while a read is blocked on a server that trickles a byte now and then.

An idle timeout alone never ends a sync whose server sends one byte a second; this does. It
never fetches and never decides whether the files are right; the protocols stop their own
transfers (rsync's process group, the HTTPS and SFTP connections) through what ``watch`` is
given.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from repo_daemon.sync import errors, progress

logger = logging.getLogger(__name__)


def allowed(declared_bytes: int, *, base: float, min_rate: float) -> float:
    """Seconds a sync of ``declared_bytes`` may take: ``base`` plus the bytes at ``min_rate``
    bytes per second."""
    return base + max(0, declared_bytes) / min_rate


def describe_seconds(seconds: float) -> str:
    """``42 s``, ``15 min``, ``2 h 5 min``: a deadline as a person reads it."""
    whole = max(1, round(seconds))
    if whole < 120:
        return f"{whole} s"
    minutes = math.ceil(whole / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


class Deadline:
    """The moment a sync must be done by; ``clock`` is ``time.monotonic`` unless given."""

    def __init__(
        self,
        seconds: float,
        *,
        declared_bytes: int | None = None,
        min_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.declared_bytes = declared_bytes
        self.min_rate = min_rate
        self._clock = clock
        self.started = clock()
        self.fired = threading.Event()  # set by the watchdog once it cut the connection

    def remaining(self) -> float:
        """Seconds left (0 when passed)."""
        return max(0.0, self.started + self.seconds - self._clock())

    def passed(self) -> bool:
        """Whether the time is up."""
        return self.remaining() <= 0

    def error(self, url: str, report: progress.Progress | None = None) -> errors.SyncDeadlinePassed:
        """The error that says so, with what had arrived."""
        got = ""
        if report is not None:
            got = f"; {progress.format_size(report.done)}"
            if report.total:
                got += f" of {progress.format_size(report.total)}"
            got += " had been fetched"
        why = ""
        if self.declared_bytes is not None and self.min_rate:
            why = (
                f" (allowed for the {progress.format_size(self.declared_bytes)} release.xml "
                f"declares at no less than {progress.format_size(int(self.min_rate))}/s)"
            )
        return errors.SyncDeadlinePassed(
            f"the sync from {errors.printable(url)} did not finish within its deadline of "
            f"{describe_seconds(self.seconds)}{why}{got}. The transfer was stopped and its "
            "connection closed. Make the files available from a source that delivers them "
            "faster, then ask for the release to be tried again",
            seconds=self.seconds,
        )

    def check(self, url: str, report: progress.Progress | None = None) -> None:
        """Raise ``error`` when the time is up (or the watchdog fired)."""
        if self.fired.is_set() or self.passed():
            raise self.error(url, report)

    @contextmanager
    def watch(self, cut: Callable[[], None], what: str = "sync") -> Iterator[None]:
        """While the block runs, call ``cut`` (close the connection) once the time is up, from
        a timer thread: a read blocked on a trickling server then returns or raises, and the
        protocol turns that into ``error`` because ``fired`` is set. The timer is cancelled
        when the block ends."""

        def fire() -> None:
            self.fired.set()
            logger.info("%s: deadline of %s passed; closing its connection", what,
                        describe_seconds(self.seconds))  # fmt: skip
            try:
                cut()
            except Exception:  # closing a broken connection may fail: it is broken anyway
                logger.debug("%s: closing at the deadline failed", what, exc_info=True)

        timer = threading.Timer(self.remaining(), fire)
        timer.daemon = True
        timer.name = f"deadline-{what}"
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
