"""The metrics' statistics, pure: samples of seconds into ``Durations`` (n, median, p90).

The median is ``statistics.median`` (the mean of the two middle values for an even n); the
90th percentile is the nearest rank, ``sorted(samples)[ceil(0.9 * n) - 1]``; both None when
there is no sample. No I/O.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from repo_daemon.metrics import report


def p90(ordered: tuple[float, ...]) -> float | None:
    """The nearest-rank 90th percentile of samples sorted ascending (None when empty)."""
    if not ordered:
        return None
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def durations(samples: Iterable[float]) -> report.Durations:
    """``Durations`` of ``samples`` (seconds, any order)."""
    ordered = tuple(sorted(float(s) for s in samples))
    return report.Durations(
        n=len(ordered),
        median_seconds=float(statistics.median(ordered)) if ordered else None,
        p90_seconds=p90(ordered),
        samples=ordered,
    )
