"""A sync's overall deadline against servers that trickle one byte a second, by every
protocol: a real HTTPS server of our own that sends bodies a byte a second, and a trickling TCP
proxy in front of a real rsync daemon and a real sshd. Each sync fails at its deadline (not at
the idle timeout, which a trickle never reaches) with ``SyncDeadlinePassed`` saying so, and the
server sees its connection closed; an rsync child is gone. The same sync without a trickle
finishes well within the same deadline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from tests.support import packages
from tests.support.rsync_server import RsyncDaemon
from tests.support.sftp_server import SftpServer, sshd_missing
from tests.support.trickle_server import TricklingHttpsServer, TricklingProxy

DEADLINE = 3.0  # seconds: ROLLOUT_SYNC_DEADLINE_MIN in these tests
FAST = 1024.0**3  # ROLLOUT_SYNC_MIN_RATE: the declared size adds next to nothing
IDLE = 60.0  # ROLLOUT_SYNC_TIMEOUT: far longer than the deadline, and never reached anyway


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[packages.BuiltPackage]:
    missing = packages.tools_missing()
    assert not missing, f"install {missing} (Debian: dpkg, rpm) to build the test packages"
    return packages.build_packages(tmp_path_factory.mktemp("built"), count=1)


@pytest.fixture
def provider(tmp_path: Path, built: list[packages.BuiltPackage]) -> packages.ProviderTree:
    return packages.layout_provider_tree(tmp_path / "provider", built)


def _options(**changes: object) -> sync_records.SyncOptions:
    values: dict[str, object] = {"timeout": IDLE, "deadline_min": DEADLINE, "min_rate": FAST}
    values.update(changes)
    return sync_records.SyncOptions(**values)  # type: ignore[arg-type]


def _fails_at_the_deadline(
    protocol: str, url: str, dest: Path, provider: packages.ProviderTree, **options: object
) -> sync_errors.SyncDeadlinePassed:
    started = time.monotonic()
    with pytest.raises(sync_errors.SyncDeadlinePassed) as caught:
        sync.sync_and_verify(protocol, url, dest, provider.packages, options=_options(**options))
    took = time.monotonic() - started
    assert DEADLINE <= took < DEADLINE + 5, f"failed after {took:.1f} s"
    message = str(caught.value)
    assert "did not finish within its deadline of 3 s" in message, message
    assert "The transfer was stopped and its connection closed" in message
    assert not caught.value.transient  # the provider's source is too slow: they are told
    assert not any(dest.rglob("*.rpm")), "nothing half-fetched is left under a package's name"
    return caught.value


def test_an_https_server_trickling_a_byte_a_second_fails_at_the_deadline(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    with TricklingHttpsServer(tmp_path / "https", provider.root, rate=1.0) as server:
        _fails_at_the_deadline(
            "https", server.url + "/", tmp_path / "dest", provider,
            https_ca_file=server.ca.file,
        )  # fmt: skip
        assert server.sent >= 1, "it was trickling, not silent"
        assert server.wait(lambda: len(server.closed) == len(server.opened) == 1, timeout=5), (
            "the server did not see the connection closed"
        )


def test_an_rsync_daemon_trickling_a_byte_a_second_fails_at_the_deadline(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    with (
        RsyncDaemon(tmp_path / "rsyncd", {"rel": provider.root.parent}) as daemon,
        TricklingProxy(daemon.port, rate=1.0) as proxy,
    ):
        url = f"rsync://127.0.0.1:{proxy.port}/rel/{provider.root.name}/"
        _fails_at_the_deadline("rsync", url, tmp_path / "dest", provider)
        assert proxy.wait(lambda: proxy.closed == proxy.opened == 1, timeout=5), (
            "the rsync connection was not closed"
        )
        # Untrickled, the same sync is done well within the deadline.
        direct = daemon.url("rel", provider.root.name + "/")
        result = sync.sync_and_verify(
            "rsync", direct, tmp_path / "dest", provider.packages, options=_options()
        )
        assert result.seconds < DEADLINE


def test_an_sshd_trickling_a_byte_a_second_fails_at_the_deadline(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    reason = sshd_missing()
    assert reason is None, f"{reason}: apt-get install openssh-server"
    with (
        SftpServer(tmp_path / "sshd") as sshd,
        TricklingProxy(sshd.port, rate=1.0) as proxy,
    ):
        url = f"sftp://{sshd.user}@127.0.0.1:{proxy.port}{provider.root}"
        _fails_at_the_deadline(
            "sftp", url, tmp_path / "dest", provider, sftp_key_file=sshd.client_key,
            sftp_allow_unknown_hosts=True, connect_timeout=IDLE,
        )  # fmt: skip
        assert proxy.wait(lambda: proxy.closed == proxy.opened == 1, timeout=5), (
            "the SSH connection was not closed"
        )
