"""The feed's pure parts: the times it takes, readers' names, filters as query parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bridge.store import event_feed
from bridge.store import events as ev

NOW = datetime(2026, 5, 4, 15, 30, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", datetime(2026, 5, 4, 15, 30)),
        ("today", datetime(2026, 5, 4)),
        ("Yesterday", datetime(2026, 5, 3)),
        ("8h", datetime(2026, 5, 4, 7, 30)),
        ("30m", datetime(2026, 5, 4, 15, 0)),
        ("90s", datetime(2026, 5, 4, 15, 28, 30)),
        ("2d", datetime(2026, 5, 2, 15, 30)),
        ("1w", datetime(2026, 4, 27, 15, 30)),
        ("8h ago", datetime(2026, 5, 4, 7, 30)),
        ("2026-05-01", datetime(2026, 5, 1)),
        ("2026-05-01T08:00", datetime(2026, 5, 1, 8, 0)),
        ("2026-05-01T08:00Z", datetime(2026, 5, 1, 8, 0)),
        ("2026-05-01T10:00+02:00", datetime(2026, 5, 1, 8, 0)),
    ],
)
def test_times_are_read_as_naive_utc(text: str, expected: datetime) -> None:
    assert event_feed.parse_time(text, now=NOW) == expected


def test_now_may_be_given_in_any_zone() -> None:
    elsewhere = NOW.astimezone(timezone(timedelta(hours=10)))  # already the 5th there
    assert event_feed.parse_time("today", now=elsewhere) == datetime(2026, 5, 4)


@pytest.mark.parametrize("text", ["", "soon", "8 hours", "-8h", "2026-13-01", "8y"])
def test_what_is_not_a_time_is_refused_saying_what_is(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time: give an ISO 8601 time"):
        event_feed.parse_time(text, now=NOW)


@pytest.mark.parametrize("name", ["ops", "alice@example.org", "team.audit-2", "A_1", "x" * 100])
def test_reader_names_that_are_accepted(name: str) -> None:
    assert event_feed.check_reader(name) == name


@pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a/b", "x" * 101, "é"])
def test_reader_names_that_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="is not a reader's name"):
        event_feed.check_reader(name)


def test_filters_as_query_parameters_and_title() -> None:
    filters = event_feed.Filters(
        since=datetime(2026, 5, 4, 8),
        ticket_id=42,
        kinds=(ev.EventKind.JOB_DEAD, ev.EventKind.JOB_RETRY),
        area="production/UMD-5",
        cause=ev.Cause.MANUAL_RERUN,
    )
    assert filters.as_query() == [
        ("since", "2026-05-04T08:00:00Z"),
        ("ticket", "42"),
        ("kind", "job_dead"),
        ("kind", "job_retry"),
        ("area", "production/UMD-5"),
        ("cause", "manual_rerun"),
    ]
    assert filters.title().startswith("Rollout events (since=2026-05-04T08:00:00Z, ticket=42")
    assert event_feed.Filters().title() == "Rollout events"
