"""The receiver as its own process (real uvicorn) on SQLite and
PostgreSQL: killed with SIGKILL under load it loses no hook it answered 2xx, and it starts
again on the same database; stopped with SIGTERM it answers what it took and exits 0."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge import secrets
from bridge.intake import webhooks
from bridge.rt_setup.sandbox import free_port
from bridge.store import database, tables
from tests.support import paths

ROOT = paths.ROOT
SECRET = "whsec_" + base64.b64encode(b"process-test-secret-24by").decode()
KEY = secrets.hook_key(SECRET)
DEADLINE = 60.0


class ReceiverProcess:
    """``python -m repo_daemon serve --host 127.0.0.1 --port N`` (``rollout serve``) on a loopback
    port, otherwise configured by ``ROLLOUT_*``."""

    def __init__(
        self, *, db_url: str, data_dir: Path, secret: str = SECRET, port: int | None = None
    ) -> None:
        self.db_url = db_url
        self.data_dir = data_dir
        self.secret = secret
        self.port = port or free_port()
        self.log_path = data_dir / f"receiver-{self.port}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rt"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
        env.update(
            {
                # The receiver never calls RT; the settings still ask for a tracker.
                "ROLLOUT_RT_URL": "http://127.0.0.1:9/",
                "ROLLOUT_RT_TOKEN": "unused-by-the-receiver",
                "ROLLOUT_HOOK_SECRET": self.secret,
                "ROLLOUT_DATABASE_URL": self.db_url,
                "ROLLOUT_DATA_DIR": str(self.data_dir),
            }
        )
        return env

    def command(self) -> list[str]:
        return [sys.executable, "-m", "repo_daemon", "serve", "--host", "127.0.0.1",
                "--port", str(self.port)]  # fmt: skip

    def start(self) -> ReceiverProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + DEADLINE
        while self.get("/readyz")[0] != 200:
            if self.process.poll() is not None:
                raise AssertionError(f"receiver exited {self.process.returncode}:\n{self.log()}")
            assert time.monotonic() < deadline, f"receiver not ready in time:\n{self.log()}"
            time.sleep(0.05)
        return self

    def get(self, path: str) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except OSError:
            return 0, None
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(DEADLINE)


def signed_hook(ticket_id: int, transaction_id: int, **more: Any) -> tuple[bytes, dict[str, str]]:
    fields = {
        "ticket_id": ticket_id,
        "transaction_id": transaction_id,
        "current": "Unverified",
        "previous": "",
        "emergency": False,
        "actor": "root",
    } | more
    body = json.dumps(fields).encode()
    headers = webhooks.signed_headers(KEY, str(transaction_id), int(time.time()), body)
    headers["content-type"] = "application/json"
    return body, headers


def post_hook(port: int, ticket_id: int, transaction_id: int) -> tuple[int, Any]:
    body, headers = signed_hook(ticket_id, transaction_id)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/hooks/rt", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@dataclass
class Load:
    """Several keep-alive connections posting signed hooks until told to stop or cut off."""

    port: int
    connections: int = 8
    stop: threading.Event = field(default_factory=threading.Event)
    answered: dict[int, tuple[int, int]] = field(default_factory=dict)  # tid -> (status, job)
    other: list[int] = field(default_factory=list)
    cut_off: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(self.connections):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        tid = 100_000 + n
        try:
            while not self.stop.is_set():
                body, headers = signed_hook(tid % 50 + 1, tid)
                try:
                    conn.request("POST", "/hooks/rt", body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException):
                    with self._lock:
                        self.cut_off += 1
                    return
                with self._lock:
                    if 200 <= response.status < 300:
                        self.answered[tid] = (response.status, json.loads(data)["job_id"])
                    else:
                        self.other.append(response.status)
                tid += self.connections
        finally:
            conn.close()

    def count(self) -> int:
        with self._lock:
            return len(self.answered)

    def wait_for(self, answered: int) -> None:
        deadline = time.monotonic() + DEADLINE
        while self.count() < answered:
            assert time.monotonic() < deadline, f"only {self.count()} hooks answered in time"
            assert any(t.is_alive() for t in self._threads), "every connection failed"
            time.sleep(0.005)

    def join(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(DEADLINE)
            assert not thread.is_alive()


def stored_jobs(db_url: str) -> dict[int, int]:
    """transaction id -> job id, read straight from the table."""
    engine = database.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tables.jobs.c.transaction_id, tables.jobs.c.id)).all()
    finally:
        engine.dispose()
    return {int(tid): int(job) for tid, job in rows}


def test_sigkill_under_load_loses_no_answered_hook(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = ReceiverProcess(db_url=db_url, data_dir=tmp_path / "data").start()
    load = Load(receiver.port).start()
    load.wait_for(300)
    assert receiver.process is not None
    receiver.process.kill()  # SIGKILL: no shutdown code runs
    assert receiver.process.wait(DEADLINE) == -signal.SIGKILL
    load.join()

    stored = stored_jobs(db_url)
    answered = dict(load.answered)
    assert answered and all(status == 202 for status, _ in answered.values())
    lost = {tid for tid in answered if tid not in stored}
    assert lost == set(), f"{len(lost)} hooks answered 2xx are not in the queue"
    assert all(stored[tid] == job for tid, (_, job) in answered.items())
    assert load.other == []
    with capsys.disabled():
        print(
            f"\n[{db_url.split(':')[0]}] SIGKILL after {len(answered)} answered hooks: "
            f"{len(stored)} stored, {len(stored) - len(answered)} stored but unanswered, "
            f"{load.cut_off} connections cut off, 0 lost"
        )

    # It starts again on the same database and answers: new hooks, and old ones as duplicates.
    again = ReceiverProcess(db_url=db_url, data_dir=tmp_path / "data").start()
    try:
        status, reply = post_hook(again.port, 1, 1)
        assert (status, reply["status"]) == (202, "queued")
        tid, (_, job) = next(iter(answered.items()))
        assert post_hook(again.port, tid % 50 + 1, tid) == (
            200,
            {"job_id": job, "status": "duplicate"},
        )
    finally:
        assert again.stop() == 0


def test_sigterm_under_load_answers_what_it_took_and_exits_0(db_url: str, tmp_path: Path) -> None:
    receiver = ReceiverProcess(db_url=db_url, data_dir=tmp_path / "data").start()
    load = Load(receiver.port).start()
    load.wait_for(200)
    assert receiver.stop(signal.SIGTERM) == 0
    load.join()

    stored = stored_jobs(db_url)
    answered = dict(load.answered)
    # Every hook it took was answered, and every answered hook is stored: no request of those
    # it accepted was left without an answer when it stopped.
    assert set(stored) == set(answered)
    assert load.other == []
    log = receiver.log()
    assert f"hook writer stopped: {len(stored)} hooks stored in" in log
    assert "Finished server process" in log
    assert SECRET not in log and "v1," not in log


def test_real_chunked_body_over_the_limit(db_url: str, tmp_path: Path) -> None:
    receiver = ReceiverProcess(db_url=db_url, data_dir=tmp_path / "data").start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=10)
        chunks = (b"x" * 4096 for _ in range(40))  # 160 KiB, no Content-Length
        conn.request(
            "POST",
            "/hooks/rt",
            body=chunks,
            headers={"content-type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read()) == {
            "error": "body is larger than the limit of 65536 bytes"
        }
        conn.close()
        assert stored_jobs(db_url) == {}
        assert receiver.get("/healthz") == (200, {"status": "ok"})
    finally:
        assert receiver.stop() == 0


def test_refuses_to_start_without_a_hook_secret(db_url: str, tmp_path: Path) -> None:
    receiver = ReceiverProcess(db_url=db_url, data_dir=tmp_path / "data", secret="")
    result = subprocess.run(
        receiver.command(),
        cwd=ROOT,
        env=receiver.env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 2
    assert "hook_secret is not set (ROLLOUT_HOOK_SECRET or ROLLOUT_HOOK_SECRET_FILE)" in (
        result.stderr
    )
