"""Reconciliation against the real RT 5 (the session's sandbox), on SQLite and PostgreSQL.

The sandbox's scrip posts every change to ``hook_listener``, which only records: nothing
reaches the bridge's queue, as if every hook had been lost. The sandbox is shared with other
tests, so everything here is filtered to this test's own tickets, and the cursor is set (by a
first run) before this test's changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge import records
from bridge.intake import reconcile
from bridge.rt_setup.sandbox import SandboxInfo
from bridge.settings import model as settings_model
from bridge.store import events, queue
from bridge.tracker.client import TrackerClient
from repo_daemon import cli
from repo_daemon.daemon import runner
from tests.support import tracker_processor
from tests.support.hook_listener import HookListener, ReceivedHook

pytestmark = pytest.mark.rt

QueueFactory = Callable[..., queue.Queue]
BRIDGE_USER = "rollout-bridge"


def _file(manager: TrackerClient, subject: str) -> int:
    return manager.create_ticket(
        "sw-rel", subject, "Please publish.", custom_fields={"AssociatedMajorRelease": "UMD-5"}
    )


def _rollout_changes(client: TrackerClient, tickets: set[int]) -> list[tuple[int, int, str, str]]:
    """(ticket, transaction, new, old) of every RolloutProgress change on ``tickets``, in order,
    read from each ticket's own history (an independent path from TransactionSQL)."""
    cf = str(client.custom_field_id("RolloutProgress", "sw-rel"))
    found = [
        (ticket, int(t["id"]), str(t["NewValue"]), str(t["OldValue"]))
        for ticket in tickets
        for t in client.transactions_of(ticket)
        if t["Type"] == "CustomField" and str(t["Field"]) == cf
    ]
    return sorted(found, key=lambda c: c[1])


def _jobs_of(q: queue.Queue, tickets: set[int]) -> list[records.Job]:
    return [j for j in reversed(q.list_jobs(limit=10_000)) if j.ticket_id in tickets]


def _late_hooks(hooks: HookListener, transactions: set[int]) -> list[records.ReleaseRequest]:
    """The hooks RT's scrip did send for ``transactions``, as the receiver would queue them."""
    bodies: dict[int, dict[str, Any]] = {}

    def mine(hook: ReceivedHook) -> bool:
        return int(hook.json()["transaction_id"]) in transactions

    while len(bodies) < len(transactions):
        body = hooks.wait_for(mine).json()
        bodies[int(body["transaction_id"])] = body
    return [
        records.ReleaseRequest(
            ticket_id=int(b["ticket_id"]),
            transaction_id=int(b["transaction_id"]),
            current=records.RolloutState.parse(b["current"]),
            previous=records.RolloutState.parse(b["previous"]),
            emergency=bool(b["emergency"]),
            actor=str(b["actor"]),
            source=records.JobSource.HOOK,
        )
        for _, b in sorted(bodies.items())
    ]


def test_lost_hooks_are_recovered_once_in_order_and_processed(
    rt_sandbox: SandboxInfo,
    hooks: HookListener,
    manager_client: TrackerClient,
    bridge_client: TrackerClient,
    make_queue: QueueFactory,
) -> None:
    q = make_queue()
    reconciler = reconcile.Reconciler(q, bridge_client, rt_sandbox.queue)
    first = reconciler.run()  # as a first run would: the cursor is set before our changes
    assert first.first_run and q.list_jobs() == []

    a, b = _file(manager_client, "Reconcile A"), _file(manager_client, "Reconcile B")
    mine = {a, b}
    manager_client.set_custom_fields(a, {"RolloutProgress": "Unverified"})
    manager_client.set_custom_fields(b, {"RolloutProgress": "Unverified"})
    manager_client.set_custom_fields(a, {"RolloutProgress": "InVerification"})
    expected = _rollout_changes(manager_client, mine)
    assert [(t, new, old) for t, _, new, old in expected] == [
        (a, "Unverified", "Submitted"),
        (b, "Unverified", "Submitted"),
        (a, "InVerification", "Unverified"),
    ]

    report = reconciler.run()

    jobs = _jobs_of(q, mine)
    assert [
        (j.ticket_id, j.request.transaction_id, j.request.current.label, j.request.previous.label)
        for j in jobs
    ] == expected
    assert [j.id for j in jobs] == sorted(j.id for j in jobs)  # queued in RT's order
    assert {(j.request.source, j.request.actor) for j in jobs} == {
        (records.JobSource.RECOVERED, "root")
    }
    assert set(report.queued) >= {j.id for j in jobs}
    assert report.cursor_after >= expected[-1][1]

    again = reconciler.run()
    assert again.queued == ()
    assert len(_jobs_of(q, mine)) == 3

    late = _late_hooks(hooks, {txn for _, txn, _, _ in expected})
    assert [r.created for r in q.enqueue_many(late)] == [False, False, False]
    assert [j.request.source for j in _jobs_of(q, mine)] == [records.JobSource.RECOVERED] * 3

    # A read-only processor reads each ticket from RT and records what it says now.
    processor = tracker_processor.TrackerProcessor(q, lambda: bridge_client)
    settings = settings_model.DaemonSettings(rt_bridge_user=BRIDGE_USER)
    drained = runner.Runner(q, processor, settings, worker="test:1").drain()
    assert drained.done >= 3
    assert {j.status for j in _jobs_of(q, mine)} == {records.JobStatus.DONE}
    processed = {
        e.job_id: e.detail
        for e in q.events(kind=events.EventKind.JOB_PROCESSED, limit=1000)
        if e.ticket_id in mine
    }
    assert processed == {
        jobs[0].id: f"ticket {a} is at RolloutProgress InVerification "
        "(change Submitted → Unverified by root, recovered)",
        jobs[1].id: f"ticket {b} is at RolloutProgress Unverified "
        "(change Submitted → Unverified by root, recovered)",
        jobs[2].id: f"ticket {a} is at RolloutProgress InVerification "
        "(change Unverified → InVerification by root, recovered)",
    }

    # A change the bridge made itself is recovered too, and then skipped, not processed.
    bridge_client.set_custom_fields(b, {"RolloutProgress": "InVerification"})
    (own,) = reconciler.run().queued
    own_job = q.get(own)
    assert own_job is not None and own_job.request.actor == BRIDGE_USER
    skipped = runner.Runner(q, processor, settings, worker="test:1").drain()
    assert (skipped.skipped, skipped.done) == (1, 0)
    (event,) = [e for e in q.events(kind=events.EventKind.JOB_SKIPPED_OWN_WRITE) if e.job_id == own]
    assert event.ticket_id == b


def test_rollout_reconcile_backfills_since_a_transaction(
    rt_sandbox: SandboxInfo,
    manager_client: TrackerClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ROLLOUT_RT_URL", rt_sandbox.web_url)
    monkeypatch.setenv("ROLLOUT_RT_TOKEN_FILE", rt_sandbox.bridge_token_file)
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(tmp_path))

    ticket = _file(manager_client, "Backfill")
    manager_client.set_custom_fields(ticket, {"RolloutProgress": "Unverified"})
    ((_, txn, _, _),) = _rollout_changes(manager_client, {ticket})

    # A first run queues nothing historical and says how to backfill.
    assert cli.main(["reconcile"]) == 0
    out = capsys.readouterr().out
    assert "first run: cursor set to transaction" in out
    assert "rollout reconcile --since TXN" in out

    assert cli.main(["reconcile", "--since", str(txn - 1)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"reconciliation: 1 change(s) after transaction {txn - 1}: 1 queued")
    assert cli.main(["queue", "list", "--ticket", str(ticket), "--json"]) == 0
    (job,) = json.loads(capsys.readouterr().out)
    assert (job["transaction_id"], job["source"], job["current"]) == (
        txn,
        "recovered",
        "Unverified",
    )

    assert cli.main(["reconcile", "--since", str(txn - 1)]) == 0  # again: nothing twice
    assert "0 queued as recovered, 1 already queued" in capsys.readouterr().out


def test_lost_hooks_of_the_other_fields_and_the_status_are_recovered_in_rts_order(
    rt_sandbox: SandboxInfo,
    manager_client: TrackerClient,
    bridge_client: TrackerClient,
    make_queue: QueueFactory,
) -> None:
    q = make_queue()
    reconciler = reconcile.Reconciler(q, bridge_client, rt_sandbox.queue)
    reconciler.run()  # the cursor is set before our changes
    ticket = _file(manager_client, "Reconcile fields")
    manager_client.set_custom_fields(ticket, {"RolloutProgress": "Unverified"})
    manager_client.set_custom_fields(ticket, {"EarlyAdopters": ["early-adopters"]})
    manager_client.set_custom_fields(ticket, {"Sync-URL": "rsync://elsewhere/x/"})  # not followed
    manager_client.set_custom_fields(ticket, {"StageRollout Report": "https://wiki/r"})
    manager_client.set_custom_fields(ticket, {"EmergencyRelease": "Yes"})
    manager_client.update_ticket(ticket, status="rejected")

    reconciler.run()

    jobs = _jobs_of(q, {ticket})
    assert [(j.request.field.label, j.request.before, j.request.after) for j in jobs] == [
        ("RolloutProgress", "Submitted", "Unverified"),
        ("EarlyAdopters", "", "early-adopters"),
        ("StageRollout Report", "", "https://wiki/r"),
        ("EmergencyRelease", "No", "Yes"),
        ("Status", "new", "rejected"),
    ]
    assert [j.request.transaction_id for j in jobs] == sorted(
        j.request.transaction_id for j in jobs
    )
    times = {
        int(t["id"]): history_times
        for t in manager_client.transactions_of(ticket)
        if (history_times := t.get("Created"))
    }
    for job in jobs:
        assert job.request.source is records.JobSource.RECOVERED
        assert job.request.changed_at is not None
        assert (
            job.request.changed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
            == times[job.request.transaction_id]
        )
