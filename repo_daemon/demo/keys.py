"""The demo's GnuPG keys: the technology provider's RPM signing key, the repository's signing
key (made by the real ``rollout repo init-key``), and reading the fingerprints of a key file
as a site checks them.

Both keys live in the demo's ``--dir``, outside the work folder each run makes afresh, so a
second run signs with the same keys, as a real installation does. The provider's key is the
provider's business (``gpg`` directly); the repository's is the bridge's (its own command).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from repo_daemon.demo import tools
from repo_daemon.demo.errors import DemoFailed

PROVIDER_UID = "Rollout sample provider <provider@example.org>"
REPOSITORY_UID = "Rollout demo repository <repo@example.org>"


@dataclass(frozen=True)
class ProviderKey:
    """The provider's key: its fingerprint and its GnuPG home (``sample.PackageKey``)."""

    fingerprint: str
    home: Path
    created: bool = False


@dataclass(frozen=True)
class RepositoryKey:
    """What ``rollout repo init-key`` printed: the fingerprint, and whether it was made now."""

    fingerprint: str
    created: bool


def provider_key(home: Path) -> ProviderKey:
    """The provider's ed25519 signing key in ``home``: made on the first run, then reused."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = _secret_fingerprints(home)
    if found:
        return ProviderKey(found[0], home)
    _gpg(home, "--passphrase", "", "--quick-generate-key", "--", PROVIDER_UID, "ed25519",
         "sign", "never")  # fmt: skip
    (made,) = _secret_fingerprints(home)
    return ProviderKey(made, home, created=True)


def import_public(key: ProviderKey, into: Path) -> None:
    """Import ``key``'s public part into the GnuPG home ``into``, as an operator imports a
    provider's key before naming it in ``package_keys``."""
    into.mkdir(mode=0o700, parents=True, exist_ok=True)
    exported = _gpg(key.home, "--armor", "--export", "--", key.fingerprint).stdout
    subprocess.run(
        [tools.which("gpg"), "--homedir", str(into), "--batch", "--import"],
        input=exported,
        capture_output=True,
        check=True,
    )


def init_key(rollout: list[str], env: Mapping[str, str]) -> RepositoryKey:
    """Run ``rollout repo init-key`` with the bridge's settings (``env``); what it printed.
    Raises ``DemoFailed`` with its message when it fails."""
    done = subprocess.run(
        [*rollout, "repo", "init-key", "--uid", REPOSITORY_UID],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    said = dict(line.split(maxsplit=1) for line in done.stdout.splitlines() if " " in line)
    if done.returncode != 0 or "fingerprint" not in said:
        raise DemoFailed(f"rollout repo init-key failed: {done.stderr.strip() or done.stdout}")
    return RepositoryKey(said["fingerprint"].strip(), said.get("key", "").startswith("made now"))


def fingerprints(key_file: Path, workdir: Path) -> list[str]:
    """The fingerprints of the keys in ``key_file`` (``gpg --show-keys``: nothing imported),
    with ``workdir`` as gpg's throw-away home."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    listing = _gpg(workdir, "--with-colons", "--show-keys", "--", str(key_file)).stdout
    return _fprs(listing.decode("utf-8", "replace"), "pub")


def stop_agents(*homes: Path) -> None:
    """Stop the gpg-agents signing started in ``homes``."""
    for home in homes:
        subprocess.run(
            [tools.which("gpgconf"), "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            check=False,
        )


def _secret_fingerprints(home: Path) -> list[str]:
    listing = subprocess.run(
        [tools.which("gpg"), "--homedir", str(home), "--batch", "--with-colons",
         "--list-secret-keys"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return _fprs(listing, "sec")


def _fprs(listing: str, primary: str) -> list[str]:
    """The primary keys' fingerprints in a ``--with-colons`` listing."""
    found, expect = [], False
    for fields in (line.split(":") for line in listing.splitlines()):
        if fields[0] in ("pub", "sec", "sub", "ssb"):
            expect = fields[0] == primary
        elif fields[0] == "fpr" and expect and len(fields) > 9:
            found.append(fields[9])
            expect = False
    return found


def _gpg(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [tools.which("gpg"), "--homedir", str(home), "--batch", "--pinentry-mode", "loopback",
         *args],
        stdin=subprocess.DEVNULL, capture_output=True, check=True,
    )  # fmt: skip
