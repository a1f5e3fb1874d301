"""Webhook deliveries per second with durable bookkeeping, next to the raw HTTP rate of the same
client in the same run (issue 17).

    .venv/bin/python -m benchmarks.deliveries [--deliveries 5000] [--subscriptions 2]
        [--releases-per 10] [--paced-rate 50] [--paced-seconds 10]
        [--paced-releases 50] [--profile FILE]

One cheap receiver for everything: ``python -m benchmarks.deliveries _receive``, a separate
process (its own GIL) running the standard library's ``ThreadingHTTPServer`` (HTTP/1.1
keep-alive, a thread per connection) that answers every POST ``204`` WITHOUT verifying and
notes its path, ``webhook-id`` and arrival time.

1. **Raw**: ``Sender.post`` (the daemon's client: pinning, deadline, capped read) of
   ``--deliveries`` bodies shaped like deliveries, each signed by ``signing.headers_for`` as
   the worker signs, from as many threads as the worker sends at once; no database.
2. **Backlog**: a fresh SQLite (WAL, ``synchronous=FULL``) in a temporary directory with
   ``--subscriptions`` subscriptions to the receiver and ``--deliveries`` pending deliveries
   (``job_queued`` events of ``releases-per``-event releases, written through
   ``Queue.enqueue_many`` before the clock starts), sent by the real ``DeliveryWorker`` with
   the default ``WebhookSettings`` (8 workers, at most half of them per endpoint: two
   subscriptions are needed to use all 8) but for the loopback allowlist: ``drain()`` timed
   from start to the last attempt recorded. Latency is the delivery's ``created_at`` →
   arrival, so here mostly the wait in the backlog.
3. **Paced**: the worker's ``run()`` loop (as the daemon runs it) while events of
   ``--paced-releases`` releases are written at ``--paced-rate`` per second in groups of 10
   for ``--paced-seconds``: the latency from the event's commit to the arrival under a load
   it keeps up with.

Everything stays on 127.0.0.1, in temporary directories, and is bounded. Not a test: nothing
is asserted. ``--profile FILE`` writes cProfile statistics of the backlog's drain.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import cProfile
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.receiver import fsync_ms, machine
from bridge import records
from bridge.settings import model as settings_model
from bridge.store import database, deliveries, queue, subscription_store, tables
from repo_daemon.deliveries import destinations, outbound, signing
from repo_daemon.deliveries import worker as delivery_worker

ROOT = Path(__file__).resolve().parents[1]
TICKET0 = 10_000


# -- the receiver (its own process) ------------------------------------------------------------


def receive() -> int:
    """Serve until stdin closes: POST → 204 (noted); GET /stats → the notes as JSON and
    forget them."""
    notes: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.time()
            with lock:
                notes.append((self.path, self.headers.get("webhook-id", ""), arrived))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(notes).encode()
                notes.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()
    return 0


class Receiver:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.deliveries", "_receive"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def notes(self) -> list[tuple[str, str, float]]:
        """What arrived since the last call: (path, webhook-id, arrival)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/stats")
        found = json.loads(conn.getresponse().read())
        conn.close()
        return [tuple(n) for n in found]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


class NginxReceiver:
    """The same receiver's part played by a real nginx (``return 204``; its access log notes the
    path, ``webhook-id`` and time): a server in C costs the two cores little, so what is
    measured is the client."""

    CONF = """
worker_processes 1;
pid {work}/nginx.pid;
{user}
events {{ worker_connections 256; }}
http {{
    log_format notes '$request_uri $http_webhook_id $msec';
    client_body_temp_path {work}/body;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        access_log {work}/notes.log notes;
        location / {{ return 204; }}
    }}
}}
"""

    def __init__(self, workdir: Path) -> None:
        from bridge.rt_setup.sandbox import free_port
        from tests.support.nginx_server import nginx_binary

        binary = nginx_binary()
        if binary is None:
            raise SystemExit(
                "nginx is not installed (apt-get install nginx), or use --receiver python"
            )
        self.work = workdir
        self.port = free_port()
        user = "user root;" if os.geteuid() == 0 else ""
        conf = workdir / "nginx.conf"
        conf.write_text(self.CONF.format(work=workdir, port=self.port, user=user))
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", f"{workdir}/", "-e", str(workdir / "error.log"),
             "-g", "daemon off;"],
        )  # fmt: skip
        self.log = workdir / "notes.log"
        self.offset = 0
        deadline = time.monotonic() + 10
        while True:
            try:
                http.client.HTTPConnection("127.0.0.1", self.port, timeout=1).request("GET", "/")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def notes(self) -> list[tuple[str, str, float]]:
        """What arrived since the last call: (path, webhook-id, arrival)."""
        with self.log.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        whole = data[: data.rfind(b"\n") + 1]
        self.offset += len(whole)
        found = []
        for line in whole.decode().splitlines():
            path, hook, at = line.split(" ")
            if hook != "-":
                found.append((path, hook, float(at)))
        return found

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


AnyReceiver = Receiver | NginxReceiver


# -- figures ------------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def latency_line(ms: list[float]) -> str:
    return (
        f"latency created → received: p50 {pct(ms, 0.5):,.1f} ms, p90 {pct(ms, 0.9):,.1f} ms, "
        f"p99 {pct(ms, 0.99):,.1f} ms, max {max(ms):,.1f} ms ({len(ms)} deliveries)"
    )


def settings() -> settings_model.WebhookSettings:
    """The defaults, but loopback allowed."""
    return settings_model.WebhookSettings(allow_cidrs=("127.0.0.0/8",))


def sender(hooks: settings_model.WebhookSettings) -> outbound.Sender:
    return outbound.Sender(
        destinations.DestinationPolicy.from_cidrs(hooks.allow_cidrs),
        timeout=hooks.timeout, body_cap=hooks.response_cap, pool_connections=hooks.workers,
    )  # fmt: skip


# -- 1. raw -------------------------------------------------------------------------------------


def raw_rate(receiver: AnyReceiver, count: int, threads: int, body: bytes) -> float:
    """``Sender.post`` with signing, ``count`` times from ``threads`` threads: posts/s."""
    secret = subscription_store.new_secret()
    client = sender(settings())
    url = receiver.url("/raw")

    def post(n: int) -> bool:
        headers = signing.headers_for(
            webhook_id=f"raw_{n}", timestamp=datetime.now(UTC), body=body,
            secrets=(secret,), github=False,
        )  # fmt: skip
        return client.post(url, body, headers).ok

    try:
        with futures.ThreadPoolExecutor(threads) as pool:
            list(pool.map(post, range(threads)))  # connect every thread's session first
            receiver.notes()
            start = time.perf_counter()
            ok = sum(pool.map(post, range(count)))
            seconds = time.perf_counter() - start
    finally:
        client.close()
    arrived = len(receiver.notes())
    print(f"  raw: {ok}/{count} posts 2xx ({arrived} arrived) in {seconds:.2f} s")
    return ok / seconds


# -- 2 and 3. the worker -------------------------------------------------------------------------


def prepare(url: str, receiver: AnyReceiver, subs: int) -> sa.Engine:
    engine = database.create_engine(url)
    database.migrate(engine)
    store = subscription_store.SubscriptionStore(engine, clock=queue.utcnow)
    for n in range(subs):
        spec = subscription_store.Spec(url=receiver.url(f"/s{n}"), kinds=("job_queued",))
        store.add(f"bench-{n}", spec, actor="bench", enabled=True)
    return engine


def write_events(jobs: queue.Queue, first: int, count: int, releases: int) -> None:
    """``count`` ``job_queued`` events spread over ``releases`` releases, from transaction
    ``first``."""
    jobs.enqueue_many([_request(first + n, releases) for n in range(count)])


def _request(transaction: int, releases: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=TICKET0 + transaction % releases, transaction_id=transaction,
        current=records.RolloutState.UNVERIFIED, previous=records.RolloutState.SUBMITTED,
        actor="bench",
    )  # fmt: skip


def latencies(engine: sa.Engine, notes: list[tuple[str, str, float]]) -> tuple[list[float], int]:
    """Milliseconds from each delivery's ``created_at`` to its first arrival; repeats."""
    d, s = tables.deliveries, tables.subscriptions
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.c.url, d.c.payload, d.c.created_at).join(s, s.c.id == d.c.subscription_id)
        ).all()
    first: dict[tuple[str, str], float] = {}
    for path, wid, at in notes:
        first.setdefault((path, wid), at)
    found = []
    for row in rows:
        key = ("/" + row.url.rsplit("/", 1)[1], json.loads(row.payload)["id"])
        if key in first:
            created = row.created_at.replace(tzinfo=UTC).timestamp()
            found.append((first[key] - created) * 1000)
    return found, len(notes) - len(first)


def backlog(args: argparse.Namespace, receiver: AnyReceiver, workdir: Path) -> tuple[float, int]:
    """Drain ``--deliveries`` pending deliveries; (deliveries/s, slots used)."""
    engine = prepare(database.default_url(workdir), receiver, args.subscriptions)
    hooks = settings()
    try:
        events = args.deliveries // args.subscriptions
        jobs = queue.Queue(engine)
        for first in range(0, events, 500):
            releases = max(1, events // args.releases_per)
            write_events(jobs, first + 1, min(500, events - first), releases)
        with engine.connect() as conn:
            pending = conn.execute(sa.select(sa.func.count()).select_from(tables.deliveries))
            total = int(pending.scalar_one())
        client = sender(hooks)
        store = deliveries.DeliveryStore(engine, clock=queue.utcnow)
        worker = delivery_worker.DeliveryWorker(
            store, client, hooks, worker="bench", clock=queue.utcnow
        )
        receiver.notes()
        profile = cProfile.Profile() if args.profile else None
        start = time.perf_counter()
        if profile is not None:
            profile.enable()
        made = worker.drain()
        if profile is not None:
            profile.disable()
            profile.dump_stats(args.profile)
        seconds = time.perf_counter() - start
        worker.close()
        client.close()
        with engine.connect() as conn:
            done = conn.execute(
                sa.select(sa.func.count()).where(tables.deliveries.c.status == "delivered")
            ).scalar_one()
        ms, repeats = latencies(engine, receiver.notes())
    finally:
        engine.dispose()
    slots = min(worker.slots, args.subscriptions * worker.per_endpoint)
    print(
        f"  backlog: {total} deliveries ({events} events × {args.subscriptions} subscriptions, "
        f"{args.releases_per} events a release), {made} attempts, {done} delivered, "
        f"{repeats} repeats, in {seconds:.2f} s; {slots} sending at once"
    )
    print(f"  backlog {latency_line(ms)}")
    return done / seconds, slots


def paced(args: argparse.Namespace, receiver: AnyReceiver, workdir: Path) -> None:
    engine = prepare(database.default_url(workdir), receiver, args.subscriptions)
    hooks = settings()
    client = sender(hooks)
    worker = delivery_worker.DeliveryWorker(
        deliveries.DeliveryStore(engine, clock=queue.utcnow), client, hooks,
        worker="bench", clock=queue.utcnow,
    )  # fmt: skip
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        jobs = queue.Queue(engine)
        group = 10
        interval = group / args.paced_rate
        groups = int(args.paced_seconds / interval)
        start = time.perf_counter()
        for n in range(groups):
            write_events(jobs, 1 + n * group, group, args.paced_releases)
            time.sleep(max(0.0, start + (n + 1) * interval - time.perf_counter()))
        expected = groups * group * args.subscriptions
        notes: list[tuple[str, str, float]] = []
        deadline = time.monotonic() + 60
        while len({(p, w) for p, w, _ in notes}) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
            notes += receiver.notes()
    finally:
        worker.stop()
        thread.join()
        worker.close()
        client.close()
    ms, repeats = latencies(engine, notes)
    engine.dispose()
    print(
        f"  paced: {groups * group} events ({args.paced_rate:g}/s in groups of {group}) × "
        f"{args.subscriptions} subscriptions = {expected} deliveries over "
        f"{args.paced_releases} releases, "
        f"{len(ms)} arrived, {repeats} repeats; poll_interval {hooks.poll_interval:g} s"
    )
    print(f"  paced {latency_line(ms)}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_receive"]:
        return receive()
    parser = argparse.ArgumentParser(prog="python -m benchmarks.deliveries", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--subscriptions", type=int, default=2)
    parser.add_argument("--releases-per", type=int, default=10, help="events a release")
    parser.add_argument("--paced-rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--paced-releases", type=int, default=50, help="releases written to")
    parser.add_argument("--profile", help="write cProfile stats of the backlog's drain here")
    parser.add_argument(
        "--receiver", choices=("nginx", "python"), default="nginx",
        help="nginx (return 204, notes in its access log) or Python's ThreadingHTTPServer",
    )  # fmt: skip
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="rollout-bench-deliveries-") as tmp:
        root = Path(tmp)
        (root / "receiver").mkdir()
        receiver: AnyReceiver = (
            NginxReceiver(root / "receiver") if args.receiver == "nginx" else Receiver()
        )
        print(f"  receiver: {args.receiver}")
        try:
            print(f"  fsync of a small write: {fsync_ms(root):.2f} ms")
            (root / "backlog").mkdir()
            rate, slots = backlog(args, receiver, root / "backlog")
            body = _body_like_a_delivery(root / "backlog")
            raw = raw_rate(receiver, args.deliveries, slots, body)
            print(
                f"deliveries {rate:,.0f}/s; raw HTTP (same client and signing, {slots} threads, "
                f"no database) {raw:,.0f}/s: {100 * rate / raw:.0f} % of raw"
            )
            if args.paced_seconds > 0:
                (root / "paced").mkdir()
                paced(args, receiver, root / "paced")
        finally:
            receiver.close()
    return 0


def _body_like_a_delivery(workdir: Path) -> bytes:
    """The payload of a delivery of the backlog (the raw posts send bodies of its size)."""
    engine = database.create_engine(database.default_url(workdir))
    try:
        with engine.connect() as conn:
            payload = conn.execute(sa.select(tables.deliveries.c.payload).limit(1)).scalar_one()
    finally:
        engine.dispose()
    return str(payload).encode("utf-8")


if __name__ == "__main__":
    sys.exit(main())
