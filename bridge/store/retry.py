"""When a failed job is tried again: the retry policy, a pure object.

It maps (transient?, attempts so far, now) to the time of the next try or to "give up"; the
queue (``queue.Queue.fail``) stores what it decides. No database, no clock of its own: ``now``
and, for tests, the random jitter are passed in.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When a failed job is tried again: exponential backoff with jitter, then the dead letter.

    Pure: ``next_attempt`` maps (transient?, attempts so far, now) to a time or to None (give up).
    """

    base_delay: float = 5.0
    factor: float = 3.0
    max_delay: float = 3600.0
    max_attempts: int = 8
    jitter: float = 0.25  # ± this fraction of the delay

    def delay(self, attempts: int, rand: float = 0.5) -> float:
        """Seconds before the next try after ``attempts`` tries; ``rand`` in [0, 1)."""
        raw = min(self.max_delay, self.base_delay * self.factor ** max(0, attempts - 1))
        return raw * (1 + self.jitter * (2 * rand - 1))

    def at_once(self) -> RetryPolicy:
        """This policy without the wait: for a retry that decides afresh (a race lost), still
        bounded by ``max_attempts``."""
        return replace(self, base_delay=0.0, jitter=0.0)

    def next_attempt(
        self, *, transient: bool, attempts: int, now: datetime, rand: float | None = None
    ) -> datetime | None:
        """When to try again, or None when the job should stop (permanent error, or spent)."""
        if not transient or attempts >= self.max_attempts:
            return None
        if rand is None:
            rand = random.random()  # noqa: S311 - jitter, not cryptography
        return now + timedelta(seconds=self.delay(attempts, rand))
