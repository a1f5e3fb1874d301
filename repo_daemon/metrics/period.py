"""The metrics' calendar, pure: ``--from`` / ``--to`` values read into the period's bounds,
the UTC calendar months of a period, and a time's month.

No clock and no I/O: "now" is passed in. ``--from 2025-11`` is 2025-11-01T00:00 (inclusive);
``--to 2026-12`` means through the end of December 2026 (until 2027-01-01, exclusive);
``--to 2026-12-15`` means until 2026-12-15T00:00 (exclusive).
"""

from __future__ import annotations

import re
from datetime import datetime

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class PeriodInvalid(ValueError):
    """A ``--from`` / ``--to`` value that names no month or day, or an empty period; the
    message says which value and what is expected."""


def month_of(at: datetime) -> str:
    """The UTC calendar month of a naive UTC time: ``2026-12``."""
    return f"{at.year:04d}-{at.month:02d}"


def month_start(at: datetime) -> datetime:
    """Midnight of the first day of ``at``'s month."""
    return datetime(at.year, at.month, 1)


def next_month(at: datetime) -> datetime:
    """Midnight of the first day of the month after ``at``'s."""
    if at.month == 12:
        return datetime(at.year + 1, 1, 1)
    return datetime(at.year, at.month + 1, 1)


def _read(value: str) -> tuple[datetime, bool]:
    """The day a value names and whether it named a whole month."""
    text = value.strip()
    try:
        if m := _MONTH.fullmatch(text):
            return datetime(int(m[1]), int(m[2]), 1), True
        if m := _DAY.fullmatch(text):
            return datetime(int(m[1]), int(m[2]), int(m[3])), False
    except ValueError as exc:  # month 13, February 30th
        raise PeriodInvalid(f"{value!r} is not a date: {exc}") from None
    raise PeriodInvalid(f"{value!r} is not a month (YYYY-MM) or a day (YYYY-MM-DD)")


def parse_from(value: str) -> datetime:
    """The period's inclusive start: the first moment of the month or day ``value`` names.
    Raises ``PeriodInvalid`` quoting the value."""
    return _read(value)[0]


def parse_to(value: str) -> datetime:
    """The period's exclusive end: after the whole month a ``YYYY-MM`` names, at the start
    of the day a ``YYYY-MM-DD`` names. Raises ``PeriodInvalid`` quoting the value."""
    day, whole_month = _read(value)
    return next_month(day) if whole_month else day


def check_order(since: datetime | None, until: datetime | None, *, what: str) -> None:
    """Raises ``PeriodInvalid`` when the period ``[since, until)`` holds no time at all."""
    if since is not None and until is not None and since >= until:
        raise PeriodInvalid(
            f"the period is empty: {what} starts at {since:%Y-%m-%d %H:%M} and ends "
            f"(exclusive) at {until:%Y-%m-%d %H:%M}"
        )


def resolve(
    since: datetime | None, until: datetime | None, *, earliest: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The period's bounds once defaults are applied: without ``since``, the start of the
    ``earliest`` record's month (of ``now``'s when there is none or it is later); without
    ``until``, the end of ``now``'s month. The period may be empty (``months`` lists none)."""
    first = now if earliest is None else min(earliest, now)
    start = since if since is not None else month_start(first)
    end = until if until is not None else next_month(now)
    return start, end


def months(since: datetime, until: datetime) -> tuple[str, ...]:
    """Every calendar month ``[since, until)`` touches, oldest first (none if it is empty)."""
    found: list[str] = []
    at = month_start(since)
    while at < until:
        found.append(month_of(at))
        at = next_month(at)
    return tuple(found)
