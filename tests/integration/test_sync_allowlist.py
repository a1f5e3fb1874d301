"""The allowlist of sync hosts against real servers on loopback: Sync-URLs to hosts, ports or
protocols it does not allow, and HTTPS redirects to them from an allowed server, are refused
with a clear message and no connection made (a listener records every connection); a name
allowed by network is connected to at its checked address, with TLS and SSH host keys still
checked by name; failures to connect are said in plain words."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.rt_setup.sandbox import free_port
from bridge.settings.model import SyncHost
from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from repo_daemon.sync import verify
from tests.support import packages
from tests.support.https_server import HttpsServer, RedirectingHttpsServer
from tests.support.recording_listener import RecordingListener
from tests.support.rsync_server import RsyncDaemon
from tests.support.sftp_server import SftpServer, sshd_missing

LOOPBACK = SyncHost(host="127.0.0.1")
ONE_FILE = release_model.PackageFile(path="a.rpm", size=1, sha256="0" * 64)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[packages.BuiltPackage]:
    missing = packages.tools_missing()
    assert not missing, f"install {missing} (Debian: dpkg, rpm) to build the test packages"
    return packages.build_packages(tmp_path_factory.mktemp("built"), count=1)


@pytest.fixture
def provider(tmp_path: Path, built: list[packages.BuiltPackage]) -> packages.ProviderTree:
    return packages.layout_provider_tree(tmp_path / "provider" / "rel-1", built)


@pytest.fixture
def listener() -> Iterator[RecordingListener]:
    """Something listening on 127.0.0.2, a host the allowlists here never allow."""
    with RecordingListener("127.0.0.2") as found:
        yield found


def _options(*hosts: SyncHost, **changes: object) -> sync_records.SyncOptions:
    return sync_records.SyncOptions(sync_hosts=hosts, connect_timeout=5, **changes)  # type: ignore[arg-type]


def test_the_listener_records_a_connection(listener: RecordingListener) -> None:
    """The witness works: what connects is seen."""
    with socket.create_connection((listener.host, listener.port), timeout=5):
        pass
    deadline = time.monotonic() + 10
    while not listener.connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(listener.connections) == 1


@pytest.mark.parametrize(
    ("protocol", "url"),
    [
        ("rsync", "rsync://{netloc}/rel/1/"),
        ("rsync", "{host}::rel/1/"),  # the daemon form: port 873, not the listener's
        ("sftp", "sftp://release@{netloc}/srv/rel"),
        ("https", "https://{netloc}/rel"),
    ],
)
def test_a_host_outside_the_allowlist_is_refused_without_a_connection(
    tmp_path: Path,
    provider: packages.ProviderTree,
    listener: RecordingListener,
    protocol: str,
    url: str,
) -> None:
    url = url.format(netloc=listener.netloc, host=listener.host)
    options = _options(LOOPBACK, SyncHost(host="mirror.example.org"))
    with pytest.raises(sync_errors.SyncUrlRefused) as caught:
        sync.sync(protocol, url, tmp_path / "dest", packages=provider.packages, options=options)
    assert not caught.value.transient
    assert (
        f"{protocol} from 127.0.0.2 is not allowed; the bridge syncs only from the hosts its "
        "settings allow (sync_hosts): 127.0.0.1; mirror.example.org"
    ) in str(caught.value)
    assert listener.connections == []
    assert not (tmp_path / "dest").exists()


def test_a_port_the_entry_does_not_allow_is_refused_without_a_connection(
    tmp_path: Path,
) -> None:
    with RecordingListener("127.0.0.1") as listener:
        options = _options(SyncHost(host="127.0.0.0/8", ports=(873,)))
        with pytest.raises(sync_errors.SyncUrlRefused, match="port 873"):
            sync.sync("rsync", f"rsync://{listener.netloc}/rel/", tmp_path / "d", options=options)
    assert listener.connections == []


def test_a_name_resolving_outside_the_networks_is_refused_without_a_connection(
    tmp_path: Path,
) -> None:
    """``localhost`` is named by no entry and resolves to loopback, outside 10.0.0.0/8."""
    with RecordingListener("127.0.0.1") as listener:
        options = _options(SyncHost(host="10.0.0.0/8"))
        url = f"rsync://localhost:{listener.port}/rel/"
        with pytest.raises(sync_errors.SyncUrlRefused) as caught:
            sync.sync("rsync", url, tmp_path / "d", options=options)
    assert "none of the addresses its name resolves to is in an allowed network" in str(
        caught.value
    )
    assert "127.0.0.1" not in str(caught.value) and "::1" not in str(caught.value)
    assert listener.connections == []


def test_an_https_redirect_to_another_host_is_refused_without_a_connection(
    tmp_path: Path, provider: packages.ProviderTree, listener: RecordingListener
) -> None:
    with RedirectingHttpsServer(tmp_path / "https", f"https://{listener.netloc}") as allowed:
        options = _options(LOOPBACK, https_ca_file=allowed.ca.file)
        with pytest.raises(sync_errors.HttpsFailed) as caught:
            sync.sync("https", allowed.url + "/rel", tmp_path / "dest",
                      packages=provider.packages, options=options)  # fmt: skip
    message = str(caught.value)
    assert f"redirects to https://{listener.netloc}/" in message
    assert "the bridge follows redirects only within the host, scheme and port" in message
    assert not caught.value.transient
    assert len(allowed.requests) == 1  # the allowed host was asked once, then nothing more
    assert listener.connections == []


def test_an_https_redirect_to_plain_http_on_the_same_host_is_refused(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    with RecordingListener("127.0.0.1") as plain:
        target = f"http://127.0.0.1:{plain.port}"
        with RedirectingHttpsServer(tmp_path / "https", target) as allowed:
            options = _options(LOOPBACK, https_ca_file=allowed.ca.file, allow_http=True)
            with pytest.raises(sync_errors.HttpsFailed, match="never followed to plain HTTP"):
                sync.sync("https", allowed.url + "/rel", tmp_path / "dest",
                          packages=provider.packages, options=options)  # fmt: skip
    assert plain.connections == []


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("file://{netloc}", "file://{netloc}/"),
        ("file://", "file:///"),  # a local file of the bridge's: never read
        ("ftp://{netloc}", "ftp://{netloc}/"),
        ("gopher://{netloc}", "gopher://{netloc}/"),
        ("//{netloc}", "https://{netloc}/"),  # scheme-relative: another host
        ("https://127.0.0.1:{port}", "https://127.0.0.1:{port}/"),  # the same host, another port
    ],
    ids=["file-host", "file-local", "ftp", "gopher", "scheme-relative", "other-port"],
)
def test_an_https_redirect_to_another_scheme_or_port_is_refused_without_a_connection(
    tmp_path: Path, provider: packages.ProviderTree, target: str, shown: str
) -> None:
    """Redirects that leave HTTPS or its host and port, whatever the scheme: refused before
    anything is opened, naming the redirect; a listener where they point records nothing,
    and the local file a file:// redirect names is not read into scratch."""
    secret = tmp_path / "local-secret"
    secret.write_bytes(b"the bridge's own file")
    with RecordingListener("127.0.0.1") as other:
        values = {"netloc": other.netloc, "port": other.port}
        location = target.format(**values) + (str(secret) if target == "file://" else "")
        with RedirectingHttpsServer(tmp_path / "https", location) as allowed:
            options = _options(LOOPBACK, https_ca_file=allowed.ca.file)
            with pytest.raises(sync_errors.HttpsFailed) as caught:
                sync.sync("https", allowed.url + "/rel", tmp_path / "dest",
                          packages=provider.packages, options=options)  # fmt: skip
        assert other.connections == []
    message = str(caught.value)
    assert f"redirects to {shown.format(**values)}:" in message, message
    assert "the bridge follows redirects only within the host, scheme and port" in message
    assert not caught.value.transient
    assert len(allowed.requests) == 1
    found = [p.read_bytes() for p in (tmp_path / "dest").rglob("*") if p.is_file()]
    assert b"the bridge's own file" not in found


def test_a_name_allowed_by_network_is_fetched_from_its_checked_address_over_https(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    """``localhost`` resolves (maybe to ::1 first) into 127.0.0.0/8: the sync connects to
    127.0.0.1, and TLS checks the certificate (made for localhost) by the name."""
    with HttpsServer(tmp_path / "https", provider.root) as server:
        options = _options(SyncHost(host="127.0.0.0/8"), https_ca_file=server.ca.file)
        url = f"https://localhost:{server.port}/"
        name, where, _ = sync.check_source("https", url, options)
        assert (name, where.host, where.address) == ("https", "localhost", "127.0.0.1")
        result = sync.sync("https", url, tmp_path / "dest", packages=provider.packages,
                           options=options)  # fmt: skip
    assert result.files == len(provider.packages)
    verify.verify(tmp_path / "dest", provider.packages)


def test_tls_is_still_checked_by_name_at_the_pinned_address(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    """The pinned connection does not weaken TLS: a certificate from another CA is refused."""
    from tests.support.https_server import make_ca

    stranger = make_ca(tmp_path / "stranger", "stranger-ca")
    with HttpsServer(tmp_path / "https", provider.root) as server:
        options = _options(SyncHost(host="127.0.0.0/8"), https_ca_file=stranger.file)
        with pytest.raises(sync_errors.HttpsFailed, match="certificate") as caught:
            sync.sync("https", f"https://localhost:{server.port}/", tmp_path / "dest",
                      packages=provider.packages, options=options)  # fmt: skip
    assert not caught.value.transient


def test_a_name_allowed_by_network_is_fetched_from_its_checked_address_over_rsync(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    with RsyncDaemon(tmp_path / "rsyncd", {"rel": provider.root.parent}) as daemon:
        url = f"rsync://localhost:{daemon.port}/rel/{provider.root.name}/"
        options = _options(SyncHost(host="127.0.0.1/32"))
        result = sync.sync("rsync", url, tmp_path / "dest", packages=provider.packages,
                           options=options)  # fmt: skip
    assert result.files == len(provider.packages)
    assert "127.0.0.1" in (tmp_path / "rsyncd" / "rsyncd.log").read_text()


def test_sftp_at_the_checked_address_checks_the_host_key_by_name(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    reason = sshd_missing()
    assert reason is None, f"{reason}: apt-get install openssh-server"
    with SftpServer(tmp_path / "sshd") as server:
        options = _options(
            SyncHost(host="127.0.0.0/8", sftp_key_file=server.client_key),
            sftp_known_hosts=server.known_hosts,  # the key is known as [127.0.0.1]:port only
        )
        url = f"sftp://{server.user}@localhost:{server.port}{provider.root}"
        with pytest.raises(sync_errors.SftpFailed, match=r"\[localhost\]:\d+ .* is not in"):
            sync.sync("sftp", url, tmp_path / "a", options=options)
        known = server.known_hosts.read_text().replace("[127.0.0.1]", "[localhost]")
        (tmp_path / "known_hosts").write_text(known)
        options = _options(
            SyncHost(host="127.0.0.0/8", sftp_key_file=server.client_key),
            sftp_known_hosts=tmp_path / "known_hosts",
        )
        result = sync.sync("sftp", url, tmp_path / "b", packages=provider.packages,
                           options=options)  # fmt: skip
    assert result.files == len(provider.packages)


def test_failures_to_connect_are_said_in_plain_words(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    for protocol, url in (
        ("rsync", f"rsync://127.0.0.1:{port}/rel/"),
        ("https", f"https://127.0.0.1:{port}/rel"),
    ):
        with pytest.raises(sync_errors.SyncError) as caught:
            sync.sync(protocol, url, tmp_path / protocol, options=_options(LOOPBACK),
                      packages=[ONE_FILE])  # fmt: skip
        assert caught.value.transient
        assert "the connection was refused" in str(caught.value), caught.value
        assert "Errno" not in str(caught.value) and "(111)" not in str(caught.value)
