"""``rollout events`` on real databases (SQLite and PostgreSQL): filters, formats, --since-last
advancing its reader, and --follow as a real process that prints new events as they are
committed and exits cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import feedparser
import pytest
import sqlalchemy as sa

from bridge.store import database, event_feed
from repo_daemon import cli
from tests.support import events_fill, feed_story, paths
from tests.support.daemon_helpers import wait_for


@pytest.fixture
def engine(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> sa.Engine:
    for name in [k for k in os.environ if k.startswith("ROLLOUT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    engine = database.create_engine(db_url)
    feed_story.write_story(engine)
    yield engine
    engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(["events", *argv]) == 0
    return capsys.readouterr().out


def _ids(jsonl: str) -> list[int]:
    return [json.loads(line)["id"] for line in jsonl.splitlines()]


def test_filters_narrow_the_listing(engine: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert _ids(_run(capsys, "list", "--format", "jsonl")) == [1, 2, 3, 4, 5, 6, 7]
    assert _ids(_run(capsys, "--format", "jsonl", "--actor", "bob")) == [5]
    assert _ids(_run(capsys, "--format", "jsonl", "--cause", "manual_rerun")) == [5, 6, 7]
    assert _ids(_run(capsys, "--format", "jsonl", "--kind", "hook_refused")) == [4]
    assert _ids(_run(capsys, "--format", "jsonl", "--major-release", "UMD-5")) == [1, 2, 3, 5, 6, 7]
    assert _ids(_run(capsys, "--format", "jsonl", "--area", "unverified/UMD-5")) == [7]
    assert _ids(_run(capsys, "--format", "jsonl", "--ticket", "4242", "--limit", "2")) == [1, 2]
    window = ("--since", "2026-05-04T08:02", "--until", "2026-05-04T09:03Z")
    assert _ids(_run(capsys, "--format", "jsonl", *window)) == [3, 4, 5]


def test_csv_and_atom_come_out_parseable(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(csv.DictReader(io.StringIO(_run(capsys, "--format", "csv"), newline="")))
    assert [r["kind"] for r in rows][:3] == ["job_queued", "job_claimed", "transition_failed"]
    assert json.loads(rows[6]["data"])["area"] == "unverified/UMD-5/umd-ui/1.2"
    feed = feedparser.parse(_run(capsys, "--format", "atom", "--limit", "2").encode())
    assert not feed.bozo and feed.feed.title == "Rollout events"
    assert [e.title for e in feed.entries] == [
        "release_published #4242: published into unverified/UMD-5/umd-ui/1.2",
        "job_claimed #4242: claimed by repo1",
    ]


def test_since_last_shows_the_unseen_and_advances(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ids(_run(capsys, "--since-last", "ops", "--format", "jsonl", "--limit", "4")) == [
        1,
        2,
        3,
        4,
    ]
    assert event_feed.cursor(engine, "ops") == 4
    assert _ids(_run(capsys, "--since-last", "ops", "--format", "jsonl")) == [5, 6, 7]
    assert _run(capsys, "--since-last", "ops", "--format", "jsonl") == ""
    events_fill.fill(engine, 2, start=datetime(2026, 5, 5))
    assert _ids(_run(capsys, "--since-last", "ops", "--format", "jsonl")) == [8, 9]
    # Another reader has its own cursor, and filters apply to what it is shown.
    assert _ids(
        _run(capsys, "--since-last", "audit", "--kind", "job_claimed", "--format", "jsonl")
    ) == [2, 6, 9]  # 9: the filler's second event is a claim
    assert event_feed.cursor(engine, "audit") == 9


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--kind", "job_exploded"], "'job_exploded' is not one of"),
        (["--since", "soon"], "'soon' is not a time"),
        (["--since-last", "a b"], "is not a reader's name"),
        (["--follow", "--format", "atom"], "--follow prints events as they come"),
    ],
)
def test_bad_options_exit_2_saying_why(
    engine: sa.Engine, capsys: pytest.CaptureFixture[str], argv: list[str], words: str
) -> None:
    assert cli.main(["events", *argv]) == 2
    assert words in capsys.readouterr().err


class _Lines:
    """A process's standard output, read line by line in a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def done(self) -> None:
        self._thread.join(timeout=10)

    def ids(self) -> list[int]:
        return _ids("".join(self.lines))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_follow_prints_new_events_and_stops_cleanly_on_a_signal(
    engine: sa.Engine, db_url: str, signum: signal.Signals
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env.update(ROLLOUT_DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "repo_daemon", "events", "--follow", "--format", "jsonl",
         "--interval", "0.05", "--since-last", "tail"],
        cwd=paths.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out = _Lines(process)
        wait_for(lambda: out.ids() == [1, 2, 3, 4, 5, 6, 7], timeout=30, what="the story")
        events_fill.fill(engine, 3, start=datetime(2026, 5, 5))
        wait_for(lambda: out.ids()[7:] == [8, 9, 10], timeout=30, what="the new events")
        wait_for(lambda: event_feed.cursor(engine, "tail") == 10, timeout=10, what="the cursor")
        process.send_signal(signum)
        assert process.wait(timeout=30) == 0
        out.done()
        assert process.stderr is not None
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
