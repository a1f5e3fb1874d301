"""``rollout events verify|rebuild|prune`` on a real database (SQLite and PostgreSQL): exit
statuses, what they print, what retention keeps and what it exports before deleting."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from bridge.store import database, tables
from bridge.store import events as eventlog
from repo_daemon import cli
from tests.support import event_history

LOG = tables.event_log
K = eventlog.EventKind


@pytest.fixture
def engine(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", db_url)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path / "data"))
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def history(engine: sa.Engine) -> event_history.History:
    """Written long ago (2020), so today's retention cuts through it; with refusals."""
    made = event_history.write(engine, event_history.FakeClock(datetime(2020, 1, 6, 9)))
    made.queue.record_event(K.HOOK_REFUSED, ticket_id=70, detail="bad", needs_comment=True)
    for _ in range(2):  # commented: the older may go, the newer is ticket 71's newest event
        settled = made.queue.record_event(K.HOOK_REFUSED, ticket_id=71, detail="bad",
                                          needs_comment=True)  # fmt: skip
        made.queue.mark_commented(settled)
    return made


def _rows(engine: sa.Engine) -> dict[int, sa.RowMapping]:
    with engine.connect() as conn:
        return {int(r.id): r._mapping for r in conn.execute(sa.select(LOG).order_by(LOG.c.id))}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["events", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_verify_prints_the_head_or_names_the_first_broken_link(
    engine: sa.Engine, history: event_history.History, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _rows(engine)
    head = max(rows)
    code, out = _run(capsys, "verify")
    assert code == 0, out
    assert out == f"chain verified: {len(rows)} events\nhead: {head}:{rows[head]['hash']}\n"
    code, out = _run(capsys, "verify", "--anchor", f"{head}:{rows[head]['hash']}")
    assert (code, out.splitlines()[0]) == (0, f"chain verified: {len(rows)} events; anchor "
                                              f"{head} found")  # fmt: skip
    with engine.begin() as conn:
        conn.execute(LOG.update().where(LOG.c.id == 9).values(actor="mallory"))
    code, out = _run(capsys, "verify")
    assert code == 1
    assert out.startswith(f"chain broken at event 9 ({rows[9]['kind']}): edited: ")
    assert out.splitlines()[1] == f"8 events before it verified, up to 8:{rows[8]['hash']}"
    assert _run(capsys, "verify", "--anchor", "12:abc")[0] == 2  # not ID:HASH


def test_rebuild_check_says_no_difference_or_lists_them(
    engine: sa.Engine, history: event_history.History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "rebuild", "--check")
    assert (code, out) == (0, "no difference: 4 releases, 4 jobs and 1 staged-rollout place "
                              f"checked against {len(_rows(engine))} events\n")  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE releases SET state = 'Production' WHERE ticket_id = 3"))
    code, out = _run(capsys, "rebuild", "--check")
    assert code == 1
    assert out.splitlines()[1:] == ["  release 3 state: stored Production, rebuilt StageRollout"]
    assert _run(capsys, "rebuild")[0] == 2  # it only compares


def test_prune_dry_run_deletes_nothing_and_says_what_it_would(
    engine: sa.Engine,
    history: event_history.History,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    before = _rows(engine)
    code, out = _run(capsys, "prune", "--older-than", "30", "--dry-run")
    assert code == 0, out
    assert out.startswith("would delete ") and out.endswith("nothing deleted (dry run)\n")
    would, held = int(out.split()[2]), int(out.split("; ")[1].split()[0])
    assert would > 10 and held > 10 and would + held == len(before)
    assert _rows(engine) == before
    assert not (tmp_path / "data" / "event-exports").exists()


def test_prune_exports_first_keeps_what_is_held_and_leaves_a_verifiable_chain(
    engine: sa.Engine,
    history: event_history.History,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    before = _rows(engine)
    code, out = _run(capsys, "prune", "--older-than", "30", "--by", "ops")
    assert code == 0, out
    after = _rows(engine)
    gone = before.keys() - after.keys()
    assert out.splitlines()[0].startswith(f"deleted {len(gone)} events older than 30 days; ")
    # Exported before deletion, to the default place under the data directory: read back.
    exports = sorted((tmp_path / "data" / "event-exports").glob("events-*.jsonl.gz"))
    assert [f"exported to {p}" for p in exports] == out.splitlines()[1:]
    lines = [
        json.loads(line) for p in exports for line in gzip.decompress(p.read_bytes()).splitlines()
    ]
    assert {e["id"] for e in lines} == gone
    assert all(e["hash"] == before[e["id"]]["hash"] for e in lines)
    assert all(e["kind"] == before[e["id"]]["kind"] for e in lines)
    # What holds keeps: the refusal still to be commented, each release's newest event,
    # the state-bearing events of open releases (3 and 4) and of the open job, the records.
    kept = list(after.values())
    pending = next(r for r in before.values() if r["ticket_id"] == 70)
    assert pending["id"] in after
    assert [r["ticket_id"] for r in kept].count(71) == 1  # settled: the older one gone
    for ticket in {r["ticket_id"] for r in before.values() if r["ticket_id"] is not None}:
        newest = max(i for i, r in before.items() if r["ticket_id"] == ticket)
        assert newest in after, ticket
    state_kinds = {
        k.value
        for k in (K.RELEASE_RECORDED, K.TRANSITION_DONE, K.SLOT_TAKEN, K.RELEASE_PUBLISHED,
                  K.JOB_QUEUED, K.JOB_CLAIMED)
    }  # fmt: skip
    for i, r in before.items():
        open_one = r["ticket_id"] in (3, 4) or r["job_id"] == history.open_job
        if r["kind"] in state_kinds and open_one:
            assert i in after, (i, r["kind"])
    records = [r for r in kept if r["kind"] == K.EVENTS_PRUNED.value]
    assert records and all(r["actor"] == "ops" for r in records)
    assert _run(capsys, "verify")[0] == 0
    assert _run(capsys, "rebuild", "--check")[0] == 0
    # A second run finds nothing more, and deletes no record of the first.
    code, out = _run(capsys, "prune", "--older-than", "30")
    assert out.startswith("deleted 0 events") and _rows(engine).keys() >= after.keys()


def test_prune_by_kind_deletes_only_that_kind(
    engine: sa.Engine, history: event_history.History, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    before = _rows(engine)
    code, out = _run(capsys, "prune", "--older-than", "30", "--kind", "job_claimed",
                     "--kind", "action_done", "--export-dir", str(tmp_path / "x"))  # fmt: skip
    assert code == 0, out
    gone = before.keys() - _rows(engine).keys()
    assert gone and {before[i]["kind"] for i in gone} <= {"job_claimed", "action_done"}
    assert out.startswith(f"deleted {len(gone)} events older than 30 days (job_claimed, "
                          "action_done); ")  # fmt: skip
    assert list((tmp_path / "x").glob("events-*.jsonl.gz"))


def test_nothing_is_deleted_when_the_export_cannot_be_written(
    engine: sa.Engine, history: event_history.History, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    before = _rows(engine)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    code, out = _run(capsys, "prune", "--older-than", "30", "--export-dir", str(blocked / "x"))
    assert code == 1
    assert out == (f"error: cannot export events to {blocked / 'x'} (Not a directory); events "
                   "not exported were not deleted\n  caused by NotADirectoryError: [Errno 20] "
                   f"Not a directory: '{blocked / 'x'}'\n")  # fmt: skip
    assert _rows(engine) == before
