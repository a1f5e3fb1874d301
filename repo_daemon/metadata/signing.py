"""Signing repository metadata with GnuPG: the signing key's settings and the ``gpg`` argument
lists that sign an index or export the public key.

Pure: this module builds argument lists and file names; ``yum``, ``apt`` and ``build`` run
them. It never reads or logs a passphrase (gpg reads it from ``passphrase_file`` itself) and
never manages keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The public key is published in the root of every signed tree under two names: the one apt
# users expect beside ``signed-by=`` and the one dnf/yum users expect (Fedora's convention).
# Both hold the same armored export.
APT_KEY_FILE = "rollout-archive-keyring.asc"
RPM_KEY_FILE = "RPM-GPG-KEY-rollout"
# zypper (and OBS-style tooling) looks for the key beside repomd.xml.
REPOMD_KEY_FILE = "repomd.xml.key"

# apt refuses SHA-1 signatures; SHA-512 suits every key type (EdDSA, RSA, ECDSA).
DIGEST_ALGO = "SHA512"

_KEY_ID = re.compile(r"(0x)?([0-9A-Fa-f]{16}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})")


@dataclass(frozen=True, kw_only=True)
class Signer:
    """A GnuPG key that signs the metadata of every published tree.

    ``key_id`` is a fingerprint (40 hex digits; a 16-digit long key id is accepted) of a secret
    key in ``gnupghome`` (None: gpg's default home). ``passphrase_file`` holds the key's
    passphrase when it has one; gpg reads it itself, so it never appears in an argument list,
    a log or an error. ``also_publish`` names further public keys exported beside the signing
    key, so sites can install a new key before it starts signing (key rotation).
    ``package_keys`` names the keys the technology providers sign their RPMs with: they are
    published in ``RPM-GPG-KEY-rollout`` only (dnf's ``gpgkey``, which checks packages with
    ``gpgcheck=1``), never in apt's keyring, which is for the repository's own signatures.
    """

    key_id: str
    gnupghome: Path | None = None
    passphrase_file: Path | None = None
    also_publish: tuple[str, ...] = ()
    package_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in (self.key_id, *self.also_publish, *self.package_keys):
            if not _KEY_ID.fullmatch(key):
                raise ValueError(
                    f"signing key {key!r} must be a key fingerprint (40 hex digits) "
                    "or a long key id (16 hex digits)"
                )

    def _gpg(self) -> list[str]:
        argv = ["gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback"]
        if self.gnupghome is not None:
            argv += ["--homedir", str(self.gnupghome)]
        return argv

    def sign_argv(self, source: Path, output: Path, *, clearsign: bool = False) -> list[str]:
        """``gpg`` signing ``source`` into ``output``: an armored detached signature
        (``Release.gpg``, ``repomd.xml.asc``), or a clearsigned copy (``InRelease``)."""
        argv = self._gpg()
        if self.passphrase_file is not None:
            argv += ["--passphrase-file", str(self.passphrase_file)]
        argv += ["--local-user", self.key_id, "--digest-algo", DIGEST_ALGO]
        argv += ["--clearsign"] if clearsign else ["--armor", "--detach-sign"]
        return [*argv, "--output", str(output), "--", str(source)]

    @property
    def published(self) -> tuple[str, ...]:
        """The keys whose public part is published for apt: the signing key first."""
        return (self.key_id, *(k for k in self.also_publish if k != self.key_id))

    @property
    def rpm_published(self) -> tuple[str, ...]:
        """The keys published for dnf/yum: ``published``, then the providers' package keys."""
        return (*self.published, *(k for k in self.package_keys if k not in self.published))

    def list_argv(self) -> list[str]:
        """``gpg`` listing every key to publish (``--with-colons``), to check they are all
        there: ``--export`` silently leaves out a key it does not have."""
        return [*self._gpg(), "--with-colons", "--list-keys", "--", *self.rpm_published]

    def export_argv(self, keys: tuple[str, ...] | None = None) -> list[str]:
        """``gpg`` writing the armored public ``keys`` (default ``published``) on its standard
        output, in one armored block (apt reads one block from a ``signed-by`` .asc file)."""
        return [
            *self._gpg(),
            "--armor",
            "--export-options",
            "export-minimal",
            "--export",
            "--",
            *(self.published if keys is None else keys),
        ]

    def missing(self, fingerprints: set[str]) -> list[str]:
        """The keys to publish that are none of ``fingerprints`` (as gpg lists them)."""
        upper = {f.upper() for f in fingerprints}
        return [
            key
            for key in self.rpm_published
            if not any(f.endswith(key.upper().removeprefix("0X")) for f in upper)
        ]
