"""The pipeline at a glance (``bridge.store.pipeline_reads``), on SQLite and PostgreSQL: the
queue by status and its oldest waiting job, the jobs in trouble, releases per state, the slots
with the Deferred releases behind them, the latest publication per area."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bridge import records
from bridge.store import pipeline_reads, queue, releases, retry

S = records.RolloutState
T0 = datetime(2026, 11, 2, 8, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def change(ticket: int, txn: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=S.UNVERIFIED, previous=S.SUBMITTED,
        actor="qc",
    )  # fmt: skip


def test_an_empty_database_reads_as_zeros(make_queue: Callable[..., queue.Queue]) -> None:
    engine = make_queue().engine
    figures = pipeline_reads.queue_figures(engine)
    assert set(figures.by_status.values()) == {0}
    assert set(figures.by_status) == {s.label for s in records.JobStatus}
    assert figures.oldest_queued_at is None and figures.oldest_queued_ticket is None
    assert set(pipeline_reads.releases_by_state(engine).values()) == {0}
    assert pipeline_reads.troubled_jobs(engine) == ()
    assert pipeline_reads.slots(engine) == ()
    assert pipeline_reads.last_publications(engine) == {}


def test_queue_figures_and_jobs_in_trouble(make_queue: Callable[..., queue.Queue]) -> None:
    clock = Clock()
    jobs = make_queue(clock=clock)
    policy = retry.RetryPolicy(max_attempts=2, jitter=0.0)
    for n in range(1, 6):
        jobs.enqueue(change(n, 100 + n))
        clock.advance(60)
    done, retrying, dead = jobs.claim("w", limit=3)
    assert jobs.complete(done.id, "w")
    jobs.fail(retrying, "w", "rsync: connection refused", transient=True, policy=policy)
    jobs.fail(dead, "w", "checksum mismatch", transient=False, policy=policy)

    figures = pipeline_reads.queue_figures(jobs.engine)
    assert figures.by_status == {"queued": 3, "running": 0, "done": 1, "failed": 1, "dead": 0}
    # The one waiting longest is the retried job, queued first of those still waiting.
    oldest = (figures.oldest_queued_ticket, figures.oldest_queued_at)
    assert oldest == (2, T0 + timedelta(seconds=60))
    troubled = pipeline_reads.troubled_jobs(jobs.engine)
    assert [(j.request.ticket_id, j.status.label) for j in troubled] == [
        (3, "failed"),
        (2, "queued"),
    ]
    assert troubled[1].last_error == "rsync: connection refused"
    assert [j.request.ticket_id for j in pipeline_reads.troubled_jobs(jobs.engine, limit=1)] == [3]


def test_releases_slots_and_publications(make_queue: Callable[..., queue.Queue]) -> None:
    clock = Clock()
    store = releases.ReleaseStore(make_queue().engine, clock=clock)
    for ticket, major in [(1, "UMD-5"), (2, "UMD-5"), (3, "UMD-5"), (4, "UMD-4"), (5, "UMD-4")]:
        store.ensure(ticket, state=S.SUBMITTED, major_release=major, emergency=ticket == 5)
    store.move(1, S.STAGE_ROLLOUT, transaction_id=11, actor="sr")
    assert store.take_slot("UMD-5", 1, emergency=False)
    clock.advance(3600)
    store.move(3, S.DEFERRED, transaction_id=13, actor="sr")
    clock.advance(60)
    store.move(2, S.DEFERRED, transaction_id=12, actor="sr")
    store.move(5, S.STAGE_ROLLOUT, transaction_id=15, actor="admin")
    assert store.take_slot("UMD-4", 5, emergency=True)
    store.set_repository_path(1, "stagerollout/UMD-5")
    clock.advance(60)
    store.set_repository_path(5, "stagerollout/UMD-4")
    store.set_repository_path(4, "unverified/umd-thing/1.0")

    by_state = pipeline_reads.releases_by_state(store.engine)
    assert {k: v for k, v in by_state.items() if v} == {
        "Submitted": 1,
        "StageRollout": 2,
        "Deferred": 2,
    }
    views = {v.major_release: v for v in pipeline_reads.slots(store.engine)}
    assert list(views) == ["UMD-4", "UMD-5"]
    assert [(h.ticket_id, h.emergency) for h in views["UMD-5"].holders] == [(1, False)]
    assert views["UMD-5"].holders[0].taken_at == T0
    # Oldest first: 3 was deferred an hour after the start, 2 a minute later.
    assert [(w.ticket_id, w.since) for w in views["UMD-5"].deferred] == [
        (3, T0 + timedelta(seconds=3600)),
        (2, T0 + timedelta(seconds=3660)),
    ]
    assert [(h.ticket_id, h.emergency) for h in views["UMD-4"].holders] == [(5, True)]
    assert views["UMD-4"].deferred == ()
    assert pipeline_reads.last_publications(store.engine) == {
        "stagerollout/UMD-4": T0 + timedelta(seconds=3720),
        "stagerollout/UMD-5": T0 + timedelta(seconds=3660),
        "unverified": T0 + timedelta(seconds=3720),  # every release's own area, as one
    }
