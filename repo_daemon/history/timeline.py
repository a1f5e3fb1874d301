"""A release's timeline, built from its events (oldest first): the states it went through with
the time spent in each, every change of its ticket with each attempt (numbered, with its
cause, who asked, its actions, error and end), what was published where, the staged-rollout
slot, early adopters and what the ticket was told.

Pure: ``build`` reads the ``Event`` records it is given and the ``now`` it is passed; it never
reads the database or the clock, and decides nothing about releases. The records are kept in
``history.records``; ``as_dict`` is the JSON of ``rollout release show --json`` and
``history.render`` the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bridge.store.events import Cause, Event, EventKind
from repo_daemon.history import records as r
from repo_daemon.history.records import Timeline

__all__ = ["Timeline", "as_dict", "build"]

_END_OF = {
    EventKind.JOB_DONE: r.DONE,
    EventKind.JOB_RETRY: r.RETRY,
    EventKind.JOB_FAILED: r.FAILED,
    EventKind.JOB_DEAD: r.DEAD,
    EventKind.JOB_GIVEN_BACK: r.GIVEN_BACK,
}
_STATUS_AFTER = {r.DONE: "done", r.RETRY: "queued", r.FAILED: "failed", r.DEAD: "dead",
                 r.GIVEN_BACK: "queued"}  # fmt: skip


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


def _time(value: Any) -> datetime | None:
    """A time the event's data carries (ISO text, naive UTC), or None."""
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None) if value else None
    except ValueError:
        return None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _names(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


def _run(item: Any, *, after_failure: bool = False) -> r.ActionRun:
    item = item if isinstance(item, Mapping) else {"name": str(item)}
    return r.ActionRun(
        name=str(item.get("name", "")),
        outcome=str(item.get("outcome", "")),
        seconds=_seconds(item.get("seconds")),
        detail=str(item.get("detail") or ""),
        after_failure=after_failure,
    )


class _Builder:
    """The timeline so far, event by event (the records are frozen: each update replaces)."""

    def __init__(self) -> None:
        self.stays: list[r.Stay] = []
        self.changes: dict[int, r.Change] = {}
        self.publications: list[r.Publication] = []
        self.slots: list[r.SlotStay] = []
        self.acceptances: list[r.Acceptance] = []
        self.told: list[r.Told] = []
        self.notes: list[r.Note] = []
        self.major_release: str | None = None
        self.emergency = False
        self.failed_target: str | None = None

    def add(self, e: Event) -> None:
        handler = _HANDLERS.get(e.kind)
        if handler is None or (e.job_id is None and e.kind in _JOB_KINDS):
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
            dataclasses.replace(s, seconds=_between(s.entered_at, now if s.current else s.left_at))
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
            changes=tuple(self.changes.values()),
            publications=tuple(self.publications),
            slots=tuple(self.slots),
            acceptances=tuple(self.acceptances),
            told=tuple(self.told),
            notes=tuple(self.notes),
        )

    # -- the release ----------------------------------------------------------------------

    def imported(self, e: Event) -> None:
        if e.data.get("what") == "job":
            change = self._change(e)
            self.changes[change.job_id] = dataclasses.replace(
                change,
                status=str(e.data.get("state", change.status)),
                before_log_status=_text(e.data.get("state")),
                before_log_attempts=_number(e.data.get("attempts")),
            )
            return
        self._facts(e.data)
        self.failed_target = _text(e.data.get("failed_target"))
        if not self.stays:
            for row in e.data.get("history") or ():
                state, entered, left, actor = (list(row) + [None] * 4)[:4]
                self.stays.append(
                    r.Stay(state=str(state), entered_at=_time(entered), left_at=_time(left),
                           by=str(actor or ""))
                )  # fmt: skip
            if not self.stays and e.data.get("state"):
                self.stays.append(r.Stay(state=str(e.data["state"]), entered_at=None))
        for area in _names(e.data.get("areas")):
            self.publications.append(r.Publication(area=area, published_at=None))

    def recorded(self, e: Event) -> None:
        self._facts(e.data)
        if not self.stays:
            entered = _time(e.data.get("entered_at")) or e.at
            self.stays.append(r.Stay(state=str(e.data.get("state", "")), entered_at=entered))

    def facts_changed(self, e: Event) -> None:
        self._facts(e.data)
        self.add_note(e)

    def _facts(self, data: Mapping[str, Any]) -> None:
        if "major_release" in data:
            self.major_release = _text(data["major_release"])
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
            self.failed_target = _text(e.data.get("failed_target"))
        if e.job_id is None:
            self.add_note(e)
            return

        def result(a: r.Attempt) -> r.Attempt:
            runs = [_run(x) for x in e.data.get("actions") or ()]
            actions = tuple(runs) if e.kind is EventKind.TRANSITION_DONE else a.actions
            error, failed = _text(e.data.get("error")), _text(e.data.get("action"))
            if e.kind is EventKind.TRANSITION_FAILED:
                actions = _with_failed(actions, failed, error)
                actions += tuple(dataclasses.replace(x, after_failure=True) for x in runs)
            return dataclasses.replace(
                a, actions=actions, result=e.kind.value, result_detail=e.detail,
                moved_from=came_from or None, moved_to=to or None,
                asked=_text(e.data.get("asked")), error=a.error or error,
                failed_action=a.failed_action or failed,
            )  # fmt: skip

        self._attempt(e, result)
        change = self.changes[e.job_id]
        if not change.after and e.data.get("asked"):
            self.changes[e.job_id] = dataclasses.replace(change, after=str(e.data["asked"]))

    def published(self, e: Event) -> None:
        self.publications.append(
            r.Publication(
                area=str(e.data.get("area", "")),
                published_at=e.at,
                snapshot=_text(e.data.get("snapshot")),
                files=_number(e.data.get("files")),
                bytes=_number(e.data.get("bytes")),
                job_id=e.job_id,
            )
        )

    def removed(self, e: Event) -> None:
        areas = _names(e.data.get("areas")) or _names([e.data.get("area", "")])
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
                attempt=_number(e.data.get("attempt")),
                step=str(e.data.get("step", "")),
                fields=_names(e.data.get("fields")),
                comment=_text(e.data.get("comment")),
                reply=_text(e.data.get("reply")),
                to=_text(e.data.get("to")),
                untold=_names(e.data.get("untold")),
            )
        )

    def add_note(self, e: Event) -> None:
        self.notes.append(
            r.Note(at=e.at, kind=e.kind.value, actor=e.actor, detail=e.detail, job_id=e.job_id)
        )

    # -- changes and their attempts -------------------------------------------------------

    def _change(self, e: Event) -> r.Change:
        """The change ``e`` belongs to (one only seen from here on if its start is pruned)."""
        assert e.job_id is not None
        if e.job_id not in self.changes:
            self.changes[e.job_id] = r.Change(
                job_id=e.job_id, transaction_id=e.transaction_id, cause=e.cause.label
            )
        return self.changes[e.job_id]

    def queued(self, e: Event) -> None:
        change = self._change(e)
        self.changes[change.job_id] = dataclasses.replace(
            change,
            field=str(e.data.get("field", "")),
            before=str(e.data.get("old_value") or ""),
            after=str(e.data.get("new_value") or ""),
            asked_by=e.actor,
            cause=e.cause.label,
            source=str(e.data.get("source", "")),
            queued_at=e.at,
            status="queued",
            detail=e.detail,
        )

    def claimed(self, e: Event) -> None:
        change = self._change(e)
        attempts = list(change.attempts)
        if attempts and attempts[-1].end == r.RUNNING:
            lost = r.LEASE_EXPIRED if e.data.get("lease_expired") else r.UNKNOWN
            attempts[-1] = dataclasses.replace(attempts[-1], end=lost)
        rerun = e.cause is Cause.MANUAL_RERUN and change.reruns
        attempts.append(
            r.Attempt(
                number=_number(e.data.get("attempt")),
                event_id=e.id,
                cause=e.cause.label,
                asked_by=change.reruns[-1].by if rerun else change.asked_by,
                worker=str(e.data.get("worker", "")),
                started_at=e.at,
            )
        )
        self.changes[change.job_id] = dataclasses.replace(
            change, attempts=tuple(attempts), status="running"
        )

    def requeued(self, e: Event) -> None:
        change = self._change(e)
        rerun = r.Rerun(event_id=e.id, at=e.at, by=e.actor, was=str(e.data.get("was", "")))
        self.changes[change.job_id] = dataclasses.replace(
            change, reruns=(*change.reruns, rerun), status="queued"
        )

    def action_done(self, e: Event) -> None:
        run = r.ActionRun(
            name=str(e.data.get("action", "")),
            outcome="done",
            seconds=_seconds(e.data.get("seconds")),
            detail=e.detail,
        )
        self._attempt(e, lambda a: dataclasses.replace(a, actions=(*a.actions, run)))

    def ended(self, e: Event) -> None:
        end = _END_OF[e.kind]
        error, failed = _text(e.data.get("error")), _text(e.data.get("action"))

        def finish(a: r.Attempt) -> r.Attempt:
            actions = a.actions if end == r.DONE else _with_failed(a.actions, failed, error)
            return dataclasses.replace(
                a, end=end, ended_at=e.at, seconds=_between(a.started_at, e.at),
                actions=actions, error=a.error or error, failed_action=a.failed_action or failed,
                next_try_at=_time(e.data.get("next_try_at")),
            )  # fmt: skip

        self._attempt(e, finish)
        assert e.job_id is not None
        self.changes[e.job_id] = dataclasses.replace(
            self.changes[e.job_id], status=_STATUS_AFTER[end]
        )

    def handled(self, e: Event) -> None:
        """How an attempt that moved nothing ended: another field's change handled, the
        bridge's own write skipped, a change processed by a reading processor."""
        self._attempt(
            e, lambda a: dataclasses.replace(a, result=e.kind.value, result_detail=e.detail)
        )

    def rt_calls(self, e: Event) -> None:
        calls = _number(e.data.get("calls"))
        self._attempt(e, lambda a: dataclasses.replace(a, rt_calls=calls))

    def _attempt(self, e: Event, update: Callable[[r.Attempt], r.Attempt]) -> None:
        """Update the attempt ``e`` belongs to: the one its data names, else the job's latest
        (one is made up when its claim is not among the events)."""
        change = self._change(e)
        attempts = list(change.attempts)
        number = _number(e.data.get("attempt"))
        found = [i for i, a in enumerate(attempts) if number is None or a.number == number]
        if not found:
            attempts.append(r.Attempt(number=number, event_id=None, cause=e.cause.label,
                                      asked_by="", started_at=None))  # fmt: skip
            found = [len(attempts) - 1]
        attempts[found[-1]] = update(attempts[found[-1]])
        self.changes[change.job_id] = dataclasses.replace(change, attempts=tuple(attempts))


def _with_failed(
    actions: tuple[r.ActionRun, ...], failed: str | None, error: str | None
) -> tuple[r.ActionRun, ...]:
    """``actions`` with the action that failed last, unless it is listed already."""
    if not failed or any(a.name == failed and a.outcome == "failed" for a in actions):
        return actions
    return (*actions, r.ActionRun(name=failed, outcome="failed", seconds=None, detail=error or ""))


def _between(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


_HANDLERS: dict[EventKind, Callable[[_Builder, Event], None]] = {
    EventKind.IMPORTED: _Builder.imported,
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
    EventKind.JOB_QUEUED: _Builder.queued,
    EventKind.JOB_CLAIMED: _Builder.claimed,
    EventKind.JOB_REQUEUED: _Builder.requeued,
    EventKind.ACTION_DONE: _Builder.action_done,
    EventKind.JOB_DONE: _Builder.ended,
    EventKind.JOB_RETRY: _Builder.ended,
    EventKind.JOB_FAILED: _Builder.ended,
    EventKind.JOB_DEAD: _Builder.ended,
    EventKind.JOB_GIVEN_BACK: _Builder.ended,
    EventKind.FIELD_CHANGE_DONE: _Builder.handled,
    EventKind.JOB_SKIPPED_OWN_WRITE: _Builder.handled,
    EventKind.JOB_PROCESSED: _Builder.handled,
    EventKind.RT_CALLS: _Builder.rt_calls,
}
# Kinds that are about a job: without one they are only notes.
_JOB_KINDS = frozenset(
    {
        EventKind.JOB_QUEUED, EventKind.JOB_CLAIMED, EventKind.JOB_REQUEUED,
        EventKind.ACTION_DONE, EventKind.FIELD_CHANGE_DONE, EventKind.JOB_SKIPPED_OWN_WRITE,
        EventKind.JOB_PROCESSED, EventKind.RT_CALLS, *_END_OF,
    }
)  # fmt: skip
