"""The bridge's records of releases: where each release is, when it entered and left each
state, who holds each major release's staged-rollout slot, and the finished steps of jobs.

All SQL about releases lives here; decisions live in ``repo_daemon.workflow``. Times are naive
UTC. A move closes the open state span and opens the next in one transaction, so the history
never has a gap or two open spans (a unique index guards the latter).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.store import event_log, stage_slots, tables, text
from bridge.store import events as eventlog
from bridge.store.queue import Clock, utcnow

logger = logging.getLogger(__name__)

# Checkpoints of what a job did to tell of its failure start with this; a manual re-run of the
# job forgets them (``queue.Queue.retry``) so its new outcome is told in full.
FAILURE_STEP_PREFIX = "failed:"


@dataclass(frozen=True, kw_only=True)
class Release:
    """The bridge's view of one release (one ticket)."""

    ticket_id: int
    state: records.RolloutState
    major_release: str | None
    emergency: bool
    failed_target: records.RolloutState | None
    last_transaction_id: int | None
    updated_at: datetime
    release_sha256: str | None = None
    release_attachment_id: int | None = None
    repository_path: str | None = None
    stage_report_at: datetime | None = None  # when the StageRollout Report was first filled in


@dataclass(frozen=True, kw_only=True)
class StateSpan:
    """A stay in one state; ``left_at`` is None for the current one."""

    state: records.RolloutState
    entered_at: datetime
    left_at: datetime | None
    transaction_id: int | None
    actor: str

    def seconds(self, now: datetime) -> float:
        """How long the stay lasted (or has lasted so far)."""
        return ((self.left_at or now) - self.entered_at).total_seconds()


def _release(row: sa.Row[Any]) -> Release:
    m = row._mapping
    return Release(
        ticket_id=int(m["ticket_id"]),
        state=records.RolloutState.parse(m["state"]),
        major_release=m["major_release"],
        emergency=bool(m["emergency"]),
        failed_target=records.RolloutState.parse(m["failed_target"])
        if m["failed_target"]
        else None,
        last_transaction_id=m["last_transaction_id"],
        updated_at=m["updated_at"],
        release_sha256=m["release_sha256"],
        release_attachment_id=m["release_attachment_id"],
        repository_path=m["repository_path"],
        stage_report_at=m["stage_report_at"],
    )


class ReleaseStore(stage_slots.StageSlots):
    """Release records on one database engine (the same one as the queue)."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    # -- releases and their history -----------------------------------------------------

    def get(self, ticket_id: int) -> Release | None:
        """The release of ``ticket_id``, or None when the bridge has not seen it yet."""
        rel = tables.releases
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(rel).where(rel.c.ticket_id == ticket_id)).first()
        return _release(row) if row is not None else None

    def ensure(
        self,
        ticket_id: int,
        *,
        state: records.RolloutState,
        major_release: str | None,
        emergency: bool,
        entered_at: datetime | None = None,
    ) -> Release:
        """The release of ``ticket_id``, first recording it in ``state`` if it is new.

        ``entered_at`` is when it entered that state (e.g. the ticket's creation time).
        """
        existing = self.get(ticket_id)
        if existing is not None:
            return existing
        now = self.clock()
        rel, hist = tables.releases, tables.state_history
        with self.engine.begin() as conn:
            created_meanwhile = conn.execute(
                sa.select(rel.c.ticket_id).where(rel.c.ticket_id == ticket_id)
            ).first()
            if not created_meanwhile:
                conn.execute(
                    rel.insert().values(
                        ticket_id=ticket_id,
                        state=state.label,
                        major_release=major_release,
                        emergency=emergency,
                        updated_at=now,
                    )
                )
                conn.execute(
                    hist.insert().values(
                        ticket_id=ticket_id,
                        state=state.label,
                        entered_at=entered_at or now,
                        actor="",
                    )
                )
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.RELEASE_RECORDED,
                            ticket_id=ticket_id,
                            data={
                                "detail": f"first seen in {state.label}",
                                "state": state.label,
                                "major_release": major_release,
                                "emergency": emergency,
                                "entered_at": entered_at or now,
                            },
                        )
                    ],
                    now=now,
                )
        found = self.get(ticket_id)
        assert found is not None
        return found

    def update_facts(self, ticket_id: int, *, major_release: str | None, emergency: bool) -> None:
        """Keep the facts read from the ticket (they may change by hand) on the record; a
        change is recorded as ``release_facts_changed``."""
        rel = tables.releases
        with self.engine.begin() as conn:
            changed = conn.execute(
                rel.update()
                .where(
                    rel.c.ticket_id == ticket_id,
                    sa.or_(
                        sa.not_(rel.c.major_release.is_not_distinct_from(major_release)),
                        rel.c.emergency != emergency,
                    ),
                )
                .values(major_release=major_release, emergency=emergency)
            ).rowcount
            if changed:
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.RELEASE_FACTS_CHANGED,
                            ticket_id=ticket_id,
                            data={
                                "detail": f"major release {major_release or '(none)'}, "
                                f"emergency {'yes' if emergency else 'no'}",
                                "major_release": major_release,
                                "emergency": emergency,
                            },
                        )
                    ],
                    now=self.clock(),
                )

    def record_stage_report(self, ticket_id: int, *, at: datetime) -> bool:
        """Record when the StageRollout Report was filled in; only the first time counts
        (later edits of the link do not move it). False when it was recorded before."""
        rel = tables.releases
        with self.engine.begin() as conn:
            result = conn.execute(
                rel.update()
                .where(rel.c.ticket_id == ticket_id, rel.c.stage_report_at.is_(None))
                .values(stage_report_at=at)
            )
            if result.rowcount:
                event_log.append(
                    conn,
                    [
                        event_log.draft(
                            eventlog.EventKind.STAGE_REPORT_RECORDED,
                            ticket_id=ticket_id,
                            data={"detail": "the StageRollout Report was filled in",
                                  "reported_at": at},
                        )
                    ],
                    now=self.clock(),
                )  # fmt: skip
        return bool(result.rowcount)

    def move(
        self,
        ticket_id: int,
        to: records.RolloutState,
        *,
        transaction_id: int | None,
        actor: str,
        failed_target: records.RolloutState | None = None,
        event: event_log.Draft | None = None,
        also: Sequence[event_log.Draft] = (),
    ) -> None:
        """Record that the release left its state and entered ``to``, now, with ``event``
        (what the workflow did, e.g. ``transition_done``) and then ``also`` (what the move
        means to subscribers: ``release_reached_production``, ``release_failed``) in the same
        transaction. A move to the state it is in changes nothing but ``failed_target``."""
        now = self.clock()
        rel, hist = tables.releases, tables.state_history
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(rel.c.state).where(rel.c.ticket_id == ticket_id)
            ).scalar_one()
            values: dict[str, Any] = {
                "state": to.label,
                "failed_target": failed_target.label if failed_target else None,
                "updated_at": now,
            }
            if transaction_id is not None:
                values["last_transaction_id"] = transaction_id
            conn.execute(rel.update().where(rel.c.ticket_id == ticket_id).values(**values))
            if current != to.label:
                conn.execute(
                    hist.update()
                    .where(hist.c.ticket_id == ticket_id, hist.c.left_at.is_(None))
                    .values(left_at=now)
                )
                conn.execute(
                    hist.insert().values(
                        ticket_id=ticket_id,
                        state=to.label,
                        entered_at=now,
                        transaction_id=transaction_id,
                        actor=actor,
                    )
                )
            # Last, like every writer: rows first, then the log's append lock (on PostgreSQL),
            # so no transaction waits for a row while holding the lock others wait for.
            drafts = [event, *also] if event is not None else list(also)
            if drafts:
                event_log.append(conn, drafts, now=now)

    def history(self, ticket_id: int) -> list[StateSpan]:
        """The release's stays in states, oldest first."""
        hist = tables.state_history
        stmt = sa.select(hist).where(hist.c.ticket_id == ticket_id).order_by(hist.c.id)
        with self.engine.begin() as conn:
            rows = conn.execute(stmt).all()
        return [
            StateSpan(
                state=records.RolloutState.parse(r._mapping["state"]),
                entered_at=r._mapping["entered_at"],
                left_at=r._mapping["left_at"],
                transaction_id=r._mapping["transaction_id"],
                actor=str(r._mapping["actor"]),
            )
            for r in rows
        ]

    def time_in_state(self, ticket_id: int) -> dict[str, float]:
        """Seconds the release has spent in each state so far (summed over stays)."""
        now = self.clock()
        totals: dict[str, float] = {}
        for span in self.history(ticket_id):
            totals[span.state.label] = totals.get(span.state.label, 0.0) + span.seconds(now)
        return totals

    def freeze_release_xml(self, ticket_id: int, *, sha256: str, attachment_id: int) -> None:
        """Record the release.xml the release is accepted with (its bytes are stored by the
        caller under the data directory)."""
        rel = tables.releases
        with self.engine.begin() as conn:
            conn.execute(
                rel.update()
                .where(rel.c.ticket_id == ticket_id)
                .values(release_sha256=sha256, release_attachment_id=attachment_id)
            )
            event_log.append(
                conn,
                [
                    event_log.draft(
                        eventlog.EventKind.RELEASE_XML_FROZEN,
                        ticket_id=ticket_id,
                        data={"detail": f"release.xml frozen (attachment {attachment_id})",
                              "sha256": sha256, "attachment_id": attachment_id},
                    )
                ],
                now=self.clock(),
            )  # fmt: skip

    def set_repository_path(
        self,
        ticket_id: int,
        path: str | None,
        *,
        published: Mapping[str, Any] | None = None,
    ) -> None:
        """Record where the release is published now (relative to the repository root); a
        path is also added to the areas the release was ever published into. ``published``
        (snapshot, serial, url, files, bytes, changed) makes it a publication, recorded as
        ``release_published`` with those fields: ``url`` and ``serial`` are what a mirror
        needs to pull the area (its public URL, the live snapshot's ``.rollout-serial``)."""
        rel, held = tables.releases, tables.release_areas
        with self.engine.begin() as conn:
            conn.execute(
                rel.update().where(rel.c.ticket_id == ticket_id).values(repository_path=path)
            )
            if path:
                known = conn.execute(
                    sa.select(held.c.area).where(held.c.ticket_id == ticket_id, held.c.area == path)
                ).first()
                if known is None:
                    conn.execute(
                        held.insert().values(
                            ticket_id=ticket_id, area=path, published_at=self.clock()
                        )
                    )
                if published is not None or known is None:
                    what = dict(published or {})
                    event_log.append(
                        conn,
                        [
                            event_log.draft(
                                eventlog.EventKind.RELEASE_PUBLISHED,
                                ticket_id=ticket_id,
                                data={"detail": f"published in {path}", **what, "area": path},
                            )
                        ],
                        now=self.clock(),
                    )

    def published_areas(self, ticket_id: int) -> tuple[str, ...]:
        """The areas the release was published into and not yet taken out of, oldest first."""
        held = tables.release_areas
        stmt = (
            sa.select(held.c.area)
            .where(held.c.ticket_id == ticket_id)
            .order_by(held.c.published_at, held.c.area)
        )
        with self.engine.begin() as conn:
            return tuple(conn.execute(stmt).scalars())

    def forget_areas(
        self,
        ticket_id: int,
        areas: tuple[str, ...] | list[str],
        *,
        withdrawn_from: Sequence[str] = (),
    ) -> None:
        """The release was taken out of ``areas``. Where it is recorded as published now
        (``repository_path``) moves, in the same transaction, to the newest area it is still
        in, or to none: a daemon killed right after could otherwise leave it naming an area
        the release is gone from, and a resumed job finds nothing left to remove.

        ``withdrawn_from`` names the production areas among ``areas`` (the caller knows which
        areas are production): when the release was still recorded in one of them, the
        change is a withdrawal from production and ``release_withdrawn`` is written too, once,
        after the ``release_removed`` events (a repeated call finds nothing left to forget)."""
        held, rel = tables.release_areas, tables.releases
        if not areas:
            return
        with self.engine.begin() as conn:
            held_now = set(
                conn.execute(
                    sa.select(held.c.area).where(
                        held.c.ticket_id == ticket_id, held.c.area.in_(list(areas))
                    )
                ).scalars()
            )
            gone = [a for a in dict.fromkeys(areas) if a in held_now]  # in the caller's order
            conn.execute(
                held.delete().where(held.c.ticket_id == ticket_id, held.c.area.in_(list(areas)))
            )
            newest_left = conn.execute(
                sa.select(held.c.area)
                .where(held.c.ticket_id == ticket_id)
                .order_by(held.c.published_at.desc(), held.c.area.desc())
                .limit(1)
            ).scalar()
            conn.execute(
                rel.update()
                .where(rel.c.ticket_id == ticket_id, rel.c.repository_path.in_(list(areas)))
                .values(repository_path=newest_left)
            )
            drafts = [
                event_log.draft(
                    eventlog.EventKind.RELEASE_REMOVED,
                    ticket_id=ticket_id,
                    data={"detail": f"taken out of {area}", "area": area, "areas": [area]},
                )
                for area in gone
            ]
            production = [a for a in gone if a in withdrawn_from]
            if production:
                major = conn.execute(
                    sa.select(rel.c.major_release).where(rel.c.ticket_id == ticket_id)
                ).scalar()
                drafts.append(_withdrawn(ticket_id, gone, production[0], major))
            event_log.append(conn, drafts, now=self.clock())

    # -- checkpoints -----------------------------------------------------------------------

    def steps_done(self, job_id: int) -> dict[str, str]:
        """The actions of ``job_id`` already done, with their details."""
        steps = tables.job_steps
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(steps.c.action, steps.c.detail).where(steps.c.job_id == job_id)
            ).all()
        return {str(a): str(d) for a, d in rows}

    def mark_step(
        self,
        job_id: int,
        action: str,
        detail: str = "",
        *,
        event: event_log.Draft | None = None,
    ) -> None:
        """Record that ``action`` of ``job_id`` is done (idempotent), with ``event`` (by
        default ``action_done`` naming it) in the same transaction."""
        steps = tables.job_steps
        if event is None:
            event = event_log.draft(
                eventlog.EventKind.ACTION_DONE,
                job_id=job_id,
                data={"detail": f"{action}: {detail}" if detail else action, "action": action},
            )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    steps.insert().values(
                        job_id=job_id,
                        action=action,
                        done_at=self.clock(),
                        detail=text.storable(detail),
                    )
                )
                event_log.append(conn, [event], now=self.clock())
        except sa.exc.IntegrityError:
            logger.debug("step %s of job %s was already recorded", action, job_id)


def _withdrawn(
    ticket_id: int, areas: Sequence[str], production: str, major_release: str | None
) -> event_log.Draft:
    """The ``release_withdrawn`` of a release taken out of ``areas``, production among them."""
    return event_log.draft(
        eventlog.EventKind.RELEASE_WITHDRAWN,
        ticket_id=ticket_id,
        data={
            "detail": f"withdrawn from production ({', '.join(areas)})",
            "areas": list(areas),
            "area": production,
            "major_release": major_release,
        },
    )
