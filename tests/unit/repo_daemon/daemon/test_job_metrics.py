"""The runner counts each job's outcome and observes how long it took, by its change."""

from __future__ import annotations

from datetime import datetime, timedelta

from bridge import errors, records, testing
from bridge.settings import model as settings_model
from repo_daemon.daemon import job_metrics, runner

S = records.RolloutState


def change(ticket: int, txn: int, current: records.RolloutState) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=current, previous=S.SUBMITTED, actor="qc"
    )


class Processor:
    def process(self, job: records.Job) -> None:
        if job.ticket_id == 2:
            raise errors.TrackerUnavailable("RT is down", operation="read")

    def gave_up(self, job: records.Job, message: str) -> None:
        pass

    def close(self) -> None:
        pass


def test_the_runner_counts_outcomes_and_observes_durations_by_change() -> None:
    clock = lambda: datetime(2026, 12, 1, 12, 0)  # noqa: E731
    jobs = testing.InMemoryQueue(clock=clock, lease=timedelta(seconds=60))
    jobs.enqueue(change(1, 11, S.UNVERIFIED))
    jobs.enqueue(change(2, 12, S.STAGE_ROLLOUT))
    early = records.ReleaseRequest(
        ticket_id=3, transaction_id=13, current=S.SUBMITTED, previous=S.SUBMITTED,
        field=records.TrackedField.EARLY_ADOPTERS, new_value="team-a",
    )  # fmt: skip
    jobs.enqueue(early)
    metrics = job_metrics.JobMetrics()
    run = runner.Runner(
        jobs, Processor(), settings_model.DaemonSettings(), worker="w", workers=1, batch=3,
        metrics=metrics,
    )  # fmt: skip
    report = run.drain()
    assert (report.done, report.retried) == (2, 1)
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in metrics.collect()
        for s in family.samples
    }
    processed = {
        dict(labels)["outcome"]: v
        for (name, labels), v in found.items()
        if name == "rollout_jobs_processed_total"
    }
    assert processed == {o: 0.0 for o in job_metrics.OUTCOMES} | {"done": 2.0, "retried": 1.0}
    counted = {
        dict(labels)["change"]: v
        for (name, labels), v in found.items()
        if name == "rollout_transition_duration_seconds_count"
    }
    assert counted == {"Unverified": 1.0, "StageRollout": 1.0, "EarlyAdopters": 1.0}
    assert set(counted) <= set(job_metrics.changes())


def test_a_job_released_untouched_is_not_counted() -> None:
    assert job_metrics.outcome_of(runner.DrainReport(released=1)) is None
    assert job_metrics.outcome_of(runner.DrainReport(dead=1)) == "dead"
