"""SFTP configuration problems, found before any connection (no network needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records


def test_sftp_without_a_key_is_a_permanent_failure(tmp_path: Path) -> None:
    with pytest.raises(sync_errors.SftpFailed, match="sftp_key_file") as caught:
        sync.sync("sftp", "sftp://u@127.0.0.1:1/srv", tmp_path / "d")
    assert not caught.value.transient


@pytest.mark.parametrize("content", [None, "garbage\n"])
def test_sftp_with_an_unusable_key_is_a_permanent_failure(
    tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "key").write_text(content)
    options = records.SyncOptions(sftp_key_file=tmp_path / "key", sftp_known_hosts=tmp_path / "kh")
    with pytest.raises(sync_errors.SftpFailed, match="cannot use the SFTP key file") as caught:
        sync.sync("sftp", "sftp://u@127.0.0.1:1/srv", tmp_path / "d", options=options)
    assert not caught.value.transient


def test_sftp_without_known_hosts_is_refused_unless_allowed(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = tmp_path / "key"
    key.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    options = records.SyncOptions(sftp_key_file=key)
    with pytest.raises(sync_errors.SftpFailed, match="no known_hosts file") as caught:
        sync.sync("sftp", "sftp://u@127.0.0.1:1/srv", tmp_path / "d", options=options)
    assert not caught.value.transient
