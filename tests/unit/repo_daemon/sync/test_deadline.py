"""The sync's deadline: how long a release's sync may take, how it is told, and the watchdog
(a fake clock; the watchdog's timer with a deadline already passed)."""

from __future__ import annotations

import threading

import pytest

from repo_daemon.sync import deadline, errors, progress


def test_the_deadline_is_the_base_plus_the_declared_size_at_the_minimum_rate() -> None:
    assert deadline.allowed(0, base=900, min_rate=1024**2) == 900
    assert deadline.allowed(10 * 1024**3, base=900, min_rate=1024**2) == 900 + 10 * 1024
    assert deadline.allowed(-5, base=60, min_rate=1) == 60


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0.2, "1 s"), (3.00001, "3 s"), (119, "119 s"), (900, "15 min"), (7500, "2 h 5 min")],
)
def test_a_deadline_is_said_as_a_person_reads_it(seconds: float, said: str) -> None:
    assert deadline.describe_seconds(seconds) == said


def test_the_deadline_passes_with_the_clock_and_says_what_had_arrived() -> None:
    now = [100.0]
    limit = deadline.Deadline(60, declared_bytes=3 * 1024**2, min_rate=1024**2,
                              clock=lambda: now[0])  # fmt: skip
    limit.check("https://provider.example/r/")
    now[0] += 59.5
    assert limit.remaining() == pytest.approx(0.5)
    now[0] += 1
    assert limit.passed()
    report = progress.Progress(None, total=3 * 1024**2, label="sync")
    report.done = 1024
    with pytest.raises(errors.SyncDeadlinePassed) as caught:
        limit.check("https://provider.example/r/\x1b[2J", report)
    message = str(caught.value)
    assert message == (
        "the sync from https://provider.example/r/?[2J did not finish within its deadline of "
        "60 s (allowed for the 3.0 MiB release.xml declares at no less than 1.0 MiB/s); "
        "1.0 KiB of 3.0 MiB had been fetched. The transfer was stopped and its connection "
        "closed. Make the files available from a source that delivers them faster, then ask "
        "for the release to be tried again"
    )
    assert not caught.value.transient and caught.value.provider_can_fix


def test_the_watchdog_cuts_once_the_time_is_up_and_not_after_the_block() -> None:
    cut = threading.Event()
    passed = deadline.Deadline(0)
    with passed.watch(cut.set):
        assert cut.wait(10)
    assert passed.fired.is_set()

    never = threading.Event()
    later = deadline.Deadline(3600)
    with later.watch(never.set):
        pass
    assert not later.fired.is_set() and not never.is_set()
