"""dnf and rpm in a throw-away install root: a site installing from a published tree, for the
demo and the tests.

Everything lives below the base it is given (configuration, repository files, install root
with dnf's cache, logs, state and the rpm database); the host's dnf, rpm and ``/etc/yum.repos.d``
are never read or changed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.demo import tools
from repo_daemon.demo.apt_client import client_env


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
                tools.which("dnf"),
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
            [tools.which("rpm"), "--root", str(self.root), "-q", package],
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.stdout.strip() if proc.returncode == 0 else None


def stop_gpg_agent(home: Path) -> None:
    """Stop the gpg-agent (and other GnuPG daemons) of the GnuPG home ``home``, if any."""
    gpgconf = shutil.which("gpgconf")
    if gpgconf is not None:
        subprocess.run(
            [gpgconf, "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
        )
