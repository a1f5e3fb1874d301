"""``signing``: the gpg argument lists, key ids, and which published keys gpg lacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon.metadata import signing
from tests.support.metadata_runner import (
    FPR,
    signer,
)


def test_signer_argv_reads_the_passphrase_from_a_file_and_never_holds_it() -> None:
    s = signer(passphrase_file=Path("/srv/pass"))
    assert s.sign_argv(Path("Release"), Path("InRelease"), clearsign=True) == [
        "gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback",
        "--homedir", "/srv/gnupg", "--passphrase-file", "/srv/pass",
        "--local-user", FPR, "--digest-algo", "SHA512",
        "--clearsign", "--output", "InRelease", "--", "Release",
    ]  # fmt: skip
    detached = signing.Signer(key_id=FPR).sign_argv(Path("repomd.xml"), Path("repomd.xml.asc"))
    assert "--homedir" not in detached
    assert detached[-6:] == ["--armor", "--detach-sign", "--output", "repomd.xml.asc", "--",
                             "repomd.xml"]  # fmt: skip


def test_signer_exports_the_signing_key_and_the_next_one() -> None:
    nxt = "0123456789ABCDEF"
    argv = signer(also_publish=(nxt, FPR)).export_argv()
    assert argv[-6:] == ["--export-options", "export-minimal", "--export", "--", FPR, nxt]


@pytest.mark.parametrize("bad", ["--homedir=/tmp", "ABCDEF12", "test@example.org", ""])
def test_signer_takes_fingerprints_only(bad: str) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        signing.Signer(key_id=bad)
    with pytest.raises(ValueError, match="fingerprint"):
        signing.Signer(key_id=FPR, also_publish=(bad,))


def test_signer_matches_long_key_ids_to_fingerprints() -> None:
    s = signing.Signer(key_id="0x" + FPR[-16:].lower(), also_publish=("0123456789ABCDEF",))
    assert s.missing({FPR}) == ["0123456789ABCDEF"]
    assert s.missing({FPR, "F" * 24 + "0123456789ABCDEF"}) == []


def test_package_keys_are_published_for_dnf_only() -> None:
    provider = "C" * 40
    s = signer(also_publish=("0123456789ABCDEF",), package_keys=(provider, FPR))
    assert s.published == (FPR, "0123456789ABCDEF")
    assert s.rpm_published == (FPR, "0123456789ABCDEF", provider)
    assert s.export_argv()[-2:] == [FPR, "0123456789ABCDEF"]
    assert s.export_argv(s.rpm_published)[-3:] == [FPR, "0123456789ABCDEF", provider]
    # Every key to publish is looked up, and a missing provider key is named.
    assert s.list_argv()[-3:] == [FPR, "0123456789ABCDEF", provider]
    assert s.missing({FPR, "F" * 24 + "0123456789ABCDEF"}) == [provider]
    with pytest.raises(ValueError, match="fingerprint"):
        signer(package_keys=("provider@example.org",))
