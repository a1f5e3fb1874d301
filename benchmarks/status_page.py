"""How fast the status overview renders on a big store (issue 18): 10,000 releases and
1,000,000 events on SQLite.

    PYTHONPATH=. .venv/bin/python -m benchmarks.status_page [--releases 10000]
        [--events 1000000] [--requests 50]

The store is filled fast: the events by ``tests.support.events_fill`` (valid, chained), the
releases, their stays (three each, the last one open), staged-rollout slots with Deferred
releases behind them and 10,000 jobs (done, some dead, some failing) by multi-row inserts.
Then ``GET /status`` through FastAPI's TestClient on the receiver's app with the status pages
mounted (no login asked: ``anyone``), a few warm-up requests first; it prints the machine, the
median, p90 and the slowest of ``--requests`` requests, and the release page's and the metrics
page's medians beside it. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge import records, secrets
from bridge.intake import receiver
from bridge.settings import model as settings_model
from bridge.store import database, tables
from bridge.store import queue as jobqueue
from repo_daemon.web import events_access
from repo_daemon.web.status import pages
from tests.support import events_fill

START = datetime(2025, 1, 1)
STATES = [s.label for s in records.RolloutState]
MAJORS = [f"UMD-{n}" for n in range(1, 9)]


def fill_records(engine: sa.Engine, count: int) -> None:
    """``count`` releases in every state, three stays each, slots held with Deferred releases
    behind them, and a job per release (every 50th dead, every 70th failing)."""
    rel, hist, held, jobs = tables.releases, tables.state_history, tables.stage_slots, tables.jobs
    releases, stays, slots, queued = [], [], [], []
    holders: set[str] = set()
    for n in range(1, count + 1):
        major = MAJORS[n % len(MAJORS)]
        state = STATES[n % len(STATES)]
        at = START + timedelta(minutes=n * 7)
        if state == "StageRollout":
            if major in holders:
                state = "Deferred"
            else:
                holders.add(major)
                slots.append({"major_release": major, "ticket_id": n, "emergency": False,
                              "taken_at": at})  # fmt: skip
        releases.append({"ticket_id": n, "state": state, "major_release": major,
                         "emergency": False, "updated_at": at})  # fmt: skip
        for i, (name, left) in enumerate((("Submitted", at), ("Unverified", at), (state, None))):
            stays.append({"ticket_id": n, "state": name, "transaction_id": n * 10 + i,
                          "entered_at": at - timedelta(hours=2 - i), "left_at": left and
                          left - timedelta(hours=1 - i), "actor": "qc"})  # fmt: skip
        status = "dead" if n % 50 == 0 else "queued" if n % 70 == 0 else "done"
        queued.append({
            "ticket_id": n, "transaction_id": n * 10, "current": "Unverified",
            "previous": "Submitted", "emergency": False, "actor": "qc", "source": "hook",
            "status": status, "attempts": 2 if status != "done" else 1, "scheduled_at": at,
            "created_at": at, "finished_at": at if status == "done" else None,
            "last_error": None if status == "done" else "rsync timed out",
        })  # fmt: skip
    with engine.begin() as conn:
        conn.execute(rel.insert(), releases)
        conn.execute(hist.insert(), stays)
        conn.execute(held.insert(), slots)
        conn.execute(jobs.insert(), queued)


def timed(client: TestClient, url: str, requests: int) -> list[float]:
    for _ in range(3):
        assert client.get(url).status_code == 200
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        answer = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert answer.status_code == 200, answer.text[:200]
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        url = database.default_url(Path(tmp))
        engine = database.create_engine(url)
        database.migrate(engine)
        began = time.perf_counter()
        events_fill.fill(engine, args.events, start=START, tickets=args.releases)
        fill_records(engine, args.releases)
        print(f"filled {args.releases} releases, {args.events} events "
              f"in {time.perf_counter() - began:.0f} s")  # fmt: skip
        secret = "whsec_" + base64.b64encode(b"status-page-benchmark-secret").decode()
        settings = settings_model.Settings(
            tracker=settings_model.TrackerSettings(url="https://rt.example.org/"),
            receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(secret)),
            data_dir=Path(tmp),
        )
        access = events_access.FeedAccess((settings_model.ANYONE,), None)
        app = receiver.create_app(
            settings, jobqueue.Queue(engine), routers=[pages.router(engine, settings, access)]
        )
        with TestClient(app) as client:
            for name, path, n in (
                ("GET /status", "/status", args.requests),
                ("GET /status/releases/7", "/status/releases/7", args.requests),
                ("GET /status/metrics", "/status/metrics", max(5, args.requests // 10)),
            ):
                times = timed(client, path, n)
                p90 = times[max(0, -(-9 * len(times) // 10) - 1)]
                print(f"{name:26} median {statistics.median(times):7.1f} ms  p90 {p90:7.1f} ms"
                      f"  slowest {times[-1]:7.1f} ms  ({n} requests)")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
