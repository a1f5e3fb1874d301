"""The published trees over real HTTP: nginx running the product's rendered configuration, and
the embedded server of ``rollout repo serve`` (``serving.serve_static``), each on a free
loopback port, serving a repository built by the real ``publish.Repository`` with the mirror
index as its metadata step. The same requests go to both: packages through the area URLs,
metadata with its caching headers, the index, listings, and every way into the bridge's own
state (``.pool/``, ``.locks/``, ``.snapshots/``, ``..``, ``%2e%2e``) refused; symlinks planted
in and beside snapshots never followed (nor dereferenced by the rsync module); 1,000
concurrent downloads of a 5 MiB package; slow, stalled and excess clients of the embedded
server."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import select
import shutil
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
from repo_daemon.serving import policy, rsyncd
from repo_daemon.serving import static as serving
from tests.support import paths, serving_load
from tests.support.nginx_server import NginxServer, tools_missing
from tests.support.release_factory import scratch_release

ROOT = paths.ROOT
AREA = "production/7/updates"
RPM = "rpms/noarch/tool-1.0-1.noarch.rpm"
DEB = "debs/tool_1.0-1_all.deb"
ODD = "docs/a b&c.txt"
PRIMARY = f"rpms/repodata/{'c' * 64}-primary.xml.gz"
BY_HASH = f"debs/by-hash/SHA256/{'d' * 64}"

# These tests are about serving, not about who may read: nginx asks no access check (its
# gate on unverified and stagerollout is tested in test_access_rt.py).
OPEN: tuple[str, ...] = ()

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
        with NginxServer(tmp_path / "nginx", published.repo.root, protected=OPEN) as nginx:
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
    nginx = NginxServer(tmp_path / "nginx", published.repo.root, protected=OPEN)
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


# --------------------------------------------------------------------------- planted symlinks


@dataclass
class Planted:
    refused: dict[str, bytes]  # URL path -> bytes behind it that must never come back
    other_secret: bytes


def _writable(directory: Path) -> None:
    """Snapshots are read-only (0555); a person planting a link makes them writable first."""
    directory.chmod(0o755)


@pytest.fixture
def planted(published: Published, tmp_path: Path) -> Planted:
    """Symlinks the bridge did not make: inside the live production snapshot (to /etc, into
    ``.pool/`` and ``.locks/``, into another area's snapshot, a symlinked directory inside the
    snapshot itself), and beside the areas (a link out of the root, an area-shaped link into
    another area's snapshot, a link to ``/``)."""
    root = published.repo.root
    other = _release(tmp_path / "s3", "2.0.0", {"rpms/secret-2.0.rpm": b"unverified secret"})
    published.repo.publish_unverified(23, other, tmp_path / "s3")
    other_snapshot = (root / "unverified/Dist/2.0.0").resolve()
    snapshot = (root / AREA).resolve()
    pool = published.pool_file
    _writable(snapshot)
    _writable(snapshot / "rpms")
    links = {
        "rpms/etc": Path("/etc"),
        "rpms/passwd": Path("/etc/passwd"),
        "rpms/pool": Path("../../../../.pool"),
        "rpms/pooled.rpm": root / pool,
        "rpms/locks": root / ".locks",
        "rpms/other": Path(os.path.relpath(other_snapshot, snapshot / "rpms")),
        "rpms/secret.rpm": other_snapshot / "rpms/secret-2.0.rpm",
        "mirror": Path("rpms"),
    }
    for name, target in links.items():
        (snapshot / name).symlink_to(target)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside secret")
    (root / "unverified/planted").symlink_to(outside)
    (root / "production/8").symlink_to(os.path.relpath(other_snapshot, root / "production"))
    (root / "production/evil").symlink_to("/")
    secret = published.files[RPM]
    other_bytes = b"unverified secret"
    sha = pool.rsplit("/", 1)[1]
    refused = {
        f"/{AREA}/rpms/etc/passwd": b"root:",
        f"/{AREA}/rpms/etc/": b"passwd",
        f"/{AREA}/rpms/etc": b"passwd",
        f"/{AREA}/rpms/passwd": b"root:",
        f"/{AREA}/rpms/pool/{sha[:2]}/{sha}": secret,
        f"/{AREA}/rpms/pool/": sha[:2].encode(),
        f"/{AREA}/rpms/pooled.rpm": secret,
        f"/{AREA}/rpms/locks/": b".lock",
        f"/{AREA}/rpms/locks/production~7~updates.lock": b"",
        f"/{AREA}/rpms/other/rpms/secret-2.0.rpm": other_bytes,
        f"/{AREA}/rpms/other/index.json": b"2.0.0",
        f"/{AREA}/rpms/other/": b"index.json",
        f"/{AREA}/rpms/secret.rpm": other_bytes,
        f"/{AREA}/mirror/noarch/tool-1.0-1.noarch.rpm": secret,
        f"/{AREA}/mirror/": b"noarch",
        "/unverified/planted/secret.txt": b"outside secret",
        "/unverified/planted/": b"secret.txt",
        "/production/8/rpms/secret-2.0.rpm": other_bytes,
        "/production/8/": b"2.0.0",
        "/production/8/.rollout-serial": b"unverified",
        "/production/evil/etc/passwd": b"root:",
        f"/production/evil{root}/{pool}": secret,
    }
    return Planted(refused=refused, other_secret=other_bytes)


def test_a_symlink_planted_in_or_beside_a_snapshot_is_never_followed(
    server: int, published: Published, planted: Planted
) -> None:
    followed = {}
    for path, behind in planted.refused.items():
        answer = fetch(server, path)
        leaked = bool(behind) and behind in answer.body
        if answer.status not in (403, 404) or leaked:
            followed[path] = (answer.status, answer.body[:80])
    assert followed == {}


def test_the_areas_still_work_beside_planted_symlinks(
    server: int, published: Published, planted: Planted
) -> None:
    for path, expected in (
        (f"/{AREA}/{RPM}", published.files[RPM]),
        (f"/{AREA}/docs/a%20b%26c.txt", published.files[ODD]),
        (f"/{AREA}/{BY_HASH}", b"Package: tool\n"),
        ("/unverified/Dist/2.0.0/rpms/secret-2.0.rpm", planted.other_secret),
    ):
        answer = fetch(server, path)
        assert (answer.status, answer.body) == (200, expected), path
    live = published.repo.live_snapshot(areas.Area.parse(AREA))
    serial = fetch(server, f"/{AREA}/.rollout-serial")
    assert (serial.status, serial.body) == (200, f"production~7~updates/{live}\n".encode())
    for listing in (f"/{AREA}/", f"/{AREA}/rpms/", "/unverified/", "/production/"):
        assert fetch(server, listing).status == 200, listing


# Areas of every depth the layout allows: a flat production path one component deep, the
# usual two and three, and a production path of five (areas of six components).
DEEP_AREAS = {
    "9": ("CAs", "CAs"),
    "7": ("production/7", "production/7/updates"),
    "10": ("a/b/c/d/e", "a/b/c/d/e/updates"),
}


@pytest.fixture
def deep(tmp_path: Path) -> publish.Repository:
    repo = publish.Repository(
        RepositorySettings(
            root=tmp_path / "repo",
            production_paths={major: path for major, (path, _) in DEEP_AREAS.items()},
            flat_production=frozenset({"9"}),
        ),
        metadata=index.write_index,
    )
    for n, major in enumerate(DEEP_AREAS):
        info = _release(tmp_path / f"s{n}", f"1.{n}.0", {f"pkg-{major}.rpm": major.encode()})
        repo.publish_unverified(30 + n, info, tmp_path / f"s{n}")
        repo.promote_to_stagerollout(30 + n, info, major)
        repo.promote_to_production(30 + n, info, major, "Incremental")
    info = _release(tmp_path / "u", "2.0.0", {"pkg-u.rpm": b"u"})
    repo.publish_unverified(40, info, tmp_path / "u")
    return repo


@pytest.mark.parametrize("kind", ["nginx", "embedded"])
def test_areas_of_every_depth_are_served(deep: publish.Repository, kind: str) -> None:
    expected = {area: f"pkg-{major}.rpm" for major, (_, area) in DEEP_AREAS.items()}
    expected["unverified/Dist/2.0.0"] = "pkg-u.rpm"
    with contextlib.ExitStack() as stack:
        if kind == "nginx":
            port = stack.enter_context(
                NginxServer(deep.root.parent / "nginx", deep.root, protected=OPEN)
            ).port
        else:
            port = stack.enter_context(serving.running(deep.root)).port
        for area, package in expected.items():
            found = index.read_json(fetch(port, f"/{area}/index.json").body)
            assert found.area == area
            answer = fetch(port, f"/{area}/{package}")
            assert answer.status == 200, area
            assert fetch(port, f"/{area}/").status == 200, area
            moved = fetch(port, f"/{area}")
            assert (moved.status, moved.headers["location"]) == (301, f"/{area}/"), area
        for parent in ("/a/b/c/d/e/", "/a/", "/production/7/"):
            assert fetch(port, parent).status == 200, parent


@contextlib.contextmanager
def _rsync_daemon(workdir: Path, root: Path) -> Iterator[str]:
    """``rsync --daemon`` with the shipped module (chrooted as nobody when run as root, as in
    production); yields the module's URL."""
    workdir.mkdir()
    port = free_port()
    as_root = os.geteuid() == 0
    conf = workdir / "rsyncd.conf"
    conf.write_text(
        rsyncd.render_rsyncd(
            root,
            port=port,
            run_dir=workdir,
            log_file=workdir / "rsyncd.log",
            uid="nobody" if as_root else None,
            gid="nogroup" if as_root else None,
            use_chroot=as_root,
        )
    )
    process = subprocess.Popen(
        ["rsync", "--daemon", "--no-detach", f"--config={conf}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, "rsync daemon exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "rsync daemon not listening"
                time.sleep(0.05)
        yield f"rsync://127.0.0.1:{port}/{rsyncd.DEFAULT_MODULE}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.skipif(shutil.which("rsync") is None, reason="apt-get install rsync")
def test_the_rsync_module_never_sends_what_a_planted_symlink_points_at(
    tmp_path: Path, published: Published, planted: Planted
) -> None:
    secrets = [published.files[RPM], planted.other_secret]
    with _rsync_daemon(tmp_path / "rsyncd", published.repo.root) as url:
        for option in ("-L", "--copy-dirlinks", "--copy-unsafe-links"):
            dest = tmp_path / f"copy{option}"
            run = subprocess.run(
                ["rsync", "-r", option, f"{url}{AREA}/", f"{dest}/"],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert run.returncode != 0, option
            assert "refuse" in run.stderr, (option, run.stderr)
            assert not dest.exists() or not any(dest.rglob("*")), option
        # A mirror's pull gets the planted links as links, never their targets' bytes.
        dest = tmp_path / "mirror"
        run = subprocess.run(
            ["rsync", "-a", "-@-1", f"{url}{AREA}/", f"{dest}/"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        assert (dest / RPM).read_bytes() == published.files[RPM]
        for name in ("rpms/etc", "rpms/pool", "rpms/locks", "rpms/other", "mirror"):
            assert (dest / name).is_symlink(), name
        copied = [p for p in dest.rglob("*") if p.is_file() and not p.is_symlink()]
        assert not any(p.read_bytes() in secrets[1:] for p in copied)
        assert not any(p.read_bytes().startswith(b"root:") for p in copied)


# --------------------------------------------------------------------------- under load

BIG = "rpms/noarch/big-1.0-1.noarch.rpm"
BIG_SIZE = 5 * 1024 * 1024


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, str]:
    """A repository whose production area holds one 5 MiB package; its root and SHA-256."""
    data = os.urandom(BIG_SIZE)
    repo = publish.Repository(RepositorySettings(root=tmp_path / "big"), metadata=index.write_index)
    info = _release(tmp_path / "sb", "3.0.0", {BIG: data})
    repo.publish_unverified(50, info, tmp_path / "sb")
    repo.promote_to_production(50, info, "7", "Incremental")
    return repo.root, hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("kind", ["embedded", "nginx"])
def test_1000_concurrent_downloads_of_a_5_mib_package_all_complete(
    tmp_path: Path, big: tuple[Path, str], kind: str
) -> None:
    """The embedded server runs as ``rollout repo serve`` in its own process, nginx with the
    shipped standalone configuration; the client opens 1,000 connections, then all ask at
    once and every body is checked."""
    root, sha256 = big
    with contextlib.ExitStack() as stack:
        if kind == "nginx":
            port = stack.enter_context(NginxServer(tmp_path / "nginx", root, protected=OPEN)).port
        else:
            port = stack.enter_context(serving_load.embedded_server(root, tmp_path))
        result = serving_load.download_all(
            "127.0.0.1", port, f"/{AREA}/{BIG}", count=1000, size=BIG_SIZE, sha256=sha256,
            timeout=120,
        )  # fmt: skip
    assert result.failures == {}
    assert result.peak_open == 1000
    assert result.completed == 1000


def _closed_within(connection: socket.socket, seconds: float, *, trickle: bytes = b"") -> float:
    """Wait until the server closes ``connection`` (end of file), sending ``trickle`` one byte
    at a time every 0.2 s meanwhile; how long it took. Fails after ``seconds``."""
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        readable, _, _ = select.select([connection], [], [], 0.2)
        if readable:
            try:
                if not connection.recv(65536):
                    return time.monotonic() - started
            except ConnectionResetError:
                return time.monotonic() - started
        elif sent < len(trickle):
            connection.send(trickle[sent : sent + 1])
            sent += 1
    raise AssertionError(f"still open after {seconds} s")


def test_the_embedded_server_closes_a_connection_that_sends_nothing(
    published: Published,
) -> None:
    with serving.StaticServer(published.repo.root, header_timeout=1, idle_timeout=5) as server:
        server.start()
        with socket.create_connection(("127.0.0.1", server.port)) as idle:
            assert 0.5 < _closed_within(idle, 10) < 5


def test_the_embedded_server_closes_a_slowloris_at_the_header_deadline(
    published: Published,
) -> None:
    """Headers sent a byte every 0.2 s never hit the 1 s idle timeout: the 2 s deadline for
    the whole request head ends the connection."""
    request = f"GET /{AREA}/{RPM} HTTP/1.1\r\nHost: x\r\nX-Padding: {'a' * 200}\r\n\r\n"
    with serving.StaticServer(published.repo.root, header_timeout=2, idle_timeout=1) as server:
        server.start()
        with socket.create_connection(("127.0.0.1", server.port)) as slow:
            assert 1.5 < _closed_within(slow, 10, trickle=request.encode()) < 5
        # Meanwhile and afterwards, others are served.
        answer = fetch(server.port, f"/{AREA}/{RPM}")
        assert (answer.status, answer.body) == (200, published.files[RPM])


def test_the_embedded_server_drops_a_reader_that_stalls(
    tmp_path: Path, big: tuple[Path, str]
) -> None:
    root, _ = big
    with serving.StaticServer(root, header_timeout=5, idle_timeout=1) as server:
        server.start()
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        with stalled:
            stalled.connect(("127.0.0.1", server.port))
            stalled.sendall(f"GET /{AREA}/{BIG} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            deadline = time.monotonic() + 15
            while server.connections == 0:  # the request reached its thread
                assert time.monotonic() < deadline
                time.sleep(0.01)
            while server.connections:  # ... which gives up on the stalled reader
                assert time.monotonic() < deadline, "the stalled download still holds a thread"
                time.sleep(0.05)
            received = 0
            stalled.settimeout(10)
            while chunk := stalled.recv(1 << 20):
                received += len(chunk)
            assert received < BIG_SIZE


def test_the_embedded_server_answers_503_over_its_connection_cap(published: Published) -> None:
    with serving.StaticServer(published.repo.root, max_connections=2, header_timeout=30) as server:
        server.start()
        holders = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        try:
            deadline = time.monotonic() + 10
            while server.connections < 2:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert fetch(server.port, f"/{AREA}/{RPM}").status == 503
        finally:
            for holder in holders:
                holder.close()
        deadline = time.monotonic() + 10
        while server.connections:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        answer = fetch(server.port, f"/{AREA}/{RPM}")
        assert (answer.status, answer.body) == (200, published.files[RPM])
