"""Real package-manager clients for the tests: a loopback HTTP server for a directory, apt-get
in a throw-away root (``AptRoot``, the demo's own, from ``repo_daemon.demo.apt_client``), dnf in
a throw-away install root, and a throw-away GnuPG signing key.

They install into directories the test owns and never touch the host's apt, dpkg, rpm or dnf
state. Building packages is the demo's sample's job (``tests/support/packages.py``); these
helpers only consume trees.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from repo_daemon.demo.apt_client import AptRoot, client_env

__all__ = [
    "DEBIAN_PACKAGES",
    "AptRoot",
    "DnfRoot",
    "TestKey",
    "TreeServer",
    "client_env",
    "make_signing_key",
    "stop_gpg_agent",
    "tools_missing",
]

# The tool each helper runs and the Debian package that ships it.
DEBIAN_PACKAGES = {
    "apt-get": "apt",
    "dpkg": "dpkg",
    "dnf": "dnf",
    "rpm": "rpm",
    "gpg": "gnupg",
    "createrepo_c": "createrepo-c",
    "apt-ftparchive": "apt-utils",
}


def tools_missing(*tools: str) -> list[str]:
    """The Debian packages to install for ``tools`` (all of DEBIAN_PACKAGES by default)."""
    wanted = tools or tuple(DEBIAN_PACKAGES)
    return sorted({DEBIAN_PACKAGES.get(t, t) for t in wanted if shutil.which(t) is None})


# ---------------------------------------------------------------------------- HTTP server


class TreeServer:
    """A directory served over HTTP on 127.0.0.1 (a free port) by ``http.server`` in a thread.

    It follows symlinks, like nginx does by default, so an area symlink can be swapped under
    it. ``requests`` lists ``(path, status)`` of every request, in order. ``before_body`` is
    called with each GET's path after the file to send was opened and before any byte of it
    is sent: a test can swap a snapshot exactly between two requests of one client.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[tuple[str, int]] = []
        self.before_body: Callable[[str], None] | None = None
        self._lock = threading.Lock()
        handler = functools.partial(_Handler, self, directory=str(directory))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def paths(self) -> list[str]:
        """The paths requested so far."""
        with self._lock:
            return [path for path, _ in self.requests]

    def _record(self, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((path, status))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> TreeServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, owner: TreeServer, *args: Any, **kwargs: Any) -> None:
        self._owner = owner
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        body = super().send_head()
        hook = self._owner.before_body
        if body is not None and hook is not None and self.command == "GET":
            hook(self.path)
        return body

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._owner._record(self.path, int(code) if str(code).isdigit() else 0)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded, not printed


# ---------------------------------------------------------------------------- dnf


@dataclass(frozen=True)
class DnfRoot:
    """dnf confined to ``base``: its config (``dnf.conf``), repository files (``repos.d``) and
    install root (``root``, which also holds dnf's cache, logs, state and the rpm database).
    ``--releasever`` is given (nothing in the root says it), plugins are off, and every call
    checks the server for new metadata (``--refresh``)."""

    base: Path

    @classmethod
    def create(cls, base: Path, repos: Mapping[str, str]) -> DnfRoot:
        """A fresh dnf root with ``repos`` (file name → text) as its repository files."""
        dnf = cls(base)
        dnf.root.mkdir(parents=True)
        dnf.repos.mkdir(parents=True)
        for name, text in repos.items():
            (dnf.repos / name).write_text(text, encoding="utf-8")
        # cachedir, logdir and persistdir are inside the install root (dnf prefixes them).
        dnf.conf.write_text(
            "[main]\n"
            f"reposdir={dnf.repos}\n"
            "cachedir=/var/cache/dnf\n"
            "logdir=/var/log\n"
            "persistdir=/var/lib/dnf\n"
            "install_weak_deps=False\n"
            "keepcache=False\n"
            "metadata_expire=0\n"
            "skip_if_unavailable=False\n"
            "retries=1\n"
            "timeout=20\n",
            encoding="utf-8",
        )
        return dnf

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def repos(self) -> Path:
        return self.base / "repos.d"

    @property
    def conf(self) -> Path:
        return self.base / "dnf.conf"

    def dnf(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``dnf ARGS`` on this root; never raises on a non-zero exit."""
        return subprocess.run(
            [
                "dnf",
                f"--installroot={self.root}",
                f"--config={self.conf}",
                f"--setopt=reposdir={self.repos}",
                "--releasever=1",
                "--noplugins",
                "--assumeyes",
                # Check the server every time: metadata_expire=0 still trusts a cache made
                # within the same second (its age counts in whole seconds).
                "--refresh",
                *args,
            ],
            env=client_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def install(self, *packages: str) -> subprocess.CompletedProcess[str]:
        return self.dnf("install", *packages)

    def stop_agents(self) -> None:
        """Stop the gpg-agents dnf (librepo) started for its per-repository keyrings in the
        cache (``repo_gpgcheck``); they outlive dnf otherwise."""
        for home in self.root.glob("var/cache/dnf/*/pubring"):
            stop_gpg_agent(home)

    def installed(self, package: str) -> str | None:
        """``rpm --root ROOT -q PACKAGE`` (name-version-release.arch), or None."""
        proc = subprocess.run(
            ["rpm", "--root", str(self.root), "-q", package],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None


# ---------------------------------------------------------------------------- GnuPG


@dataclass(frozen=True)
class TestKey:
    """A throw-away signing key: its GnuPG home, fingerprint, and passphrase file if any."""

    __test__ = False  # not a test class, whatever its name

    home: Path
    fingerprint: str
    passphrase_file: Path | None = None

    def stop_agent(self) -> None:
        """Stop the gpg-agent that signing started in ``home``."""
        stop_gpg_agent(self.home)


def stop_gpg_agent(home: Path) -> None:
    """Stop the gpg-agent (and other GnuPG daemons) of the GnuPG home ``home``, if any."""
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
    )


def make_signing_key(
    home: Path, *, uid: str = "Rollout test <test@example.org>", passphrase: str = ""
) -> TestKey:
    """A new ed25519 signing key in the GnuPG home ``home`` (created if needed; keep its path
    short: gpg-agent's socket lives there). With a passphrase, it is written to
    ``home/passphrase`` and the agent caches nothing, so every signature needs the file."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    if passphrase:
        (home / "gpg-agent.conf").write_text("default-cache-ttl 0\nmax-cache-ttl 0\n")
    before = _fingerprints(home)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         "--passphrase", passphrase, "--quick-generate-key", uid, "ed25519", "sign", "never"],
        capture_output=True,
        check=True,
    )  # fmt: skip
    (fingerprint,) = _fingerprints(home) - before
    passphrase_file = None
    if passphrase:
        passphrase_file = home / "passphrase"
        passphrase_file.write_text(passphrase, encoding="utf-8")
    return TestKey(home=home, fingerprint=fingerprint, passphrase_file=passphrase_file)


def _fingerprints(home: Path) -> set[str]:
    listing = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-secret-keys"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")}
