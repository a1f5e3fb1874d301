"""A sync's overall deadline against servers that trickle one byte a second, by every
protocol: a real HTTPS server of our own that sends bodies a byte a second, and a trickling TCP
proxy in front of a real rsync daemon and a real sshd. Each sync fails at its deadline (not at
the idle timeout, which a trickle never reaches) with ``SyncDeadlinePassed`` saying so, and the
server sees its connection closed; an rsync child is gone. The same sync without a trickle
finishes well within the same deadline. And rsync dies with a daemon killed outright (SIGKILL,
no clean-up), started from a worker thread as the daemon starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from tests.support import packages, paths
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


_SYNC_IN_A_WORKER_THREAD = """
import sys, threading
from pathlib import Path
from repo_daemon.sync import fetch, records
url, dest = sys.argv[1], Path(sys.argv[2])
options = records.SyncOptions(timeout=600.0, deadline_min=600.0)
worker = threading.Thread(target=fetch.sync, args=("rsync", url, dest), kwargs={"options": options})
worker.start()  # as the daemon's worker pool runs it: rsync is started from this thread
worker.join()
"""


def _processes_naming(text: str) -> list[int]:
    """The pids whose command line contains ``text`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def test_rsync_dies_with_a_daemon_killed_outright(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    with (
        RsyncDaemon(tmp_path / "rsyncd", {"rel": provider.root.parent}) as daemon,
        TricklingProxy(daemon.port, rate=1.0) as proxy,
    ):
        url = f"rsync://127.0.0.1:{proxy.port}/rel/{provider.root.name}/"
        child = subprocess.Popen(
            [sys.executable, "-c", _SYNC_IN_A_WORKER_THREAD, url, str(tmp_path / "dest")],
            cwd=paths.ROOT,
            env={**os.environ, "PYTHONPATH": str(paths.ROOT)},
        )
        try:
            assert proxy.wait(lambda: proxy.opened == 1, timeout=20), "rsync never connected"
            assert _processes_naming(f":{proxy.port}/rel/"), "no rsync to kill with the daemon"
            child.send_signal(signal.SIGKILL)  # no clean-up of any kind runs
            child.wait(timeout=10)
            gone_by = time.monotonic() + 10
            while _processes_naming(f":{proxy.port}/rel/"):
                assert time.monotonic() < gone_by, "rsync outlived the daemon that started it"
                time.sleep(0.05)
            assert proxy.wait(lambda: proxy.closed == proxy.opened == 1, timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
