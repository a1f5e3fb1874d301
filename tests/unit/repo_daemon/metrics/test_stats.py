"""The metrics' statistics: median as statistics.median, p90 by nearest rank."""

from __future__ import annotations

import pytest

from repo_daemon.metrics import report, stats


@pytest.mark.parametrize(
    ("samples", "median", "p90"),
    [
        ((), None, None),
        ((7.0,), 7.0, 7.0),
        ((10.0, 20.0), 15.0, 20.0),  # even n: the mean of the two middle values
        ((3.0, 1.0, 2.0), 2.0, 3.0),
        (tuple(float(x) for x in range(1, 11)), 5.5, 9.0),  # ceil(0.9 * 10) = 9th
        (tuple(float(x) for x in range(1, 12)), 6.0, 10.0),  # ceil(9.9) = 10th
        (tuple(float(x) for x in range(1, 21)), 10.5, 18.0),  # ceil(18.0) = 18th
        ((5.0, 5.0, 5.0, 100.0), 5.0, 100.0),
    ],
    ids=["none", "one", "two", "unsorted-three", "ten", "eleven", "twenty", "outlier"],
)
def test_median_and_nearest_rank_p90(
    samples: tuple[float, ...], median: float | None, p90: float | None
) -> None:
    found = stats.durations(samples)
    assert found == report.Durations(
        n=len(samples), median_seconds=median, p90_seconds=p90, samples=tuple(sorted(samples))
    )
