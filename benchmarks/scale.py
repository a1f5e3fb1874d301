"""The scale benchmark: 2 receivers and 2 daemons as separate processes on one PostgreSQL,
walking releases from Submitted to Production, with a tracker stand-in for RT (not a test:
nothing is asserted; ``run`` returns the figures and the errors).

    .venv/bin/python -m benchmarks.scale [--releases 10000] [--files 100000] [--majors 4]
        [--in-flight 32] [--max-seconds 1800] [--layout snapshots|tree]

Everything stays on 127.0.0.1. PostgreSQL is started here from Debian's binaries (as the
tests do); the repository tree and the bridge's data directory are one directory both daemons
share (as a shared filesystem would be). The parts:

- **tracker stand-in** (``benchmarks.tracker_standin``): answers the REST2 calls the daemon
  makes as RT does; its own time per call is measured and reported apart. The real RT's cost
  per transition is in docs/benchmarks.md, "RT calls per transition".
- **provider**: a loopback rsync daemon serving each release's small files (``--files`` in
  all, spread over ``--releases``); each release.xml declares one YUM repository over its
  files, so the metadata step runs as shipped (createrepo_c over the area: the files are no
  RPMs, so it indexes none of them, but it walks the area and signs ``repomd.xml``).
- **the driver** plays the people and RT's scrip: it moves a ticket's RolloutProgress in the
  stand-in, then posts the signed hook (Standard Webhooks, as the scrip signs it) to the
  receivers, round-robin; it waits for the job in the queue, then asks the next move:
  Unverified → InVerification → StageRollout → Production. Releases are spread over
  ``--majors`` major releases; one release per major release holds the staged-rollout slot,
  the others are Deferred and moved in by the daemon when it frees (counted).

``--max-seconds`` bounds the run: no release is started after it, those under way get 120 s
more to finish. What is printed: hooks/s accepted, transitions/s completed, the time per
transition without the stand-in's time (job claimed → done, from the event log, minus the
stand-in's time on that ticket within that window), the same for the moves to Production
against the size of the production area they land in, the stand-in's own time per call, the
database's size, the tree's size, and every error (must be none).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import sqlalchemy as sa

from benchmarks import scale_report
from benchmarks.tracker_standin import TrackerStandIn
from bridge import secrets as bridge_secrets
from bridge.intake import webhooks
from bridge.rt_setup.sandbox import free_port
from bridge.store import database

ROOT = Path(__file__).resolve().parents[1]
MANAGER = "manager"  # the person who moves every release: in every role's group
ROLE_GROUPS = ("sw-rel-qc", "sw-rel-sr", "sw-rel-admin")
MOVES = ("Unverified", "InVerification", "StageRollout", "Production")
FINISHED = ("done", "failed", "dead")
GRACE = 120.0  # seconds the releases under way get after --max-seconds
PROGRESS = 60.0  # seconds between progress lines


def release_xml(n: int, major: str, sync_url: str, files: list[tuple[str, int, str]]) -> bytes:
    """A valid release.xml for release ``n``: one YUM repository over its files."""
    rows = "".join(
        f"<Package><Name>scale-{n}</Name><Version>1.0.{n}</Version><Path>{path}</Path>"
        f"<Size>{size}</Size><SHA256>{sha}</SHA256></Package>"
        for path, size, sha in files
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Release>'
        f"<DistributionName>Scale {n}</DistributionName>"
        f"<DistributionShortName>scale-{n}</DistributionShortName>"
        f"<TechnologyProvider>Bench</TechnologyProvider><Contact>bench@example.org</Contact>"
        f"<Description>Benchmark release.</Description><Keywords><Keyword>bench</Keyword>"
        f"</Keywords><DocumentationLinks><DocumentationLink>https://docs.example.org/</Documen"
        f"tationLink></DocumentationLinks><ISODate>2026-12-06</ISODate>"
        f"<MajorVersion>1</MajorVersion><MinorVersion>0</MinorVersion>"
        f"<RevisionVersion>{n}</RevisionVersion><ReleaseNotes>-</ReleaseNotes>"
        f"<ChangeLog>-</ChangeLog><SynchProtocol>rsync</SynchProtocol>"
        f"<SynchURL>{sync_url}</SynchURL><ReleaseType>NonIncremental</ReleaseType>"
        f"<MajorRelease>{major}</MajorRelease><Repositories><Repository>"
        f"<Identifier>scale-{n}</Identifier><Name>Scale {n}</Name><Type>YUM</Type>"
        f"<RelativePath>data</RelativePath></Repository></Repositories>"
        f"<Packages>{rows}</Packages></Release>"
    ).encode()


def provider_tree(root: Path, releases: int, files: int) -> list[list[tuple[str, int, str]]]:
    """Write each release's files below ``root/r<n>/`` (small, distinct); their list each."""
    import hashlib

    per, extra = divmod(files, releases)
    out = []
    for n in range(releases):
        listed = []
        for k in range(per + (1 if n < extra else 0)):
            path = f"data/scale-{n}-{k}.dat"
            data = f"release {n} file {k}\n".encode() * 4
            target = root / f"r{n}" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            listed.append((path, len(data), hashlib.sha256(data).hexdigest()))
        out.append(listed)
    return out


@contextmanager
def postgres(work: Path) -> Iterator[tuple[str, sa.Engine]]:
    from tests.support.pg_server import PostgresServer

    root = Path(tempfile.mkdtemp(prefix="rollout-scale-pg-"))  # readable by postgres
    server = PostgresServer(root)
    server.start()
    try:
        admin = sa.create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE scale"))
        admin.dispose()
        url = server.url("scale")
        engine = database.create_engine(url)
        database.migrate(engine)
        try:
            yield url, engine
        finally:
            engine.dispose()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _wait_http(port: int, path: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{log.name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


class Processes:
    """The bridge's processes (``python -m repo_daemon ...``), started and stopped."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._checks: list[tuple[int, str, subprocess.Popen[bytes], Path]] = []

    def start(self, name: str, argv: list[str], port: int, ready: str) -> None:
        """Start one; ``ready()`` waits for all to answer ``ready`` (or /readyz) on ``port``."""
        log = self.logs / f"{name}.log"
        env = self.env | ({"ROLLOUT_DAEMON_METRICS_PORT": str(port)} if ready else {})
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "repo_daemon", *argv], cwd=ROOT, env=env,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.procs.append((name, proc))
        self._checks.append((port, ready or "/readyz", proc, log))

    def ready(self) -> None:
        for check in self._checks:
            _wait_http(*check)

    def exited(self) -> list[str]:
        return [f"{n} exited {p.returncode}" for n, p in self.procs if p.poll() is not None]

    def stop(self) -> None:
        for _name, proc in self.procs:
            proc.terminate()
        for _name, proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class Hooks:
    """Signed hooks to the receivers, round-robin, from a few threads."""

    def __init__(self, key: bytes, ports: list[int]) -> None:
        self.key, self.ports = key, ports
        self.pool = concurrent.futures.ThreadPoolExecutor(4)
        self._count = 0
        self._lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.refused: list[str] = []

    def post(self, ticket: int, txn: int, current: str, previous: str) -> None:
        with self._lock:
            port = self.ports[self._count % len(self.ports)]
            self._count += 1
        self.pool.submit(self._send, port, ticket, txn, current, previous)

    def _send(self, port: int, ticket: int, txn: int, current: str, previous: str) -> None:
        body = json.dumps({
            "ticket_id": ticket, "transaction_id": txn, "field": "RolloutProgress",
            "current": current, "previous": previous, "emergency": False, "actor": MANAGER,
            "changed_at": int(time.time()),
        }).encode()  # fmt: skip
        headers = webhooks.signed_headers(self.key, str(txn), int(time.time()), body)
        headers["content-type"] = "application/json"
        began = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:  # a connection per hook, as the scrip's LWP makes one per POST
            conn.request("POST", "/hooks/rt", body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
        except OSError as exc:
            with self._lock:
                self.refused.append(f"hook {txn}: {exc}")
            return
        finally:
            conn.close()
        with self._lock:
            if response.status == 202:
                self.latencies_ms.append((time.perf_counter() - began) * 1000)
            else:
                self.refused.append(f"hook {txn}: {response.status} {answer[:200]!r}")


class Walk:
    """Each release's next move, asked when the one before is done."""

    def __init__(self, stand_in: TrackerStandIn, hooks: Hooks, engine: sa.Engine) -> None:
        self.stand_in, self.hooks, self.engine = stand_in, hooks, engine
        self.waiting: dict[int, tuple[int, str]] = {}  # txn -> (ticket, move asked)
        self.deferred: set[int] = set()
        self.finished: dict[int, str] = {}  # ticket -> where it ended
        self.errors: list[str] = []

    def ask(self, ticket: int, move: str) -> None:
        previous, txn = self.stand_in.change_field(ticket, "RolloutProgress", move)
        self.waiting[txn] = (ticket, move)
        self.hooks.post(ticket, txn, move, previous)

    def step(self) -> None:
        """Look at the queue once; ask the next moves of the releases whose job is done."""
        if self.waiting:
            with self.engine.connect() as db:
                rows = db.execute(
                    sa.text("SELECT transaction_id, status, last_error FROM jobs "
                            "WHERE transaction_id IN :ids AND status IN :fin")
                    .bindparams(sa.bindparam("ids", expanding=True),
                                sa.bindparam("fin", expanding=True)),
                    {"ids": list(self.waiting), "fin": list(FINISHED)},
                ).all()  # fmt: skip
            for txn, status, error in rows:
                ticket, move = self.waiting.pop(txn)
                now = self.stand_in.field(ticket, "RolloutProgress")
                if status != "done" or now not in (move, "Deferred"):
                    self.errors.append(f"#{ticket} {move}: job {status}, ticket {now}: {error}")
                    self.finished[ticket] = now
                elif now == "Deferred":
                    self.deferred.add(ticket)
                elif move == MOVES[-1]:
                    self.finished[ticket] = now
                else:
                    self.ask(ticket, MOVES[MOVES.index(move) + 1])
        for ticket in sorted(self.deferred):
            if self.stand_in.field(ticket, "RolloutProgress") == "StageRollout":
                self.deferred.discard(ticket)  # the daemon moved it in: the slot freed
                self.ask(ticket, "Production")

    @property
    def under_way(self) -> int:
        return len({t for t, _m in self.waiting.values()}) + len(self.deferred)


def run(args: argparse.Namespace) -> scale_report.Figures:
    """Run the benchmark with ``args`` (see ``main``); the figures and errors."""
    work = Path(tempfile.mkdtemp(prefix="rollout-scale-"))
    try:
        with ExitStack() as stack:
            return _run(args, work, stack)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path, stack: ExitStack) -> scale_report.Figures:
    from tests.support.rsync_server import RsyncDaemon

    print(f"machine: {scale_report.machine()}; load {scale_report.load()}", flush=True)
    started = time.monotonic()
    lists = provider_tree(work / "provider", args.releases, args.files)
    print(f"provider tree: {args.files} files in {args.releases} releases "
          f"({time.monotonic() - started:.1f} s)", flush=True)  # fmt: skip
    rsync = stack.enter_context(RsyncDaemon(work / "rsyncd", {"provider": work / "provider"}))
    url, engine = stack.enter_context(postgres(work))
    stand_in = stack.enter_context(
        TrackerStandIn(members={g: [MANAGER] for g in ROLE_GROUPS})
    )  # fmt: skip
    majors = [f"SCALE-{m}" for m in range(args.majors)]
    for n, files in enumerate(lists):
        major = majors[n % len(majors)]
        sync = rsync.url("provider", f"r{n}/")
        attached = ("release.xml", release_xml(n, major, sync, files), "application/xml")
        stand_in.add_ticket(n + 1, {
            "RolloutProgress": "Submitted", "EmergencyRelease": "No",
            "AssociatedMajorRelease": major, "ReleaseType": "NonIncremental",
            "Sync-Protocol": "rsync", "Sync-URL": sync, "RolloutHistory": [],
            "RepositoryURL": [], "EarlyAdopters": [], "StageRollout Report": [],
        }, attachment=attached)  # fmt: skip
    secret = bridge_secrets.new_hook_secret()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env |= {
        "PYTHONPATH": str(ROOT), "ROLLOUT_RT_URL": stand_in.url, "ROLLOUT_RT_TOKEN": "1-2-bench",
        "ROLLOUT_RT_BRIDGE_USER": "rollout-bridge", "ROLLOUT_HOOK_SECRET": secret,
        "ROLLOUT_DATABASE_URL": url, "ROLLOUT_DATA_DIR": str(work / "data"),
        "ROLLOUT_REPO_ROOT": str(work / "data" / "repo"), "ROLLOUT_SYNC_HOSTS": "127.0.0.1",
        "ROLLOUT_RECONCILE_INTERVAL": str(args.reconcile_interval),
        "ROLLOUT_DRAIN_INTERVAL": "0.2", "ROLLOUT_AREA_LAYOUT": args.layout,
    }  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "repo_daemon", "repo", "init-key"], cwd=ROOT, env=env,
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    processes = Processes(env, work)
    stack.callback(processes.stop)
    ports = [free_port(), free_port()]
    for n, port in enumerate(ports):
        processes.start(f"receiver-{n + 1}", ["serve", "--host", "127.0.0.1", "--port",
                                               str(port)], port, "")  # fmt: skip
    for n in range(2):
        port = free_port()
        processes.start(f"daemon-{n + 1}", ["daemon"], port, "/metrics")
    processes.ready()
    hooks = Hooks(bridge_secrets.hook_key(secret), ports)
    stack.callback(hooks.pool.shutdown)
    walk = Walk(stand_in, hooks, engine)
    print(f"running: 2 receivers, 2 daemons, {args.majors} major releases, {args.in_flight} "
          f"releases in flight; load {scale_report.load()}", flush=True)  # fmt: skip
    began = time.time()
    next_ticket, stopped, report_at = 1, "", began + PROGRESS
    while True:
        elapsed = time.time() - began
        if next_ticket <= args.releases and elapsed > args.max_seconds:
            stopped = f"--max-seconds {args.max_seconds:g}: {next_ticket - 1} releases started"
            next_ticket = args.releases + 1
        while next_ticket <= args.releases and walk.under_way < args.in_flight:
            walk.ask(next_ticket, MOVES[0])
            next_ticket += 1
        walk.step()
        if next_ticket > args.releases and walk.under_way == 0:
            break
        if time.time() >= report_at:
            report_at += PROGRESS
            print(f"  {elapsed:6.0f} s: {len(walk.finished)} releases finished, {walk.under_way}"
                  f" under way; load {scale_report.load()}", flush=True)  # fmt: skip
        if elapsed > args.max_seconds + GRACE or processes.exited():
            walk.errors += [f"unfinished: {walk.under_way} releases", *processes.exited()]
            break
        time.sleep(0.02)
    ended = time.time()
    hooks.pool.shutdown(wait=True)
    load = scale_report.load()
    processes.stop()
    return scale_report.figures(
        engine=engine, stand_in=stand_in, hooks=hooks.latencies_ms,
        began=began, ended=ended, load=load, tree=work / "data" / "repo",
        errors=[*walk.errors, *hooks.refused, *(f"stand-in: unknown call {u}"
                                                for u in stand_in.unhandled)],
        production=sum(1 for s in walk.finished.values() if s == "Production"),
        releases=args.releases, stopped=stopped,
        files_per_release=args.files / args.releases, logs=work,
    )  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options (``--help`` lists them)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--releases", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000, help="files in all releases")
    parser.add_argument("--majors", type=int, default=4, help="major releases (slots)")
    parser.add_argument("--in-flight", type=int, default=32, help="releases under way at once")
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--reconcile-interval", type=float, default=3600.0)
    parser.add_argument(
        "--layout", choices=("snapshots", "tree"), default="snapshots",
        help="ROLLOUT_AREA_LAYOUT of the daemons (docs/publication.md)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.releases < 1 or args.files < args.releases or args.majors < 1:
        parser.error("need --releases >= 1, --files >= --releases, --majors >= 1")
    return args


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # the processes are stopped on the way out


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    figures = run(parse(argv))
    print(scale_report.render(figures))
    return 1 if figures.errors else 0


if __name__ == "__main__":
    sys.exit(main())
