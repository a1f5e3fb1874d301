"""A real nginx for the tests, configured by the product's own renderer
(``repo_daemon.serving.nginx.render_nginx_conf``): ``nginx -c CONF -p WORKDIR -e ERRORLOG
-g 'daemon off;'`` on a free loopback port, its pid file, logs and temporary files in
``workdir``. Nothing in /etc or /var is read or written. Stopped by ``stop()`` or at the end of
a ``with``.

Started as root, nginx's workers run as root too (``user root``): pytest's temporary
directories are 0700, which the usual ``www-data``/``nobody`` workers could not enter.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from bridge.processes import ChildProcess
from bridge.rt_setup.sandbox import free_port
from repo_daemon.serving import nginx


def nginx_binary() -> str | None:
    """The nginx executable (Debian puts it in /usr/sbin, not always on a user's PATH)."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    return found


def tools_missing() -> list[str]:
    """The Debian packages to install for ``NginxServer``."""
    return [] if nginx_binary() else ["nginx"]


class NginxServer(ChildProcess):
    """``NginxServer(workdir, root)``: nginx serving the repository ``root``; ``url`` is
    ``http://127.0.0.1:<port>/``. The ``protected`` kinds of area ask the access check at
    ``access_check`` first, as the shipped configuration does (``protected=()``: no check)."""

    def __init__(
        self,
        workdir: Path,
        root: Path,
        *,
        access_check: str = nginx.DEFAULT_ACCESS_CHECK,
        protected: Sequence[str] = nginx.DEFAULT_PROTECTED,
    ) -> None:
        self.access_check = access_check
        self.protected = tuple(protected)
        self.workdir = workdir.resolve()
        self.root = root.resolve()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def conf_file(self) -> Path:
        return self.workdir / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.workdir / "error.log"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def write_config(self) -> Path:
        """Render the configuration for a fresh free port into ``conf_file``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf_file.write_text(
            nginx.render_nginx_conf(
                self.root,
                workdir=self.workdir,
                listen=f"127.0.0.1:{self.port}",
                user="root" if os.geteuid() == 0 else None,
                access_check=self.access_check,
                protected=self.protected,
            ),
            encoding="utf-8",
        )
        return self.conf_file

    def _argv(self, *extra: str) -> list[str]:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        return [
            binary, "-c", str(self.conf_file), "-p", f"{self.workdir}/",
            "-e", str(self.error_log), *extra,
        ]  # fmt: skip

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the written configuration (returncode 0 when it is valid)."""
        if not self.conf_file.exists():
            self.write_config()
        return subprocess.run(
            self._argv("-t"), capture_output=True, text=True, timeout=30, check=False
        )

    def start(self, timeout: float = 10.0) -> None:
        self.write_config()
        self.proc = subprocess.Popen(
            self._argv("-g", "daemon off;"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pipe = self.proc.stderr
                stderr = pipe.read().decode(errors="replace") if pipe is not None else ""
                log = self.error_log.read_text() if self.error_log.exists() else ""
                self.proc = None
                raise RuntimeError(f"nginx exited at start: {stderr}{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not listen on port {self.port} in {timeout} s")

    def stop(self) -> None:
        stderr = self.proc.stderr if self.proc is not None else None
        super().stop()  # SIGTERM: nginx's fast shutdown
        if stderr is not None:
            stderr.close()
