"""Receiver throughput and latency over loopback, next to the database's raw durable-insert rate.

    .venv/bin/python -m benchmarks.receiver [--db sqlite|postgresql|both] [--hooks 6000]
        [--connections 16] [--max-seconds 60] [--raw-inserts 1000] [--runs 3]

For each database (SQLite in a temporary directory; PostgreSQL started here from Debian's
binaries, like the tests do) it measures, ``--runs`` times alternated (raw, receiver, raw,
receiver, ...) so that what else the machine does hits both alike, each on a fresh database:

1. the raw durable-insert rate: ``bridge.store.queue.Queue.enqueue`` in a loop, one INSERT + COMMIT
   per hook, on a fresh database;
2. the receiver: ``rollout serve`` as a subprocess (uvicorn, httptools, uvloop,
   durable commits: SQLite WAL + synchronous=FULL, PostgreSQL synchronous_commit=on), loaded by
   ``--connections`` keep-alive HTTP/1.1 connections posting signed, distinct hooks as fast as
   answers come back (closed loop). Bodies and signatures are made before the clock starts.
   The load generator (``receiver_load``) is one event loop by default (``--client asyncio``);
   ``--client threads`` is the one ``http.client`` thread per connection used before
   2026-12-07, and ``--client both`` runs the receiver once with each, alternated.

It reports accepted hooks/s, latency percentiles, the ratio to the raw rate of the same run,
the mean hooks per commit (from the receiver's shutdown log line), the CPU time per hook (of
the receiver process while loaded, from ``/proc``; of the raw loop, its thread's; of the load
generator, per request), the load
average, and the medians over the runs next to the targets (receiver/raw >= 0.9 and p99 under
15 ms on SQLite). After each receiver run it checks the event log: one ``job_queued`` event per
stored hook, and the hash chain intact (``chain_check.verify``); it stops with an error if not.
Everything stays on 127.0.0.1 and is bounded by ``--hooks``, ``--max-seconds`` and ``--runs``.
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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from benchmarks import receiver_load
from bridge import records
from bridge import secrets as bridge_secrets
from bridge.intake import webhooks
from bridge.rt_setup.sandbox import free_port
from bridge.store import chain_check, database, queue

ROOT = Path(__file__).resolve().parents[1]
WARM_UP = 300
TARGET_RATIO = 0.9  # receiver / raw, SQLite
TARGET_P99_MS = 15.0  # SQLite


@dataclass
class Result:
    backend: str
    raw_per_second: float
    raw_cpu_ms: float  # CPU per raw insert + commit
    accepted: int
    refused_or_failed: int
    seconds: float
    latencies_ms: list[float]
    stored: int
    commits: int | None
    cpu_ms: float  # the receiver process's CPU per accepted hook
    events: int  # job_queued events of the measured hooks
    load: str
    client: str = "asyncio"  # the load generator (``receiver_load.DRIVERS``)
    client_cpu_ms: float = 0.0  # the load generator's CPU per request

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


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text(encoding="utf-8").split()[:3])


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) process ``pid`` has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_insert_rate(url: str, count: int) -> tuple[float, float]:
    """Single-row INSERT + COMMIT per hook through ``Queue.enqueue`` (with its event): hooks
    per second, and CPU milliseconds per hook."""
    engine = database.create_engine(url)
    try:
        database.migrate(engine)
        jobs = queue.Queue(engine)
        jobs.enqueue(request(1))  # open the connection, warm the statement cache
        cpu = time.thread_time()
        start = time.perf_counter()
        for n in range(2, count + 2):
            jobs.enqueue(request(n))
        seconds = time.perf_counter() - start
        return count / seconds, (time.thread_time() - cpu) / count * 1000
    finally:
        engine.dispose()


def check_events(url: str, first: int, count: int) -> tuple[int, int]:
    """(stored jobs, their ``job_queued`` events) among the measured transactions, after a
    check of the whole hash chain; ``SystemExit`` when an event is missing or a link broken."""
    engine = database.create_engine(url)
    try:
        with engine.connect() as db:
            jobs, events = db.execute(
                sa.text(
                    "SELECT (SELECT count(*) FROM jobs WHERE transaction_id >= :first"
                    " AND transaction_id < :end), (SELECT count(*) FROM event_log"
                    " WHERE kind = 'job_queued' AND transaction_id >= :first"
                    " AND transaction_id < :end)"
                ),
                {"first": first, "end": first + count},
            ).one()
        report = chain_check.verify(engine)
    finally:
        engine.dispose()
    if report.broken is not None:
        raise SystemExit(f"the event log's chain is broken: {report.broken.describe()}")
    if int(jobs) != int(events):
        raise SystemExit(f"{jobs} hooks stored but {events} job_queued events written")
    return int(jobs), int(events)


@contextmanager
def postgres(workdir: Path, receivers: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A throw-away PostgreSQL with fresh databases: (raw url, {receiver name: its url})."""
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
            for name in ("raw", *receivers):
                conn.execute(sa.text(f"CREATE DATABASE bench_{name}"))
        admin.dispose()
        print(f"  PostgreSQL {version}, synchronous_commit={sync}, fsync={fsync}")
        yield server.url("bench_raw"), {r: server.url(f"bench_{r}") for r in receivers}
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


@dataclass
class Served:
    accepted: int
    other: int
    seconds: float
    latencies_ms: list[float]
    stored: int
    events: int
    commits: int | None
    cpu_ms: float
    client_cpu_ms: float


def run_receiver(
    url: str, workdir: Path, *, hooks: int, connections: int, limit: float, client: str
) -> Served:
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
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                conn.close()
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"receiver did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        drive = receiver_load.DRIVERS[client]
        drive(port, prepared(key, 1, WARM_UP), connections, 30)  # warm-up, not counted
        measured = prepared(key, 1_000_000, hooks)
        cpu = process_cpu(process.pid)
        driven = drive(port, measured, connections, limit)
        cpu_ms = (process_cpu(process.pid) - cpu) / max(driven.accepted, 1) * 1000
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    stored, events = check_events(url, 1_000_000, hooks)
    found = re.search(
        r"hook writer stopped: (\d+) hooks stored in (\d+) commits", log_path.read_text()
    )
    commits = int(found.group(2)) if found else None
    requests = max(driven.accepted + driven.other, 1)
    return Served(
        driven.accepted,
        driven.other,
        driven.seconds,
        driven.latencies_ms,
        stored,
        events,
        commits,
        cpu_ms,
        driven.client_cpu / requests * 1000,
    )


def one_run(
    raw_url: str, receiver_urls: dict[str, str], args: argparse.Namespace, workdir: Path
) -> list[Result]:
    """One raw measurement, then one of the receiver per load generator (``receiver_urls``:
    client -> its fresh database), each on its fresh database."""
    load = load_average()
    for url in (raw_url, *receiver_urls.values()):
        engine = database.create_engine(url)
        database.migrate(engine)
        engine.dispose()
    raw, raw_cpu = raw_insert_rate(raw_url, args.raw_inserts)
    results = []
    for client, receiver_url in receiver_urls.items():
        served = run_receiver(
            receiver_url,
            workdir,
            hooks=args.hooks,
            connections=args.connections,
            limit=args.max_seconds,
            client=client,
        )
        results.append(
            Result(
                raw_per_second=raw,
                raw_cpu_ms=raw_cpu,
                backend="",
                accepted=served.accepted,
                refused_or_failed=served.other,
                seconds=served.seconds,
                latencies_ms=served.latencies_ms,
                stored=served.stored,
                commits=served.commits,
                cpu_ms=served.cpu_ms,
                events=served.events,
                load=f"{load} -> {load_average()}",
                client=client,
                client_cpu_ms=served.client_cpu_ms,
            )
        )
    return results


def clients(choice: str) -> tuple[str, ...]:
    """The load generators of ``--client``: one, or both (alternated within each run)."""
    return tuple(receiver_load.DRIVERS) if choice == "both" else (choice,)


def bench(backend: str, args: argparse.Namespace, workdir: Path) -> list[Result]:
    print(f"\n== {backend}")
    print(f"  disk: write + fsync {fsync_ms(workdir):.2f} ms")
    results: list[Result] = []
    for run in range(1, args.runs + 1):
        print(f"  -- run {run} of {args.runs}")
        # Alternate which client goes first, so that neither always runs on the warmer machine.
        order = clients(args.client)[:: 1 if run % 2 else -1]
        if backend == "sqlite":
            # A run's files go with it: each run starts on empty databases.
            with tempfile.TemporaryDirectory(dir=workdir) as tmp:
                here = Path(tmp)
                found = one_run(
                    database.default_url(here / "raw"),
                    {c: database.default_url(here / f"receiver-{c}") for c in order},
                    args,
                    here,
                )
        else:
            with postgres(workdir, order) as (raw_url, receiver_urls):
                found = one_run(raw_url, receiver_urls, args, workdir)
        for result in found:
            result.backend = backend
            report(result)
        results += found
    for client in clients(args.client):
        summarise(backend, [r for r in results if r.client == client])
    return results


def report(r: Result) -> None:
    per_commit = f"{(r.accepted + WARM_UP) / r.commits:.1f}" if r.commits else "?"
    print(f"  load average {r.load}; client {r.client}")
    print(
        f"  raw durable inserts (Queue.enqueue, 1 row per commit): {r.raw_per_second:,.0f}/s, "
        f"CPU {r.raw_cpu_ms:.3f} ms per insert"
    )
    print(
        f"  receiver: {r.accepted} accepted (202) in {r.seconds:.2f} s = {r.per_second:,.0f}/s; "
        f"{r.refused_or_failed} other answers; {r.stored} stored, {r.events} job_queued events, "
        "chain intact"
    )
    print(
        f"  latency ms: p50 {r.percentile(0.50):.1f}  p90 {r.percentile(0.90):.1f}  "
        f"p99 {r.percentile(0.99):.1f}  max {max(r.latencies_ms, default=0):.1f}"
    )
    print(
        f"  receiver / raw = {r.per_second / r.raw_per_second:.2f}; "
        f"mean hooks per commit {per_commit}; receiver CPU {r.cpu_ms:.3f} ms per hook; "
        f"client ({r.client}) CPU {r.client_cpu_ms:.3f} ms per request"
    )


def summarise(backend: str, results: list[Result]) -> None:
    """The medians of the runs, next to the targets (which are for SQLite)."""

    def median(values: Iterator[float]) -> float:
        return statistics.median(values)

    ratio = median(r.per_second / r.raw_per_second for r in results)
    p99 = median(r.percentile(0.99) for r in results)
    if not results:
        return
    print(
        f"  client {results[0].client}, median of {len(results)}: "
        f"raw {median(r.raw_per_second for r in results):,.0f}/s, "
        f"receiver {median(r.per_second for r in results):,.0f}/s, receiver / raw {ratio:.2f}, "
        f"p50 {median(r.percentile(0.5) for r in results):.1f} ms, p99 {p99:.1f} ms, "
        f"receiver CPU {median(r.cpu_ms for r in results):.3f} ms per hook, "
        f"raw CPU {median(r.raw_cpu_ms for r in results):.3f} ms per insert, "
        f"client CPU {median(r.client_cpu_ms for r in results):.3f} ms per request"
    )
    if backend == "sqlite":
        met = ratio >= TARGET_RATIO and p99 < TARGET_P99_MS
        print(
            f"  target (receiver / raw >= {TARGET_RATIO}, p99 < {TARGET_P99_MS:g} ms): "
            + ("met" if met else "NOT met")
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.receiver", description=__doc__)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--hooks", type=int, default=6000, help="hooks in the measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--raw-inserts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="alternated raw/receiver pairs")
    parser.add_argument(
        "--client",
        choices=(*receiver_load.DRIVERS, "both"),
        default="asyncio",
        help="the load generator: one event loop (asyncio), one http.client thread per "
        "connection (threads, the one used until 2026-12-07), or both alternated in each run",
    )
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(
        f"load: {args.hooks} signed hooks, {args.connections} keep-alive connections "
        f"(closed loop), loopback; client {args.client}"
    )
    backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"rollout-bench-{backend}-") as tmp:
            bench(backend, args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
