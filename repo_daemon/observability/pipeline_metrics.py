"""The database's figures as Prometheus gauges, read at each scrape (a custom ``Collector``):
the queue by status and the age of its oldest waiting job, releases per state, each major
release's staged-rollout slot (holders, since when, Deferred releases behind it), the latest
publication per area, and each webhook subscription's state and deliveries.

Every process serving ``/metrics`` reads the same database, so each tells the same shared
truth (alert rules take ``max by`` over them). The reads are ``bridge.store.pipeline_reads``'s,
``metrics_reads``' (publications per place, deliveries per subscription, each aggregated in
the database so a scrape stays fast): no SQL of its own. Label values are
bounded by the settings (``labels``); ticket ids are never labels. When the database cannot be
read, ``rollout_database_up`` is 0 and the other gauges are left out of that scrape.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bridge.intake import log_limit
from bridge.settings import model as settings_model
from bridge.store import delivery_reads, metrics_reads, pipeline_reads
from repo_daemon.observability import labels

logger = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Now, naive UTC (as the database's times are)."""
    return datetime.now(UTC).replace(tzinfo=None)


def timestamp(at: datetime) -> float:
    """A naive UTC time as Unix seconds."""
    return at.replace(tzinfo=UTC).timestamp()


def _gauge(name: str, documentation: str, label_names: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(label_names))


class PipelineCollector(Collector):
    """The database's gauges for Prometheus, read from ``engine`` at every ``collect``; label
    values bounded by ``settings``; ``clock`` gives naive UTC (the ages' now)."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: settings_model.Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.bounds = labels.Bounds.from_settings(settings)
        self.disable_after = settings.webhooks.disable_after
        self.clock = clock
        self._trouble = log_limit.LimitedLog(
            logger, "/metrics: the database could not be read", interval=300.0,
            level=logging.WARNING,
        )  # fmt: skip

    def describe(self) -> Iterable[Metric]:
        """The families' names, without reading anything (for the registry's checks)."""
        return [family for family in self._families(read=False)]

    def collect(self) -> Iterable[Metric]:
        up = _gauge("rollout_database_up", "1 when this scrape could read the database, else 0.")
        try:
            families = list(self._families(read=True))
        except Exception as exc:  # a failing database must not fail the whole scrape
            self._trouble.note(f"{type(exc).__name__}: {str(exc)[:200]}")
            self._trouble.flush()
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    # -- the families ---------------------------------------------------------------------

    def _families(self, *, read: bool) -> Iterator[Metric]:
        now = self.clock()
        yield from self._queue(pipeline_reads.queue_figures(self.engine) if read else None, now)
        yield self._releases(pipeline_reads.releases_by_state(self.engine) if read else {})
        yield from self._slots(pipeline_reads.slots(self.engine) if read else ())
        yield self._publications(pipeline_reads.last_publications(self.engine) if read else {})
        yield from self._subscriptions(read, now)

    def _queue(
        self, figures: pipeline_reads.QueueFigures | None, now: datetime
    ) -> Iterator[Metric]:
        jobs = _gauge("rollout_queue_jobs", "Jobs in the queue, by status.", ["status"])
        oldest = _gauge(
            "rollout_queue_oldest_job_age_seconds",
            "Seconds since the oldest job still waiting (status queued, due or waiting for a "
            "retry) was queued; 0 when none waits.",
        )
        if figures is not None:
            for status, count in figures.by_status.items():
                jobs.add_metric([status], count)
            age = 0.0
            if figures.oldest_queued_at is not None:
                age = max(0.0, (now - figures.oldest_queued_at).total_seconds())
            oldest.add_metric([], age)
        yield jobs
        yield oldest

    def _releases(self, by_state: Mapping[str, int]) -> Metric:
        releases = _gauge("rollout_releases", "Releases the bridge knows, by state.", ["state"])
        for state, count in by_state.items():
            releases.add_metric([state], count)
        return releases

    def _slots(self, views: Iterable[pipeline_reads.SlotView]) -> Iterator[Metric]:
        holders = _gauge(
            "rollout_stage_slot_holders",
            "Releases holding a major release's staged-rollout slot (emergency: beside the "
            "regular holder).",
            ["major_release", "emergency"],
        )
        since = _gauge(
            "rollout_stage_slot_held_since_timestamp_seconds",
            "When the longest-held place in a major release's staged rollout was taken (Unix "
            "time); absent when nobody holds it.",
            ["major_release"],
        )
        deferred = _gauge(
            "rollout_stage_deferred_releases",
            "Releases Deferred, waiting for a major release's staged-rollout slot.",
            ["major_release"],
        )
        counts: dict[tuple[str, str], int] = defaultdict(int)
        waiting: dict[str, int] = defaultdict(int)
        taken: dict[str, datetime] = {}
        for major in (*sorted(self.bounds.major_releases), labels.OTHER):
            counts[(major, "false")] = counts[(major, "true")] = 0
            waiting[major] = 0
        for view in views:
            major = self.bounds.major_release(view.major_release)
            for holder in view.holders:
                counts[(major, "true" if holder.emergency else "false")] += 1
                if major not in taken or holder.taken_at < taken[major]:
                    taken[major] = holder.taken_at
            waiting[major] += len(view.deferred)
        for (major, emergency), count in counts.items():
            holders.add_metric([major, emergency], count)
        for major, at in sorted(taken.items()):
            since.add_metric([major], timestamp(at))
        for major, count in waiting.items():
            deferred.add_metric([major], count)
        yield holders
        yield since
        yield deferred

    def _publications(self, latest: Mapping[str, datetime]) -> Metric:
        family = _gauge(
            "rollout_last_publication_timestamp_seconds",
            "When a release was last published into an area (Unix time); only areas that "
            "had one. Areas: unverified, stagerollout/<major>, production/<major>/base|updates "
            "(configured major releases; other for the rest).",
            ["area"],
        )
        newest: dict[str, datetime] = {}
        for path, at in latest.items():
            area = self.bounds.area(path)
            if area not in newest or at > newest[area]:
                newest[area] = at
        for area, at in sorted(newest.items()):
            family.add_metric([area], timestamp(at))
        return family

    def _subscriptions(self, read: bool, now: datetime) -> Iterator[Metric]:
        enabled = _gauge(
            "rollout_webhook_subscription_enabled",
            "1 when a webhook subscription is enabled, 0 when disabled (by a person, 410 "
            "Gone, or failing past its budget).",
            ["subscription"],
        )
        pending = _gauge(
            "rollout_webhook_deliveries_pending",
            "Deliveries of a subscription not sent yet (pending or being sent).",
            ["subscription"],
        )
        failed = _gauge(
            "rollout_webhook_deliveries_failed",
            "Deliveries of a subscription that failed for good (their retries used up) and "
            "were not queued again.",
            ["subscription"],
        )
        budget = _gauge(
            "rollout_webhook_failure_budget_ratio",
            "How much of its failure budget a subscription's current spell of failures has "
            "used (1: disabled now); 0 when it is not failing.",
            ["subscription"],
        )
        counts = metrics_reads.delivery_counts(self.engine) if read else {}
        for name, found in counts.items():
            enabled.add_metric([name], 1 if found.enabled else 0)
            pending.add_metric([name], found.pending)
            failed.add_metric([name], found.failed)
            used = delivery_reads.budget_percent(found.failing_since, now, self.disable_after)
            budget.add_metric([name], (used or 0.0) / 100.0)
        yield enabled
        yield pending
        yield failed
        yield budget
