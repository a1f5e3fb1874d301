"""What the event log costs, and how fast its feed reads (issue 16).

    .venv/bin/python -m benchmarks.events [--part intake|transition|feed|all] [--runs 5]
        [--db sqlite|postgresql|both] [--hooks 6000] [--connections 16] [--events 1000000]

1. **Intake** (each database): the same load with the log and without it, alternated
   ``--runs`` times. ``Queue.enqueue_many`` in groups as the receiver's writer commits them
   (in this process), and the real receiver: ``rollout serve`` as a subprocess loaded over
   loopback as ``benchmarks.receiver`` does. "Without" replaces ``bridge.store.event_log.append``
   by a no-op, in the benchmark's processes only (the receiver is started through
   ``python -m benchmarks.events _serve --without-events``, which patches, then runs the CLI).
2. **Transition** (SQLite): ``ReleaseStore.move`` with its ``transition_done`` event and
   without one; and a whole bookkeeping transition through the workflow processor (the real
   queue and store, the runner, a fake RT and repository) with the log and without it.
3. **Feed** (SQLite): ``--events`` valid chained events written by ``tests.support.
   events_fill``, then pages of 100 through ``bridge.store.event_feed.page`` (``benchmarks.
   events_feed``).

It prints the machine, each run's figures and the medians. Everything stays on 127.0.0.1, in
temporary directories, and is bounded. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import receiver
from bridge import records
from bridge import secrets as bridge_secrets
from bridge.records import RolloutState as S
from bridge.rt_setup.sandbox import free_port
from bridge.store import database, event_log, queue, releases
from bridge.store import events as eventlog

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def events_off() -> Iterator[None]:
    """``event_log.append`` does nothing (in this process) until the block ends."""
    real = event_log.append

    def nothing(conn: sa.Connection, drafts: Sequence[Any], *, now: Any) -> list[int]:
        return [0] * len(drafts)

    event_log.append = nothing  # type: ignore[assignment]
    try:
        yield
    finally:
        event_log.append = real


def median_ratio(with_log: list[float], without: list[float]) -> str:
    """Medians of both, and the cost of the log as a share of the rate without it."""
    a, b = statistics.median(with_log), statistics.median(without)
    ratios = sorted(w / o for w, o in zip(with_log, without, strict=True))
    return (
        f"median with the log {a:,.0f}/s, without {b:,.0f}/s: with/without = {a / b:.3f} "
        f"(cost {100 * (1 - a / b):+.1f} %; per-pair ratios {ratios[0]:.3f}–{ratios[-1]:.3f})"
    )


# -- 1. intake --------------------------------------------------------------------------------


def enqueue_rate(url: str, *, groups: int, size: int, first: int) -> float:
    """Hooks per second through ``enqueue_many`` in groups of ``size`` (one commit each)."""
    engine = database.create_engine(url)
    try:
        jobs = queue.Queue(engine)
        jobs.enqueue_many([receiver.request(first - 1)])  # connect, warm the caches
        start = time.perf_counter()
        for g in range(groups):
            base = first + g * size
            jobs.enqueue_many([receiver.request(base + i) for i in range(size)])
        return groups * size / (time.perf_counter() - start)
    finally:
        engine.dispose()


def serve(url: str, workdir: Path, *, without: bool, hooks: int, connections: int) -> float:
    """The receiver (a subprocess) under the closed-loop load: accepted hooks per second."""
    secret = bridge_secrets.new_hook_secret()
    key = bridge_secrets.hook_key(secret)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {
        "ROLLOUT_RT_URL": "http://127.0.0.1:9/", "ROLLOUT_RT_TOKEN": "unused",
        "ROLLOUT_HOOK_SECRET": secret, "ROLLOUT_DATABASE_URL": url,
        "ROLLOUT_DATA_DIR": str(workdir), "PYTHONPATH": str(ROOT),
    }  # fmt: skip
    argv = [sys.executable, "-m", "benchmarks.events", "_serve"]
    argv += ["--without-events"] if without else []
    argv += ["--", "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = workdir / f"receiver-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"receiver did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        receiver.drive(port, receiver.prepared(key, 1, 300), connections, 30)  # warm-up
        accepted, other, seconds, _ = receiver.drive(
            port, receiver.prepared(key, 1_000_000, hooks), connections, 120
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
    if other:
        raise SystemExit(f"{other} hooks were not accepted: see {log_path}")
    return accepted / seconds


def intake(backend: str, url_of: Callable[[str], str], workdir: Path, args: Any) -> None:
    print(f"\n== intake, {backend}")
    for size in (1, 8):
        rates: dict[bool, list[float]] = {True: [], False: []}
        for n in range(args.runs):
            for with_log in (True, False):  # alternated: drift hits both alike
                url = url_of(f"enqueue_{size}_{n}_{int(with_log)}")
                guard = contextlib.nullcontext() if with_log else events_off()
                with guard:
                    rate = enqueue_rate(url, groups=args.hooks // size, size=size, first=10)
                rates[with_log].append(rate)
        print(f"  Queue.enqueue_many, {size} per commit: {median_ratio(rates[True], rates[False])}")
    rates = {True: [], False: []}
    for n in range(args.runs):
        for with_log in (True, False):
            url = url_of(f"receiver_{n}_{int(with_log)}")
            rate = serve(url, workdir, without=not with_log, hooks=args.hooks,
                         connections=args.connections)  # fmt: skip
            rates[with_log].append(rate)
            print(f"    run {n + 1} {'with' if with_log else 'without'} the log: {rate:,.0f}/s")
    print(f"  receiver ({args.connections} connections): {median_ratio(rates[True], rates[False])}")


# -- 2. transition ------------------------------------------------------------------------------


def move_rate(url: str, count: int, *, with_event: bool) -> float:
    """``ReleaseStore.move`` back and forth: moves per second."""
    engine = database.create_engine(url)
    try:
        store = releases.ReleaseStore(engine)
        store.ensure(1, state=S.UNVERIFIED, major_release="UMD-5", emergency=False)
        start = time.perf_counter()
        for n in range(count):
            to = S.IN_VERIFICATION if n % 2 == 0 else S.UNVERIFIED
            event = None
            if with_event:
                event = event_log.draft(
                    eventlog.EventKind.TRANSITION_DONE, ticket_id=1, actor="manager",
                    data={"detail": "bench", "from": "x", "to": to.label, "asked": to.label,
                          "actions": [{"name": "notify_watchers", "outcome": "done",
                                       "seconds": 0.001}]},
                )  # fmt: skip
            store.move(1, to, transaction_id=n + 1, actor="manager", event=event)
        return count / (time.perf_counter() - start)
    finally:
        engine.dispose()


def processor_rate(url: str, count: int) -> float:
    """Bookkeeping transitions (Unverified ⇄ InVerification) through the queue, the runner
    and the workflow processor, with a fake RT and repository: transitions per second."""
    from bridge.settings import model as settings_model
    from bridge.testing import FakeTracker
    from repo_daemon.daemon import runner
    from repo_daemon.workflow import processor as workflow
    from tests.support.fake_repository import FakeRepository

    engine = database.create_engine(url)
    try:
        settings = settings_model.Settings(tracker=settings_model.TrackerSettings(url="http://rt/"))
        jobs, store, rt = queue.Queue(engine), releases.ReleaseStore(engine), FakeTracker()
        rt.memberships["manager"] = frozenset({"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"})
        rt.add_ticket(1, status="open", fields={
            "RolloutProgress": "Submitted", "EmergencyRelease": "No",
            "AssociatedMajorRelease": "UMD-5", "ReleaseType": "Incremental",
            "Sync-Protocol": "rsync", "Sync-URL": "rsync://provider/x/", "RolloutHistory": (),
            "RepositoryURL": (), "EarlyAdopters": (), "StageRollout Report": (),
        })  # fmt: skip
        processor = workflow.WorkflowProcessor(
            settings, jobs, store, lambda: rt,  # type: ignore[arg-type,return-value]
            repository=FakeRepository(),
        )  # fmt: skip
        run = runner.Runner(jobs, processor, settings.daemon, worker="bench", workers=1)

        def move(to: S, came_from: S) -> None:
            txn = rt.change_field(1, "RolloutProgress", to.label, actor="manager")
            jobs.enqueue_many([records.ReleaseRequest(
                ticket_id=1, transaction_id=txn, current=to, previous=came_from, actor="manager"
            )])  # fmt: skip
            report = run.drain()
            assert report.done == 1, report

        move(S.UNVERIFIED, S.SUBMITTED)
        start = time.perf_counter()
        for n in range(count):
            to, came_from = (S.IN_VERIFICATION, S.UNVERIFIED)[:: 1 if n % 2 == 0 else -1]
            move(to, came_from)
        seconds = time.perf_counter() - start
        run.close()
        return count / seconds
    finally:
        engine.dispose()


def transition(url_of: Callable[[str], str], args: Any) -> None:
    print("\n== transition, sqlite")
    for name, measure, count in (
        ("ReleaseStore.move", "move", 2000),
        ("a bookkeeping transition through the processor", "processor", 300),
    ):
        rates: dict[bool, list[float]] = {True: [], False: []}
        for n in range(args.runs):
            for with_log in (True, False):
                url = url_of(f"{measure}_{n}_{int(with_log)}")
                if measure == "move":
                    rate = move_rate(url, count, with_event=with_log)
                else:
                    with contextlib.nullcontext() if with_log else events_off():
                        rate = processor_rate(url, count)
                rates[with_log].append(rate)
        per = {k: 1000 / statistics.median(v) for k, v in rates.items()}
        print(f"  {name}: {median_ratio(rates[True], rates[False])}; "
              f"{per[True]:.2f} ms vs {per[False]:.2f} ms each")  # fmt: skip


# -- the command ------------------------------------------------------------------------------


@contextlib.contextmanager
def databases(backend: str, workdir: Path) -> Iterator[Callable[[str], str]]:
    """A function that makes a fresh, migrated database by name on ``backend``."""
    if backend == "sqlite":

        def sqlite(name: str) -> str:
            url = database.default_url(workdir / name)
            _migrate(url)
            return url

        yield sqlite
        return
    from tests.support.pg_server import PostgresServer

    root = Path(tempfile.mkdtemp(prefix="rollout-bench-pg-"))
    server = PostgresServer(root)
    server.start()
    admin = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")

    def postgresql(name: str) -> str:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = server.url(name)
        _migrate(url)
        return url

    try:
        yield postgresql
    finally:
        admin.dispose()
        server.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def _migrate(url: str) -> None:
    engine = database.create_engine(url)
    database.migrate(engine)
    engine.dispose()


def _serve(argv: list[str]) -> int:
    """``_serve [--without-events] -- CLI ARGS``: the CLI in this process, the log off if
    asked (for the receiver's "without" runs)."""
    split = argv.index("--")
    if "--without-events" in argv[:split]:
        events_off().__enter__()  # for the life of this process
    from repo_daemon.cli import main

    return int(main(argv[split + 1 :]) or 0)


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["_serve"]:
        return _serve(args_in[1:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.events", description=__doc__)
    parser.add_argument("--part", choices=("intake", "transition", "feed", "all"), default="all")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--runs", type=int, default=5, help="alternated pairs (with, without)")
    parser.add_argument("--hooks", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--feed-runs", type=int, default=21, help="timings per feed query")
    args = parser.parse_args(args_in)
    print(f"machine: {receiver.machine()}")
    with tempfile.TemporaryDirectory(prefix="rollout-bench-events-") as tmp:
        workdir = Path(tmp)
        print(f"disk: write + fsync {receiver.fsync_ms(workdir):.2f} ms")
        if args.part in ("intake", "all"):
            backends = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
            for backend in backends:
                with databases(backend, workdir / backend) as url_of:
                    intake(backend, url_of, workdir, args)
        if args.part in ("transition", "all"):
            with databases("sqlite", workdir / "transition") as url_of:
                transition(url_of, args)
        if args.part in ("feed", "all"):
            from benchmarks import events_feed

            events_feed.run(workdir / "feed", count=args.events, runs=args.feed_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
