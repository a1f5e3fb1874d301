"""Real package-manager clients for the tests: a loopback HTTP server for a directory, apt-get
and dnf in throw-away roots (``AptRoot`` and ``DnfRoot``, the demo's own, from
``repo_daemon.demo``), and throw-away GnuPG keys: one made per test (``make_signing_key``), and
two shared by every test of a process (``shared_key`` signs trees, ``provider_key`` signs the
providers' RPMs).

They install into directories the test owns and never touch the host's apt, dpkg, rpm or dnf
state. Building packages is the demo's sample's job (``tests/support/packages.py``); these
helpers only consume trees.
"""

from __future__ import annotations

import atexit
import functools
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from repo_daemon.demo.apt_client import AptRoot, client_env
from repo_daemon.demo.dnf_client import DnfRoot, stop_gpg_agent

__all__ = [
    "DEBIAN_PACKAGES",
    "AptRoot",
    "DnfRoot",
    "TestKey",
    "TreeServer",
    "client_env",
    "import_public_key",
    "make_signing_key",
    "provider_key",
    "shared_key",
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


def import_public_key(key: TestKey, home: Path) -> None:
    """Import ``key``'s public part into the GnuPG home ``home`` (as an operator imports a
    provider's key before naming it in ``package_keys``)."""
    exported = subprocess.run(
        ["gpg", "--homedir", str(key.home), "--batch", "--armor", "--export", key.fingerprint],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--import"],
        input=exported,
        capture_output=True,
        check=True,
    )


@functools.cache
def provider_key() -> TestKey:
    """The technology provider's RPM signing key, one per test process (its agent stopped and
    its home removed at exit)."""
    return _process_key("Rollout test provider <provider@example.org>")


@functools.cache
def shared_key() -> TestKey:
    """A repository signing key for tests that sign trees without testing keys, one per test
    process; its home also holds ``provider_key``'s public part, for ``package_keys``."""
    key = _process_key("Rollout test repository <repo@example.org>")
    import_public_key(provider_key(), key.home)
    return key


def _process_key(uid: str) -> TestKey:
    home = Path(tempfile.mkdtemp(prefix="rollout-gpg-")) / "k"  # short: gpg-agent's socket
    key = make_signing_key(home, uid=uid)
    atexit.register(_discard, key)
    return key


def _discard(key: TestKey) -> None:
    key.stop_agent()
    shutil.rmtree(key.home.parent, ignore_errors=True)
