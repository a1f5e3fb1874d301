"""Status derived from events: rebuild each release's state, stays in states, areas and
staged-rollout place, and each job's status and attempts, from the event log alone, and compare
them with the stored tables (``rollout events rebuild --check``).

The stored tables stay the fast path; this says whether they still agree with the log. What
existed before the log is seeded by the ``imported`` events migration 0008 wrote, and releases
older than the bridge by ``release_backfilled`` (``rollout metrics backfill``). States and
their order are compared exactly; times within a tolerance, because an event's time is taken
in its own call (and never goes back along ids), and ``release_recorded`` and ``imported``
carry times to the second. A release whose events retention deleted in part cannot be rebuilt
with certainty: when it differs it is reported as "not checked (history pruned)", not as a
difference. It reads in batches and changes nothing; it never writes the tables back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.store import event_feed, tables
from bridge.store import events as eventlog

logger = logging.getLogger(__name__)

K = eventlog.EventKind
_STAGE = records.RolloutState.STAGE_ROLLOUT.label
_JOB_STATUS = {
    K.JOB_QUEUED.value: records.JobStatus.QUEUED.label,
    K.JOB_CLAIMED.value: records.JobStatus.RUNNING.label,
    K.JOB_DONE.value: records.JobStatus.DONE.label,
    K.JOB_GIVEN_BACK.value: records.JobStatus.QUEUED.label,
    K.JOB_RETRY.value: records.JobStatus.QUEUED.label,
    K.JOB_FAILED.value: records.JobStatus.FAILED.label,
    K.JOB_DEAD.value: records.JobStatus.DEAD.label,
    K.JOB_REQUEUED.value: records.JobStatus.QUEUED.label,
}


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One thing the stored tables say otherwise than the log: ``what`` (e.g. "release 12
    state"), the ``stored`` value and the ``rebuilt`` one, as text."""

    what: str
    stored: str
    rebuilt: str

    def describe(self) -> str:
        return f"{self.what}: stored {self.stored}, rebuilt {self.rebuilt}"


@dataclass(frozen=True, kw_only=True)
class Report:
    """What ``check`` compared: the differences, the releases (tickets) not checked because
    retention deleted part of their history, and how much agreed."""

    differences: tuple[Difference, ...]
    not_checked: tuple[int, ...]
    releases: int
    jobs: int
    slots: int
    events: int


@dataclass
class _Release:
    state: str
    failed_target: str | None = None
    stays: list[list[Any]] = field(default_factory=list)  # [state, entered_at, left_at]
    areas: set[str] = field(default_factory=set)


@dataclass
class _Job:
    ticket: int | None
    status: str
    attempts: int = 0


@dataclass
class _Log:
    """Everything rebuilt from the log."""

    releases: dict[int, _Release] = field(default_factory=dict)
    jobs: dict[int, _Job] = field(default_factory=dict)
    slots: dict[tuple[str, int], bool] = field(default_factory=dict)  # -> emergency
    counts: dict[int, list[int]] = field(default_factory=dict)  # ticket -> [events, max seq]
    events: int = 0

    def pruned(self, ticket: int) -> bool:
        """Whether some of the ticket's events are gone (its sequence has holes)."""
        count, top = self.counts.get(ticket, (0, 0))
        return count != top


def _time(value: Any, fallback: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)) if value else fallback
    except ValueError:
        return fallback


def _stay(item: Any, at: datetime) -> list[Any] | None:
    try:
        state, entered, left = item[0], item[1], item[2]
    except (TypeError, IndexError, KeyError):
        return None
    return [str(state), _time(entered, at), _time(left, at) if left else None]


def _apply(
    log: _Log, kind: str, ticket: int | None, job: int | None, at: datetime, data: Mapping[str, Any]
) -> None:
    """Fold one event into what is rebuilt. Events that say too little (those moved from the
    old ``events`` table) are skipped; the ``imported`` event after them sets what they
    would have."""
    if kind == K.IMPORTED.value and ticket is not None:
        if data.get("what") == "job" and job is not None:
            log.jobs[job] = _Job(ticket, str(data.get("state")), int(data.get("attempts") or 0))
        elif data.get("what") == "release":
            stays = [s for s in (_stay(i, at) for i in data.get("history") or []) if s]
            state = str(data.get("state"))
            log.releases[ticket] = _Release(
                state, data.get("failed_target"), stays, {str(a) for a in data.get("areas") or []}
            )
            for key in [k for k in log.slots if k[1] == ticket]:
                del log.slots[key]
            # The log did not know slots before: a release in staged rollout holds one.
            if state == _STAGE and data.get("major_release"):
                log.slots[(str(data["major_release"]), ticket)] = bool(data.get("emergency"))
        return
    if kind in _JOB_STATUS and job is not None:
        found = log.jobs.setdefault(job, _Job(ticket, _JOB_STATUS[kind]))
        found.status = _JOB_STATUS[kind]
        if kind in (K.JOB_QUEUED.value, K.JOB_REQUEUED.value):
            found.attempts = 0
        elif kind == K.JOB_CLAIMED.value:
            found.attempts += 1
        elif kind == K.JOB_GIVEN_BACK.value:
            found.attempts -= 1
        return
    if ticket is None:
        return
    if kind == K.RELEASE_BACKFILLED.value and data.get("state"):
        # A release older than the bridge, recorded from RT's history with all its stays (a
        # place it took is its own ``slot_taken`` event).
        stays = [s for s in (_stay(i, at) for i in data.get("history") or []) if s]
        log.releases[ticket] = _Release(str(data["state"]), None, stays)
        return
    release = log.releases.get(ticket)
    if kind == K.RELEASE_RECORDED.value and data.get("state"):
        state = str(data["state"])
        log.releases[ticket] = _Release(
            state, None, [[state, _time(data.get("entered_at"), at), None]]
        )
    elif kind in (K.TRANSITION_DONE.value, K.TRANSITION_FAILED.value) and data.get("to"):
        to = str(data["to"])
        if release is None:
            release = log.releases[ticket] = _Release(to)
        release.failed_target = data.get("failed_target")
        if release.state != to or not release.stays:
            if release.stays and release.stays[-1][2] is None:
                release.stays[-1][2] = at
            release.stays.append([to, at, None])
        release.state = to
    elif kind == K.RELEASE_PUBLISHED.value and release is not None and data.get("area"):
        release.areas.add(str(data["area"]))
    elif kind == K.RELEASE_REMOVED.value and release is not None:
        gone = data.get("areas") or ([data["area"]] if data.get("area") else [])
        release.areas.difference_update(str(a) for a in gone)
    elif kind == K.SLOT_TAKEN.value and data.get("major_release"):
        log.slots[(str(data["major_release"]), ticket)] = bool(data.get("emergency"))
    elif kind == K.SLOT_FREED.value and data.get("major_release"):
        log.slots.pop((str(data["major_release"]), ticket), None)


def _events(engine: sa.Engine, batch: int) -> Iterator[Any]:
    log = tables.event_log
    cols = (log.c.at, log.c.kind, log.c.ticket_id, log.c.seq, log.c.job_id, log.c.data)
    return event_feed.walk(engine, cols, batch=batch)


def rebuilt(engine: sa.Engine, *, batch: int = 5000) -> _Log:
    """Replay the whole log, in id order, ``batch`` events at a time."""
    log = _Log()
    for row in _events(engine, batch):
        log.events += 1
        ticket = None if row.ticket_id is None else int(row.ticket_id)
        if ticket is not None and row.seq is not None:
            count = log.counts.setdefault(ticket, [0, 0])
            count[0] += 1
            count[1] = max(count[1], int(row.seq))
        try:
            data = json.loads(row.data)
        except ValueError:
            continue  # an event edited by hand: ``rollout events verify`` names it
        if isinstance(data, dict):
            job = None if row.job_id is None else int(row.job_id)
            _apply(log, str(row.kind), ticket, job, row.at, data)
    return log


def _fmt(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat(sep=" ", timespec="seconds")


def _stays_text(stays: list[list[Any]]) -> str:
    if not stays:
        return "(none)"
    return "; ".join(f"{s} {_fmt(a)} – {_fmt(b) if b else '(now)'}" for s, a, b in stays)


def _close(a: datetime | None, b: datetime | None, tolerance: timedelta) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tolerance


def _compare_release(
    t: int,
    stored: Mapping[str, Any] | None,
    rel: _Release | None,
    stays: list[list[Any]],
    areas: set[str],
    tolerance: timedelta,
) -> list[Difference]:
    what = f"release {t}"
    if stored is None or rel is None:
        return [
            Difference(
                what=what,
                stored="(no record)" if stored is None else stored["state"],
                rebuilt="(no event)" if rel is None else rel.state,
            )
        ]
    found = []
    if stored["state"] != rel.state:
        found.append(Difference(what=f"{what} state", stored=stored["state"], rebuilt=rel.state))
    if (stored["failed_target"] or None) != (rel.failed_target or None):
        found.append(
            Difference(
                what=f"{what} failed_target",
                stored=str(stored["failed_target"] or "-"),
                rebuilt=str(rel.failed_target or "-"),
            )
        )
    if [s[0] for s in stays] != [s[0] for s in rel.stays]:
        found.append(
            Difference(
                what=f"{what} stays in states",
                stored=_stays_text(stays),
                rebuilt=_stays_text(rel.stays),
            )
        )
    else:
        for n, (mine, theirs) in enumerate(zip(stays, rel.stays, strict=True), start=1):
            for i, name in ((1, "entered_at"), (2, "left_at")):
                if not _close(mine[i], theirs[i], tolerance):
                    found.append(
                        Difference(
                            what=f"{what} stay {n} ({mine[0]}) {name}",
                            stored=_fmt(mine[i]),
                            rebuilt=_fmt(theirs[i]),
                        )
                    )
    if areas != rel.areas:
        found.append(
            Difference(
                what=f"{what} areas",
                stored=", ".join(sorted(areas)) or "(none)",
                rebuilt=", ".join(sorted(rel.areas)) or "(none)",
            )
        )
    return found


def _slot(emergency: bool | None) -> str:
    if emergency is None:
        return "not held"
    return "held (emergency)" if emergency else "held"


def check(
    engine: sa.Engine, *, tolerance: timedelta = timedelta(seconds=2), batch: int = 5000
) -> Report:
    """Rebuild from the log and compare with ``releases``, ``state_history``,
    ``release_areas``, ``stage_slots`` and ``jobs``."""
    log = rebuilt(engine, batch=batch)
    rel, hist, held, slots, jobs = (
        tables.releases,
        tables.state_history,
        tables.release_areas,
        tables.stage_slots,
        tables.jobs,
    )
    with engine.connect() as conn:
        stored_rel: dict[int, Mapping[str, Any]] = {
            int(r.ticket_id): dict(r._mapping) for r in conn.execute(sa.select(rel))
        }
        stays: dict[int, list[list[Any]]] = {}
        for r in conn.execute(sa.select(hist).order_by(hist.c.ticket_id, hist.c.id)):
            stays.setdefault(int(r.ticket_id), []).append([r.state, r.entered_at, r.left_at])
        areas: dict[int, set[str]] = {}
        for r in conn.execute(sa.select(held.c.ticket_id, held.c.area)):
            areas.setdefault(int(r.ticket_id), set()).add(str(r.area))
        stored_slots = {
            (str(r.major_release), int(r.ticket_id)): bool(r.emergency)
            for r in conn.execute(sa.select(slots))
        }
        stored_jobs = {
            int(r.id): r
            for r in conn.execute(
                sa.select(jobs.c.id, jobs.c.ticket_id, jobs.c.status, jobs.c.attempts)
            )
        }
    found: list[tuple[int, Difference]] = []
    for t in sorted(stored_rel.keys() | log.releases.keys()):
        for d in _compare_release(
            t,
            stored_rel.get(t),
            log.releases.get(t),
            stays.get(t, []),
            areas.get(t, set()),
            tolerance,
        ):
            found.append((t, d))
    for major, t in sorted(stored_slots.keys() | log.slots.keys()):
        mine, theirs = stored_slots.get((major, t)), log.slots.get((major, t))
        if mine != theirs:
            found.append(
                (
                    t,
                    Difference(
                        what=f"release {t} staged-rollout slot of {major}",
                        stored=_slot(mine),
                        rebuilt=_slot(theirs),
                    ),
                )
            )
    for j in sorted(stored_jobs.keys() | log.jobs.keys()):
        row, job = stored_jobs.get(j), log.jobs.get(j)
        t = int(row.ticket_id) if row is not None else int(job.ticket or 0) if job else 0
        if row is None or job is None:
            found.append(
                (
                    t,
                    Difference(
                        what=f"job {j}",
                        stored="(no record)" if row is None else str(row.status),
                        rebuilt="(no event)" if job is None else job.status,
                    ),
                )
            )
            continue
        if row.status != job.status:
            found.append(
                (t, Difference(what=f"job {j} status", stored=str(row.status), rebuilt=job.status))
            )
        if int(row.attempts) != job.attempts:
            found.append(
                (
                    t,
                    Difference(
                        what=f"job {j} attempts",
                        stored=str(row.attempts),
                        rebuilt=str(job.attempts),
                    ),
                )
            )
    unchecked = sorted({t for t, _ in found if log.pruned(t)})
    return Report(
        differences=tuple(d for t, d in found if t not in unchecked),
        not_checked=tuple(unchecked),
        releases=len((stored_rel.keys() | log.releases.keys()) - set(unchecked)),
        jobs=sum(1 for j, r in stored_jobs.items() if int(r.ticket_id) not in unchecked),
        slots=len(stored_slots),
        events=log.events,
    )


def differences(engine: sa.Engine) -> list[Difference]:
    """Every difference between the stored tables and what the log rebuilds (releases whose
    history retention pruned are left out: see ``check``)."""
    return list(check(engine).differences)
