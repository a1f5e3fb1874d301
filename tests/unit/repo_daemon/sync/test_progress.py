"""Progress: the callback gets every update, the log at most one line per interval."""

from __future__ import annotations

import logging

import pytest

from repo_daemon.sync import progress


def test_progress_calls_back_and_logs_at_most_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[int, int | None, float]] = []
    report = progress.Progress(
        lambda *a: seen.append(a), total=100, label="sync x", log_interval=3600
    )
    with caplog.at_level(logging.INFO, logger="repo_daemon.sync.progress"):
        report.update(10, 5.0)
        report.add(20)
        report.log_interval = 0
        report.update(100, 1024.0**2)
    assert [s[:2] for s in seen] == [(10, 100), (30, 100), (100, 100)]
    assert seen[0][2] == 5.0 and seen[1][2] > 0
    assert [r.getMessage() for r in caplog.records] == [
        "sync x: 100 B of 100 B (100%) at 1.0 MiB/s"
    ]
