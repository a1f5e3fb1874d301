"""Which key signs the trees, and the bridge's own signing key.

With ``signing_key`` set, that key signs (in ``gnupghome``, else gpg's default home). Without
it, the bridge signs with a key of its own: made once, on the first start (or by ``rollout repo
init-key``), in ``gnupghome`` (default ``<data dir>/gnupg``), its fingerprint recorded in
``<home>/rollout-signing-key`` and logged; every later start reuses it. On a shared database
(``database_url``: several daemons, maybe on several hosts) the daemon does not make it at
start, since each host would make its own: ``rollout repo init-key`` makes it once. With
``signing_key = "none"`` trees are unsigned, and every start says so with a warning.

It never makes a second key behind the operator's back: when the recorded key is gone, or the
home holds secret keys the bridge did not make, it refuses (``MetadataFailed``) and says what
to do. It never reads or logs a passphrase (the bridge's own key has none: its home is 0700).
Argument lists for gpg are built here; running them goes through a ``commands.CommandRunner``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bridge.settings import model as settings_model
from repo_daemon.metadata import commands, errors, signing

logger = logging.getLogger(__name__)

RECORD = "rollout-signing-key"  # in the home: the fingerprint of the key the bridge made
LOCK = ".rollout-signing-key.lock"  # in the home: held while the key is looked for or made
DEFAULT_UID = "Rollout bridge repository signing key"
# rsa4096: every client verifies it (RHEL 7's GnuPG 2.0 does not know ed25519). No expiry: a
# key that expires unattended breaks every site at once (docs/clients.md says how to rotate).
DEFAULT_ALGORITHM = "rsa4096"
ALGORITHMS = ("rsa4096", "rsa3072", "ed25519")


@dataclass(frozen=True, kw_only=True)
class OwnKey:
    """The bridge's own signing key: its fingerprint, its GnuPG home, and whether this call
    made it."""

    fingerprint: str
    home: Path
    created: bool


def own_home(settings: settings_model.Settings) -> Path:
    """The GnuPG home of the bridge's own key: ``gnupghome``, else ``<data dir>/gnupg``."""
    return settings.repository.gnupghome or settings.data_dir / "gnupg"


def signer(
    settings: settings_model.Settings, *, runner: commands.CommandRunner | None = None
) -> signing.Signer | None:
    """The ``Signer`` of the configured key, or of the bridge's own key (made now when there
    is none yet), or None when unsigned trees were chosen. Logs which, once per call: call it
    at start-up. Raises ``MetadataFailed`` when the bridge's own key cannot be used."""
    repo = settings.repository
    if repo.unsigned:
        logger.warning(
            "signing_key = none: trees are published UNSIGNED; their client files turn "
            "checking off (apt trusted=yes, dnf gpgcheck=0), so anyone between a site and the "
            "server can change what it installs (docs/clients.md)",
            extra={"action": "signing"},
        )
        return None
    key_id, home = repo.signing_key, repo.gnupghome
    if key_id is None:
        # One machine (SQLite): made on the first start. A shared database: made by hand, once.
        make = settings.database_url is None
        own = ensure_own_key(own_home(settings), runner=runner, create=make)
        key_id, home = own.fingerprint, own.home
    else:
        logger.info(
            "signing the trees with the configured key %s (GnuPG home %s)",
            key_id,
            home or "gpg's default",
            extra={"action": "signing"},
        )
    return signing.Signer(
        key_id=key_id,
        gnupghome=home,
        passphrase_file=repo.signing_passphrase_file,
        also_publish=repo.signing_also_publish,
        package_keys=repo.package_keys,
    )


def ensure_own_key(
    home: Path,
    *,
    uid: str = DEFAULT_UID,
    algorithm: str = DEFAULT_ALGORITHM,
    runner: commands.CommandRunner | None = None,
    create: bool = True,
) -> OwnKey:
    """The bridge's own key in ``home``: the recorded one, or a new one when the home has no
    record and no secret key (the first start) and ``create`` allows it. Serialised between
    processes by a lock in the home. Raises ``MetadataFailed`` when the recorded key is missing
    from the home, when the home holds secret keys the bridge did not make, when there is no
    key and ``create`` is false, or when gpg fails."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is none of {', '.join(ALGORITHMS)}")
    run: commands.CommandRunner = runner or commands.SubprocessRunner(timeout=300)
    home = home.absolute()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(home):
        record = home / RECORD
        secret = _secret_keys(run, home)
        if record.exists():
            fingerprint = record.read_text(encoding="utf-8").strip().upper()
            if fingerprint not in secret:
                raise errors.MetadataFailed(
                    f"the bridge's signing key {fingerprint} (recorded in {record}) is not in "
                    f"the GnuPG home {home}: sites trust that key, so the bridge will not make "
                    "another one. Restore the home from its backup, or set signing_key to the "
                    "key that replaces it (docs/clients.md, rotating the key)"
                )
            logger.info(
                "signing the trees with the bridge's own key %s (GnuPG home %s)",
                fingerprint,
                home,
                extra={"action": "signing"},
            )
            return OwnKey(fingerprint=fingerprint, home=home, created=False)
        if not create:
            raise errors.MetadataFailed(
                f"no signing key in {home}: with a shared database several daemons may start "
                "at once, each on its own host, so none makes a key by itself. Run `rollout "
                "repo init-key` once and give every daemon that GnuPG home (gnupghome), or "
                "set signing_key (or signing_key = none for unsigned trees)"
            )
        if secret:
            raise errors.MetadataFailed(
                f"the GnuPG home {home} holds secret keys ({', '.join(sorted(secret))}) that the "
                "bridge did not make: set signing_key to the one that signs the trees, or give "
                "the bridge a home of its own (gnupghome)"
            )
        fingerprint = _generate(run, home, uid, algorithm)
        tmp = record.with_name(record.name + ".tmp")
        tmp.write_text(fingerprint + "\n", encoding="utf-8")
        tmp.replace(record)
    logger.warning(
        "made the bridge's signing key %s (%s) in %s: back the home up (docs/clients.md) and "
        "publish this fingerprint where sites can check it",
        fingerprint,
        algorithm,
        home,
        extra={"action": "signing"},
    )
    return OwnKey(fingerprint=fingerprint, home=home, created=True)


def generate_argv(home: Path, uid: str, algorithm: str) -> list[str]:
    """``gpg`` making a signing-only key without a passphrase and without expiry in ``home``."""
    return [
        "gpg", "--homedir", str(home), "--batch", "--no-tty", "--pinentry-mode", "loopback",
        "--passphrase", "", "--quick-generate-key", "--", uid, algorithm, "sign", "never",
    ]  # fmt: skip


def _generate(run: commands.CommandRunner, home: Path, uid: str, algorithm: str) -> str:
    argv = generate_argv(home, uid, algorithm)
    commands.run(run, argv, cwd=home, what=f"making the bridge's signing key in {home}")
    made = _secret_keys(run, home)
    if len(made) != 1:
        raise errors.MetadataFailed(f"gpg made {len(made)} secret keys in {home}, expected one")
    (fingerprint,) = made
    return fingerprint


def _secret_keys(run: commands.CommandRunner, home: Path) -> set[str]:
    """The fingerprints of the primary secret keys in ``home``."""
    argv = ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--list-secret-keys"]
    listing = commands.run(
        run, argv, cwd=home, what=f"listing the secret keys in {home}", check=False
    )
    if listing.returncode not in (0, 2):  # 2: an empty new home (no keyring yet)
        commands.run(run, argv, cwd=home, what=f"listing the secret keys in {home}")  # raises
    found: set[str] = set()
    primary = False
    for line in listing.stdout.decode("utf-8", "replace").splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb"):
            primary = fields[0] == "sec"
        elif fields[0] == "fpr" and primary and len(fields) > 9:
            found.add(fields[9].upper())
            primary = False
    return found


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    with (home / LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
