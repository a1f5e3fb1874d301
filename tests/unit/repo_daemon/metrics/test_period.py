"""The metrics' calendar: --from/--to values, the months of a period, the defaults."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from repo_daemon.metrics import period

NOW = datetime(2026, 12, 6, 16, 0)


@pytest.mark.parametrize(
    ("value", "start"),
    [
        ("2025-11", datetime(2025, 11, 1)),
        ("2025-11-15", datetime(2025, 11, 15)),
        (" 2026-01 ", datetime(2026, 1, 1)),
    ],
    ids=["month", "day", "spaces"],
)
def test_from_is_the_first_moment_of_the_month_or_day(value: str, start: datetime) -> None:
    assert period.parse_from(value) == start


@pytest.mark.parametrize(
    ("value", "end"),
    [
        ("2026-12", datetime(2027, 1, 1)),  # through the end of December
        ("2026-02", datetime(2026, 3, 1)),
        ("2026-12-15", datetime(2026, 12, 15)),  # until that day, excluded
    ],
    ids=["december-rolls-the-year", "month", "day-is-exclusive"],
)
def test_to_a_month_includes_it_and_to_a_day_ends_before_it(value: str, end: datetime) -> None:
    assert period.parse_to(value) == end


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("2026-13", "'2026-13' is not a date"),
        ("2026-02-30", "'2026-02-30' is not a date"),
        ("26-01", "'26-01' is not a month (YYYY-MM) or a day (YYYY-MM-DD)"),
        ("2026/01", "is not a month"),
        ("yesterday", "is not a month"),
        ("", "is not a month"),
    ],
)
def test_a_bad_value_says_what_it_is_and_what_is_expected(value: str, says: str) -> None:
    with pytest.raises(period.PeriodInvalid, match=re.escape(says)):
        period.parse_from(value)
    with pytest.raises(period.PeriodInvalid, match=re.escape(says)):
        period.parse_to(value)


def test_an_empty_period_is_refused_with_its_bounds() -> None:
    with pytest.raises(period.PeriodInvalid, match="the period is empty: --from 2026-05"):
        period.check_order(datetime(2026, 5, 1), datetime(2026, 5, 1), what="--from 2026-05")
    period.check_order(datetime(2026, 5, 1), None, what="x")  # open ends are fine


@pytest.mark.parametrize(
    ("since", "until", "months"),
    [
        (datetime(2025, 11, 1), datetime(2026, 2, 1), ("2025-11", "2025-12", "2026-01")),
        (datetime(2025, 11, 15), datetime(2025, 11, 16), ("2025-11",)),
        (datetime(2025, 11, 15), datetime(2025, 12, 1, 0, 0, 1), ("2025-11", "2025-12")),
        (datetime(2025, 11, 1), datetime(2025, 11, 1), ()),
    ],
    ids=["three-months", "one-day", "a-second-into-december", "empty"],
)
def test_every_month_the_period_touches_is_listed(
    since: datetime, until: datetime, months: tuple[str, ...]
) -> None:
    assert period.months(since, until) == months


@pytest.mark.parametrize(
    ("since", "until", "earliest", "bounds"),
    [
        (None, None, datetime(2025, 10, 3, 9), (datetime(2025, 10, 1), datetime(2027, 1, 1))),
        (None, None, None, (datetime(2026, 12, 1), datetime(2027, 1, 1))),
        (None, None, datetime(2027, 3, 1), (datetime(2026, 12, 1), datetime(2027, 1, 1))),
        (datetime(2026, 2, 10), None, None, (datetime(2026, 2, 10), datetime(2027, 1, 1))),
        (None, datetime(2026, 1, 1), datetime(2025, 6, 9),
         (datetime(2025, 6, 1), datetime(2026, 1, 1))),
    ],
    ids=["earliest-record-to-now", "no-record", "records-after-now", "from-only", "to-only"],
)  # fmt: skip
def test_defaults_run_from_the_earliest_records_month_through_the_current_month(
    since: datetime | None,
    until: datetime | None,
    earliest: datetime | None,
    bounds: tuple[datetime, datetime],
) -> None:
    assert period.resolve(since, until, earliest=earliest, now=NOW) == bounds


def test_a_times_month_is_its_utc_calendar_month() -> None:
    assert period.month_of(datetime(2026, 1, 31, 23, 59, 59)) == "2026-01"
    assert period.next_month(datetime(2026, 12, 31, 23)) == datetime(2027, 1, 1)
