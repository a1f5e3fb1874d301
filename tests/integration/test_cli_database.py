"""The CLI against what a unit test may not touch: a real SQLite database, an RT port that
refuses connections. Moved out of tests/unit/repo_daemon/cli/test_cli.py (the unit tier needs
nothing but Python)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import database, queue, retry
from repo_daemon import cli
from repo_daemon.daemon import assemble as service


def test_unreachable_rt_exits_1_with_the_cause(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")  # discard port: nothing listens
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-topsecret")
    monkeypatch.setenv("ROLLOUT_RT_RETRIES", "0")
    assert cli.main(["tracker", "show", "1"]) == 1
    err = capsys.readouterr().err
    assert "could not connect to RT at http://127.0.0.1:9/" in err
    assert "topsecret" not in err


# -- the operator commands on a real SQLite database ----------------------------------------

NOW = datetime(2026, 11, 24, 12, 0, 0)


@pytest.fixture
def populated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> dict[str, int]:
    """A migrated database with a done, a failed, a dead and a queued job, at a fixed time."""
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-unused")
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["db", "upgrade"]) == 0
    url = database.default_url(tmp_path)
    assert capsys.readouterr().out == f"database {url} is at the newest schema\n"

    def fixed_queue(settings: settings_model.Settings) -> queue.Queue:
        return queue.Queue(database.create_engine(settings.database()), clock=lambda: NOW)

    monkeypatch.setattr(service, "open_queue", fixed_queue)
    engine = database.create_engine(url)
    q = queue.Queue(engine, clock=lambda: NOW)
    s = records.RolloutState
    ids = q.enqueue_many(
        [
            records.ReleaseRequest(ticket_id=41, transaction_id=1001, current=s.UNVERIFIED,
                                   previous=s.SUBMITTED, actor="qc"),
            records.ReleaseRequest(ticket_id=42, transaction_id=1002, current=s.UNVERIFIED,
                                   previous=s.SUBMITTED, actor="qc",
                                   source=records.JobSource.RECOVERED),
            records.ReleaseRequest(ticket_id=43, transaction_id=1003, current=s.STAGE_ROLLOUT,
                                   previous=s.IN_VERIFICATION, actor="sr", emergency=True),
            records.ReleaseRequest(ticket_id=41, transaction_id=1004, current=s.IN_VERIFICATION,
                                   previous=s.UNVERIFIED, actor="qc"),
        ]
    )  # fmt: skip
    done, failed, dead, waiting = (r.job_id for r in ids)
    claimed = {j.id: j for j in q.claim("vm:7", limit=3)}
    assert q.complete(done, "vm:7")
    q.fail(claimed[failed], "vm:7", "TrackerNotFound: get_ticket (ticket 42): RT has no such "
           "object", transient=False, policy=retry.RetryPolicy())  # fmt: skip
    q.fail(claimed[dead], "vm:7", "TrackerUnavailable: RT answered HTTP 503", transient=True,
           policy=retry.RetryPolicy(max_attempts=1))  # fmt: skip
    engine.dispose()
    return {"done": done, "failed": failed, "dead": dead, "queued": waiting}


def test_queue_list_prints_a_table_newest_first(
    populated: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["queue", "list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ID  TICKET   TXN  CHANGE                         STATUS  TRIES  SOURCE     "
        "SCHEDULED (UTC)      LAST ERROR",
        " 4      41  1004  Unverified → InVerification    queued      0  hook       "
        "2026-11-24 12:00:00",
        " 3      43  1003  InVerification → StageRollout  dead        1  hook       "
        "2026-11-24 12:00:00  TrackerUnavailable: RT answered HTTP 503",
        " 2      42  1002  Submitted → Unverified         failed      1  recovered  "
        "2026-11-24 12:00:00  TrackerNotFound: get_ticket (ticket 42): RT has no such obj…",
        " 1      41  1001  Submitted → Unverified         done        1  hook       "
        "2026-11-24 12:00:00",
    ]


def test_queue_list_filters_by_state_and_ticket(
    populated: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["queue", "list", "--state", "failed", "--state", "dead", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(j["id"], j["status"]) for j in listed] == [(3, "dead"), (2, "failed")]
    assert listed[0] == {
        "id": 3, "ticket_id": 43, "transaction_id": 1003, "field": "RolloutProgress",
        "previous": "InVerification",
        "current": "StageRollout", "emergency": True, "actor": "sr", "source": "hook",
        "status": "dead", "attempts": 1, "scheduled_at": "2026-11-24T12:00:00",
        "created_at": "2026-11-24T12:00:00", "locked_by": None, "locked_until": None,
        "finished_at": "2026-11-24T12:00:00",
        "last_error": "TrackerUnavailable: RT answered HTTP 503",
    }  # fmt: skip
    assert cli.main(["queue", "list", "--ticket", "41", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["ID", "4"]
    assert cli.main(["queue", "list", "--ticket", "999"]) == 0
    assert capsys.readouterr().out == "no jobs\n"
    assert cli.main(["queue", "list", "--state", "lost"]) == 2
    assert "'lost' is not one of" in capsys.readouterr().err


def test_queue_show_prints_the_job_and_its_events(
    populated: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["queue", "show", str(populated["dead"])]) == 0
    assert capsys.readouterr().out == (
        "job 3: ticket 43, InVerification → StageRollout\n"
        "  status:        dead (Dead-lettered after the last retry; an operator may retry it.)\n"
        "  attempts:      1\n"
        "  transaction:   1003 by sr, hook (Posted by RT's scrip.)\n"
        "  emergency:     yes\n"
        "  created:       2026-11-24 12:00:00 UTC\n"
        "  scheduled:     2026-11-24 12:00:00 UTC\n"
        "  locked by:     -\n"
        "  locked until:  -\n"
        "  finished:      2026-11-24 12:00:00 UTC\n"
        "  last error:    TrackerUnavailable: RT answered HTTP 503\n"
        "events:\n"
        "  2026-11-24 12:00:00  job_queued  queued InVerification → StageRollout\n"
        "  2026-11-24 12:00:00  job_claimed  attempt 1 taken by vm:7\n"
        "  2026-11-24 12:00:00  job_dead  attempt 1: TrackerUnavailable: RT answered HTTP 503\n"
    )
    assert cli.main(["queue", "show", str(populated["queued"]), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], [e["kind"] for e in shown["events"]]) == ("queued", ["job_queued"])
    assert cli.main(["queue", "show", "99"]) == 1
    assert capsys.readouterr().err == "error: there is no job 99\n"


def test_queue_retry_requeues_failed_and_dead_jobs_only(
    populated: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["queue", "retry", str(populated["dead"])]) == 0
    assert capsys.readouterr().out == (
        "job 3 (ticket 43, InVerification → StageRollout) queued again; it was dead\n"
    )
    assert cli.main(["queue", "retry", str(populated["failed"])]) == 0
    assert capsys.readouterr().out.endswith("queued again; it was failed\n")
    assert cli.main(["queue", "retry", str(populated["done"])]) == 1
    assert capsys.readouterr().err == (
        "error: job 1 is done; only failed or dead jobs can be retried\n"
    )
    assert cli.main(["queue", "retry", "99"]) == 1
    assert capsys.readouterr().err == "error: there is no job 99\n"
    assert cli.main(["queue", "show", "3", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["attempts"]) == ("queued", 0)
    assert [e["kind"] for e in shown["events"]] == [
        "job_queued", "job_claimed", "job_dead", "job_requeued",
    ]  # fmt: skip


def test_queue_stats_counts_per_state(
    populated: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["queue", "stats"]) == 0
    assert capsys.readouterr().out == (
        "STATE       JOBS\n"
        "queued         1\n"
        "running        0\n"
        "done           1\n"
        "failed         1\n"
        "dead           1\n"
        "due now        1\n"
        "oldest due   0 s\n"
    )
    assert cli.main(["queue", "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "queued": 1, "running": 0, "done": 1, "failed": 1, "dead": 1, "due": 1,
        "oldest_due_seconds": 0.0,
    }  # fmt: skip


def test_queue_commands_on_a_database_without_schema_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-unused")
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["queue", "stats"]) == 1
    assert "has no current schema; run `rollout db upgrade`" in capsys.readouterr().err


def test_queue_commands_need_no_rt_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["queue", "stats"]) == 0
    out = capsys.readouterr().out
    assert "queued" in out


def test_db_upgrade_creates_the_schema_and_can_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    url = database.default_url(tmp_path)
    engine = database.create_engine(url)
    try:
        assert not database.schema_is_current(engine)
        assert cli.main(["db", "upgrade"]) == 0
        assert database.schema_is_current(engine)
    finally:
        engine.dispose()
    assert cli.main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out == f"database {url} is at the newest schema\n" * 2


def test_a_schema_migrated_by_a_newer_version_is_refused_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older bridge meeting a newer schema says so and exits 1, no traceback, for the
    command that migrates and for one that only reads."""
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["db", "upgrade"]) == 0
    engine = database.create_engine(database.default_url(tmp_path))
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f00dfeed0001'"))
    finally:
        engine.dispose()
    capsys.readouterr()
    for argv in (["db", "upgrade"], ["queue", "stats"]):
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert "schema is at revision f00dfeed0001, which this version of the bridge" in err
        assert 'see docs/operations.md, "Upgrading"' in err
        assert "Traceback" not in err
