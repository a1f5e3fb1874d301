"""What the status pages show, read from the store into frozen views: the overview (the queue
by status, the jobs in trouble, releases per state, each major release's staged-rollout slot
with the Deferred releases behind it, the latest events, the webhook endpoints in trouble) and
one release (its timeline and attempts, the areas the bridge recorded, its files from the
frozen release.xml, the link to its RT ticket).

It holds no SQL of its own: the reads are ``bridge.store.pipeline_reads``, ``event_feed``,
``delivery_reads``, ``subscription_store``, ``release_events`` and ``releases``; the timeline is
``history.timeline``'s. It formats nothing (the templates do) and decides nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import (
    delivery_reads,
    event_feed,
    metrics_reads,
    pipeline_reads,
    release_events,
    releases,
    subscription_store,
    subscriptions,
)
from bridge.store import events as eventlog
from repo_daemon.errors import DaemonError
from repo_daemon.history import records as history
from repo_daemon.history import timeline
from repo_daemon.release_xml import model as release_model
from repo_daemon.release_xml import parse as release_xml_parse
from repo_daemon.release_xml import report as release_xml_report
from repo_daemon.workflow import steps

logger = logging.getLogger(__name__)

LATEST_EVENTS = 20
TROUBLED_JOBS = 20


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """A webhook subscription in trouble: disabled, failing now, or with deliveries given up."""

    name: str
    url: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    last_error: str | None
    pending: int  # deliveries waiting or being sent
    failed: int  # deliveries failed for good
    budget_percent: float | None  # the failing spell's share of the budget; None: not failing


@dataclass(frozen=True, kw_only=True)
class Overview:
    """The overview page's data, at ``now`` (naive UTC)."""

    now: datetime
    queue: pipeline_reads.QueueFigures
    troubled: tuple[records.Job, ...]
    releases: Mapping[str, int]
    slots: tuple[pipeline_reads.SlotView, ...]
    events: tuple[eventlog.Event, ...]  # newest first
    endpoints: tuple[Endpoint, ...]
    subscriptions: int  # how many there are, in trouble or not
    last_publications: Mapping[str, datetime]


def overview(engine: sa.Engine, settings: settings_model.Settings, *, now: datetime) -> Overview:
    """The overview as the store has it now."""
    all_subscriptions = subscription_store.SubscriptionStore(engine, clock=lambda: now).all()
    # Counted on the status index: the overview must stay fast however many deliveries are kept.
    counts = metrics_reads.delivery_counts(engine) if all_subscriptions else {}
    disable_after = settings.webhooks.disable_after
    return Overview(
        now=now,
        queue=pipeline_reads.queue_figures(engine),
        troubled=pipeline_reads.troubled_jobs(engine, limit=TROUBLED_JOBS),
        releases=pipeline_reads.releases_by_state(engine),
        slots=pipeline_reads.slots(engine),
        events=tuple(
            reversed(event_feed.latest(engine, event_feed.Filters(), limit=LATEST_EVENTS))
        ),
        endpoints=tuple(
            _endpoint(s, counts.get(s.name), now=now, disable_after=disable_after)
            for s in all_subscriptions
            if _in_trouble(s, counts.get(s.name))
        ),
        subscriptions=len(all_subscriptions),
        last_publications=pipeline_reads.last_publications(engine),
    )


def _in_trouble(
    sub: subscriptions.Subscription, counts: metrics_reads.DeliveryCounts | None
) -> bool:
    return (
        not sub.enabled
        or sub.failing_since is not None
        or (counts is not None and counts.failed > 0)
    )


def _endpoint(
    sub: subscriptions.Subscription,
    counts: metrics_reads.DeliveryCounts | None,
    *,
    now: datetime,
    disable_after: float,
) -> Endpoint:
    return Endpoint(
        name=sub.name,
        url=sub.url,
        enabled=sub.enabled,
        disabled_reason=sub.disabled_reason,
        failing_since=sub.failing_since,
        last_error=sub.last_error,
        pending=counts.pending if counts else 0,
        failed=counts.failed if counts else 0,
        budget_percent=delivery_reads.budget_percent(sub.failing_since, now, disable_after),
    )


# -- one release --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Files:
    """The release's files as its frozen release.xml lists them, or why they are not shown."""

    info: release_model.ReleaseInfo | None
    missing: str | None = None  # why there is no list


@dataclass(frozen=True, kw_only=True)
class ReleasePage:
    """One release's page data."""

    ticket_id: int
    now: datetime
    record: releases.Release | None  # the bridge's record (None: only events know it)
    timeline: history.Timeline
    areas: tuple[str, ...]  # published and not taken out again, oldest first
    files: Files
    ticket_url: str | None


class UnknownRelease(DaemonError):
    """The bridge knows nothing of this ticket."""


def release(
    engine: sa.Engine, settings: settings_model.Settings, ticket_id: int, *, now: datetime
) -> ReleasePage:
    """Release ``ticket_id``'s page. Raises ``UnknownRelease`` when the bridge has no events
    and no record of it."""
    store = releases.ReleaseStore(engine, clock=lambda: now)
    record = store.get(ticket_id)
    try:
        events = release_events.events_of(engine, ticket_id)
    except release_events.NoEvents:
        raise UnknownRelease(f"the bridge has no release for ticket {ticket_id}") from None
    return ReleasePage(
        ticket_id=ticket_id,
        now=now,
        record=record,
        timeline=timeline.build(ticket_id, events, now=now),
        areas=store.published_areas(ticket_id) if record is not None else (),
        files=_files(settings, ticket_id, record),
        ticket_url=ticket_url(settings, ticket_id),
    )


def ticket_url(settings: settings_model.Settings, ticket_id: int) -> str | None:
    """The ticket's page in RT (None when no RT is configured)."""
    base = settings.tracker.url
    if not base:
        return None
    return f"{base.rstrip('/')}/Ticket/Display.html?id={int(ticket_id)}"


def release_xml_path(settings: settings_model.Settings, ticket_id: int) -> Path:
    """Where the daemon keeps the frozen release.xml (``steps.RepositoryWork``'s layout)."""
    return settings.data_dir.resolve() / "releases" / str(int(ticket_id)) / steps.RELEASE_XML


def _files(
    settings: settings_model.Settings, ticket_id: int, record: releases.Release | None
) -> Files:
    if record is None or record.release_sha256 is None:
        return Files(info=None, missing="release.xml was not frozen for this release (yet)")
    path = release_xml_path(settings, ticket_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Files(info=None, missing="the frozen release.xml is not on this host")
    except OSError as exc:
        logger.warning("cannot read %s: %s", path, exc, extra={"action": "status_page"})
        return Files(info=None, missing="the frozen release.xml cannot be read here")
    try:
        info = release_xml_parse.parse_release(data, source=str(path))
    except release_xml_report.ReleaseInvalid as exc:  # shown as such, not a 500
        logger.warning("frozen %s does not parse: %s", path, exc, extra={"action": "status_page"})
        return Files(info=None, missing="the frozen release.xml does not parse")
    return Files(info=info)
