"""A site installing the sample package from the published production tree, as docs/clients.md
tells it to: fetch the key from the tree, check its fingerprint against the one the operators
published, install it where the tree's client file points, then apt-get (``rollout.list``) and
dnf (``rollout.repo``) into throw-away roots, with the shipped files' checks on.

The client files are used as the tree ships them, with one change: the absolute key path they
name (``/etc/apt/keyrings/…``, ``file:///etc/pki/rpm-gpg/…``) is moved into the throw-away
root, so the host's ``/etc`` is never read or written.
"""

from __future__ import annotations

import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.demo import keys
from repo_daemon.demo.apt_client import AptRoot
from repo_daemon.demo.dnf_client import DnfRoot
from repo_daemon.demo.errors import InstallFailed
from repo_daemon.metadata import clients, signing


@dataclass(frozen=True, kw_only=True)
class Installed:
    """What a client installed, and the client file lines that made it check signatures."""

    version: str
    lines: tuple[str, ...]  # the source line(s) of the client file, as the tree ships them
    key_file: Path  # where the site installed the key


def fetch(url: str, target: Path) -> Path:
    """Download ``url`` into ``target`` (no proxy: everything is on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=20) as answer:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(answer.read())
    return target


def checked_key(area_url: str, name: str, target: Path, expected: set[str]) -> Path:
    """The key file ``name`` of the tree at ``area_url``, saved as ``target`` once every key
    in it is one of ``expected`` (the fingerprints published out of band). Raises
    ``InstallFailed`` naming the keys that are not."""
    fetch(area_url + name, target)
    found = keys.fingerprints(target, target.parent / ".gnupg-check")
    unknown = [f for f in found if f not in expected]
    if not found or unknown:
        target.unlink()
        raise InstallFailed(
            f"{area_url}{name} holds keys {', '.join(unknown) or 'none'} that nobody published"
        )
    return target


def apt_install(
    area: Path, area_url: str, root: Path, package: str, expected: set[str]
) -> Installed:
    """apt-get installs ``package`` into ``root`` from the tree's ``rollout.list``, verifying
    InRelease with the key the tree ships (checked against ``expected`` first)."""
    sources = (area / clients.APT_LIST_FILE).read_text(encoding="utf-8")
    keyring = root / "etc/apt/keyrings" / signing.APT_KEY_FILE
    checked_key(area_url, signing.APT_KEY_FILE, keyring, expected)
    apt = AptRoot.create(
        root, {clients.APT_LIST_FILE: sources.replace(clients.DEFAULT_APT_KEYRING, str(keyring))}
    )
    _done(apt.update(), "apt-get update")
    _done(apt.install(package), f"apt-get install {package}")
    version = apt.installed_version(package)
    if version is None:
        raise InstallFailed(f"apt-get said it installed {package}, but dpkg does not know it")
    lines = tuple(line for line in sources.splitlines() if line.startswith("deb "))
    return Installed(version=version, lines=lines, key_file=keyring)


def dnf_install(
    area: Path, area_url: str, base: Path, package: str, expected: set[str]
) -> Installed:
    """dnf installs ``package`` into a root below ``base`` from the tree's ``rollout.repo``:
    repomd.xml checked with the repository's key, the package's own signature with its
    provider's (``RPM-GPG-KEY-rollout`` holds both, checked against ``expected`` first)."""
    repo = (area / clients.DNF_REPO_FILE).read_text(encoding="utf-8")
    key_file = checked_key(
        area_url, signing.RPM_KEY_FILE, base / "etc/pki/rpm-gpg" / signing.RPM_KEY_FILE, expected
    )
    dnf = DnfRoot.create(
        base / "dnf",
        {clients.DNF_REPO_FILE: repo.replace(clients.DEFAULT_RPM_GPGKEY, f"file://{key_file}")},
    )
    try:
        _done(dnf.install(package), f"dnf install {package}")
        installed = dnf.installed(package)
    finally:
        dnf.stop_agents()
    if installed is None:
        raise InstallFailed(f"dnf said it installed {package}, but rpm does not know it")
    lines = tuple(line for line in repo.splitlines() if line.startswith(("gpgcheck", "repo_gpg")))
    return Installed(version=installed, lines=lines, key_file=key_file)


def _done(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise InstallFailed(
            f"{what} failed (exit {done.returncode}):\n{done.stderr.strip()[-800:]}"
        )
