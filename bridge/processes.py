"""Starting and stopping child processes the bridge, the daemon, the demo and the tests run.

The one stop: SIGTERM, wait, then SIGKILL, for a process or its whole process group (children
started with ``start_new_session=True``, such as rt-server, rsync and the demo's services), and
``ChildProcess``, the stop-and-context-manager part such helpers share. It must not decide what
to run or when: callers build the argument lists and start the processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from types import TracebackType
from typing import Self


def stop(
    proc: subprocess.Popen[bytes],
    *,
    timeout: float = 10.0,
    kill_timeout: float = 10.0,
    group: bool = False,
) -> None:
    """Stop ``proc`` if it runs: SIGTERM, then SIGKILL after ``timeout`` seconds, then wait
    up to ``kill_timeout`` for it to go. ``group`` signals its whole process group (it must
    have been started in a session of its own)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, kill_timeout)):
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            if sig == signal.SIGKILL:
                raise
            continue


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie child of ours (which it reaps)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child: it exists
    return done == 0


def stop_group(pid: int, *, timeout: float) -> bool:
    """Stop the process group led by ``pid``, which need not be our child (a server another
    command started): SIGTERM, then SIGKILL after ``timeout``. Returns False when it was not
    running."""
    if not pid_alive(pid):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


class ChildProcess:
    """``start()`` (the subclass's) in ``with``; ``stop()`` terminates, then kills after 10 s.

    Subclasses set ``proc`` in ``start``; ``process_group`` says whether ``stop`` signals the
    process's whole group (when it was started with ``start_new_session=True``).
    """

    proc: subprocess.Popen[bytes] | None = None
    process_group: bool = False

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process if it runs (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None:
            return
        stop(self.proc, group=self.process_group)
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
