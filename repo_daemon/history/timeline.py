"""A release's timeline, built from its events (oldest first): the states it went through with
the time spent in each, every change of its ticket with each attempt (numbered, with its
cause, who asked, its actions, error and end), what was published where, the staged-rollout
slot, early adopters and what the ticket was told.

Pure: ``build`` reads the ``Event`` records it is given and the ``now`` it is passed; it never
reads the database or the clock, and decides nothing about releases. The jobs and their
attempts are ``history.changes``' part, the records ``history.records``'; ``as_dict`` is the
JSON of ``rollout release show --json`` and ``history.render`` makes the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.store.events import Event, EventKind
from repo_daemon.history import changes as c
from repo_daemon.history import records as r
from repo_daemon.history.records import Timeline

__all__ = ["Timeline", "as_dict", "build"]


def build(ticket_id: int, events: Sequence[Event], *, now: datetime) -> Timeline:
    """The timeline of ``ticket_id`` from its ``events``, oldest first (by id); ``now`` (naive
    UTC, like the log's times) ends the current stay. Raises ``ValueError`` for no events or
    events of another ticket."""
    if not events:
        raise ValueError(f"no events for ticket {ticket_id}: there is no timeline to build")
    others = sorted({e.ticket_id for e in events if e.ticket_id != ticket_id}, key=str)
    if others:
        raise ValueError(f"events of ticket(s) {others} given for ticket {ticket_id}")
    builder = _Builder()
    for event in sorted(events, key=lambda e: e.id):
        builder.add(event)
    return builder.finish(ticket_id, events, now)


def as_dict(timeline: Timeline) -> dict[str, Any]:
    """The timeline as JSON-ready data (times in UTC, ISO 8601 with ``Z``, as the event log's
    own JSON)."""
    return dict(_jsonable(dataclasses.asdict(timeline)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + "Z"
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class _Builder:
    """The timeline so far, event by event (the records are frozen: each update replaces)."""

    def __init__(self) -> None:
        self.stays: list[r.Stay] = []
        self.changes = c.Changes()
        self.publications: list[r.Publication] = []
        self.slots: list[r.SlotStay] = []
        self.acceptances: list[r.Acceptance] = []
        self.told: list[r.Told] = []
        self.notes: list[r.Note] = []
        self.major_release: str | None = None
        self.emergency = False
        self.failed_target: str | None = None

    def add(self, e: Event) -> None:
        if e.kind in c.HANDLERS and e.job_id is not None:
            self.changes.add(e)
            return
        handler = _HANDLERS.get(e.kind)
        if handler is None:
            self.notes.append(
                r.Note(at=e.at, kind=e.kind.value, actor=e.actor, detail=e.detail, job_id=e.job_id)
            )
            return
        handler(self, e)

    def finish(self, ticket_id: int, events: Sequence[Event], now: datetime) -> Timeline:
        stays = list(self.stays)
        if stays:
            stays[-1] = dataclasses.replace(stays[-1], left_at=None, current=True)
        stays = [
            dataclasses.replace(s, seconds=c.between(s.entered_at, now if s.current else s.left_at))
            for s in stays
        ]
        seqs = [e.seq for e in events if e.seq is not None]
        first_seq = min(seqs) if seqs else None
        return Timeline(
            ticket_id=ticket_id,
            now=now,
            state=stays[-1].state if stays else None,
            failed_target=self.failed_target,
            major_release=self.major_release,
            emergency=self.emergency,
            events=len(events),
            first_seq=first_seq,
            last_seq=max(seqs) if seqs else None,
            pruned=first_seq is not None and first_seq > 1,
            first_at=min(e.at for e in events),
            last_at=max(e.at for e in events),
            stays=tuple(stays),
            changes=tuple(self.changes.by_job.values()),
            publications=tuple(self.publications),
            slots=tuple(self.slots),
            acceptances=tuple(self.acceptances),
            told=tuple(self.told),
            notes=tuple(self.notes),
        )

    # -- the release ----------------------------------------------------------------------

    def imported(self, e: Event) -> None:
        if e.data.get("what") == "job":
            if e.job_id is not None:
                self.changes.imported(e)
            else:
                self.add_note(e)
            return
        self._facts(e.data)
        self.failed_target = c.text(e.data.get("failed_target"))
        if not self.stays:
            for row in e.data.get("history") or ():
                state, entered, left, actor = (list(row) + [None] * 4)[:4]
                self.stays.append(
                    r.Stay(state=str(state), entered_at=c.when(entered), left_at=c.when(left),
                           by=str(actor or ""))
                )  # fmt: skip
            if not self.stays and e.data.get("state"):
                self.stays.append(r.Stay(state=str(e.data["state"]), entered_at=None))
        for area in c.names(e.data.get("areas")):
            self.publications.append(r.Publication(area=area, published_at=None))

    def recorded(self, e: Event) -> None:
        self._facts(e.data)
        if not self.stays:
            entered = c.when(e.data.get("entered_at")) or e.at
            self.stays.append(r.Stay(state=str(e.data.get("state", "")), entered_at=entered))

    def facts_changed(self, e: Event) -> None:
        self._facts(e.data)
        self.add_note(e)

    def _facts(self, data: Mapping[str, Any]) -> None:
        if "major_release" in data:
            self.major_release = c.text(data["major_release"])
        if "emergency" in data:
            self.emergency = bool(data["emergency"])

    def moved(self, e: Event) -> None:
        """A transition event: the stay it ends and the one it begins, and its attempt's
        result."""
        came_from, to = str(e.data.get("from", "")), str(e.data.get("to", ""))
        if e.kind in (EventKind.TRANSITION_DONE, EventKind.TRANSITION_FAILED):
            if came_from and (not self.stays or self.stays[-1].state != came_from):
                # Where it was is not in the events at hand (pruned, or recorded elsewhere).
                self.stays.append(r.Stay(state=came_from, entered_at=None))
            if to and to != came_from:
                if self.stays:
                    self.stays[-1] = dataclasses.replace(self.stays[-1], left_at=e.at)
                self.stays.append(r.Stay(state=to, entered_at=e.at, by=e.actor))
            self.failed_target = c.text(e.data.get("failed_target"))
        if e.job_id is None:
            self.add_note(e)
            return

        def result(a: r.Attempt) -> r.Attempt:
            runs = [c.action_run(x) for x in e.data.get("actions") or ()]
            actions = tuple(runs) if e.kind is EventKind.TRANSITION_DONE else a.actions
            error, failed = c.text(e.data.get("error")), c.text(e.data.get("action"))
            if e.kind is EventKind.TRANSITION_FAILED:
                actions = c.with_failed(actions, failed, error)
                actions += tuple(dataclasses.replace(x, after_failure=True) for x in runs)
            return dataclasses.replace(
                a, actions=actions, result=e.kind.value, result_detail=e.detail,
                moved_from=came_from or None, moved_to=to or None,
                asked=c.text(e.data.get("asked")), error=a.error or error,
                failed_action=a.failed_action or failed,
            )  # fmt: skip

        self.changes.attempt(e, result)
        self.changes.asked(e.job_id, str(e.data.get("asked") or ""))

    def published(self, e: Event) -> None:
        self.publications.append(
            r.Publication(
                area=str(e.data.get("area", "")),
                published_at=e.at,
                snapshot=c.text(e.data.get("snapshot")),
                files=c.number(e.data.get("files")),
                bytes=c.number(e.data.get("bytes")),
                job_id=e.job_id,
            )
        )

    def removed(self, e: Event) -> None:
        areas = c.names(e.data.get("areas")) or c.names([e.data.get("area", "")])
        for area in areas:
            for i in reversed(range(len(self.publications))):
                held = self.publications[i]
                if held.area == area and held.removed_at is None:
                    self.publications[i] = dataclasses.replace(held, removed_at=e.at)
                    break
            else:
                self.publications.append(r.Publication(area=area, published_at=None,
                                                       removed_at=e.at))  # fmt: skip

    def slot_taken(self, e: Event) -> None:
        major = str(e.data.get("major_release", ""))
        self.slots.append(
            r.SlotStay(major_release=major, taken_at=e.at, emergency=bool(e.data.get("emergency")))
        )

    def slot_freed(self, e: Event) -> None:
        major = str(e.data.get("major_release", ""))
        for i in reversed(range(len(self.slots))):
            if self.slots[i].major_release == major and self.slots[i].freed_at is None:
                self.slots[i] = dataclasses.replace(self.slots[i], freed_at=e.at)
                return
        self.slots.append(r.SlotStay(major_release=major, taken_at=None, freed_at=e.at))

    def accepted(self, e: Event) -> None:
        self.acceptances.append(
            r.Acceptance(
                team=str(e.data.get("team", "")),
                ngi=str(e.data.get("ngi", "")),
                accepted_at=e.at,
                accepted_by=e.actor,
            )
        )

    def withdrawn(self, e: Event) -> None:
        team = str(e.data.get("team", ""))
        for i in reversed(range(len(self.acceptances))):
            if self.acceptances[i].team == team and self.acceptances[i].withdrawn_at is None:
                self.acceptances[i] = dataclasses.replace(
                    self.acceptances[i], withdrawn_at=e.at, withdrawn_by=e.actor
                )
                return
        self.acceptances.append(
            r.Acceptance(team=team, ngi="", accepted_at=None, withdrawn_at=e.at,
                         withdrawn_by=e.actor)
        )  # fmt: skip

    def ticket_told(self, e: Event) -> None:
        self.told.append(
            r.Told(
                at=e.at,
                job_id=e.job_id,
                attempt=c.number(e.data.get("attempt")),
                step=str(e.data.get("step", "")),
                fields=c.names(e.data.get("fields")),
                comment=c.text(e.data.get("comment")),
                reply=c.text(e.data.get("reply")),
                to=c.text(e.data.get("to")),
                untold=c.names(e.data.get("untold")),
            )
        )

    def add_note(self, e: Event) -> None:
        self.notes.append(
            r.Note(at=e.at, kind=e.kind.value, actor=e.actor, detail=e.detail, job_id=e.job_id)
        )


_HANDLERS: dict[EventKind, Callable[[_Builder, Event], None]] = {
    EventKind.IMPORTED: _Builder.imported,
    EventKind.RELEASE_BACKFILLED: _Builder.imported,  # the same shape: state, facts, stays
    EventKind.RELEASE_RECORDED: _Builder.recorded,
    EventKind.RELEASE_FACTS_CHANGED: _Builder.facts_changed,
    EventKind.TRANSITION_DONE: _Builder.moved,
    EventKind.TRANSITION_FAILED: _Builder.moved,
    EventKind.TRANSITION_BLOCKED: _Builder.moved,
    EventKind.TRANSITION_NOOP: _Builder.moved,
    EventKind.TRANSITION_STALE: _Builder.moved,
    EventKind.RELEASE_PUBLISHED: _Builder.published,
    EventKind.RELEASE_REMOVED: _Builder.removed,
    EventKind.SLOT_TAKEN: _Builder.slot_taken,
    EventKind.SLOT_FREED: _Builder.slot_freed,
    EventKind.ACCEPTANCE_RECORDED: _Builder.accepted,
    EventKind.ACCEPTANCE_WITHDRAWN: _Builder.withdrawn,
    EventKind.TICKET_TOLD: _Builder.ticket_told,
}
