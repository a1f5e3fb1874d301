"""How long ``GET /metrics`` takes on a big database (issue 18: under 100 ms with 10,000
releases and 1,000,000 events on SQLite).

    .venv/bin/python -m benchmarks.prometheus [--releases 10000] [--events 1000000]
        [--jobs-per-release 5] [--deliveries 200000] [--scrapes 50]

A fresh SQLite database gets ``--events`` valid chained events (``tests.support.events_fill``)
and ``--releases`` releases written by multi-row inserts: each with its state (spread over
every state), its open stay, an unverified area and, for those further on, stagerollout and
production areas of four major releases (two of them configured); a slot holder and Deferred
releases per major release; ``--jobs-per-release`` jobs each (nearly all done, some queued,
failed and dead); two webhook subscriptions with ``--deliveries`` deliveries (nearly all
delivered). Then ``rollout serve`` runs as a subprocess on it (``python -m repo_daemon
serve``) and ``/metrics`` is fetched ``--scrapes`` times over loopback, one after another as
Prometheus does (median, 90th percentile, slowest); each of the collector's reads is timed in
this process too. Everything stays on 127.0.0.1 in a temporary directory. Not a test.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.rt_setup.sandbox import free_port
from bridge.settings import model as settings_model
from bridge.store import (
    database,
    delivery_reads,
    metrics_reads,
    pipeline_reads,
    subscription_store,
    tables,
)
from tests.support import events_fill

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2025, 1, 1)
MAJORS = ("UMD-4", "UMD-5", "UMD-6", "CentOS7")
CONFIGURED = ("UMD-4", "UMD-5")
SECRET = "whsec_" + base64.b64encode(b"prometheus-benchmark-key").decode()
STATES = [s.label for s in records.RolloutState]


def fill_releases(engine: sa.Engine, count: int, jobs_per_release: int) -> None:
    """Releases, stays, areas, slots and jobs by multi-row inserts."""
    rel, hist, areas, slots, jobs = (
        tables.releases, tables.state_history, tables.release_areas, tables.stage_slots,
        tables.jobs,
    )  # fmt: skip
    release_rows, stay_rows, area_rows, job_rows = [], [], [], []
    holders: dict[str, int] = {}
    txn = 1
    for ticket in range(1, count + 1):
        major = MAJORS[ticket % len(MAJORS)]
        state = STATES[ticket % len(STATES)]
        at = START + timedelta(minutes=ticket)
        release_rows.append(
            {"ticket_id": ticket, "state": state, "major_release": major, "emergency": False,
             "updated_at": at}
        )  # fmt: skip
        stay_rows.append(
            {"ticket_id": ticket, "state": state, "entered_at": at, "left_at": None,
             "transaction_id": ticket, "actor": "qc"}
        )  # fmt: skip
        area_rows.append(
            {"ticket_id": ticket, "area": f"unverified/thing-{ticket}/1.{ticket}.0",
             "published_at": at}
        )  # fmt: skip
        if state in ("StageRollout", "Production"):
            area_rows.append(
                {"ticket_id": ticket, "area": f"stagerollout/{major}", "published_at": at}
            )
        if state == "Production":
            kind = "base" if ticket % 2 else "updates"
            area_rows.append(
                {"ticket_id": ticket, "area": f"production/{major}/{kind}", "published_at": at}
            )
        if state == "StageRollout" and major not in holders:
            holders[major] = ticket
        for n in range(jobs_per_release):
            status = "done"
            if n == jobs_per_release - 1:
                status = {0: "queued", 1: "failed", 2: "dead"}.get(ticket % 50, "done")
            job_rows.append(
                {"ticket_id": ticket, "transaction_id": txn, "current": state,
                 "previous": "Submitted", "emergency": False, "actor": "qc", "source": "hook",
                 "status": status, "attempts": 1, "scheduled_at": at, "created_at": at,
                 "finished_at": at if status != "queued" else None, "field": "RolloutProgress"}
            )  # fmt: skip
            txn += 1
    with engine.begin() as conn:
        for table, rows in ((rel, release_rows), (hist, stay_rows), (areas, area_rows),
                            (jobs, job_rows)):  # fmt: skip
            for start in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[start : start + 20_000])
        conn.execute(
            slots.insert(),
            [{"major_release": m, "ticket_id": t, "emergency": False, "taken_at": START}
             for m, t in holders.items()],
        )  # fmt: skip


def fill_deliveries(engine: sa.Engine, count: int) -> None:
    """Two subscriptions and ``count`` deliveries of the log's first events to them."""
    subs = subscription_store.SubscriptionStore(engine, clock=lambda: START)
    ids = []
    for name in ("mirror", "ci"):
        spec = subscription_store.Spec(url=f"https://{name}.example.org/hook")
        ids.append(subs.add(name, spec, actor="ops", enabled=True)[0].id)
    rows = []
    for n in range(count):
        status = "failed" if n % 100 == 0 else ("pending" if n % 1000 == 1 else "delivered")
        at = START + timedelta(seconds=n)
        rows.append(
            {"subscription_id": ids[n % 2], "event_id": n // 2 + 1, "ticket_id": 1 + n % 1000,
             "seq": n, "kind": "job_queued", "payload": "{}", "status": status, "attempts": 1,
             "tries": 1, "next_attempt_at": at, "created_at": at,
             "finished_at": None if status == "pending" else at}
        )  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(tables.deliveries.insert(), rows[start : start + 20_000])


def timed(what: Callable[[], Any], runs: int) -> list[float]:
    found = []
    for _ in range(runs):
        began = time.perf_counter()
        what()
        found.append((time.perf_counter() - began) * 1000)
    return found


def summary(ms: list[float]) -> str:
    ordered = sorted(ms)
    p90 = ordered[max(0, -(-len(ordered) * 9 // 10) - 1)]
    return f"median {statistics.median(ms):7.2f} ms   p90 {p90:7.2f} ms   max {max(ms):7.2f} ms"


def scrape(port: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, response.status
        return body
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prometheus")
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--jobs-per-release", type=int, default=5)
    parser.add_argument("--deliveries", type=int, default=200_000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rollout-prom-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'bridge.sqlite'}"
        engine = database.create_engine(url)
        database.migrate(engine)
        began = time.monotonic()
        events_fill.fill(engine, args.events, start=START, tickets=args.releases)
        fill_releases(engine, args.releases, args.jobs_per_release)
        fill_deliveries(engine, args.deliveries)
        with engine.connect() as conn:
            counted = {
                t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in (
                    tables.event_log,
                    tables.releases,
                    tables.release_areas,
                    tables.jobs,
                    tables.deliveries,
                )
            }
        print(f"filled in {time.monotonic() - began:.0f} s: "
              + ", ".join(f"{n} {c:,}" for n, c in counted.items()))  # fmt: skip

        now = datetime(2026, 12, 1)
        hooks = settings_model.WebhookSettings()
        print("\nthe collector's reads, in this process (20 runs each):")
        for name, read in (
            ("queue_figures", lambda: pipeline_reads.queue_figures(engine)),
            ("releases_by_state", lambda: pipeline_reads.releases_by_state(engine)),
            ("slots", lambda: pipeline_reads.slots(engine)),
            ("last_publications", lambda: pipeline_reads.last_publications(engine)),
            ("delivery_counts", lambda: metrics_reads.delivery_counts(engine)),
            # What the collector first used, and why it no longer does (docs/benchmarks.md):
            ("(delivery figures)", lambda: delivery_reads.figures(
                engine, now=now, disable_after=hooks.disable_after)),
        ):  # fmt: skip
            print(f"  {name:<22} {summary(timed(read, 20))}")
        engine.dispose()

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env |= {
            "ROLLOUT_RT_URL": "http://127.0.0.1:9/", "ROLLOUT_RT_TOKEN": "unused",
            "ROLLOUT_HOOK_SECRET": SECRET, "ROLLOUT_DATABASE_URL": url,
            "ROLLOUT_DATA_DIR": tmp, "ROLLOUT_MAJOR_RELEASES": ",".join(CONFIGURED),
        }  # fmt: skip
        log = (Path(tmp) / "serve.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "repo_daemon", "serve", "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    body = scrape(port)
                    break
                except OSError:
                    assert server.poll() is None, (Path(tmp) / "serve.log").read_text()
                    assert time.monotonic() < deadline, "rollout serve did not start"
                    time.sleep(0.1)
            for _ in range(5):  # warm: connections, the page cache
                scrape(port)
            ms = timed(lambda: scrape(port), args.scrapes)
            lines = body.decode().count("\n")
            print(f"\nGET /metrics on rollout serve ({args.scrapes} scrapes, {len(body):,} "
                  f"bytes, {lines} lines): {summary(ms)}")  # fmt: skip
        finally:
            server.terminate()
            server.wait(30)
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
