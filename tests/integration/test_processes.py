"""The one child-process stop: TERM, then KILL, for a process or its whole group."""

from __future__ import annotations

import subprocess
import sys
import time

from bridge import processes

IGNORE_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print(1, flush=True); time.sleep(60)"
)


def _start(code: str, *, session: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``code`` and wait for its first line (it is running, handlers installed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=session
    )
    assert proc.stdout is not None
    with proc.stdout:
        line = proc.stdout.readline().decode().strip()
    return proc, line


def test_a_process_that_ignores_term_is_killed_after_the_timeout() -> None:
    proc, _ = _start(IGNORE_TERM)
    began = time.monotonic()
    processes.stop(proc, timeout=0.5)
    assert proc.returncode == -9
    assert time.monotonic() - began < 5


def test_the_whole_group_is_stopped() -> None:
    parent, child = _start(
        "import subprocess, sys, time; "
        "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)",
        session=True,
    )
    child_pid = int(child)
    processes.stop(parent, timeout=5, group=True)
    deadline = time.monotonic() + 5
    while processes.pid_alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not processes.pid_alive(child_pid)


def test_stop_group_by_pid_says_whether_anything_ran() -> None:
    proc, _ = _start(IGNORE_TERM, session=True)
    assert processes.stop_group(proc.pid, timeout=0.3)
    proc.wait(timeout=5)
    assert not processes.stop_group(proc.pid, timeout=0.3)


class _Sleeper(processes.ChildProcess):
    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_a_child_process_stops_when_its_block_ends() -> None:
    with _Sleeper() as sleeper:
        proc = sleeper.proc
        assert proc is not None and proc.poll() is None
    assert sleeper.proc is None and proc.poll() is not None
