"""A child process the demo (and the tests) start and must stop: the stop-and-context-manager
part they share. Subclasses set ``proc`` in ``start``."""

from __future__ import annotations

import subprocess
from types import TracebackType
from typing import Self


class ChildProcess:
    """``start()`` (the subclass's) in ``with``; ``stop()`` terminates, then kills after 10 s."""

    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process if it runs (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
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
