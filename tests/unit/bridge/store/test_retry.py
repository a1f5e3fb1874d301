"""The retry policy: exponential backoff within the jitter, capped, then give up; permanent
errors are never retried."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bridge.store import retry

NOW = datetime(2026, 12, 1, 12, 0, 0)


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(0, 5.0), (1, 5.0), (2, 15.0), (3, 45.0), (8, 3600.0)],
    ids=["none-yet", "first", "second", "third", "capped"],
)
def test_the_delay_grows_by_the_factor_up_to_the_cap(attempts: int, seconds: float) -> None:
    assert retry.RetryPolicy().delay(attempts) == seconds  # rand 0.5: no jitter


def test_jitter_stays_within_its_fraction_of_the_delay() -> None:
    policy = retry.RetryPolicy(base_delay=100, jitter=0.25)
    assert policy.delay(1, rand=0.0) == 75.0
    assert 124.9 < policy.delay(1, rand=0.9999) < 125.0
    assert retry.RetryPolicy(base_delay=100, jitter=0).delay(1, rand=0.0) == 100.0


def test_a_transient_error_is_tried_again_after_the_delay() -> None:
    policy = retry.RetryPolicy(base_delay=10, factor=2, jitter=0)
    assert policy.next_attempt(transient=True, attempts=2, now=NOW) == NOW + timedelta(seconds=20)


def test_a_permanent_error_or_spent_attempts_give_up() -> None:
    policy = retry.RetryPolicy(max_attempts=3)
    assert policy.next_attempt(transient=False, attempts=1, now=NOW, rand=0.5) is None
    assert policy.next_attempt(transient=True, attempts=3, now=NOW, rand=0.5) is None
    assert policy.next_attempt(transient=True, attempts=2, now=NOW, rand=0.5) is not None


def test_at_once_drops_the_wait_but_keeps_the_limit() -> None:
    policy = retry.RetryPolicy(base_delay=10, max_attempts=3).at_once()
    assert policy.next_attempt(transient=True, attempts=2, now=NOW, rand=0.9) == NOW
    assert policy.next_attempt(transient=True, attempts=3, now=NOW, rand=0.5) is None
    assert policy.next_attempt(transient=False, attempts=1, now=NOW, rand=0.5) is None
