"""apt-get and dpkg in a throw-away root: a site installing from a published tree, for the
demo and the tests.

Everything lives below the root it is given (sources, lists, cache, dpkg database, installed
files); the host's apt, dpkg and ``/etc/apt`` are never read or changed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.demo import tools


def client_env() -> dict[str, str]:
    """The environment for a client: no proxy (everything is on loopback), C.UTF-8 messages."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", DEBIAN_FRONTEND="noninteractive")
    return env


@dataclass(frozen=True)
class AptRoot:
    """apt-get and dpkg confined to ``root``: their own sources, keys, lists, cache, dpkg
    database and install directory. Configured through ``APT_CONFIG`` (read before anything
    else, and moving ``Dir`` so the host's ``/etc/apt`` is never read); dpkg installs with
    ``--root``. As root it keeps root (``APT::Sandbox::User "root"``: no ``_apt`` user needed);
    as anyone else dpkg is told ``--force-not-root``, which is safe here because the root is
    the caller's own folder (files are installed owned by the caller)."""

    root: Path

    @classmethod
    def create(
        cls, root: Path, sources: Mapping[str, str], keys: Mapping[str, bytes] | None = None
    ) -> AptRoot:
        """A fresh root with ``sources`` (file name → text) in ``etc/apt/sources.list.d`` and
        ``keys`` (file name → key) in ``etc/apt/keyrings`` (see ``keyring``)."""
        for d in (
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "etc/apt/sources.list.d",
            "etc/apt/trusted.gpg.d",
            "etc/apt/keyrings",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "var/lib/dpkg/triggers",
            "var/log/apt",
        ):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "var/lib/dpkg/status").touch()
        (root / "var/lib/dpkg/available").touch()
        (root / "etc/apt/sources.list").touch()
        for name, text in sources.items():
            (root / "etc/apt/sources.list.d" / name).write_text(text, encoding="utf-8")
        for name, key in (keys or {}).items():
            (root / "etc/apt/keyrings" / name).write_bytes(key)
        apt = cls(root)
        not_root = ' "--force-not-root";' if os.geteuid() != 0 else ""
        apt.config.write_text(
            f'Dir "{root}/";\n'
            f'Dir::State::status "{root}/var/lib/dpkg/status";\n'
            'APT::Sandbox::User "root";\n'
            'APT::Get::Assume-Yes "true";\n'
            'APT::Install-Recommends "false";\n'
            'Acquire::Languages "none";\n'
            'Acquire::Retries "0";\n'
            'Acquire::http::Proxy "DIRECT";\n'
            'Acquire::http::Timeout "20";\n'
            'Dpkg::Use-Pty "false";\n'
            f'DPkg::Options {{ "--root={root}"; "--log={root}/var/log/dpkg.log";{not_root} }};\n',
            encoding="utf-8",
        )
        return apt

    @property
    def config(self) -> Path:
        # Not etc/apt/apt.conf: apt would read that again as Dir::Etc::main.
        return self.root / "etc/apt/rollout-apt.conf"

    def keyring(self, name: str) -> Path:
        """Where ``create`` put key ``name``: the path for ``signed-by=``."""
        return self.root / "etc/apt/keyrings" / name

    def apt_get(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``apt-get ARGS`` in this root; never raises on a non-zero exit (callers look)."""
        env = {**client_env(), "APT_CONFIG": str(self.config)}
        return subprocess.run(
            [tools.which("apt-get"), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def update(self) -> subprocess.CompletedProcess[str]:
        # Error-Mode any: every problem with any source fails the update (exit 100), rather
        # than apt 2.x's default of warning and using the lists it had.
        return self.apt_get("update", "-o", "APT::Update::Error-Mode=any")

    def install(self, *packages: str) -> subprocess.CompletedProcess[str]:
        return self.apt_get("install", *packages)

    def installed_version(self, package: str) -> str | None:
        """The version dpkg in this root has installed, or None."""
        proc = subprocess.run(
            [
                tools.which("dpkg-query"),
                f"--admindir={self.root}/var/lib/dpkg",
                "-W",
                "-f=${db:Status-Abbrev}${Version}",
                package,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not proc.stdout.startswith("ii "):
            return None
        return proc.stdout[3:].strip()
