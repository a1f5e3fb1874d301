"""What this daemon process did with the jobs it claimed, as Prometheus metrics: jobs taken to
an outcome (done, skipped, retried, failed, dead, lost, unrecorded) and how long each one's
processing took, by the change it was (a histogram).

Process-local: each daemon counts its own, from its start (the queue's shared figures are read
from the database by ``repo_daemon.observability``). ``JOBS`` is the process's instance; the
runner counts into it unless given another (tests). Labels are bounded: an outcome is one of
``OUTCOMES``; a change is the state a RolloutProgress move asked for, or the name of the other
field that changed (``records.RolloutState`` / ``records.TrackedField``), never a ticket.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bridge import records

# The runner's outcomes of one job (``runner.DrainReport``'s fields), in the order they are
# looked for; a job released untouched (the daemon stopping) has none and is not counted.
OUTCOMES = ("done", "skipped", "retried", "failed", "dead", "lost", "unrecorded")
# Seconds: bookkeeping moves take milliseconds, a sync of a large release many minutes.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def outcome_of(report: object) -> str | None:
    """The outcome a one-job ``runner.DrainReport`` records, or None (released untouched)."""
    return next((name for name in OUTCOMES if getattr(report, name, 0)), None)


def change_of(request: records.ReleaseRequest) -> str:
    """The bounded name of a change: the state a move asked for, or the other field's name."""
    return request.current.label if request.is_move else request.field.label


def changes() -> tuple[str, ...]:
    """Every value ``change_of`` can give."""
    move = records.TrackedField.ROLLOUT_PROGRESS
    fields = (f.label for f in records.TrackedField if f is not move)
    return (*(s.label for s in records.RolloutState), *fields)


class JobMetrics(Collector):
    """The runner's metrics (a ``Collector``). Every outcome is present from the start, at 0."""

    def __init__(self) -> None:
        self.processed = Counter(
            "rollout_jobs_processed",
            "Jobs this daemon took to an outcome: done, skipped (the bridge's own write), "
            "retried (failed, a retry is scheduled), failed (permanent error), dead "
            "(dead-lettered), lost (lease taken over), unrecorded (the outcome could not be "
            "stored).",
            ["outcome"],
            registry=None,
        )
        self.duration = Histogram(
            "rollout_transition_duration_seconds",
            "How long this daemon took to process one job (one attempt), by the change: the "
            "state a RolloutProgress move asked for, or the other field that changed.",
            ["change"],
            buckets=BUCKETS,
            registry=None,
        )
        for outcome in OUTCOMES:
            self.processed.labels(outcome)

    def observe(self, job: records.Job, report: object, seconds: float) -> None:
        """One job's attempt ended with what ``report`` (a one-job ``DrainReport``) records,
        after ``seconds``."""
        outcome = outcome_of(report)
        if outcome is None:
            return
        self.processed.labels(outcome).inc()
        self.duration.labels(change_of(job.request)).observe(max(0.0, seconds))

    def collect(self) -> Iterable[Metric]:
        yield from self.processed.collect()
        yield from self.duration.collect()


JOBS = JobMetrics()
