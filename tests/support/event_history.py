"""A realistic history written by the real writers (``Queue``, ``ReleaseStore``) on a fixed
clock, for the event log's checks: releases recorded, moved (through Failed and back),
published and removed, slots taken and freed; jobs claimed, retried, failed, re-run by hand,
dead-lettered, given back, done and still queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from bridge import records
from bridge.store import event_log, queue, releases, retry
from bridge.store import events as eventlog

S = records.RolloutState
K = eventlog.EventKind


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 24, 9, 0, 0)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True, kw_only=True)
class History:
    """What ``write`` made: its stores, and the ids tests look for."""

    queue: queue.Queue
    store: releases.ReleaseStore
    clock: FakeClock
    done_job: int
    dead_job: int
    rerun_job: int
    open_job: int


def change(
    ticket: int, txn: int, to: S, was: S, *, emergency: bool = False
) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=to, previous=was, actor="qc",
        emergency=emergency,
    )  # fmt: skip


def move(store: releases.ReleaseStore, ticket: int, was: S, to: S, *, txn: int,
         failed_target: S | None = None) -> None:  # fmt: skip
    """A move as the workflow records it: its event in the move's transaction."""
    kind = K.TRANSITION_FAILED if failed_target is not None else K.TRANSITION_DONE
    data: dict[str, object] = {"detail": f"{was.label} → {to.label}", "from": was.label,
                               "to": to.label, "asked": to.label, "actions": []}  # fmt: skip
    if failed_target is not None:
        data |= {"failed_target": failed_target.label, "error": "checksum mismatch"}
    store.move(ticket, to, transaction_id=txn, actor="qc", failed_target=failed_target,
               event=event_log.draft(kind, ticket_id=ticket, data=data))  # fmt: skip


def write(engine: sa.Engine, clock: FakeClock | None = None) -> History:
    clock = clock or FakeClock()
    q = queue.Queue(engine, clock=clock)
    store = releases.ReleaseStore(engine, clock=clock)
    policy = retry.RetryPolicy(base_delay=1, max_attempts=2, jitter=0)
    tick = clock.advance

    # Release 1: all the way to Production, through staged rollout.
    store.ensure(1, state=S.SUBMITTED, major_release="UMD-5", emergency=False,
                 entered_at=clock() - timedelta(hours=1, microseconds=250))  # fmt: skip
    tick()
    first = q.enqueue(change(1, 101, S.UNVERIFIED, S.SUBMITTED))
    (job,) = q.claim("w1")
    store.freeze_release_xml(1, sha256="a" * 64, attachment_id=9)
    store.mark_step(job.id, "sync", "3 files")
    store.set_repository_path(1, "unverified/umd5/1.0", published={"files": 3, "bytes": 10})
    move(store, 1, S.SUBMITTED, S.UNVERIFIED, txn=101)
    q.complete(job.id, "w1", job=job)
    tick()
    move(store, 1, S.UNVERIFIED, S.IN_VERIFICATION, txn=102)
    tick()
    assert store.take_slot("UMD-5", 1, emergency=False)
    store.set_repository_path(1, "stagerollout/umd5/1.0", published={"files": 3})
    move(store, 1, S.IN_VERIFICATION, S.STAGE_ROLLOUT, txn=103)
    tick(30)
    store.record_stage_report(1, at=clock())
    store.set_repository_path(1, "production/umd5/base", published={"files": 3})
    store.forget_areas(1, ["unverified/umd5/1.0", "stagerollout/umd5/1.0"])
    assert store.free_slot("UMD-5", 1)
    move(store, 1, S.STAGE_ROLLOUT, S.PRODUCTION, txn=104)
    tick()

    # Release 2: fails, is retried (back to where it failed), then rejected.
    store.ensure(2, state=S.SUBMITTED, major_release="UMD-5", emergency=False)
    tick()
    rerun = q.enqueue(change(2, 201, S.UNVERIFIED, S.SUBMITTED))
    (job,) = q.claim("w1")
    assert q.fail(job, "w1", "rsync timed out", transient=True, policy=policy) is not None
    tick(5)
    (job,) = q.claim("w2")  # automatic retry
    store.set_repository_path(2, "unverified/umd5/2.0", published={"files": 1})
    move(store, 2, S.SUBMITTED, S.FAILED, txn=201, failed_target=S.UNVERIFIED)
    assert q.fail(job, "w2", "checksum mismatch", transient=False, policy=policy) is not None
    tick()
    q.retry(rerun, actor="operator")  # a manual re-run
    (job,) = q.claim("w1")
    move(store, 2, S.FAILED, S.UNVERIFIED, txn=201)
    q.complete(job.id, "w1", job=job)
    tick()
    move(store, 2, S.UNVERIFIED, S.UNVERIFIED, txn=202)  # a move to where it is: no new stay
    store.forget_areas(2, ["unverified/umd5/2.0"])
    move(store, 2, S.UNVERIFIED, S.REJECTED, txn=203)
    tick()

    # Release 3: an emergency release, in staged rollout beside a regular one; its facts change.
    store.ensure(3, state=S.IN_VERIFICATION, major_release="UMD-6", emergency=True)
    store.update_facts(3, major_release="UMD-5", emergency=True)
    dead = q.enqueue(change(3, 301, S.STAGE_ROLLOUT, S.IN_VERIFICATION, emergency=True))
    for worker in ("w1", "w2"):
        (job,) = q.claim(worker)
        q.fail(job, worker, "RT unavailable", transient=True, policy=policy)
        tick(10)
    assert q.get(dead) is not None and q.get(dead).status is records.JobStatus.DEAD  # type: ignore[union-attr]
    assert store.take_slot("UMD-5", 3, emergency=True)
    store.set_repository_path(3, "stagerollout/umd5/3.0", published={"files": 2})
    move(store, 3, S.IN_VERIFICATION, S.STAGE_ROLLOUT, txn=302)
    tick()

    # Release 4: Deferred, behind release 3... and a job given back untouched, still queued.
    store.ensure(4, state=S.IN_VERIFICATION, major_release="UMD-5", emergency=False)
    move(store, 4, S.IN_VERIFICATION, S.DEFERRED, txn=401)
    open_job = q.enqueue(change(4, 402, S.STAGE_ROLLOUT, S.DEFERRED))
    (job,) = q.claim("w1")
    assert q.give_back(job.id, "w1")
    tick()
    return History(queue=q, store=store, clock=clock, done_job=first, dead_job=dead,
                   rerun_job=rerun, open_job=open_job)  # fmt: skip
