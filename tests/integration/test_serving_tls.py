"""The shipped nginx configuration with TLS (``render_nginx_conf(tls_cert=…, tls_key=…,
redirect_listen=…)``), run by a real nginx with a self-signed certificate: the trees are served
over HTTPS, plain HTTP serves nothing and only redirects, and real apt-get and dnf install from
a signed tree over HTTPS, trusting that certificate, with the tree's own client files."""

from __future__ import annotations

import http.client
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.rt_setup.sandbox import free_port
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import clients, signing
from repo_daemon.release_xml import model as release_model
from repo_daemon.serving import nginx
from tests.support import packages, repo_clients
from tests.support.nginx_server import NginxServer, tools_missing
from tests.support.repo_clients import AptRoot, DnfRoot

AREA = "production/7"
REPOSITORIES = (
    release_model.RepositorySpec(
        identifier="hello-rpm", name="Hello RPMs", type="YUM", relative_path="rpms"
    ),
    release_model.RepositorySpec(
        identifier="hello-deb", name="Hello debs", type="APT", relative_path="debs"
    ),
)


class TlsNginx(NginxServer):
    """``NginxServer`` with the shipped TLS configuration: HTTPS on ``port``, plain HTTP on
    ``http_port`` (redirects only)."""

    def __init__(self, workdir: Path, root: Path, cert: Path, key: Path) -> None:
        super().__init__(workdir, root)
        self.cert, self.key = cert, key
        self.http_port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/"

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.http_port = free_port(), free_port()
        self.conf_file.write_text(
            nginx.render_nginx_conf(
                self.root,
                workdir=self.workdir,
                listen=f"127.0.0.1:{self.port}",
                user="root" if os.geteuid() == 0 else None,
                tls_cert=self.cert,
                tls_key=self.key,
                redirect_listen=f"127.0.0.1:{self.http_port}",
            ),
            encoding="utf-8",
        )
        return self.conf_file


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    missing = tools_missing() + repo_clients.tools_missing() + packages.tools_missing()
    missing += [] if shutil.which("openssl") else ["openssl"]
    if missing:
        pytest.fail(f"install the Debian packages {' '.join(missing)} (scripts/bootstrap)")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate, key)."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]
) -> Iterator[TlsNginx]:
    """nginx with TLS serving a signed tree published at its HTTPS URL."""
    base = tmp_path_factory.mktemp("served")
    (base / "repo").mkdir()
    with TlsNginx(base / "nginx", base / "repo", *certificate) as running:
        # Laid out as publication does: the area a symlink into one of its own snapshots.
        snapshot = base / "repo/.snapshots/production~7/000001-20261205T120000Z"
        (snapshot / "rpms").mkdir(parents=True)
        (snapshot / "debs").mkdir()
        provider = repo_clients.provider_key()
        rpm = packages.build_rpm(base / "build", "rollout-hello")
        packages.sign_rpm(rpm, provider)
        shutil.copy(rpm, snapshot / "rpms")
        shutil.copy(packages.build_deb(base / "build", "rollout-hello"), snapshot / "debs")
        key = repo_clients.shared_key()
        signer = signing.Signer(
            key_id=key.fingerprint, gnupghome=key.home, package_keys=(provider.fingerprint,)
        )
        metadata.build_metadata(
            snapshot, REPOSITORIES, signer=signer, base_url=running.url, area_path=AREA
        )
        (base / "repo" / "production").mkdir()
        (base / "repo" / AREA).symlink_to(Path("..") / snapshot.relative_to(base / "repo"))
        yield running


def _trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_the_trees_are_served_over_https(server: TlsNginx, certificate: tuple[Path, Path]) -> None:
    connection = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=_trusting(certificate[0]), timeout=10
    )
    connection.request("GET", f"/{AREA}/{clients.APT_LIST_FILE}")
    answer = connection.getresponse()
    body = answer.read().decode()
    assert answer.status == 200
    assert f"https://127.0.0.1:{server.port}/{AREA}/debs/ ./" in body
    assert connection.sock is not None
    assert connection.sock.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
    connection.close()

    # A client that does not trust the certificate is refused by its own TLS check.
    with pytest.raises(ssl.SSLCertVerificationError):
        strict = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10)
        strict.request("GET", "/")


def test_plain_http_serves_nothing_and_redirects_to_https(server: TlsNginx) -> None:
    for path in (f"/{AREA}/{clients.APT_LIST_FILE}", f"/{AREA}/debs/InRelease?x=1", "/"):
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=10)
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read()
        assert answer.status == 301
        assert answer.getheader("Location") == f"https://127.0.0.1:{server.port}{path}"
        assert b"deb [" not in body and b"BEGIN PGP" not in body
        connection.close()
    # Plain HTTP spoken to the HTTPS port is refused too.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", f"/{AREA}/{clients.APT_LIST_FILE}")
    assert connection.getresponse().status == 400
    connection.close()


def test_apt_get_installs_over_https(
    server: TlsNginx, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    area = server.root / AREA
    keyring = tmp_path / "apt/etc/apt/keyrings" / signing.APT_KEY_FILE
    sources = (area / clients.APT_LIST_FILE).read_text()
    assert sources.count("deb [signed-by=") == 1 and server.url in sources
    apt = AptRoot.create(
        tmp_path / "apt",
        {"rollout.list": sources.replace(clients.DEFAULT_APT_KEYRING, str(keyring))},
        {signing.APT_KEY_FILE: (area / signing.APT_KEY_FILE).read_bytes()},
    )
    with apt.config.open("a") as config:
        config.write(f'Acquire::https::CAInfo "{certificate[0]}";\n')
    updated = apt.update()
    assert updated.returncode == 0, updated.stdout + updated.stderr
    installed = apt.install("rollout-hello")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert apt.installed_version("rollout-hello") == "1.0-1"
    log = (server.access_log).read_text()
    assert f"GET /{AREA}/debs/./InRelease" in log


def test_dnf_installs_over_https(
    server: TlsNginx, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    area = server.root / AREA
    repo = (area / clients.DNF_REPO_FILE).read_text()
    assert "\ngpgcheck=1\nrepo_gpgcheck=1\n" in repo and server.url in repo
    key_file = tmp_path / signing.RPM_KEY_FILE
    key_file.write_bytes((area / signing.RPM_KEY_FILE).read_bytes())
    repo = repo.replace(clients.DEFAULT_RPM_GPGKEY, f"file://{key_file}")
    dnf = DnfRoot.create(tmp_path / "dnf", {"rollout.repo": repo + f"sslcacert={certificate[0]}\n"})
    try:
        installed = dnf.install("rollout-hello")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert dnf.installed("rollout-hello") == "rollout-hello-1.0-1.noarch"
    finally:
        dnf.stop_agents()
