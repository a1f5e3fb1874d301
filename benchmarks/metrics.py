"""The provisioning metrics on a big history: 10,000 releases (~70,000 stays, acceptances and
fetches by the seeded history's patterns) and 1,000,000 events in the log, on SQLite.

A fresh SQLite database (WAL, as the bridge opens it) gets the releases from
``tests.support.metrics_seed`` (its per-release story, ``_story``, for 10,000 releases created
an hour apart, ~14 months) written by ``write_records`` (multi-row inserts), and 1,000,000
valid chained events from ``tests.support.events_fill``. Then, on a warm cache as a server
that keeps answering has it, each is timed ``--runs`` times (median and slowest):
``repo_daemon.metrics.compute.compute`` for the whole period, one major release and one
month; and ``GET /api/metrics`` (the whole report as JSON, without and with ``samples=1``)
and ``GET /api/metrics/monthly`` through FastAPI's ``TestClient`` on the receiver's app, open
to anyone (no RT login to check).

    .venv/bin/python -m benchmarks.metrics [--releases 10000] [--events 1000000] [--runs 7]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge import secrets
from bridge.intake import receiver
from bridge.settings import model as settings_model
from bridge.store import database, tables
from bridge.store import queue as jobqueue
from repo_daemon.metrics import compute, report
from repo_daemon.web import events_access, metrics_api
from tests.support import events_fill
from tests.support import metrics_seed as seed

START = datetime(2025, 10, 1, 9, 0)
SECRET = "whsec_" + base64.b64encode(b"metrics-benchmark-secret-24").decode()


def stories(count: int) -> list[seed.Story]:
    """``count`` releases an hour apart, each living the seed's story of its number."""
    return [
        seed._story(i, 100_001 + i, START + timedelta(hours=i), seed.MAJORS[i % 3],
                    seed.FATES[i % len(seed.FATES)])
        for i in range(count)
    ]  # fmt: skip


def timed(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    """Median and slowest seconds of ``runs`` runs, after one warm-up."""
    work()
    took = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        took.append(time.perf_counter() - began)
    return statistics.median(took), max(took)


def run(workdir: Path, *, releases: int, events: int, runs: int) -> None:
    url = database.default_url(workdir)
    engine = database.create_engine(url)
    database.migrate(engine)
    began = time.perf_counter()
    seed.write_records(engine, stories(releases))
    filled = events_fill.fill(engine, events, start=START, step=timedelta(seconds=30),
                              tickets=releases)  # fmt: skip
    with engine.connect() as conn:
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (tables.releases, tables.state_history, tables.early_adopter_acceptances,
                      tables.release_fetches, tables.event_log)
        }  # fmt: skip
    print(f"filled in {time.perf_counter() - began:.1f} s: "
          + ", ".join(f"{n} {c:,}" for n, c in counts.items())
          + f" (events up to id {filled.last_id:,})")  # fmt: skip
    now = datetime(2026, 12, 6)
    whole = report.Query(since=datetime(2025, 10, 1), until=datetime(2027, 1, 1))
    cases: list[tuple[str, Callable[[], object]]] = [
        ("compute, whole period (15 months)", lambda: compute.compute(engine, whole, now=now)),
        ("compute, one major release (UMD-5)", lambda: compute.compute(
            engine, report.Query(since=whole.since, until=whole.until, major_release="UMD-5"))),
        ("compute, one month (2026-05)", lambda: compute.compute(
            engine, report.Query(since=datetime(2026, 5, 1), until=datetime(2026, 6, 1)))),
    ]  # fmt: skip
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(SECRET)),
    )
    access = events_access.FeedAccess((settings_model.ANYONE,), None)
    routes = metrics_api.router(engine, access, clock=lambda: now)
    app = receiver.create_app(settings, jobqueue.Queue(engine), routers=[routes])
    with TestClient(app) as client:

        def get(path: str) -> Callable[[], object]:
            def ask() -> object:
                answer = client.get(path)
                assert answer.status_code == 200, answer.text
                return answer

            return ask

        cases += [
            ("GET /api/metrics (whole report, JSON)", get("/api/metrics?from=2025-10")),
            ("GET /api/metrics?samples=1", get("/api/metrics?from=2025-10&samples=1")),
            ("GET /api/metrics/monthly", get("/api/metrics/monthly?from=2025-10")),
            ("GET /api/metrics?format=csv", get("/api/metrics?from=2025-10&format=csv")),
        ]
        size = len(client.get("/api/metrics?from=2025-10").content)
        full = len(client.get("/api/metrics?from=2025-10&samples=1").content)
        print(f"GET /api/metrics answers {size:,} bytes of JSON ({full:,} with samples=1)")
        print(f"{'what':<42}  {'median':>9}  {'slowest':>9}   ({runs} runs)")
        for name, work in cases:
            median, slowest = timed(runs, work)
            print(f"{name:<42}  {median * 1000:>6.0f} ms  {slowest * 1000:>6.0f} ms")
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics", description=__doc__)
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rollout-metrics-bench-") as workdir:
        run(Path(workdir), releases=args.releases, events=args.events, runs=args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
