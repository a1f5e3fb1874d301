"""The processes the demo starts and stops: each in its own session (Ctrl-C in the terminal
reaches the demo, which stops them in order), its output in a log file, its pid in a file.

A demo that was killed outright leaves its processes behind; the next run stops them by
their pid files, and only when the process still carries the run's marker (a string in its
command line or environment), so a reused pid is never signalled.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from bridge import processes
from repo_daemon.demo.errors import ServiceFailed

logger = logging.getLogger(__name__)


class Service:
    """One child process: ``start`` waits until ``ready_url`` answers, ``stop`` ends it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log: Path,
        pid_file: Path,
        ready_url: str,
        ready_status: int | None = 200,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.pid_file = pid_file
        self.ready_url = ready_url
        self.ready_status = ready_status  # None: any HTTP answer will do
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until it answers. Raises ``ServiceFailed`` naming its log."""
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{self._proc.pid}\n", encoding="utf-8")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServiceFailed(
                    f"{self.name} exited with {self._proc.returncode} while starting: "
                    f"see {self.log}\n{tail(self.log)}"
                )
            if answers(self.ready_url, self.ready_status):
                return
            time.sleep(0.2)
        self.stop()
        raise ServiceFailed(
            f"{self.name} did not answer at {self.ready_url} within {timeout:g} s: see {self.log}"
        )

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the bridge finishes the job in hand), then SIGKILL after ``timeout``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        processes.stop(proc, timeout=timeout, group=True)
        self.pid_file.unlink(missing_ok=True)


def answers(url: str, status: int | None) -> bool:
    """Whether ``url`` answers over HTTP (with ``status``, unless it is None)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback http
            code = int(response.status)
    except urllib.error.HTTPError as exc:
        code = exc.code
    except (urllib.error.URLError, OSError):
        return False
    return status is None or code == status


def stop_leftover(pid_file: Path, marker: str, timeout: float = 30.0) -> bool:
    """Stop the process a killed demo left behind: the pid in ``pid_file``, if that process
    still has ``marker`` in its command line or environment. Returns whether one was stopped."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        proc = Path("/proc") / str(pid)
        seen = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
    except (OSError, ValueError):
        return False
    if marker.encode() not in seen.replace(b"\0", b" "):
        return False
    logger.info("stopping pid %d left behind by an earlier demo", pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc / "cmdline").exists():
        time.sleep(0.1)
    if (proc / "cmdline").exists():
        os.kill(pid, signal.SIGKILL)
    return True


def tail(path: Path, lines: int = 10) -> str:
    """The last ``lines`` lines of a log, for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])
