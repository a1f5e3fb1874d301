"""Issue 16's walk against the real RT 5: a release goes to Production through real people in
real groups, with one failed sync retried by the queue (the provider's real rsync daemon down),
one hook lost (the receiver down while RT's scrip posts) and recovered by reconciliation, and
one job dead-lettered and re-run by hand. Then ``rollout release show`` tells every attempt in
order with its cause, the audit feed since the walk began lists exactly what happened in order
with its actors, the rebuild check finds no difference, and the chain verifies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.intake import reconcile
from bridge.store import chain_check, rebuild, retry
from repo_daemon import cli
from repo_daemon import errors as daemon_errors
from repo_daemon.demo import rsync_source
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt

OPERATOR = "olga"


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bridge]:
    with running_bridge(tmp_path_factory.mktemp("event-walk")) as running:
        # Retries a fraction of a second apart (the real schedule waits minutes): two tries,
        # then the dead letter, as the harness's settings say.
        running.runner.policy = retry.RetryPolicy(base_delay=0.2, max_attempts=2)
        yield running


@pytest.fixture
def rollout(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rollout`` commands on the walk's database."""
    monkeypatch.setenv("ROLLOUT_DATABASE_URL", bridge.settings.database())
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(bridge.settings.data_dir))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert status in (0, 1), err
    return status, out


def _until_settled(bridge: Bridge, ticket: int, state: str, timeout: float = 60.0) -> None:
    """Drain until the ticket is in ``state`` and nothing is due (retries come due by
    themselves, a fraction of a second apart)."""
    deadline = time.monotonic() + timeout
    while True:
        bridge.drain()
        open_jobs = bridge.queue.stats()["queued"]
        if bridge.state(ticket) == state and open_jobs == 0:
            return
        assert time.monotonic() < deadline, (bridge.state(ticket), bridge.comments(ticket)[-1:])
        time.sleep(0.1)


def _walk(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """The walk; returns the ticket and the dead-lettered job that was re-run by hand."""
    major = "WALK-1"
    ticket = bridge.file_release(major)
    bridge.drain()

    # 1. The provider's rsync daemon is down when the sync runs: the try fails and the queue
    # retries it once the daemon is back (on the same port, the ticket's Sync-URL).
    port = bridge.rsync.port
    bridge.rsync.stop()
    bridge.as_user("manager1").set_custom_fields(ticket, {"RolloutProgress": "Unverified"})
    bridge.drain()
    (first,) = [j for j in bridge.queue.list_jobs(ticket_id=ticket) if j.attempts == 1]
    assert first.status.label == "queued" and "rsync" in (first.last_error or "")
    monkeypatch.setattr(rsync_source, "free_port", lambda: port)
    bridge.rsync.start()
    _until_settled(bridge, ticket, "Unverified")

    # 2. A hook lost: the receiver is down while qc1 moves the ticket; reconciliation finds
    # the change in RT's history and queues it.
    reconciler = reconcile.Reconciler(bridge.queue, bridge.manager, bridge.settings.queue)
    reconciler.run()  # the cursor: RT's history so far
    bridge.stop_receiver()
    bridge.as_user("qc1").set_custom_fields(ticket, {"RolloutProgress": "InVerification"})
    bridge.start_receiver()
    bridge.drain()
    assert bridge.manager.get_ticket(ticket).field("RolloutProgress") == "InVerification"
    assert bridge.store.get(ticket).state.label == "Unverified"  # type: ignore[union-attr]
    assert reconciler.run().queued
    _until_settled(bridge, ticket, "InVerification")

    bridge.move(ticket, "StageRollout", as_user="qc1")

    # 3. Production: the promotion fails twice (the disk is full: an error no real part gives
    # on demand), the job is dead-lettered, an operator re-runs it by hand once it is fixed.
    repository = bridge.processor.repository
    promote = repository.promote_to_production

    def full(*args: Any, **kwargs: Any) -> Any:
        raise daemon_errors.ProcessingFailed("no space left on device", transient=True)

    monkeypatch.setattr(repository, "promote_to_production", full)
    bridge.as_user("sr1").set_custom_fields(ticket, {"RolloutProgress": "Production"})
    _until_settled(bridge, ticket, "Failed")
    (dead,) = [j for j in bridge.queue.list_jobs(ticket_id=ticket) if j.status.label == "dead"]
    monkeypatch.setattr(repository, "promote_to_production", promote)
    assert cli.main(["queue", "retry", str(dead.id), "--by", OPERATOR]) == 0
    _until_settled(bridge, ticket, "Production")
    return ticket, dead.id


def test_the_walk_is_told_attempt_by_attempt_and_the_log_holds(
    bridge: Bridge,
    rollout: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    morning = datetime.now(UTC).replace(tzinfo=None)
    ticket, rerun = _walk(bridge, monkeypatch)
    capsys.readouterr()

    # The timeline: every change, every attempt numbered in order with its cause.
    status, out = _run(capsys, "release", "show", str(ticket), "--json")
    assert status == 0
    shown = json.loads(out)
    assert shown["state"] == "Production"
    # The people's moves (the bridge's own writes to the field come back as skipped changes).
    moves = [
        c
        for c in shown["changes"]
        if c["field"] == "RolloutProgress" and c["asked_by"] != "rollout-bridge"
    ]
    summary = [
        (c["after"], [(a["number"], a["cause"], a["asked_by"], a["end"]) for a in c["attempts"]])
        for c in moves
    ]
    assert summary == [
        ("Unverified", [
            (1, "hook", "manager1", "retry"), (2, "automatic_retry", "manager1", "done"),
        ]),
        ("InVerification", [(1, "reconciliation", "qc1", "done")]),
        ("StageRollout", [(1, "hook", "qc1", "done")]),
        ("Production", [
            (1, "hook", "sr1", "retry"), (2, "automatic_retry", "sr1", "dead"),
            (3, "manual_rerun", OPERATOR, "done"),
        ]),
    ]  # fmt: skip
    sync_failure = moves[0]["attempts"][0]
    assert sync_failure["failed_action"] == "sync_packages"
    assert "rsync" in sync_failure["error"]
    production = moves[-1]
    assert production["job_id"] == rerun
    assert "no space left on device" in production["attempts"][0]["error"]
    states = [s["state"] for s in shown["stays"]]
    assert states == [
        "Submitted", "Unverified", "InVerification", "StageRollout", "Failed", "Production",
    ]  # fmt: skip
    assert all(s["seconds"] is not None for s in shown["stays"])
    areas = [p["area"] for p in shown["publications"]]
    assert areas[0].startswith("unverified/") and "stagerollout/WALK-1" in areas
    assert any(a.startswith("production/WALK-1") for a in areas)
    assert shown["told"], "what the ticket was told is on the timeline"

    # The text says the same to a person.
    status, text = _run(capsys, "release", "show", str(ticket))
    assert status == 0
    assert text.index("automatic_retry") < text.index("reconciliation") < text.index("manual_rerun")

    # The audit feed since this morning: exactly the events written since, in order, with
    # their actors; the moves by the people who made them.
    status, out = _run(
        capsys, "events", "list", "--since", morning.isoformat(), "--format", "jsonl",
        "--limit", "100000",
    )  # fmt: skip
    assert status == 0
    feed = [json.loads(line) for line in out.splitlines()]
    ids = [e["id"] for e in feed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    every = bridge.queue.events(limit=100_000)
    since = sorted(e.id for e in every if e.at >= morning)
    assert ids == since
    moved = [
        (e["data"]["from"], e["data"]["to"], e["actor"], e["cause"])
        for e in feed
        if e["kind"] in ("transition_done", "transition_failed") and e["ticket_id"] == ticket
    ]
    assert moved == [
        ("Submitted", "Unverified", "manager1", "automatic_retry"),
        ("Unverified", "InVerification", "qc1", "reconciliation"),
        ("InVerification", "StageRollout", "qc1", "hook"),
        ("StageRollout", "Failed", "rollout-bridge", "automatic_retry"),
        ("Failed", "Production", "sr1", "manual_rerun"),
    ]
    rerun_by = [e["actor"] for e in feed if e["kind"] == "job_requeued"]
    assert rerun_by == [OPERATOR]

    # Status derived from the log agrees with the stored tables; the chain holds.
    assert rebuild.differences(bridge.queue.engine) == []
    assert chain_check.verify(bridge.queue.engine).broken is None
    status, out = _run(capsys, "events", "rebuild", "--check")
    assert status == 0 and "no difference" in out
    status, out = _run(capsys, "events", "verify")
    assert status == 0
