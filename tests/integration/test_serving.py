"""The published trees over real HTTP: nginx running the product's rendered configuration, and
the embedded server of ``rollout repo serve`` (``serving.serve_static``), each on a free
loopback port, serving a repository built by the real ``publish.Repository`` with the mirror
index as its metadata step. The same requests go to both: packages through the area URLs,
metadata with its caching headers, the index, listings, and every way into the bridge's own
state (``.pool/``, ``.locks/``, ``.snapshots/``, ``..``, ``%2e%2e``) refused."""

from __future__ import annotations

import hashlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.rt_setup.sandbox import free_port
from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, index, manifest
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from repo_daemon.serving import policy
from repo_daemon.serving import static as serving
from tests.support import paths
from tests.support.nginx_server import NginxServer, tools_missing
from tests.support.release_factory import scratch_release

ROOT = paths.ROOT
AREA = "production/7/updates"
RPM = "rpms/noarch/tool-1.0-1.noarch.rpm"
DEB = "debs/tool_1.0-1_all.deb"
ODD = "docs/a b&c.txt"
PRIMARY = f"rpms/repodata/{'c' * 64}-primary.xml.gz"
BY_HASH = f"debs/by-hash/SHA256/{'d' * 64}"

pytestmark = pytest.mark.skipif(
    bool(tools_missing()), reason=f"apt-get install {' '.join(tools_missing())}"
)


def _release(scratch: Path, version: str, files: dict[str, bytes]) -> release_model.ReleaseInfo:
    return scratch_release(scratch, "Dist", version, files)


def _fake_metadata(snapshot: Path, contents: manifest.AreaManifest) -> None:
    """Files shaped like the repository metadata step's, for types and caching."""
    count = str(len(contents.releases)).encode()
    for path, data in {
        "rpms/repodata/repomd.xml": b"<repomd>" + count + b"</repomd>",
        PRIMARY: b"gzip " + count,
        "debs/Packages": b"Package: tool\n",
        "debs/Release": b"Origin: Rollout bridge\n",
        BY_HASH: b"Package: tool\n",
    }.items():
        (snapshot / path).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / path).write_bytes(data)


@dataclass
class Published:
    repo: publish.Repository
    files: dict[str, bytes]
    pool_file: str  # a pool file's path below the root
    publish_next: Callable[[], None]


@pytest.fixture
def published(tmp_path: Path) -> Published:
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo"),
        metadata=index.compose(_fake_metadata, index.write_index),
    )
    files = {RPM: b"rpm bytes " * 50, DEB: b"deb bytes " * 30, ODD: b"odd name\n"}
    info = _release(tmp_path / "s1", "1.0.0", files)
    repo.publish_unverified(21, info, tmp_path / "s1")
    repo.promote_to_production(21, info, "7", "Incremental")
    sha = hashlib.sha256(files[RPM]).hexdigest()

    def publish_next() -> None:
        more = _release(tmp_path / "s2", "1.1.0", {"rpms/noarch/tool-1.1-1.noarch.rpm": b"new"})
        repo.publish_unverified(22, more, tmp_path / "s2")
        repo.promote_to_production(22, more, "7", "Incremental")

    return Published(
        repo=repo, files=files, pool_file=f".pool/{sha[:2]}/{sha}", publish_next=publish_next
    )


@pytest.fixture(params=["nginx", "embedded"])
def server(request: pytest.FixtureRequest, published: Published, tmp_path: Path) -> Iterator[int]:
    """The port of a server of each kind, serving ``published``."""
    if request.param == "nginx":
        with NginxServer(tmp_path / "nginx", published.repo.root) as nginx:
            yield nginx.port
    else:
        with serving.running(published.repo.root) as embedded:
            yield embedded.port


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Answer:
    """One request, the path sent exactly as given (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Content-Length", "0")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return Answer(response.status, headers, body)
    finally:
        connection.close()


# --------------------------------------------------------------------------- both servers


def test_packages_through_the_area_url(server: int, published: Published) -> None:
    for path, kind in ((RPM, "application/x-rpm"), (DEB, "application/vnd.debian.binary-package")):
        answer = fetch(server, f"/{AREA}/{path}")
        assert answer.status == 200, path
        assert answer.body == published.files[path]
        assert answer.headers["content-type"] == kind
        assert answer.headers["cache-control"] == policy.PACKAGE
        head = fetch(server, f"/{AREA}/{path}", "HEAD")
        assert (head.status, head.body) == (200, b"")
        assert head.headers["content-length"] == str(len(published.files[path]))
    odd = fetch(server, f"/{AREA}/docs/a%20b%26c.txt")
    assert (odd.status, odd.body) == (200, published.files[ODD])


def test_metadata_is_revalidated_and_content_addressed_files_are_immutable(server: int) -> None:
    expected = {
        "index.json": ("application/json", policy.NO_CACHE),
        "index.html": ("text/html", policy.NO_CACHE),
        ".rollout-serial": ("text/plain", policy.NO_CACHE),
        ".rollout-manifest.json": ("application/json", policy.NO_CACHE),
        "rpms/repodata/repomd.xml": ("application/xml", policy.NO_CACHE),
        "debs/Packages": ("text/plain", policy.NO_CACHE),
        "debs/Release": ("text/plain", policy.NO_CACHE),
        PRIMARY: ("application/gzip", policy.IMMUTABLE),
        BY_HASH: ("application/octet-stream", policy.IMMUTABLE),
    }
    for path, (kind, cache) in expected.items():
        answer = fetch(server, f"/{AREA}/{path}")
        assert answer.status == 200, path
        assert answer.headers["content-type"].split(";")[0] == kind, path
        assert answer.headers["cache-control"] == cache, path
        assert answer.headers["x-content-type-options"] == "nosniff", path


def test_the_index_lists_the_release_and_names_the_live_snapshot(
    server: int, published: Published
) -> None:
    found = index.read_json(fetch(server, f"/{AREA}/index.json").body)
    live = published.repo.live_snapshot(areas.Area.parse(AREA))
    assert found.snapshot == live
    assert [(r.ticket_id, r.short_name, r.version) for r in found.releases] == [
        (21, "Dist", "1.0.0")
    ]
    assert {f.path for f in found.releases[0].files} == set(published.files)
    serial = fetch(server, f"/{AREA}/.rollout-serial").body.decode()
    assert serial == f"production~7~updates/{live}\n" == found.serial + "\n"
    page = fetch(server, f"/{AREA}/")
    assert page.status == 200
    assert page.headers["content-type"].startswith("text/html")
    assert b"<h1>production/7/updates</h1>" in page.body


def test_directory_listings_hide_hidden_names(server: int) -> None:
    top = fetch(server, "/")
    assert top.status == 200
    assert b'href="production/"' in top.body
    assert b"unverified/" in top.body
    for hidden in (b".pool", b".locks", b".snapshots"):
        assert hidden not in top.body
    listing = fetch(server, f"/{AREA}/rpms/")
    assert listing.status == 200
    assert b'href="noarch/"' in listing.body
    assert b'href="repodata/"' in listing.body
    moved = fetch(server, f"/{AREA}/rpms")
    assert moved.status == 301
    assert moved.headers["location"].endswith(f"/{AREA}/rpms/")


def test_the_bridges_state_and_escapes_are_refused(server: int, published: Published) -> None:
    pool = published.pool_file
    live = published.repo.live_snapshot(areas.Area.parse(AREA))
    secret = published.files[RPM]
    for path in (
        "/.pool/",
        f"/{pool}",
        "/.locks/",
        "/.locks/.global.lock",
        "/.snapshots/",
        f"/.snapshots/production~7~updates/{live}/index.json",
        f"/{AREA}/../../../{pool}",
        f"/{AREA}/%2e%2e/%2e%2e/%2e%2e/{pool}",
        f"/production/%2E%2E/{pool}",
        f"/{AREA}/rpms/%2e%2e/%2e%2e/%2e%2e/%2e%2e/.locks/.global.lock",
        "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/../../../../etc/passwd",
        f"/{AREA}/%2e%2e%2f%2e%2e%2f%2e%2e%2f{pool.replace('/', '%2f')}",
        "/production/7/.updates.swap-0000",
    ):
        answer = fetch(server, path)
        assert answer.status in (400, 403, 404), (path, answer.status)
        assert secret not in answer.body, path
        assert b"root:" not in answer.body, path
    for method in ("POST", "PUT", "DELETE"):
        assert fetch(server, f"/{AREA}/index.json", method).status == 405, method


def test_a_swap_is_seen_at_the_next_request(server: int, published: Published) -> None:
    before = index.read_json(fetch(server, f"/{AREA}/index.json").body)
    published.publish_next()
    after = index.read_json(fetch(server, f"/{AREA}/index.json").body)
    assert [r.version for r in before.releases] == ["1.0.0"]
    assert [r.version for r in after.releases] == ["1.0.0", "1.1.0"]
    assert after.snapshot > before.snapshot
    new = fetch(server, f"/{AREA}/rpms/noarch/tool-1.1-1.noarch.rpm")
    assert (new.status, new.body) == (200, b"new")


def test_a_serial_swapped_in_the_same_second_is_seen_by_a_revalidating_mirror(
    server: int, published: Published
) -> None:
    snapshot = (published.repo.root / AREA).resolve()
    serial = snapshot / ".rollout-serial"
    first = fetch(server, f"/{AREA}/.rollout-serial")
    # A same-sized serial with the very same mtime, swapped in as a publication does.
    before = serial.stat()
    fresh = snapshot / ".rollout-serial.new"
    fresh.write_bytes(bytes(reversed(serial.read_bytes())))
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    fresh.replace(serial)
    conditions = {"If-Modified-Since": first.headers.get("last-modified", "")}
    if "etag" in first.headers:
        conditions["If-None-Match"] = first.headers["etag"]
    again = fetch(server, f"/{AREA}/.rollout-serial", headers=conditions)
    assert (again.status, again.body) == (200, serial.read_bytes())


# --------------------------------------------------------------------------- nginx only


def test_rendered_nginx_conf_passes_nginx_t(tmp_path: Path, published: Published) -> None:
    nginx = NginxServer(tmp_path / "nginx", published.repo.root)
    checked = nginx.check_config()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    assert "[warn]" not in checked.stderr


# --------------------------------------------------------------------------- embedded only


def test_embedded_server_never_follows_a_symlink_out_of_the_root(
    tmp_path: Path, published: Published
) -> None:
    """Only the bridge makes symlinks (the areas); one planted by a person that leads out of
    the root, or into the pool, is not followed."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = published.repo.root
    (root / "unverified" / "planted").symlink_to(outside)
    (root / "unverified" / "pool").symlink_to(root / ".pool")
    with serving.running(root) as embedded:
        for path in ("/unverified/planted/secret.txt", "/unverified/planted/",
                     f"/unverified/pool/{published.pool_file.split('/', 1)[1]}"):  # fmt: skip
            answer = fetch(embedded.port, path)
            assert answer.status == 404, path
        listing = fetch(embedded.port, "/unverified/")
        assert listing.status == 200


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_static_runs_until_a_signal(
    tmp_path: Path, published: Published, signum: signal.Signals
) -> None:
    port = free_port()
    code = (
        "import logging, sys; from pathlib import Path; "
        "from repo_daemon.serving import static as serving; "
        "logging.basicConfig(level=logging.INFO); "
        f"serving.serve_static(Path(sys.argv[1]), '127.0.0.1', {port}); print('stopped')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(published.repo.root)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.communicate()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "serve_static did not listen"
                time.sleep(0.05)
        answer = fetch(port, f"/{AREA}/{RPM}")
        assert (answer.status, answer.body) == (200, published.files[RPM])
        assert fetch(port, f"/{published.pool_file}").status == 404
        process.send_signal(signum)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip() == "stopped"
    assert f"GET /{AREA}/{RPM}" in err  # the access log


def test_the_embedded_etag_changes_whenever_the_file_does(published: Published) -> None:
    snapshot = (published.repo.root / AREA).resolve()
    serial = snapshot / ".rollout-serial"
    with serving.running(published.repo.root) as embedded:
        first = fetch(embedded.port, f"/{AREA}/.rollout-serial").headers["etag"]
        assert fetch(embedded.port, f"/{AREA}/.rollout-serial").headers["etag"] == first
        # A new file of the same size and the very same mtime, swapped in as a publication
        # does: mirrors revalidating with If-None-Match must see the change.
        before = serial.stat()
        fresh = snapshot / ".rollout-serial.new"
        fresh.write_bytes(bytes(reversed(serial.read_bytes())))
        os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
        fresh.replace(serial)
        second = fetch(embedded.port, f"/{AREA}/.rollout-serial").headers["etag"]
    assert second != first


def test_the_embedded_server_asks_the_kernel_for_a_backlog_of_1024(published: Published) -> None:
    with serving.running(published.repo.root) as embedded:
        assert embedded.httpd.request_queue_size >= 1024
