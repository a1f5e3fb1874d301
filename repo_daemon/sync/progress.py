"""Progress of a sync: passing bytes done, total and rate to a callback, logging them now and
then, and writing sizes for people (``1.2 GiB of 2.0 GiB (60%) at 85.3 MiB/s``). It only
reports: it never fetches, stops or decides anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, "int | None", float], None]
"""``(bytes_done, bytes_total_or_None, rate_bytes_per_second)``."""


class Progress:
    """Passes progress to a callback and logs it at INFO at most every ``log_interval`` s."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        total: int | None,
        label: str,
        log_interval: float = 5.0,
        log_extra: Mapping[str, object] | None = None,
    ) -> None:
        self.callback = callback
        self.total = total
        self.label = label
        self.log_interval = log_interval
        self.log_extra = dict(log_extra or {"action": "sync_packages"})
        self.started = time.monotonic()
        self.done = 0
        self._last_log = self.started

    def add(self, count: int) -> None:
        """``count`` more bytes arrived."""
        self.update(self.done + count)

    def update(self, done: int, rate: float | None = None) -> None:
        """``done`` bytes so far; ``rate`` as the tool reports it, else the average so far."""
        now = time.monotonic()
        self.done = done
        if rate is None:
            rate = done / max(now - self.started, 1e-6)
        if self.callback is not None:
            self.callback(done, self.total, rate)
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            logger.info("%s: %s", self.label, format_progress(done, self.total, rate),
                        extra=self.log_extra)  # fmt: skip


def format_progress(done: int, total: int | None, rate: float) -> str:
    """``1.2 GiB of 2.0 GiB (60%) at 85.3 MiB/s``."""
    text = _size(done)
    if total:
        text += f" of {_size(total)} ({min(100, 100 * done // total)}%)"
    return f"{text} at {_size(int(rate))}/s"


def format_size(count: int) -> str:
    """``512 B``, ``1.2 GiB``: a number of bytes as a person reads it."""
    return _size(count)


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
