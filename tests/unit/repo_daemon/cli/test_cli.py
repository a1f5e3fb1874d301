"""The ``rollout`` command explains itself and maps outcomes to exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
import pytest

from bridge import records
from bridge.rt_setup import initialdata
from bridge.settings import model as settings_model
from bridge.store import database, queue
from repo_daemon import cli
from repo_daemon.daemon import assemble as service
from tests.support import paths


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


ALL_COMMANDS = [(), *_commands(cli.cli)]


def test_the_command_tree_has_what_the_docs_promise() -> None:
    names = {" ".join(c) for c in ALL_COMMANDS}
    expected = {"tracker init", "tracker initdata", "tracker show", "tracker sandbox up",
                "tracker sandbox down", "tracker sandbox status", "demo", "daemon", "serve",
                "run", "reconcile", "db upgrade", "queue list", "queue show", "queue retry",
                "queue stats"}  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "rollout")
def test_every_command_explains_itself(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: rollout {' '.join(path)}".rstrip())
    command: click.Command = cli.cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    summary = (command.help or "").strip()
    assert len(summary) > 20, f"`rollout {' '.join(path)}` has no real description"
    assert "".join(summary.split("\n")[0].split()) in "".join(out.split())  # wrapping aside
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"option {param.opts} of `rollout {' '.join(path)}` has no help"


def test_bad_configuration_exits_2_and_lists_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tracker", "show", "1"]) == 2
    err = capsys.readouterr().err
    assert "rt_url is not set (ROLLOUT_RT_URL)" in err
    assert "no RT credentials" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tracker", "show", "not-a-number"]) == 2
    assert "not a valid integer" in capsys.readouterr().err


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


def test_initdata_prints_the_shipped_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tracker", "initdata"]) == 0
    assert capsys.readouterr().out == initialdata.render("sw-rel")
    out = tmp_path / "data.pl"
    assert cli.main(["tracker", "initdata", "--queue", "releases", "-o", str(out)]) == 0
    assert "Name => 'releases'" in out.read_text()


def test_a_stopped_sandbox_status_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["tracker", "sandbox", "status", "--dir", str(tmp_path)]) == 1
    assert f"no sandbox in {tmp_path}" in capsys.readouterr().out


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
           "object", transient=False, policy=queue.RetryPolicy())  # fmt: skip
    q.fail(claimed[dead], "vm:7", "TrackerUnavailable: RT answered HTTP 503", transient=True,
           policy=queue.RetryPolicy(max_attempts=1))  # fmt: skip
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
        "id": 3, "ticket_id": 43, "transaction_id": 1003, "previous": "InVerification",
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
        "  2026-11-24 12:00:00  job_dead  attempt 1: TrackerUnavailable: RT answered HTTP 503\n"
    )
    assert cli.main(["queue", "show", str(populated["queued"]), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["status"], shown["events"]) == ("queued", [])
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
    assert [e["kind"] for e in shown["events"]] == ["job_dead", "job_requeued"]


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


def test_a_bad_processor_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_RT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("ROLLOUT_RT_TOKEN", "1-2-unused")
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["daemon", "--processor", "no_such_module_xyz:make"]) == 2
    assert "Invalid value for '--processor': cannot import 'no_such_module_xyz'" in (
        capsys.readouterr().err
    )


def test_queue_commands_need_no_rt_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))
    assert cli.main(["db", "upgrade"]) == 0
    assert cli.main(["queue", "stats"]) == 0
    out = capsys.readouterr().out
    assert "queued" in out


def test_workflow_show_prints_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["workflow", "show", "--format", "mermaid"]) == 0
    assert capsys.readouterr().out.startswith("stateDiagram-v2\n")
    assert cli.main(["workflow", "show", "--template", "direct"]) == 0
    assert "workflow direct:" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ninitial = "Submitted"\nterminal = []\ntransitions = ["nonsense"]\n'
        '[states]\nSubmitted = "new"\n'
    )
    assert cli.main(["workflow", "show", "--file", str(bad)]) == 2
    assert "row 1: cannot read 'nonsense'" in capsys.readouterr().err


FIXTURES = paths.ROOT / "fixtures"


def test_release_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["release", "validate", str(FIXTURES / "release_valid.xml")]) == 0
    out = capsys.readouterr().out
    assert "arc-ce 7.1.2" in out and "4 packages, 3,453,638 bytes" in out
    assert cli.main(["release", "validate", str(FIXTURES / "release_dotdot_path.xml")]) == 1
    assert "contains '..'" in capsys.readouterr().err
    assert cli.main(["release", "validate", str(tmp_path / "missing.xml")]) == 1
    assert "release.xml is invalid" in capsys.readouterr().err


def test_repo_gc_on_an_empty_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "gc"]) == 0
    assert "removed 0 pool files" in capsys.readouterr().out


def test_repo_prints_nginx_and_rsyncd_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROLLOUT_REPO_ROOT", str(tmp_path / "repo"))
    assert cli.main(["repo", "nginx-conf", "--listen", "0.0.0.0:80"]) == 0
    nginx = capsys.readouterr().out
    assert "listen 0.0.0.0:80" in nginx and str(tmp_path / "repo") in nginx
    assert cli.main(["repo", "rsyncd-conf", "--port", "8873"]) == 0
    rsyncd = capsys.readouterr().out
    assert "port = 8873" in rsyncd and "read only = yes" in rsyncd
