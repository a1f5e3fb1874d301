"""Helpers for running real daemon processes in tests.

``recording_processor`` makes a test processor, which ``tests.support.daemon_main`` passes to a
daemon subprocess (``python -m tests.support.daemon_main daemon``). Every job it processes appends a
``start`` and a ``done`` line to the file named by ``$DAEMON_TEST_LOG`` (``O_APPEND`` and an
fsync per line, so lines from several processes never mix and survive a SIGKILL). While the file
named by ``$DAEMON_TEST_HOLD`` exists, jobs of ticket ``$DAEMON_TEST_HOLD_TICKET`` block after
``start``: that is "a daemon in the middle of an item".
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bridge import records
from tests.support import paths

ROOT = paths.ROOT
LOG_ENV = "DAEMON_TEST_LOG"
HOLD_ENV = "DAEMON_TEST_HOLD"
HOLD_TICKET_ENV = "DAEMON_TEST_HOLD_TICKET"

T = TypeVar("T")


class RecordingProcessor:
    """Appends what it does to a log file; blocks on the held ticket while the hold exists."""

    def __init__(self, log: Path, hold: Path | None = None, hold_ticket: int | None = None):
        self.log = log
        self.hold = hold
        self.hold_ticket = hold_ticket

    def _append(self, line: str) -> None:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def gave_up(self, job: records.Job, message: str) -> None:
        """Nothing to tell anyone about a dead letter."""

    def process(self, job: records.Job) -> None:
        fields = f"{os.getpid()} {job.id} {job.ticket_id} {job.request.transaction_id}"
        self._append(f"start {fields} {job.attempts}")
        if self.hold is not None and job.ticket_id == self.hold_ticket:
            while self.hold.exists():
                time.sleep(0.02)
        self._append(f"done {fields} {job.attempts}")

    def close(self) -> None:
        """Nothing to release: every line is written and closed at once."""


def recording_processor() -> RecordingProcessor:
    """The recording processor configured by ``$DAEMON_TEST_LOG`` and the hold variables."""
    hold = os.environ.get(HOLD_ENV)
    ticket = os.environ.get(HOLD_TICKET_ENV)
    return RecordingProcessor(
        Path(os.environ[LOG_ENV]),
        Path(hold) if hold else None,
        int(ticket) if ticket else None,
    )


@dataclass(frozen=True)
class Line:
    """One line of the recording processor's log."""

    what: str  # "start" or "done"
    pid: int
    job_id: int
    ticket_id: int
    transaction_id: int
    attempts: int


def read_log(path: Path) -> list[Line]:
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text().splitlines():
        what, *numbers = raw.split()
        pid, job_id, ticket, txn, attempts = (int(n) for n in numbers)
        lines.append(Line(what, pid, job_id, ticket, txn, attempts))
    return lines


def wait_for(
    check: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def daemon_env(database_url: str, log: Path, **extra: str) -> dict[str, str]:
    """The environment of a test daemon: the test's database, an RT nobody calls."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROLLOUT_")}
    env.update(
        {
            "ROLLOUT_RT_URL": "http://127.0.0.1:9/",  # discard port: the processor needs no RT
            "ROLLOUT_RT_TOKEN": "1-2-not-used",
            "ROLLOUT_RT_RETRIES": "0",
            "ROLLOUT_DATABASE_URL": database_url,
            "ROLLOUT_DRAIN_INTERVAL": "0.1",
            LOG_ENV: str(log),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class DaemonProcess:
    """A daemon as a subprocess, its log in a file: by default
    ``python -m tests.support.daemon_main daemon --no-reconcile`` (the recording processor);
    with ``module="repo_daemon"``, a ``rollout`` command as shipped."""

    DAEMON = ("daemon", "--no-reconcile")
    TEST_MAIN = "tests.support.daemon_main"

    def __init__(
        self, env: dict[str, str], stderr: Path, *args: str, module: str = TEST_MAIN
    ) -> None:
        self.stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *(args or self.DAEMON)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"daemon {self.pid} did not exit within {timeout:g} s:\n{self.output()[-3000:]}"
            ) from None

    def stop(self) -> None:
        """Make sure the process is gone (test clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self._stderr.close()
