"""A real OpenSSH server on loopback for the SFTP tests: Debian's ``/usr/sbin/sshd -D -e`` with
its own config, host key, authorised client key and pid file in a temporary directory,
``ListenAddress 127.0.0.1``, keys only, ``Subsystem sftp internal-sftp``, for the current user
only. ``known_hosts`` and ``client_key`` are what the SFTP client needs. Stopped by ``stop()``
or at the end of a ``with``."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from bridge.processes import ChildProcess
from bridge.rt_setup.sandbox import free_port

SSHD = Path("/usr/sbin/sshd")


def sshd_missing() -> str | None:
    """Why the server cannot run here, or None."""
    if not SSHD.exists():
        return "openssh-server is not installed (/usr/sbin/sshd)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed"
    return None


def keygen(path: Path, comment: str = "rollout-test") -> Path:
    """An ed25519 key pair at ``path`` / ``path.pub`` without a passphrase."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    return path


class SftpServer(ChildProcess):
    """sshd for one user (the current one) with one authorised key."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.user = getpass.getuser()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.host_key = workdir / "ssh_host_ed25519_key"
        self.client_key = workdir / "client_key"
        self.authorized_keys = workdir / "authorized_keys"
        self.known_hosts = workdir / "known_hosts"
        self.log = workdir / "sshd.log"

    def url(self, path: Path | str) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{path}"

    def config(self) -> str:
        return "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {self.host_key}",
                f"PidFile {self.workdir / 'sshd.pid'}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                f"AllowUsers {self.user}",
                "UsePAM no",
                "StrictModes no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "PermitTTY no",
                "UseDNS no",
                "LogLevel VERBOSE",
                "Subsystem sftp internal-sftp",
            ]
        )

    def start(self, timeout: float = 15.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # privilege separation needs it; the Debian service makes it
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        keygen(self.host_key, "rollout-test-host")
        keygen(self.client_key)
        shutil.copyfile(self.client_key.with_suffix(".pub"), self.authorized_keys)
        config = self.workdir / "sshd_config"
        config.write_text(self.config() + "\n", encoding="utf-8")
        self.port = free_port()
        host_pub = self.host_key.with_name(self.host_key.name + ".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config), "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.settimeout(2)
                    if sock.recv(4).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not answer on port {self.port}: {self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
