"""A log line for one kind of trouble at most once per interval, so a flood of it (a client
hanging up mid-body a thousand times) costs a handful of lines, not a thousand.

``LimitedLog`` says the first occurrence at once; the ones after it, within the interval, are
only counted, and ``flush`` (called by whoever owns a timer, once the interval is over) says
how many there were and the latest. It owns no timer, thread or clock of its own (the clock is
passed in) and never decides what is trouble.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class LimitedLog:
    """``what`` (e.g. "a client hung up in the middle of a request body") logged as
    ``"<what>: <detail>"`` at most once per ``interval`` seconds on ``target``."""

    def __init__(
        self,
        target: logging.Logger,
        what: str,
        *,
        interval: float,
        level: int = logging.INFO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.what = what
        self.interval = interval
        self.level = level
        self.clock = clock
        self.total = 0  # every occurrence since the start, said or not
        self.held = 0  # occurrences not yet said
        self._latest = ""
        self._quiet_until = float("-inf")

    def note(self, detail: str) -> bool:
        """One occurrence. Logs it now (True) unless a line of this kind went out less than
        ``interval`` ago; then it is held back and counted (False): ``flush`` says it later."""
        self.total += 1
        now = self.clock()
        if now >= self._quiet_until:
            self.target.log(self.level, "%s: %s", self.what, detail)
            self._quiet_until = now + self.interval
            return True
        self.held += 1
        self._latest = detail
        return False

    @property
    def flush_at(self) -> float | None:
        """When ``flush`` will have something to say (the clock's time), or None."""
        return self._quiet_until if self.held else None

    def flush(self) -> bool:
        """Say what was held back, in one line, once the interval is over (True if logged)."""
        now = self.clock()
        if not self.held or now < self._quiet_until:
            return False
        self.target.log(
            self.level,
            "%s: %d more within %g s (the latest: %s)",
            self.what,
            self.held,
            self.interval,
            self._latest,
        )
        self.held = 0
        self._quiet_until = now + self.interval
        return True
