"""One kind of trouble logged at most once per interval; what is held back is counted and said
in one line by ``flush``."""

from __future__ import annotations

import logging

import pytest

from bridge.intake import log_limit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_is_one_line_now_and_one_line_after_the_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = log_limit.LimitedLog(
        logging.getLogger("test.limited"), "a client hung up", interval=10, clock=clock
    )
    caplog.set_level(logging.INFO, logger="test.limited")
    said = [log.note(f"client {n}") for n in range(100)]
    assert said == [True] + [False] * 99
    assert (log.total, log.held, log.flush_at) == (100, 99, 110.0)
    assert log.flush() is False  # the interval is not over yet
    clock.now = 110.0
    assert log.flush() is True
    assert log.flush() is False  # nothing held back any more
    assert [r.getMessage() for r in caplog.records] == [
        "a client hung up: client 0",
        "a client hung up: 99 more within 10 s (the latest: client 99)",
    ]
    assert log.flush_at is None


def test_after_a_quiet_interval_the_next_one_is_said_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    log = log_limit.LimitedLog(
        logging.getLogger("test.limited"), "trouble", interval=10, level=logging.WARNING,
        clock=clock,
    )  # fmt: skip
    assert log.note("first") is True
    clock.now += 10
    assert log.note("second") is True
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "trouble: first"),
        (logging.WARNING, "trouble: second"),
    ]
