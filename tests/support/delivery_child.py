"""``python -m tests.support.delivery_child DB_URL WORKER [--lease S] [--ahead S]``: a
daemon-like child process that sends webhook deliveries, for the tests that SIGKILL it or run
two of it on one database.

It runs the product's sending as the daemon does: the real ``DeliveryStore`` on DB_URL and the
real ``DeliveryWorker`` with a real ``Sender`` whose policy allows 127.0.0.0/8 (the tests'
receivers are on loopback), in its ``run()`` loop until SIGTERM (then it stops, records what
is in flight and says ``stopped``) or SIGKILL (then it says nothing more). Set up, it prints
``ready`` and waits for a line on its standard input (so a test can start it ahead of time
and pay Python's start-up beforehand; end of input: it ends without sending), then prints
``sending`` and claims.

``--ahead S`` runs the child's clock S seconds ahead of the real time: a restarted child
behaves as if the killed one's leases had already run out (what a real restart gets by
waiting for them), so a test need not wait a whole lease per kill. It must stay well within
the signatures' tolerance (Standard Webhooks: 5 minutes).

For the tests that start it: ``Child`` (start, SIGKILL, stop), ``fill`` (a subscription to a
receiver and deliveries of many releases) and ``order_problems`` (the releases whose first
receipts came out of sequence). It owns nothing of the product and must not change what it
runs: only how it is started.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import sqlalchemy as sa

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import database, deliveries, queue, subscription_store, tables
from repo_daemon.deliveries import destinations, outbound
from repo_daemon.deliveries import worker as delivery_worker

ALLOW = ("127.0.0.0/8",)
TIMEOUT = 5.0  # seconds for one attempt (the tests' receivers answer in milliseconds)
# The worker's lease with these settings (it outlives any attempt: 2 × timeout + 5 s), and
# how far ahead a restarted child's clock must run for the killed one's leases to be out.
LEASE = 2 * TIMEOUT + 5
AHEAD_STEP = LEASE + 1
ROOT = Path(__file__).resolve().parents[2]


def settings(lease: float, poll: float) -> settings_model.WebhookSettings:
    """The webhook settings the child runs with: the defaults but for loopback, a short
    timeout, ``lease`` and a quick poll."""
    return settings_model.WebhookSettings(
        allow_cidrs=ALLOW, timeout=TIMEOUT, lease_seconds=lease, poll_interval=poll
    )


def run(url: str, name: str, *, lease: float, ahead: float, poll: float) -> int:
    hooks = settings(lease, poll)
    offset = timedelta(seconds=ahead)

    def clock() -> datetime:
        return queue.utcnow() + offset

    engine = database.create_engine(url)
    store = deliveries.DeliveryStore(engine, clock=clock)
    sender = outbound.Sender(
        destinations.DestinationPolicy.from_cidrs(hooks.allow_cidrs),
        timeout=hooks.timeout,
        body_cap=hooks.response_cap,
        pool_connections=hooks.workers,
    )
    worker = delivery_worker.DeliveryWorker(store, sender, hooks, worker=name, clock=clock)

    def stop(signum: int, frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    try:
        print("ready", flush=True)
        if sys.stdin.readline():
            print("sending", flush=True)
            worker.run()
    finally:
        worker.close()
        sender.close()
        engine.dispose()
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="delivery_child")
    parser.add_argument("url", help="the database URL")
    parser.add_argument("worker", help="the worker's name (leases and attempt rows)")
    parser.add_argument("--lease", type=float, default=60.0, help="lease_seconds")
    parser.add_argument("--ahead", type=float, default=0.0, help="clock ahead by seconds")
    parser.add_argument("--poll", type=float, default=0.05, help="poll_interval")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return run(args.url, args.worker, lease=args.lease, ahead=args.ahead, poll=args.poll)


# -- for the tests that start it ------------------------------------------------------------


@dataclass
class Child:
    """One running child: its process, its worker's name, where its stderr goes."""

    process: subprocess.Popen[str]
    name: str
    log: Path

    @classmethod
    def start(cls, url: str, name: str, log: Path, *, ahead: float = 0.0) -> Child:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env["PYTHONPATH"] = str(ROOT)
        command = [sys.executable, "-m", "tests.support.delivery_child", url, name]
        command += ["--lease", "1", "--ahead", str(ahead)]
        with log.open("a") as err:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=err, text=True,
            )  # fmt: skip
        return cls(process, name, log)

    def ready(self) -> None:
        """Wait until it is set up (it says ``ready``)."""
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line == "ready\n", f"{self.name} said {line!r}; {self.failure()}"

    def go(self) -> None:
        """Let it send (once it is set up)."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def kill(self) -> str:
        """SIGKILL it; what it printed."""
        self.process.send_signal(signal.SIGKILL)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == -signal.SIGKILL, self.failure()
        return out

    def stop(self) -> str:
        """SIGTERM it and wait for it to end well; what it printed."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        assert self.process.returncode == 0 and out.split()[-2:] == ["sending", "stopped"], (
            f"{self.name} ended {self.process.returncode}: {out!r}; {self.failure()}"
        )
        return out

    def alive(self) -> bool:
        return self.process.poll() is None

    def failure(self) -> str:
        return f"{self.name}'s stderr: {self.log.read_text(errors='replace')[-2000:]!r}"


def fill(url: str, receiver_url: str, secret: str, *, releases: int, per_release: int) -> list[str]:
    """One subscription to ``receiver_url`` (signed with ``secret``) wanting ``job_queued``,
    and ``per_release`` queued changes for each of ``releases`` tickets, interleaved: a
    delivery each. Returns the deliveries' webhook-ids."""
    engine = database.create_engine(url)
    try:
        subs = subscription_store.SubscriptionStore(engine, clock=queue.utcnow)
        spec = subscription_store.Spec(url=receiver_url, kinds=("job_queued",))
        subs.add("receiver", spec, actor="test", enabled=True, secret=secret)
        requests = [
            records.ReleaseRequest(
                ticket_id=1000 + ticket,
                transaction_id=100_000 + n * releases + ticket,
                current=records.RolloutState.UNVERIFIED,
                previous=records.RolloutState.SUBMITTED,
                actor="test",
            )
            for n in range(per_release)
            for ticket in range(releases)
        ]
        queue.Queue(engine).enqueue_many(requests)
        return [row.webhook_id for row in state(engine)]
    finally:
        engine.dispose()


@dataclass(frozen=True, kw_only=True)
class Row:
    """A delivery as the database has it."""

    id: int
    webhook_id: str
    ticket_id: int
    seq: int
    status: str
    locked_by: str | None


def state(engine: sa.Engine) -> list[Row]:
    d = tables.deliveries
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(d.c.id, d.c.payload, d.c.ticket_id, d.c.seq, d.c.status, d.c.locked_by)
            .order_by(d.c.id)
        ).all()  # fmt: skip
    return [
        Row(
            id=int(r.id),
            webhook_id=_webhook_id(r.payload),
            ticket_id=int(r.ticket_id),
            seq=int(r.seq),
            status=r.status,
            locked_by=r.locked_by,
        )
        for r in rows
    ]


def successes(engine: sa.Engine) -> dict[int, list[str]]:
    """Per delivery, the workers of its successful attempts as recorded."""
    a = tables.delivery_attempts
    found: dict[int, list[str]] = collections.defaultdict(list)
    with engine.connect() as conn:
        for row in conn.execute(
            sa.select(a.c.delivery_id, a.c.worker).where(a.c.status.between(200, 299))
        ):
            found[int(row.delivery_id)].append(row.worker)
    return dict(found)


def order_problems(payloads: Sequence[Any], rows: Sequence[Row]) -> list[str]:
    """The releases whose FIRST receipts (``payloads`` in the order received) are not their
    deliveries' sequence in order; [] when all are."""
    firsts: dict[int, list[int]] = collections.defaultdict(list)
    seen: set[str] = set()
    for payload in payloads:
        if payload["id"] in seen:
            continue
        seen.add(payload["id"])
        firsts[int(payload["data"]["ticket"])].append(int(payload["sequence"]))
    wanted: dict[int, list[int]] = collections.defaultdict(list)
    for row in sorted(rows, key=lambda r: r.seq):
        wanted[row.ticket_id].append(row.seq)
    return [
        f"release {ticket}: received {firsts.get(ticket)}, sequence {seqs}"
        for ticket, seqs in sorted(wanted.items())
        if firsts.get(ticket) != seqs
    ]


def _webhook_id(payload: str) -> str:
    return str(json.loads(payload)["id"])


if __name__ == "__main__":
    sys.exit(main())
