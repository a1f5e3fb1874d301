"""The feed's query time on a big log, for ``benchmarks.events`` (its part 3).

A fresh SQLite database gets ``count`` valid chained events from ``tests.support.events_fill``
(multi-row inserts, hashes through ``bridge.store.event_chain``; the filler cycles kinds,
actors, causes, major releases over 1,000 releases). Then pages of 100 through
``bridge.store.event_feed.page`` are timed, each query ``runs`` times (median, 90th percentile
and the slowest), on a warm cache as a server that keeps answering has it. The log is checked
to be a valid chain first (``bridge.store.chain_check``), so the figures are for a log the
product would accept.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta
from pathlib import Path

from bridge.store import chain_check, database, event_feed
from bridge.store import events as eventlog
from tests.support import events_fill

K = eventlog.EventKind


def queries(filled: events_fill.Filled) -> list[tuple[str, event_feed.Filters, int | None]]:
    """(name, filters, after) of each page timed."""
    deep = filled.first_id + int((filled.last_id - filled.first_id) * 0.9)
    recent = filled.last_at - timedelta(minutes=1)
    return [
        ("first page, no filter", event_feed.Filters(), None),
        (f"deep page, after={deep:,}", event_feed.Filters(), deep),
        ("one ticket (#500), first page", event_feed.Filters(ticket_id=500), None),
        ("one ticket (#500), after the 90 % mark", event_feed.Filters(ticket_id=500), deep),
        ("kind transition_done", event_feed.Filters(kinds=(K.TRANSITION_DONE,)), None),
        ("kind transition_done, deep", event_feed.Filters(kinds=(K.TRANSITION_DONE,)), deep),
        ("two kinds (job_dead, hook_refused)",
         event_feed.Filters(kinds=(K.JOB_DEAD, K.HOOK_REFUSED)), None),
        ("kind that never occurs (job_dead)", event_feed.Filters(kinds=(K.JOB_DEAD,)), None),
        ("actor alice", event_feed.Filters(actor="alice"), None),
        ("actor alice, deep", event_feed.Filters(actor="alice"), deep),
        ("since 1 minute before the newest", event_feed.Filters(since=recent), None),
        ("major release UMD-5", event_feed.Filters(major_release="UMD-5"), None),
        ("area production/UMD-5", event_feed.Filters(area="production/UMD-5"), None),
        ("ticket #500 + kind release_published",
         event_feed.Filters(ticket_id=500, kinds=(K.RELEASE_PUBLISHED,)), None),
        ("major UMD-4 + kind hook_refused (matches nothing)",
         event_feed.Filters(major_release="UMD-4", kinds=(K.HOOK_REFUSED,)), None),
        ("actor alice + kind job_done",
         event_feed.Filters(actor="alice", kinds=(K.JOB_DONE,)), None),
    ]  # fmt: skip


def run(workdir: Path, *, count: int, runs: int) -> None:
    print(f"\n== feed, sqlite, {count:,} events")
    workdir.mkdir(parents=True, exist_ok=True)
    url = database.default_url(workdir)
    engine = database.create_engine(url)
    try:
        database.migrate(engine)
        began = time.perf_counter()
        filled = events_fill.fill(engine, count, start=datetime(2026, 12, 1, 8, 0))
        print(
            f"  filled ids {filled.first_id:,}–{filled.last_id:,} in "
            f"{time.perf_counter() - began:.1f} s; "
            f"database {Path(url.removeprefix('sqlite:///')).stat().st_size / 2**20:,.0f} MiB"
        )
        began = time.perf_counter()
        report = chain_check.verify(engine)
        assert report.broken is None, report.broken
        print(
            f"  chain verified ({report.checked:,} events) in {time.perf_counter() - began:.1f} s"
        )
        print(f"  {'page of 100':52} {'events':>6} {'median':>9} {'p90':>9} {'max':>9}")
        for name, filters, after in queries(filled):
            times = []
            found = 0
            for _ in range(runs):
                start = time.perf_counter()
                page = event_feed.page(engine, filters, after=after, limit=100)
                times.append((time.perf_counter() - start) * 1000)
                found = len(page.events)
            times.sort()
            p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
            print(
                f"  {name:52} {found:6d} {statistics.median(times):7.2f} ms "
                f"{p90:7.2f} ms {times[-1]:7.2f} ms"
            )
    finally:
        engine.dispose()
