"""Sync against real servers on loopback: an rsync daemon, OpenSSH's sshd (SFTP) and an HTTPS
server with a test CA, serving real .deb and .rpm files; then verify against release.xml."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import xmlschema

from repo_daemon.release_xml import model as release_model
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import fetch as sync
from repo_daemon.sync import records as sync_records
from repo_daemon.sync import verify
from tests.support import packages, paths
from tests.support.https_server import HttpsServer, make_ca
from tests.support.rsync_server import RsyncDaemon
from tests.support.sftp_server import SftpServer, keygen, sshd_missing

ROOT = paths.ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> list[packages.BuiltPackage]:
    missing = packages.tools_missing()
    assert not missing, f"install {missing} (Debian: dpkg, rpm) to build the test packages"
    return packages.build_packages(tmp_path_factory.mktemp("built"), count=2)


@pytest.fixture(scope="module")
def providers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each test lays out its provider tree (one rsync module serves them all)."""
    return tmp_path_factory.mktemp("providers")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, providers: Path) -> Iterator[RsyncDaemon]:
    with RsyncDaemon(tmp_path_factory.mktemp("rsyncd"), {"rel": providers}) as server:
        yield server


@pytest.fixture
def provider(
    tmp_path: Path, providers: Path, built: list[packages.BuiltPackage]
) -> packages.ProviderTree:
    return packages.layout_provider_tree(providers / tmp_path.name, built)


@pytest.fixture
def rel_url(daemon: RsyncDaemon, provider: packages.ProviderTree) -> str:
    """The rsync URL of this test's provider tree."""
    return daemon.url("rel", provider.root.name + "/")


def test_the_helpers_build_real_packages_and_a_valid_release_xml(
    provider: packages.ProviderTree,
) -> None:
    paths = sorted(p.path for p in provider.packages)
    assert paths == [
        "debs/rollout-test-0_1.0-1_all.deb",
        "debs/rollout-test-1_1.0-1_all.deb",
        "rpms/noarch/rollout-test-0-1.0-1.noarch.rpm",
        "rpms/noarch/rollout-test-1-1.0-1.noarch.rpm",
    ]
    deb = provider.root / "debs/rollout-test-0_1.0-1_all.deb"
    field = subprocess.run(["dpkg-deb", "-f", str(deb), "Package"], capture_output=True, check=True)
    assert field.stdout.strip() == b"rollout-test-0"
    rpm = provider.root / "rpms/noarch/rollout-test-1-1.0-1.noarch.rpm"
    query = subprocess.run(
        ["rpm", "-qp", "--qf", "%{NAME} %{ARCH}", str(rpm)], capture_output=True, check=True
    )
    assert query.stdout == b"rollout-test-1 noarch"
    xmlschema.XMLSchema(str(ROOT / "schemas" / "release.xsd")).validate(
        io.BytesIO(provider.release_xml)
    )


# -- rsync -------------------------------------------------------------------------------------


def test_rsync_sync_then_verify(
    tmp_path: Path, provider: packages.ProviderTree, rel_url: str
) -> None:
    seen: list[tuple[int, int | None, float]] = []
    dest = tmp_path / "scratch" / "attempt-1"
    result = sync.sync(
        "rsync",
        rel_url,
        dest,
        packages=provider.packages,
        progress=lambda *a: seen.append(a),
    )
    assert (result.files, result.bytes) == (4, provider.total_size)
    assert result.seconds > 0
    verify.verify(dest, provider.packages)
    assert seen and seen[-1][0] == provider.total_size and seen[-1][1] == provider.total_size
    modes = {oct(p.stat().st_mode & 0o7777) for p in dest.rglob("*") if p.is_file()}
    assert modes == {"0o644"}

    # resuming into the same directory: an exact copy again, stale files removed
    (dest / "stale.rpm").write_bytes(b"left over")
    again = sync.sync("rsync", rel_url, dest, packages=provider.packages)
    assert (again.files, again.bytes) == (4, provider.total_size)
    verify.verify(dest, provider.packages)


def test_rsync_refuses_symlinks_in_the_provider_tree(
    tmp_path: Path, provider: packages.ProviderTree, rel_url: str
) -> None:
    (provider.root / "rpms" / "noarch" / "passwd.rpm").symlink_to("/etc/passwd")
    (provider.root / "debs-link").symlink_to(provider.root / "debs")
    with pytest.raises(sync_errors.SyncRefused) as caught:
        sync.sync("rsync", rel_url, tmp_path / "dest", packages=provider.packages)
    assert not caught.value.transient
    assert set(caught.value.paths) == {"debs-link", "rpms/noarch/passwd.rpm"}
    assert "rpms/noarch/passwd.rpm" in str(caught.value)
    assert not (tmp_path / "dest" / "rpms" / "noarch" / "passwd.rpm").exists()


def test_rsync_checksum_mismatch_and_extra_file_are_reported(
    tmp_path: Path, provider: packages.ProviderTree, rel_url: str
) -> None:
    deb = provider.packages[1]
    data = bytearray((provider.root / deb.path).read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (provider.root / deb.path).write_bytes(bytes(data))
    (provider.root / "debs" / "junk.txt").write_text("not in release.xml")
    dest = tmp_path / "dest"
    result = sync.sync("rsync", rel_url, dest, packages=provider.packages)
    assert result.files == 5
    with pytest.raises(verify.ChecksumMismatch) as caught:
        verify.verify(dest, provider.packages)
    problems = [(p.kind, p.path) for p in caught.value.problems]
    assert problems == [
        (verify.ProblemKind.EXTRA, "debs/junk.txt"),
        (verify.ProblemKind.WRONG_SHA256, deb.path),
    ]
    message = str(caught.value)
    assert message.startswith("2 files differ from release.xml: extra: debs/junk.txt; ")
    assert f"expected {deb.sha256}, got {hashlib.sha256(data).hexdigest()}" in message


def test_rsync_sync_and_verify_hashes_while_syncing(
    tmp_path: Path, provider: packages.ProviderTree, rel_url: str
) -> None:
    result = sync.sync_and_verify("rsync", rel_url, tmp_path / "ok", provider.packages)
    assert (result.files, result.bytes) == (4, provider.total_size)

    rpm = provider.packages[0]
    (provider.root / rpm.path).write_bytes(b"changed")
    with pytest.raises(verify.ChecksumMismatch) as caught:
        sync.sync_and_verify("rsync", rel_url, tmp_path / "ok", provider.packages)
    assert [(p.kind, p.path) for p in caught.value.problems] == [
        (verify.ProblemKind.WRONG_SIZE, rpm.path)
    ]


def test_rsync_to_a_closed_port_is_transient(tmp_path: Path) -> None:
    from bridge.rt_setup.sandbox import free_port

    url = f"rsync://127.0.0.1:{free_port()}/rel/"
    with pytest.raises(sync_errors.RsyncFailed) as caught:
        sync.sync(
            "rsync", url, tmp_path / "dest", options=sync_records.SyncOptions(connect_timeout=5)
        )
    err = caught.value
    assert err.transient
    assert err.returncode == 10
    assert str(err).startswith(
        f"rsync from {url} failed with exit code 10 (error in socket I/O): could not connect to "
        "127.0.0.1: the connection was refused"
    )
    assert "(111)" not in str(err)  # plain words, not the system's


def test_rsync_unknown_module_and_missing_path_are_permanent(
    tmp_path: Path, daemon: RsyncDaemon
) -> None:
    with pytest.raises(sync_errors.RsyncFailed) as caught:
        sync.sync("rsync", daemon.url("nomodule"), tmp_path / "a")
    assert (caught.value.returncode, caught.value.transient) == (5, False)
    assert "Unknown module 'nomodule'" in str(caught.value)
    with pytest.raises(sync_errors.RsyncFailed) as caught:
        sync.sync("rsync", daemon.url("rel", "no/such/dir"), tmp_path / "b")
    assert (caught.value.returncode, caught.value.transient) == (23, False)
    assert "No such file or directory" in str(caught.value)


def test_rsync_tree_larger_than_allowed_is_refused(
    tmp_path: Path, provider: packages.ProviderTree, rel_url: str
) -> None:
    options = sync_records.SyncOptions(max_bytes=provider.total_size - 1)
    # Refused either while rsync runs (stopped when its progress passes the limit) or, when
    # rsync finished before a progress line said so, by the tree's size afterwards.
    with pytest.raises(sync_errors.SyncRefused, match=r"(more|larger) than the"):
        sync.sync("rsync", rel_url, tmp_path / "dest", options=options)


# -- SFTP --------------------------------------------------------------------------------------


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SftpServer]:
    reason = sshd_missing()
    assert reason is None, f"{reason}: apt-get install openssh-server"
    with SftpServer(tmp_path / "sshd") as server:
        yield server


def _sftp_options(server: SftpServer, **changes: object) -> sync_records.SyncOptions:
    values: dict[str, object] = {
        "sftp_key_file": server.client_key,
        "sftp_known_hosts": server.known_hosts,
        "connect_timeout": 10.0,
    }
    values.update(changes)
    return sync_records.SyncOptions(**values)  # type: ignore[arg-type]


def test_sftp_sync_then_verify(
    tmp_path: Path, provider: packages.ProviderTree, sshd: SftpServer
) -> None:
    dest = tmp_path / "dest"
    seen: list[tuple[int, int | None, float]] = []
    result = sync.sync(
        "sftp",
        sshd.url(provider.root),
        dest,
        packages=provider.packages,
        options=_sftp_options(sshd),
        progress=lambda *a: seen.append(a),
    )
    assert (result.files, result.bytes) == (4, provider.total_size)
    verify.verify(dest, provider.packages)
    assert seen[-1][:2] == (provider.total_size, provider.total_size)

    (dest / "stale.deb").write_bytes(b"x")
    again = sync.sync("sftp", sshd.url(provider.root), dest, options=_sftp_options(sshd))
    assert (again.files, again.bytes) == (4, provider.total_size)
    verify.verify(dest, provider.packages)


def test_sftp_refuses_symlinks_before_downloading(
    tmp_path: Path, provider: packages.ProviderTree, sshd: SftpServer
) -> None:
    (provider.root / "debs" / "shadow.deb").symlink_to("/etc/shadow")
    with pytest.raises(sync_errors.SyncRefused) as caught:
        sync.sync("sftp", sshd.url(provider.root), tmp_path / "dest", options=_sftp_options(sshd))
    assert caught.value.paths == ("debs/shadow.deb",)
    assert not caught.value.transient
    assert list((tmp_path / "dest").rglob("*.deb")) == []


def test_sftp_unknown_host_key_is_refused(
    tmp_path: Path, provider: packages.ProviderTree, sshd: SftpServer
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(sync_errors.SftpFailed, match="not in the known_hosts file") as caught:
        sync.sync(
            "sftp",
            sshd.url(provider.root),
            tmp_path / "dest",
            options=_sftp_options(sshd, sftp_known_hosts=empty),
        )
    assert not caught.value.transient
    # ... unless configured otherwise
    result = sync.sync(
        "sftp",
        sshd.url(provider.root),
        tmp_path / "dest",
        options=_sftp_options(sshd, sftp_known_hosts=None, sftp_allow_unknown_hosts=True),
    )
    assert result.files == 4


def test_sftp_changed_host_key_is_refused(
    tmp_path: Path, provider: packages.ProviderTree, sshd: SftpServer
) -> None:
    other = keygen(tmp_path / "other_host_key")
    public = other.with_name(other.name + ".pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    with pytest.raises(sync_errors.SftpFailed, match="does NOT match") as caught:
        sync.sync(
            "sftp",
            sshd.url(provider.root),
            tmp_path / "dest",
            options=_sftp_options(sshd, sftp_known_hosts=known),
        )
    assert not caught.value.transient


def test_sftp_wrong_key_missing_directory_and_closed_port(
    tmp_path: Path, provider: packages.ProviderTree, sshd: SftpServer
) -> None:
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(sync_errors.SftpFailed, match="authentication") as caught:
        sync.sync(
            "sftp",
            sshd.url(provider.root),
            tmp_path / "a",
            options=_sftp_options(sshd, sftp_key_file=stranger),
        )
    assert not caught.value.transient

    with pytest.raises(sync_errors.SftpFailed, match="No such file") as caught:
        sync.sync(
            "sftp", sshd.url(tmp_path / "nothing"), tmp_path / "b", options=_sftp_options(sshd)
        )
    assert not caught.value.transient

    from bridge.rt_setup.sandbox import free_port

    url = f"sftp://{sshd.user}@127.0.0.1:{free_port()}{provider.root}"
    with pytest.raises(sync_errors.SftpFailed, match="cannot connect") as caught:
        sync.sync("sftp", url, tmp_path / "c", options=_sftp_options(sshd))
    assert caught.value.transient


# -- HTTPS -------------------------------------------------------------------------------------


@pytest.fixture
def https(tmp_path: Path, provider: packages.ProviderTree) -> Iterator[HttpsServer]:
    with HttpsServer(tmp_path / "https", provider.root) as server:
        yield server


def test_https_sync_then_verify(
    tmp_path: Path, provider: packages.ProviderTree, https: HttpsServer
) -> None:
    dest = tmp_path / "dest"
    result = sync.sync(
        "https",
        https.url + "/",
        dest,
        packages=provider.packages,
        options=sync_records.SyncOptions(https_ca_file=https.ca.file),
    )
    assert (result.files, result.bytes) == (4, provider.total_size)
    verify.verify(dest, provider.packages)


def test_https_untrusted_certificate_is_refused(
    tmp_path: Path, provider: packages.ProviderTree, https: HttpsServer
) -> None:
    stranger = make_ca(tmp_path / "other-ca", "stranger-ca")
    with pytest.raises(sync_errors.HttpsFailed, match="certificate") as caught:
        sync.sync(
            "https",
            https.url,
            tmp_path / "dest",
            packages=provider.packages,
            options=sync_records.SyncOptions(https_ca_file=stranger.file),
        )
    assert not caught.value.transient
    assert len(caught.value.failures) == 1  # the host's certificate: no point in trying the rest


def test_https_missing_file_is_reported(
    tmp_path: Path, provider: packages.ProviderTree, https: HttpsServer
) -> None:
    ghost = release_model.PackageFile(path="rpms/noarch/ghost.rpm", size=1, sha256="0" * 64)
    with pytest.raises(sync_errors.HttpsFailed, match=r"ghost\.rpm: HTTP 404") as caught:
        sync.sync(
            "https",
            https.url,
            tmp_path / "dest",
            packages=[*provider.packages, ghost],
            options=sync_records.SyncOptions(https_ca_file=https.ca.file),
        )
    assert not caught.value.transient
    assert [p for p, _ in caught.value.failures] == ["rpms/noarch/ghost.rpm"]


def test_scratch_is_only_written_below_dest(
    tmp_path: Path, provider: packages.ProviderTree
) -> None:
    """A package path is joined below dest; the parser already refuses unsafe ones, and the
    plan refuses them again."""
    evil = release_model.PackageFile(path="../escape.rpm", size=1, sha256="0" * 64)
    with pytest.raises(sync_errors.SyncRefused):
        sync.sync("https", "https://127.0.0.1:1/x", tmp_path / "dest", packages=[evil])
    assert not (tmp_path / "escape.rpm").exists()
    shutil.rmtree(tmp_path / "dest", ignore_errors=True)
