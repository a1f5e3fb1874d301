"""The receiver under abuse, as its own process (``rollout serve``, uvicorn with httptools):
idle and slowloris connections from one client are cut and cannot starve RT's signed hooks, a
256 MiB header is refused without the process growing, a body that does not come is cut, and
clients hanging up mid-body cost a handful of log lines, not a traceback each.

The attacker connects from 127.0.0.2, RT (the signed hooks) from 127.0.0.1: in a deployment
they sit on different addresses, and the per-client cap is per address. The limits are the
shipped defaults except the timeouts and the log interval, shortened so that the whole attack
takes seconds (``LIMITS``).
"""

from __future__ import annotations

import http.client
import json
import os
import random
import re
import select
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bridge.rt_setup.sandbox import free_port
from bridge.settings import model as settings_model
from bridge.store import database
from repo_daemon.serving import receiver_proxy
from tests.integration.test_receiver_process import ReceiverProcess, signed_hook, stored_jobs
from tests.support import https_server
from tests.support.nginx_server import NginxServer, tools_missing

ATTACKER = "127.0.0.2"
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 3.0
LOG_INTERVAL = 3.0
LIMITS = {
    "ROLLOUT_RECEIVER_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "ROLLOUT_RECEIVER_BODY_TIMEOUT": str(BODY_TIMEOUT),
    "ROLLOUT_RECEIVER_LOG_INTERVAL": str(LOG_INTERVAL),
}
MiB = 1024 * 1024


class GuardedReceiver(ReceiverProcess):
    """The receiver process with ``LIMITS`` (and ``extra``) in its environment."""

    def __init__(self, *, extra: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.extra = LIMITS | (extra or {})

    def env(self) -> dict[str, str]:
        return super().env() | self.extra

    def status(self) -> dict[str, int]:
        """``/proc/PID/status`` sizes in bytes (VmRSS, VmHWM, ...)."""
        assert self.process is not None
        sizes = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if value.strip().endswith(" kB"):
                sizes[name] = int(value.split()[0]) * 1024
        return sizes

    def reset_peak(self) -> None:
        """Make VmHWM start again from the current RSS (``clear_refs``, Linux 4.0+)."""
        assert self.process is not None
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def lines_since(self, offset: int) -> list[str]:
        return self.log()[offset:].splitlines()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return database.default_url(tmp_path)


@pytest.fixture
def receiver(sqlite_url: str, tmp_path: Path) -> Any:
    started = GuardedReceiver(db_url=sqlite_url, data_dir=tmp_path / "data").start()
    yield started
    assert started.stop() == 0


def timed_hook(port: int, transaction_id: int, host: str = "127.0.0.1") -> tuple[int, float]:
    """POST one signed hook on a new connection (as RT's scrip does); (status, seconds)."""
    body, headers = signed_hook(transaction_id % 50 + 1, transaction_id)
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/hooks/rt", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def connect_from(source: str, port: int) -> socket.socket:
    """A connection to the receiver from the loopback address ``source``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


@dataclass
class Slot:
    kind: str  # "idle" or "slowloris"
    sock: socket.socket | None = None
    opened: float = 0.0
    next_send: float = 0.0
    reopen_at: float = 0.0


@dataclass
class Attack:
    """``idle`` connections that never send a byte and ``slowloris`` ones that send a request's
    headers a line every ``trickle`` seconds, all from ``source``, kept up (a connection the
    receiver closes is opened again after ``reopen`` seconds) until ``stop()`` or
    ``max_seconds``: the attack is bounded."""

    port: int
    idle: int = 1000
    slowloris: int = 300
    source: str = ATTACKER
    trickle: float = 0.5
    reopen: float = 0.5
    max_seconds: float = 60.0
    lifetimes: dict[str, list[float]] = field(default_factory=lambda: {"idle": [], "slowloris": []})
    opened: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Attack:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(30)
        assert not self._thread.is_alive()

    def closed(self, kind: str) -> list[float]:
        with self._lock:
            return list(self.lifetimes[kind])

    def _open(self, slot: Slot, selector: selectors.BaseSelector, now: float) -> None:
        try:
            slot.sock = connect_from(self.source, self.port)
            slot.sock.setblocking(False)
        except OSError:
            slot.reopen_at = now + self.reopen
            return
        slot.opened = now
        slot.next_send = now
        self.opened += 1
        selector.register(slot.sock, selectors.EVENT_READ, slot)

    def _closed(self, slot: Slot, selector: selectors.BaseSelector, now: float) -> None:
        assert slot.sock is not None
        selector.unregister(slot.sock)
        slot.sock.close()
        slot.sock = None
        with self._lock:
            self.lifetimes[slot.kind].append(now - slot.opened)
        slot.reopen_at = now + self.reopen

    def _trickle(self, slot: Slot, selector: selectors.BaseSelector, now: float) -> None:
        """The request line first, then one header line every ``trickle`` seconds."""
        assert slot.sock is not None
        if now < slot.next_send:
            return
        first = slot.next_send == slot.opened
        try:
            slot.sock.send(b"POST /hooks/rt HTTP/1.1\r\n" if first else b"X-Slow: 1\r\n")
        except BlockingIOError:
            pass
        except OSError:
            self._closed(slot, selector, now)
            return
        slot.next_send = now + self.trickle

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        slots = [Slot("idle") for _ in range(self.idle)]
        slots += [Slot("slowloris") for _ in range(self.slowloris)]
        random.Random(14).shuffle(slots)  # both kinds compete for what the receiver admits
        deadline = time.monotonic() + self.max_seconds
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                now = time.monotonic()
                for slot in slots:
                    if slot.sock is None and now >= slot.reopen_at:
                        self._open(slot, selector, now)
                    elif slot.sock is not None and slot.kind == "slowloris":
                        self._trickle(slot, selector, now)
                for key, _ in selector.select(timeout=0.05):
                    slot = key.data
                    try:
                        data = slot.sock.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self._closed(slot, selector, time.monotonic())
        finally:
            for slot in slots:
                if slot.sock is not None:
                    selector.unregister(slot.sock)
                    slot.sock.close()
            selector.close()


def test_idle_and_slowloris_connections_from_one_client_leave_rt_hooks_answered(
    receiver: GuardedReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    attack = Attack(receiver.port, max_seconds=30).start()
    try:
        # Once the attacker has made its 1,300 connections, RT's hooks, meanwhile: one every
        # 0.1 s for 6 s (three header timeouts), each on a new connection.
        deadline = time.monotonic() + 20
        while attack.opened < 1300:
            assert time.monotonic() < deadline, f"attack opened only {attack.opened}"
            time.sleep(0.05)
        answers = []
        until = time.monotonic() + 6
        tid = 1
        while time.monotonic() < until:
            answers.append(timed_hook(receiver.port, tid))
            tid += 1
            time.sleep(0.1)
    finally:
        attack.stop()

    statuses = {status for status, _ in answers}
    slowest = max(seconds for _, seconds in answers)
    idle, slow = attack.closed("idle"), attack.closed("slowloris")
    with capsys.disabled():
        print(
            f"\n{len(answers)} signed hooks during the attack: statuses {sorted(statuses)}, "
            f"slowest {slowest * 1000:.0f} ms; attacker made {attack.opened} connections, the "
            f"receiver closed {len(idle)} idle ones (longest {max(idle, default=0):.2f} s) "
            f"and {len(slow)} slowloris ones (longest {max(slow, default=0):.2f} s)"
        )
    assert statuses == {202}
    assert slowest < 1.0
    assert len(stored_jobs(receiver.db_url)) == len(answers)
    # Every attacking connection was cut: refused at once past the per-client cap, or closed
    # when its headers were late. None outlived the header timeout by more than a second.
    assert len(idle) >= 1000 and len(slow) >= 300
    assert max(idle + slow) < HEADER_TIMEOUT + 1.0
    log = receiver.log()
    assert "Traceback" not in log
    assert "refused a connection: the client holds as many as it may: 127.0.0.2 holds 100" in log
    assert "closed a connection: request headers not complete in time (408): 127.0.0.2:" in log


def test_a_256_mib_header_is_refused_without_the_process_growing(
    receiver: GuardedReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    assert timed_hook(receiver.port, 1)[0] == 202  # warm: the first request's allocations
    before = receiver.status()["VmRSS"]
    receiver.reset_peak()
    sock = connect_from(ATTACKER, receiver.port)
    sock.sendall(b"POST /hooks/rt HTTP/1.1\r\nHost: x\r\nX-Big: ")
    chunk = b"a" * MiB
    sent = 0
    try:
        while sent < 256 * MiB:
            sent += sock.send(chunk)
    except OSError:
        pass  # the receiver closed the connection
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except OSError:
        pass
    sock.close()
    after = receiver.status()
    grown = max(after["VmHWM"], after["VmRSS"]) - before
    with capsys.disabled():
        print(
            f"\n256 MiB header: the client got {sent / MiB:.1f} MiB out before the receiver "
            f"closed; its peak grew {grown / MiB:.1f} MiB; answer {answer[:40]!r}"
        )
    assert sent < 256 * MiB
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert answer.endswith(b'{"error": "request headers are larger than the limit of 16384 bytes"}')
    assert grown < 50 * 1000 * 1000
    assert timed_hook(receiver.port, 2)[0] == 202


def test_a_body_that_does_not_come_in_time_is_cut(receiver: GuardedReceiver) -> None:
    body, headers = signed_hook(1, 1)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST /hooks/rt HTTP/1.1\r\nHost: x\r\n{head}content-length: {len(body)}\r\n\r\n"
    sock = connect_from(ATTACKER, receiver.port)
    sock.settimeout(BODY_TIMEOUT + 5)
    sock.sendall(request.encode())
    started = time.monotonic()
    # A byte of the body every 0.5 s: each read is in time, the whole body never is.
    answer = b""
    for byte in body:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        readable, _, _ = select.select([sock], [], [], 0.5)
        if readable:
            answer = sock.recv(65536)
            break
    took = time.monotonic() - started
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b'{"error": "request body not complete within 3 s"}')
    assert BODY_TIMEOUT <= took < BODY_TIMEOUT + 1.0
    assert stored_jobs(receiver.db_url) == {}
    assert "closed a connection: request body not complete in time (408): 127.0.0.2:" in (
        receiver.log()
    )


def hung_up(lines: list[str]) -> int:
    """Hang-ups the log tells of: one per line, or N in a "N more" line."""
    said = [line for line in lines if "hung up in the middle of a request body: " in line]
    more = [re.search(r"body: (\d+) more within", line) for line in said]
    return sum(int(m.group(1)) if m else 1 for m in more)


def test_100_clients_hanging_up_mid_body_log_a_handful_of_lines(
    receiver: GuardedReceiver,
) -> None:
    offset = len(receiver.log())
    body, headers = signed_hook(1, 1)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST /hooks/rt HTTP/1.1\r\nHost: x\r\n{head}content-length: {len(body)}\r\n\r\n"
    for _ in range(100):
        sock = connect_from(ATTACKER, receiver.port)
        sock.sendall(request.encode() + body[:20])
        sock.close()

    # The first hang-up is said at once, the others in one line when the interval is over.
    deadline = time.monotonic() + LOG_INTERVAL + 10
    while hung_up(receiver.lines_since(offset)) < 100:
        assert time.monotonic() < deadline, "\n".join(receiver.lines_since(offset))
        time.sleep(0.05)
    lines = receiver.lines_since(offset)
    assert len(lines) <= 3, "\n".join(lines)
    assert "Traceback" not in receiver.log()
    assert stored_jobs(receiver.db_url) == {}
    assert timed_hook(receiver.port, 1)[0] == 202


# -- nginx in front (rollout receiver nginx-conf) -----------------------------------------------


class ReceiverProxy(NginxServer):
    """A real nginx configured by ``receiver_proxy.render_receiver_proxy_conf`` in front of the
    receiver on ``upstream_port``, with the receiver's settings as the test runs it."""

    def __init__(
        self,
        workdir: Path,
        upstream_port: int,
        *,
        per_client: int | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(workdir, workdir)
        self.receiver = settings_model.ReceiverSettings(
            port=upstream_port,
            limits=settings_model.IntakeLimits(
                header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT
            ),
        )
        self.per_client = per_client
        self.tls = tls

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        certificate, key = self.tls or (None, None)
        self.conf_file.write_text(
            receiver_proxy.render_receiver_proxy_conf(
                self.receiver,
                workdir=self.workdir,
                listen=f"127.0.0.1:{self.port}",
                per_client=self.per_client,
                tls_certificate=certificate,
                tls_key=key,
                user="root" if os.geteuid() == 0 else None,
            ),
            encoding="utf-8",
        )
        return self.conf_file


@pytest.fixture
def proxied(sqlite_url: str, tmp_path: Path) -> Any:
    """The receiver behind nginx: it lists the proxy's address (127.0.0.1) as uncapped."""
    if tools_missing():
        pytest.fail(f"install {' '.join(tools_missing())}")
    behind = GuardedReceiver(
        db_url=sqlite_url,
        data_dir=tmp_path / "data",
        extra={"ROLLOUT_RECEIVER_UNCAPPED_CLIENTS": "127.0.0.1"},
    ).start()
    proxy = ReceiverProxy(tmp_path / "nginx", behind.port, per_client=5)
    proxy.start()
    yield behind, proxy
    proxy.stop()
    assert behind.stop() == 0


def test_through_nginx_signed_hooks_get_202_while_nginx_cuts_the_slow_clients(
    proxied: tuple[GuardedReceiver, ReceiverProxy], capsys: pytest.CaptureFixture[str]
) -> None:
    behind, proxy = proxied
    offset = len(behind.log())
    assert timed_hook(proxy.port, 1)[0] == 202
    assert len(stored_jobs(behind.db_url)) == 1

    attack = Attack(proxy.port, max_seconds=30).start()
    try:
        deadline = time.monotonic() + 20
        while attack.opened < 1300:
            assert time.monotonic() < deadline, f"attack opened only {attack.opened}"
            time.sleep(0.05)
        answers = []
        until = time.monotonic() + HEADER_TIMEOUT * 2
        tid = 2
        while time.monotonic() < until:
            answers.append(timed_hook(proxy.port, tid))
            tid += 1
            time.sleep(0.1)
    finally:
        attack.stop()
    idle, slow = attack.closed("idle"), attack.closed("slowloris")
    with capsys.disabled():
        print(
            f"\nthrough nginx: {len(answers)} signed hooks during the attack, slowest "
            f"{max(s for _, s in answers) * 1000:.0f} ms; nginx closed {len(idle)} idle and "
            f"{len(slow)} slowloris connections (longest {max(idle + slow, default=0):.2f} s)"
        )
    assert {status for status, _ in answers} == {202}
    assert max(seconds for _, seconds in answers) < 1.0
    # nginx, not the receiver, cut them: each within its client_header_timeout.
    assert len(idle) >= 1000 and len(slow) >= 300
    assert max(idle + slow) < HEADER_TIMEOUT + 1.5
    assert "bridge.intake.connections" not in behind.log()[offset:]


def test_through_nginx_large_headers_bodies_and_crowds_stop_at_nginx(
    proxied: tuple[GuardedReceiver, ReceiverProxy],
) -> None:
    behind, proxy = proxied
    offset = len(behind.log())

    def raw(request: bytes, source: str = ATTACKER) -> bytes:
        sock = connect_from(source, proxy.port)
        try:
            sock.sendall(request)
            return sock.recv(65536)
        finally:
            sock.close()

    big = raw(b"POST /hooks/rt HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 400 ")  # Request Header Or Cookie Too Large
    large = raw(b"POST /hooks/rt HTTP/1.1\r\nHost: x\r\ncontent-length: 70000\r\n\r\n")
    assert large.startswith(b"HTTP/1.1 413 ")
    assert raw(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert raw(b"GET /hooks/rt HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 403 ")
    assert raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b'{"status":"ok"}')

    # Five requests from one address waiting for their bodies: the sixth gets 429 at once.
    body, headers = signed_hook(1, 10)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST /hooks/rt HTTP/1.1\r\nHost: x\r\n{head}content-length: {len(body)}\r\n\r\n"
    waiting = [connect_from(ATTACKER, proxy.port) for _ in range(5)]
    try:
        for sock in waiting:
            sock.sendall(request.encode() + body[:10])
        deadline = time.monotonic() + 10
        while not (answer := raw(request.encode() + body[:10])).startswith(b"HTTP/1.1 429 "):
            assert time.monotonic() < deadline, answer[:60]
        # RT, from its own address, still gets in.
        assert timed_hook(proxy.port, 11)[0] == 202
        # The waiting bodies never come: nginx resets them after client_body_timeout
        # (reset_timedout_connection: no answer to write, no lingering).
        for sock in waiting:
            sock.settimeout(BODY_TIMEOUT + 5)
            with pytest.raises(ConnectionResetError):
                sock.recv(65536)
    finally:
        for sock in waiting:
            sock.close()
    assert set(stored_jobs(behind.db_url)) == {11}
    assert "bridge.intake.connections" not in behind.log()[offset:]


def test_through_nginx_with_tls(sqlite_url: str, tmp_path: Path) -> None:
    ca = https_server.make_ca(tmp_path / "ca")
    certificate, key = https_server.make_server_cert(tmp_path / "ca", ca)
    behind = GuardedReceiver(db_url=sqlite_url, data_dir=tmp_path / "data").start()
    proxy = ReceiverProxy(tmp_path / "nginx", behind.port, tls=(certificate, key))
    try:
        proxy.start()
        body, headers = signed_hook(1, 1)
        context = ssl.create_default_context(cafile=str(ca.file))
        conn = http.client.HTTPSConnection("127.0.0.1", proxy.port, timeout=10, context=context)
        conn.request("POST", "/hooks/rt", body=body, headers=headers)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())["status"]) == (202, "queued")
        conn.close()
    finally:
        proxy.stop()
        assert behind.stop() == 0
