"""A technology provider's rsync source on loopback, for the demo, the tests and benchmarks:
``rsync --daemon --no-detach`` with its own config, one read-only module per directory,
``use chroot = no``, running as the current user. Stopped (SIGTERM, then SIGKILL) by ``stop()``
or at the end of a ``with``. It serves only the directories it is given."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from bridge import processes
from bridge.rt_setup.sandbox import free_port
from repo_daemon.demo import tools
from repo_daemon.demo.errors import ServiceFailed

_MODULE = re.compile(r"[A-Za-z0-9_-]+")


class RsyncDaemon(processes.ChildProcess):
    """``RsyncDaemon(workdir, {"module": path})``; ``url("module")`` is ``rsync://…/module/``."""

    def __init__(self, workdir: Path, modules: Mapping[str, Path]) -> None:
        self.workdir = workdir
        self.modules = dict(modules)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, module: str, path: str = "") -> str:
        return f"rsync://127.0.0.1:{self.port}/{module}/{path}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "rsyncd.log"

    def config(self) -> str:
        """rsyncd.conf: loopback only, read-only modules, no chroot, no reverse lookups."""
        lines = [
            f"pid file = {self.workdir / 'rsyncd.pid'}",
            f"log file = {self.log_file}",
            "use chroot = no",
            "reverse lookup = no",
            "numeric ids = yes",
            # As root, rsync would switch to "nobody", who cannot read pytest's 0700 tmp dirs.
            f"uid = {os.getuid()}",
            f"gid = {os.getgid()}",
            "max connections = 8",
            f"lock file = {self.workdir / 'rsyncd.lock'}",
        ]
        for name, path in self.modules.items():
            if not _MODULE.fullmatch(name):
                raise ValueError(f"bad module name {name!r}")
            lines += ["", f"[{name}]", f"path = {path}", "read only = yes", "list = yes"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "rsyncd.conf"
        conf.write_text(self.config(), encoding="utf-8")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                tools.which("rsync"), "--daemon", "--no-detach", f"--config={conf}",
                f"--port={self.port}", "--address=127.0.0.1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log_file.read_text() if self.log_file.exists() else ""
                raise ServiceFailed(f"rsync daemon exited with {self.proc.returncode}: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServiceFailed(
            f"rsync daemon did not listen on port {self.port} in {timeout} s: see {self.log_file}"
        )
