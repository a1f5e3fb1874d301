"""Receiver throughput and latency over loopback, next to the database's raw durable-insert rate.

    .venv/bin/python -m benchmarks.receiver [--db sqlite|postgresql|both] [--hooks 6000]
        [--connections 16] [--max-seconds 60] [--raw-inserts 1000]

For each database (SQLite in a temporary directory; PostgreSQL started here from Debian's
binaries, like the tests do) it measures:

1. the raw durable-insert rate: ``bridge.store.queue.Queue.enqueue`` in a loop, one INSERT + COMMIT
   per hook, on a fresh database;
2. the receiver: ``rollout serve`` as a subprocess (uvicorn, httptools, uvloop,
   durable commits: SQLite WAL + synchronous=FULL, PostgreSQL synchronous_commit=on), loaded by
   ``--connections`` keep-alive HTTP/1.1 connections (one thread each, ``http.client``) posting
   signed, distinct hooks as fast as answers come back (closed loop). Bodies and signatures
   are made before the clock starts, so the client spends little CPU on them.

It reports accepted hooks/s, latency percentiles, the ratio to the raw rate, and the mean
hooks per commit (from the receiver's shutdown log line). Everything stays on 127.0.0.1 and
is bounded by ``--hooks`` and ``--max-seconds``. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from bridge import records
from bridge import secrets as bridge_secrets
from bridge.intake import webhooks
from bridge.rt_setup.sandbox import free_port
from bridge.store import database, queue

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Result:
    backend: str
    raw_per_second: float
    accepted: int
    refused_or_failed: int
    seconds: float
    latencies_ms: list[float]
    stored: int
    commits: int | None

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}; "
        f"Linux {platform.release()}; Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}"
    )


def fsync_ms(directory: Path, count: int = 200) -> float:
    """Mean time of a small write + fsync on this disk, in milliseconds."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 128)
            os.fsync(fd)
        return (time.perf_counter() - start) / count * 1000
    finally:
        os.close(fd)
        path.unlink()


def request(transaction_id: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=transaction_id % 500 + 1,
        transaction_id=transaction_id,
        current=records.RolloutState.UNVERIFIED,
        previous=records.RolloutState.SUBMITTED,
        actor="bench",
    )


def raw_insert_rate(url: str, count: int) -> float:
    """Single-row INSERT + COMMIT per hook through ``Queue.enqueue``: hooks per second."""
    engine = database.create_engine(url)
    try:
        database.migrate(engine)
        jobs = queue.Queue(engine)
        jobs.enqueue(request(1))  # open the connection, warm the statement cache
        start = time.perf_counter()
        for n in range(2, count + 2):
            jobs.enqueue(request(n))
        return count / (time.perf_counter() - start)
    finally:
        engine.dispose()


@contextmanager
def postgres(workdir: Path) -> Iterator[tuple[str, str]]:
    """A throw-away PostgreSQL with two fresh databases: (raw url, receiver url)."""
    from tests.support.pg_server import PostgresServer

    root = Path(tempfile.mkdtemp(prefix="rollout-bench-pg-"))  # readable by postgres
    server = PostgresServer(root)
    server.start()
    try:
        admin = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar()
            sync = conn.execute(sa.text("SHOW synchronous_commit")).scalar()
            fsync = conn.execute(sa.text("SHOW fsync")).scalar()
            for name in ("bench_raw", "bench_receiver"):
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        print(f"  PostgreSQL {version}, synchronous_commit={sync}, fsync={fsync}")
        yield server.url("bench_raw"), server.url("bench_receiver")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def prepared(key: bytes, first: int, count: int) -> list[tuple[int, bytes, dict[str, str]]]:
    now = int(time.time())
    hooks = []
    for tid in range(first, first + count):
        body = json.dumps(
            {
                "ticket_id": tid % 500 + 1,
                "transaction_id": tid,
                "current": "Unverified",
                "previous": "",
                "emergency": False,
                "actor": "bench",
            }
        ).encode()
        headers = webhooks.signed_headers(key, str(tid), now, body)
        headers["content-type"] = "application/json"
        hooks.append((tid, body, headers))
    return hooks


def drive(
    port: int, hooks: list[tuple[int, bytes, dict[str, str]]], connections: int, limit: float
) -> tuple[int, int, float, list[float]]:
    """Post ``hooks`` over ``connections`` keep-alive connections; (2xx, other, seconds, ms)."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    failures = [0] * connections
    deadline = time.perf_counter() + limit
    start_gate = threading.Barrier(connections + 1)

    def run(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = hooks[n::connections]
        start_gate.wait()
        for _tid, body, headers in mine:
            if time.perf_counter() > deadline:
                break
            began = time.perf_counter()
            conn.request("POST", "/hooks/rt", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 202:
                latencies[n].append((time.perf_counter() - began) * 1000)
            else:
                failures[n] += 1
        conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    flat = [ms for per in latencies for ms in per]
    return len(flat), sum(failures), seconds, flat


def run_receiver(
    url: str, workdir: Path, *, hooks: int, connections: int, limit: float
) -> tuple[int, int, float, list[float], int, int | None]:
    secret = bridge_secrets.new_hook_secret()
    key = bridge_secrets.hook_key(secret)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {
        "ROLLOUT_RT_URL": "http://127.0.0.1:9/",  # the receiver never calls RT
        "ROLLOUT_RT_TOKEN": "unused",
        "ROLLOUT_HOOK_SECRET": secret,
        "ROLLOUT_DATABASE_URL": url,
        "ROLLOUT_DATA_DIR": str(workdir),
    }
    log_path = workdir / "receiver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "repo_daemon",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"receiver did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        drive(port, prepared(key, 1, 300), connections, 30)  # warm-up, not counted
        accepted, other, seconds, latencies = drive(
            port, prepared(key, 1_000_000, hooks), connections, limit
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    engine = database.create_engine(url)
    with engine.connect() as db:
        stored = int(db.execute(sa.text("SELECT count(*) FROM jobs")).scalar_one()) - 300
    engine.dispose()
    found = re.search(
        r"hook writer stopped: (\d+) hooks stored in (\d+) commits", log_path.read_text()
    )
    commits = int(found.group(2)) if found else None
    return accepted, other, seconds, latencies, stored, commits


def bench(backend: str, args: argparse.Namespace, workdir: Path) -> Result:
    print(f"\n== {backend}")
    print(f"  disk: write + fsync {fsync_ms(workdir):.2f} ms")
    if backend == "sqlite":
        raw_url = database.default_url(workdir / "raw")
        receiver_url = database.default_url(workdir / "receiver")
        engine = database.create_engine(receiver_url)
        database.migrate(engine)
        engine.dispose()
        raw = raw_insert_rate(raw_url, args.raw_inserts)
        outcome = run_receiver(
            receiver_url,
            workdir,
            hooks=args.hooks,
            connections=args.connections,
            limit=args.max_seconds,
        )
    else:
        with postgres(workdir) as (raw_url, receiver_url):
            engine = database.create_engine(receiver_url)
            database.migrate(engine)
            engine.dispose()
            raw = raw_insert_rate(raw_url, args.raw_inserts)
            outcome = run_receiver(
                receiver_url,
                workdir,
                hooks=args.hooks,
                connections=args.connections,
                limit=args.max_seconds,
            )
    accepted, other, seconds, latencies, stored, commits = outcome
    # The warm-up's commits are in the count too; they are few next to the measured run.
    result = Result(backend, raw, accepted, other, seconds, latencies, stored, commits)
    report(result)
    return result


def report(r: Result) -> None:
    per_commit = f"{(r.accepted + 300) / r.commits:.1f}" if r.commits else "?"
    print(f"  raw durable inserts (Queue.enqueue, 1 row per commit): {r.raw_per_second:,.0f}/s")
    print(
        f"  receiver: {r.accepted} accepted (202) in {r.seconds:.2f} s = {r.per_second:,.0f}/s; "
        f"{r.refused_or_failed} other answers; {r.stored} stored"
    )
    print(
        f"  latency ms: p50 {r.percentile(0.50):.1f}  p90 {r.percentile(0.90):.1f}  "
        f"p99 {r.percentile(0.99):.1f}  max {max(r.latencies_ms, default=0):.1f}"
    )
    print(
        f"  receiver / raw = {r.per_second / r.raw_per_second:.2f}; "
        f"mean hooks per commit {per_commit}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--hooks", type=int, default=6000, help="hooks in the measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--raw-inserts", type=int, default=1000)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(
        f"load: {args.hooks} signed hooks, {args.connections} keep-alive connections "
        "(closed loop), loopback"
    )
    backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"rollout-bench-{backend}-") as tmp:
            bench(backend, args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
