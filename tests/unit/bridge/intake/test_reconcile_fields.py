"""Reconciliation finds every followed change whose hook never came — RolloutProgress, the
other fields and the ticket's status — in RT's order, with the fakes of ``bridge.testing``; a
queue without a field yet (an RT not re-initialised) is still reconciled."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from bridge import records, testing
from bridge.intake import reconcile

F = records.TrackedField
FIELDS = {"RolloutProgress": "Submitted", "EarlyAdopters": (), "EmergencyRelease": "No"}


def _world() -> tuple[testing.FakeTracker, testing.InMemoryQueue, reconcile.Reconciler]:
    rt = testing.FakeTracker()
    rt.add_ticket(1, fields=FIELDS)
    jobs = testing.InMemoryQueue()
    reconciler = reconcile.Reconciler(jobs, rt, "sw-rel")  # type: ignore[arg-type]
    return rt, jobs, reconciler


def _queued(jobs: testing.InMemoryQueue) -> list[tuple[int, str, str, str, str]]:
    return [
        (j.request.transaction_id, j.request.field.label, j.request.before, j.request.after,
         j.request.source.label)
        for j in reversed(jobs.list_jobs(limit=100))
    ]  # fmt: skip


def test_missed_changes_of_every_followed_field_are_queued_in_rts_order() -> None:
    rt, jobs, reconciler = _world()
    reconciler.run()  # the first run only sets the cursor
    moved = rt.change_field(1, "RolloutProgress", "Unverified", actor="qc1")
    accepted = rt.add_value(1, "EarlyAdopters", "desy", actor="site1")
    emergency = rt.change_field(1, "EmergencyRelease", "Yes", actor="mgr")
    rt.change_field(1, "Sync-URL", "rsync://elsewhere/", actor="provider")  # not followed
    resolved = rt.change_status(1, "resolved", actor="mgr")
    report = reconciler.run()
    assert (report.found, len(report.queued)) == (4, 4)
    assert _queued(jobs) == [
        (moved, "RolloutProgress", "Submitted", "Unverified", "recovered"),
        (accepted, "EarlyAdopters", "", "desy", "recovered"),
        (emergency, "EmergencyRelease", "No", "Yes", "recovered"),
        (resolved, "Status", "new", "resolved", "recovered"),
    ]
    assert reconciler.cursor() == resolved


def test_a_field_the_queue_lacks_is_left_out_and_the_others_reconciled() -> None:
    rt, jobs, reconciler = _world()
    rt.missing_fields.add("EarlyAdopters")
    reconciler.run()
    rt.add_value(1, "EarlyAdopters", "desy", actor="site1")
    resolved = rt.change_status(1, "resolved", actor="mgr")
    reconciler.run()
    assert [(t, f) for t, f, *_ in _queued(jobs)] == [(resolved, "Status")]


def test_rts_time_of_a_change_travels_with_it() -> None:
    rt, jobs, reconciler = _world()
    reconciler.run()
    txn = rt.add_value(1, "EarlyAdopters", "desy", actor="site1")
    rt.history[-1] = dataclasses.replace(rt.history[-1], created="2026-12-03T10:30:00Z")
    reconciler.run()
    (job,) = jobs.list_jobs()
    assert (job.request.transaction_id, job.request.changed_at) == (
        txn,
        datetime(2026, 12, 3, 10, 30, 0),
    )
