"""Real ``rollout daemon`` processes on a real queue: exactly-once, crashes, SIGTERM.

The daemons run as subprocesses (``python -m tests.support.daemon_main daemon``: settings from
``ROLLOUT_*`` as ``rollout daemon`` builds them, ``assemble.run_daemon`` / ``run_all``) with a test
processor that appends each job it starts and finishes to a file
(``tests/support/daemon_helpers.py``), so the file shows what was done, by which process, in
which order. ``rollout serve`` runs as shipped (``python -m repo_daemon serve``).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from bridge import records, secrets
from bridge.intake import webhooks
from bridge.rt_setup.sandbox import free_port
from bridge.store import queue
from tests.support.daemon_helpers import (
    HOLD_ENV,
    HOLD_TICKET_ENV,
    DaemonProcess,
    Line,
    daemon_env,
    read_log,
    wait_for,
)

S = records.RolloutState
HOOK_SECRET = secrets.new_hook_secret()
QueueFactory = Callable[..., queue.Queue]


def change(ticket: int, txn: int) -> records.ReleaseRequest:
    return records.ReleaseRequest(
        ticket_id=ticket, transaction_id=txn, current=S.UNVERIFIED, previous=S.SUBMITTED, actor="qc"
    )


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(env: dict[str, str], *args: str, **kwargs: str) -> DaemonProcess:
        process = DaemonProcess(env, tmp_path / f"daemon-{len(started)}.log", *args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def _started(daemon: DaemonProcess) -> Callable[[], bool]:
    return lambda: "started" in daemon.output()


def _done_count(q: queue.Queue, expected: int) -> Callable[[], bool]:
    return lambda: q.stats()["done"] >= expected


def _done_lines(log: Path) -> list[Line]:
    return [line for line in read_log(log) if line.what == "done"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_daemons_on_one_postgresql_queue_do_every_item_exactly_once_in_order(
    db_url: str, make_queue: QueueFactory, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    tickets, per_ticket = 50, 10  # 500 items
    log = tmp_path / "processed.log"
    env = daemon_env(db_url, log)
    first, second = daemons(env), daemons(env)
    for daemon in (first, second):  # both polling before the work arrives
        wait_for(_started(daemon), timeout=60, what="daemon start")
    q = make_queue()
    q.enqueue_many(
        [change(t, t * 1000 + n) for n in range(per_ticket) for t in range(1, tickets + 1)]
    )

    wait_for(_done_count(q, tickets * per_ticket), timeout=180, what="500 items done")
    for daemon in (first, second):
        daemon.signal(signal.SIGTERM)
    assert first.wait(60) == 0
    assert second.wait(60) == 0

    done = _done_lines(log)
    by_job = Counter(line.job_id for line in done)
    assert len(by_job) == tickets * per_ticket
    assert set(by_job.values()) == {1}, "some item was done twice"
    assert Counter(line.what for line in read_log(log))["start"] == tickets * per_ticket
    order: dict[int, list[int]] = defaultdict(list)
    for line in done:
        order[line.ticket_id].append(line.transaction_id)
    for ticket, transactions in order.items():
        assert transactions == sorted(transactions), f"ticket {ticket} ran out of order"
    workers = Counter(line.pid for line in done)
    assert set(workers) == {first.pid, second.pid}, "both daemons should have worked"
    stats = q.stats()
    assert (stats["done"], stats["queued"], stats["running"]) == (500, 0, 0)
    assert {j.attempts for j in q.list_jobs(limit=1000)} == {1}


def test_an_item_of_a_killed_daemon_is_claimed_again_after_its_lease_and_done(
    db_url: str, make_queue: QueueFactory, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    q = make_queue()
    held_ticket = 1
    q.enqueue_many([change(held_ticket, 100)] + [change(t, 100 + t) for t in range(2, 31)])
    log, hold = tmp_path / "processed.log", tmp_path / "hold"
    hold.touch()
    env = daemon_env(
        db_url,
        log,
        ROLLOUT_LEASE_SECONDS="3",  # heartbeats every second
        **{HOLD_ENV: str(hold), HOLD_TICKET_ENV: str(held_ticket)},
    )
    a, b = daemons(env), daemons(env)

    # Whoever took the held item is stuck in it; the other does all the rest meanwhile.
    started = wait_for(
        lambda: [x for x in read_log(log) if x.what == "start" and x.ticket_id == held_ticket],
        timeout=60,
        what="the held item to start",
    )
    (victim_line,) = started
    victim, survivor = (a, b) if victim_line.pid == a.pid else (b, a)
    wait_for(_done_count(q, 29), timeout=60, what="the other 29 items")
    held = q.get(victim_line.job_id)
    assert held is not None and held.status is records.JobStatus.RUNNING
    assert held.locked_by is not None and held.locked_by.endswith(f":{victim.pid}")

    victim.signal(signal.SIGKILL)
    assert victim.wait(30) == -signal.SIGKILL
    hold.unlink()
    wait_for(_done_count(q, 30), timeout=60, what="the held item, done by the survivor")

    held = q.get(victim_line.job_id)
    assert held is not None and held.status is records.JobStatus.DONE
    assert held.attempts == 2  # the killed daemon's try, and the survivor's
    lines = read_log(log)
    held_lines = [(x.what, x.pid, x.attempts) for x in lines if x.job_id == held.id]
    assert held_lines == [
        ("start", victim.pid, 1),
        ("start", survivor.pid, 2),
        ("done", survivor.pid, 2),
    ]
    done = Counter(x.job_id for x in lines if x.what == "done")
    assert len(done) == 30 and set(done.values()) == {1}  # nothing lost, nothing twice
    survivor.signal(signal.SIGTERM)
    assert survivor.wait(60) == 0


def test_sigterm_finishes_the_item_in_hand_and_claims_nothing_more(
    db_url: str, make_queue: QueueFactory, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    q = make_queue()
    q.enqueue(change(1, 100))  # the oldest: the daemon takes it first
    q.enqueue_many([change(t, 100 + t) for t in range(2, 11)])
    log, hold = tmp_path / "processed.log", tmp_path / "hold"
    hold.touch()
    # One worker: the item in hand is the only one (several workers: test_runner.py).
    env = daemon_env(
        db_url, log, **{HOLD_ENV: str(hold), HOLD_TICKET_ENV: "1", "ROLLOUT_DAEMON_WORKERS": "1"}
    )
    daemon = daemons(env)
    wait_for(
        lambda: [x for x in read_log(log) if x.what == "start"],
        timeout=60,
        what="the first item to start",
    )

    daemon.signal(signal.SIGTERM)
    wait_for(
        lambda: "SIGTERM received" in daemon.output(), timeout=30, what="the daemon to see SIGTERM"
    )
    assert daemon.process.poll() is None, "the daemon must not exit in the middle of an item"
    hold.unlink()
    assert daemon.wait(60) == 0

    lines = read_log(log)
    assert [(x.what, x.ticket_id) for x in lines] == [("start", 1), ("done", 1)]
    stats = q.stats()
    assert (stats["done"], stats["running"], stats["queued"]) == (1, 0, 9)
    untouched = q.list_jobs(statuses=[records.JobStatus.QUEUED])
    assert {j.attempts for j in untouched} == {0}  # nothing claimed after the signal
    assert "daemon" in daemon.output() and "stopped" in daemon.output()


# -- rollout serve and rollout run (the receiver of bridge/intake/receiver.py) ---------------------


def _post_hook(port: int, ticket: int, txn: int) -> httpx2.Response:
    body = json.dumps(
        {"ticket_id": ticket, "transaction_id": txn, "current": "Unverified",
         "previous": "Submitted", "emergency": False, "actor": "qc"}
    ).encode()  # fmt: skip
    headers = webhooks.signed_headers(
        secrets.hook_key(HOOK_SECRET), str(txn), int(time.time()), body
    )
    return httpx2.post(
        f"http://127.0.0.1:{port}/hooks/rt",
        content=body,
        headers={**headers, "content-type": "application/json"},
        timeout=10,
    )


def _ready(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx2.TransportError:
            return False

    return check


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rollout_run_receives_hooks_and_processes_them_in_one_process(
    db_url: str, make_queue: QueueFactory, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    port = free_port()
    log = tmp_path / "processed.log"
    env = daemon_env(db_url, log, ROLLOUT_HOOK_SECRET=HOOK_SECRET, ROLLOUT_LISTEN_PORT=str(port))
    process = daemons(env, "run", "--no-reconcile")
    wait_for(_ready(port), timeout=60, what="the receiver to be ready")

    answer = _post_hook(port, 5, 500)
    assert (answer.status_code, answer.json()) == (202, {"job_id": 1, "status": "queued"})
    wait_for(lambda: _done_lines(log), timeout=30, what="the hook's job to be processed")
    assert _post_hook(port, 5, 500).json() == {"job_id": 1, "status": "duplicate"}

    process.signal(signal.SIGTERM)
    assert process.wait(60) == 0
    ((line,),) = [_done_lines(log)]
    assert (line.ticket_id, line.transaction_id) == (5, 500)
    job = make_queue().get(1)
    assert job is not None and job.status is records.JobStatus.DONE
    assert "stopped" in process.output()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_rollout_serve_only_receives(
    db_url: str, make_queue: QueueFactory, tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    port = free_port()
    env = daemon_env(
        db_url, tmp_path / "unused.log", ROLLOUT_HOOK_SECRET=HOOK_SECRET,
        ROLLOUT_LISTEN_PORT=str(port),
    )  # fmt: skip
    process = daemons(env, "serve", module="repo_daemon")
    wait_for(_ready(port), timeout=60, what="the receiver to be ready")
    assert _post_hook(port, 6, 600).status_code == 202
    process.signal(signal.SIGTERM)
    assert process.wait(60) == 0
    (job,) = make_queue().list_jobs()
    assert (job.request.transaction_id, job.status) == (600, records.JobStatus.QUEUED)
