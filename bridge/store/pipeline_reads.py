"""The pipeline at a glance: the queue by status and its oldest waiting job, the jobs in
trouble, releases per state, each major release's staged-rollout slot with the Deferred
releases behind it, and the latest publication per area.

Shared by the status pages and Prometheus's ``/metrics``, so both tell the same story. Every
read is one short statement on an index (they run at each scrape and page view); nothing here
writes or decides anything. Times are naive UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from bridge import records
from bridge.store import jobs_read, tables

UNVERIFIED = "unverified"  # the kind of area each release has one of (``unverified/<dist>/<v>``)


@dataclass(frozen=True, kw_only=True)
class QueueFigures:
    """Jobs per status (every status, zeros included) and the oldest job still waiting."""

    by_status: Mapping[str, int]
    oldest_queued_at: datetime | None  # created_at of the oldest job in status queued
    oldest_queued_ticket: int | None


@dataclass(frozen=True, kw_only=True)
class SlotHolder:
    ticket_id: int
    emergency: bool
    taken_at: datetime


@dataclass(frozen=True, kw_only=True)
class Waiting:
    """A Deferred release and since when it waits."""

    ticket_id: int
    since: datetime


@dataclass(frozen=True, kw_only=True)
class SlotView:
    """A major release's staged-rollout place: its holders (the regular one first) and the
    Deferred releases waiting for it, oldest first."""

    major_release: str
    holders: tuple[SlotHolder, ...]
    deferred: tuple[Waiting, ...]


def queue_figures(engine: sa.Engine) -> QueueFigures:
    """How many jobs are in each status, and the oldest one waiting (queued, due or not)."""
    jobs = tables.jobs
    queued = records.JobStatus.QUEUED.label
    with engine.connect() as conn:
        counts: dict[str, int] = {
            str(status): int(n)
            for status, n in conn.execute(
                sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
            ).all()
        }
        oldest = conn.execute(
            sa.select(jobs.c.created_at, jobs.c.ticket_id)
            .where(jobs.c.status == queued)
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(1)
        ).first()
    return QueueFigures(
        by_status={s.label: int(counts.get(s.label, 0)) for s in records.JobStatus},
        oldest_queued_at=oldest.created_at if oldest is not None else None,
        oldest_queued_ticket=int(oldest.ticket_id) if oldest is not None else None,
    )


def troubled_jobs(engine: sa.Engine, *, limit: int = 20) -> tuple[records.Job, ...]:
    """Jobs in trouble, newest first: waiting for a retry after a failed attempt, stopped by a
    permanent error (failed) or dead-lettered."""
    jobs = tables.jobs
    stopped = [records.JobStatus.FAILED.label, records.JobStatus.DEAD.label]
    newest = jobs.c.id.desc()
    # Two reads on the status index rather than one OR, which would walk every done job.
    with engine.connect() as conn:
        rows = [
            *conn.execute(
                sa.select(jobs).where(jobs.c.status.in_(stopped)).order_by(newest).limit(limit)
            ).all(),
            *conn.execute(
                sa.select(jobs)
                .where(
                    jobs.c.status == records.JobStatus.QUEUED.label,
                    jobs.c.last_error.is_not(None),
                )
                .order_by(newest)
                .limit(limit)
            ).all(),
        ]
    rows.sort(key=lambda r: -int(r.id))
    return tuple(jobs_read.job_of(r) for r in rows[:limit])


def releases_by_state(engine: sa.Engine) -> Mapping[str, int]:
    """How many releases are in each state (every state, zeros included)."""
    rel = tables.releases
    with engine.connect() as conn:
        counts: dict[str, int] = {
            str(state): int(n)
            for state, n in conn.execute(
                sa.select(rel.c.state, sa.func.count()).group_by(rel.c.state)
            ).all()
        }
    return {s.label: int(counts.get(s.label, 0)) for s in records.RolloutState}


def slots(engine: sa.Engine) -> tuple[SlotView, ...]:
    """Every major release with a release in staged rollout or one Deferred, by name."""
    rel, hist, held = tables.releases, tables.state_history, tables.stage_slots
    with engine.connect() as conn:
        holders = conn.execute(
            sa.select(held.c.major_release, held.c.ticket_id, held.c.emergency, held.c.taken_at)
            .order_by(held.c.major_release, held.c.emergency, held.c.taken_at)
        ).all()  # fmt: skip
        waiting = conn.execute(
            sa.select(rel.c.major_release, rel.c.ticket_id, hist.c.entered_at)
            .join(hist, sa.and_(hist.c.ticket_id == rel.c.ticket_id, hist.c.left_at.is_(None)))
            .where(rel.c.state == records.RolloutState.DEFERRED.label)
            .order_by(hist.c.entered_at, rel.c.ticket_id)
        ).all()
    by_major: dict[str, list[SlotHolder]] = defaultdict(list)
    behind: dict[str, list[Waiting]] = defaultdict(list)
    for row in holders:
        by_major[str(row.major_release)].append(
            SlotHolder(
                ticket_id=int(row.ticket_id), emergency=bool(row.emergency), taken_at=row.taken_at
            )
        )
    for wait in waiting:
        behind[str(wait.major_release or "")].append(
            Waiting(ticket_id=int(wait.ticket_id), since=wait.entered_at)
        )
    return tuple(
        SlotView(
            major_release=major,
            holders=tuple(by_major.get(major, ())),
            deferred=tuple(behind.get(major, ())),
        )
        for major in sorted(set(by_major) | set(behind))
    )


def last_publications(engine: sa.Engine) -> Mapping[str, datetime]:
    """Each area the bridge recorded a publication into (as in ``release_areas``) → the latest
    time a release was published there; every release's own ``unverified/…`` area counts as
    one ``unverified`` (else 10,000 releases would be 10,000 rows), aggregated in the database."""
    held = tables.release_areas
    place = sa.case((held.c.area.startswith(f"{UNVERIFIED}/"), UNVERIFIED), else_=held.c.area)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(place.label("place"), sa.func.max(held.c.published_at)).group_by("place")
        ).all()
    return {str(area): at for area, at in sorted(rows)}
