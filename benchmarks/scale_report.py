"""The scale benchmark's figures (``benchmarks.scale``): read from the queue and the event log
after the run, from the tracker stand-in's record of its calls and from the tree, and printed.

It reads and measures; it starts nothing and changes nothing.
"""

from __future__ import annotations

import bisect
import json
import os
import platform
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from benchmarks.tracker_standin import TrackerStandIn

_JOBS = sa.text(
    "SELECT j.id, j.ticket_id, j.current, j.status, "
    "(SELECT max(at) FROM event_log e WHERE e.job_id = j.id AND e.kind = 'job_claimed'), "
    "(SELECT max(at) FROM event_log e WHERE e.job_id = j.id AND e.kind = 'job_done') "
    "FROM jobs j"
)
_TROUBLE = sa.text(
    "SELECT kind, count(*) FROM event_log WHERE kind IN ('job_failed', "
    "'job_dead', 'transition_failed', 'release_failed') GROUP BY kind"
)
_RETRIES = sa.text("SELECT ticket_id, data FROM event_log WHERE kind = 'job_retry' ORDER BY id")
_WHY = sa.text(
    "SELECT kind, ticket_id, data FROM event_log WHERE kind IN ('job_failed', 'job_dead') "
    "ORDER BY id LIMIT 5"
)
_DEFERRALS = sa.text("SELECT count(*) FROM state_history WHERE state = 'Deferred'")
_ERROR_LINE = re.compile(r" (ERROR|CRITICAL) |Traceback")


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One job: its ticket, the move, its time claimed → done and the stand-in's part."""

    ticket_id: int
    move: str
    seconds: float
    tracker_seconds: float
    done_at: float

    @property
    def bridge_ms(self) -> float:
        return (self.seconds - self.tracker_seconds) * 1000


@dataclass(frozen=True, kw_only=True)
class Figures:
    releases: int
    production: int
    deferrals: int
    seconds: float
    hooks_ms: list[float]
    transitions: list[Transition]
    calls: int
    call_ms: list[float]
    routes: dict[str, tuple[int, float]]  # route -> (calls, mean ms)
    database_bytes: int
    tree_files: int
    tree_bytes: int
    files_per_release: float
    majors_areas: dict[int, list[Transition]]  # k-th move into its production area
    load_after: str
    stopped: str
    retries: list[str]  # jobs retried (transient trouble that went away): not errors
    errors: list[str]


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip()
         for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
         if line.startswith("model name")),
        "unknown CPU",
    )  # fmt: skip
    return f"{os.cpu_count()} CPUs, {model}; Linux {platform.release()}"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def _epoch(at: datetime) -> float:
    return at.replace(tzinfo=UTC).timestamp()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def _tree(root: Path) -> tuple[int, int]:
    """(directory entries that are files, bytes of distinct inodes) below ``root``."""
    entries, seen, size = 0, set(), 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            st = (Path(folder) / name).lstat()
            entries += 1
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                size += st.st_size
    return entries, size


def figures(
    *,
    engine: sa.Engine,
    stand_in: TrackerStandIn,
    hooks: list[float],
    began: float,
    ended: float,
    load: str,
    tree: Path,
    errors: list[str],
    production: int,
    releases: int,
    stopped: str,
    files_per_release: float,
    logs: Path,
) -> Figures:
    """Read the run's figures; ``errors`` are the driver's, more are added from the database
    (failed and dead jobs) and the processes' logs (error lines); retried jobs that then
    finished are listed apart. Deferrals are the entries into
    Deferred the release store recorded."""
    by_ticket: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for call in stand_in.calls:
        if call.ticket_id is not None:
            by_ticket[call.ticket_id].append((call.began, call.seconds))
    for calls in by_ticket.values():
        calls.sort()
    transitions = []
    errors = list(errors)
    with engine.connect() as db:
        for _id, ticket, move, status, claimed, done in db.execute(_JOBS):
            if status != "done" or claimed is None or done is None:
                errors.append(f"job {_id} (#{ticket} {move}) is {status}")
                continue
            start, end = _epoch(claimed), _epoch(done)
            calls = by_ticket.get(ticket, [])
            lo = bisect.bisect_left(calls, (start, 0.0))
            hi = bisect.bisect_right(calls, (end, float("inf")))
            spent = sum(s for _b, s in calls[lo:hi])
            transitions.append(Transition(
                ticket_id=ticket, move=move, seconds=end - start, tracker_seconds=spent,
                done_at=end,
            ))  # fmt: skip
        errors += [f"{n} {kind} events" for kind, n in db.execute(_TROUBLE)]
        errors += [f"  {kind} #{ticket}: {data[:300]}" for kind, ticket, data in db.execute(_WHY)]
        retries = [f"#{ticket}: {json.loads(data).get('error', '')}"[:300]
                   for ticket, data in db.execute(_RETRIES)]  # fmt: skip
        size = int(db.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one())
        deferrals = int(db.execute(_DEFERRALS).scalar_one())
    for log in sorted(logs.glob("*.log")):
        bad = [line for line in log.read_text(errors="replace").splitlines()
               if _ERROR_LINE.search(line)]  # fmt: skip
        errors += [f"{log.name}: {line[:300]}" for line in bad[:3]]
        if len(bad) > 3:
            errors.append(f"{log.name}: {len(bad) - 3} more error lines")
    major_of = {t.id: (t.fields.get("AssociatedMajorRelease") or [""])[0]
                for t in stand_in.tickets.values()}  # fmt: skip
    into: dict[str, list[Transition]] = defaultdict(list)
    for t in sorted(transitions, key=lambda t: t.done_at):
        if t.move == "Production":
            into[major_of.get(t.ticket_id, "")].append(t)
    areas: dict[int, list[Transition]] = defaultdict(list)
    for moves in into.values():
        for k, t in enumerate(moves):
            areas[k].append(t)
    per_route: dict[str, list[float]] = defaultdict(list)
    for call in stand_in.calls:
        per_route[call.route].append(call.seconds * 1000)
    files, tree_bytes = _tree(tree)
    return Figures(
        releases=releases, production=production, deferrals=deferrals, seconds=ended - began,
        hooks_ms=hooks, transitions=transitions, calls=len(stand_in.calls),
        call_ms=[c.seconds * 1000 for c in stand_in.calls],
        routes={r: (len(v), statistics.fmean(v)) for r, v in sorted(per_route.items())},
        database_bytes=size, tree_files=files, tree_bytes=tree_bytes,
        files_per_release=files_per_release, majors_areas=dict(areas),
        load_after=load, stopped=stopped, retries=retries, errors=errors,
    )  # fmt: skip


def _row(label: str, values: list[float]) -> str:
    if not values:
        return f"  {label:<34} (none)"
    return (f"  {label:<34} {len(values):>6}  p50 {_pct(values, 0.5):8.1f}  "
            f"p99 {_pct(values, 0.99):8.1f}  max {max(values):8.1f}")  # fmt: skip


def growth_rows(f: Figures, buckets: int = 5) -> list[str]:
    """The moves to Production by the size of the area they land in, in ``buckets`` ranges."""
    ks = sorted(f.majors_areas)
    if not ks:
        return []
    width = max(1, -(-len(ks) // buckets))
    rows = []
    for start in range(0, len(ks), width):
        chunk = ks[start : start + width]
        moves = [t.bridge_ms for k in chunk for t in f.majors_areas[k]]
        low, high = chunk[0] * f.files_per_release, chunk[-1] * f.files_per_release
        rows.append(_row(f"area {low:,.0f}–{high:,.0f} files", moves))
    return rows


def render(f: Figures) -> str:
    moves = [t.bridge_ms for t in f.transitions]
    tracker = [t.tracker_seconds * 1000 for t in f.transitions]
    lines = [
        f"\nreleases: {f.production}/{f.releases} reached Production in {f.seconds:.1f} s; "
        f"{f.deferrals} entries into Deferred (slot taken); load after {f.load_after}",
        *([f"stopped early: {f.stopped}"] if f.stopped else []),
        f"hooks accepted (202): {len(f.hooks_ms)} = {len(f.hooks_ms) / f.seconds:.1f}/s "
        f"(paced by the walk); post latency ms p50 {_pct(f.hooks_ms, 0.5):.1f} "
        f"p99 {_pct(f.hooks_ms, 0.99):.1f}",
        f"transitions done: {len(f.transitions)} = {len(f.transitions) / f.seconds:.2f}/s",
        "ms per transition (job claimed → done)     n",
        _row("without the stand-in's time", moves),
        _row("the stand-in's time in it", tracker),
        *(_row(f"  {m}, without the stand-in", [t.bridge_ms for t in f.transitions
                                                if t.move == m])
          for m in ("Unverified", "InVerification", "StageRollout", "Production")),
        "moves to Production by the size of their production area (without the stand-in):",
        *growth_rows(f),
        f"tracker stand-in: {f.calls} calls, {f.calls / max(1, len(f.transitions)):.1f} per "
        f"transition; ms per call p50 {_pct(f.call_ms, 0.5):.2f} p99 {_pct(f.call_ms, 0.99):.2f}",
        *(f"  {route:<36} {n:>7}  mean {ms:.2f} ms" for route, (n, ms) in f.routes.items()),
        f"database (pg_database_size): {f.database_bytes / 2**20:.1f} MiB",
        f"tree: {f.tree_files:,} file entries, {f.tree_bytes / 2**20:.1f} MiB in distinct inodes",
        f"retries (transient, then done): {len(f.retries)}",
        *(f"  {why}: {n}" for why, n in Counter(r.split(": ", 1)[-1] for r in f.retries).items()),
        f"errors: {len(f.errors)}",
        *(f"  {e}" for e in f.errors[:20]),
    ]  # fmt: skip
    return "\n".join(lines)
