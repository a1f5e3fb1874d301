"""A tree-layout area over real HTTP: nginx running the product's rendered configuration and
the embedded server of ``rollout repo serve``, each on a free loopback port, serving a tree
built by hand exactly as the spec lays it out (``tests.support.tree_layout``): the area a link
to ``.trees/<key>``, payload files hard links to the pool, metadata links into the live
metadata snapshot through ``.meta``. The payload and the metadata are served with their
content types and caching; a ``.meta`` switch is seen at the next request; every planted link
(into the pool, /etc, another area's tree or snapshot, inside the metadata snapshot, a
metadata link to another path, ``.meta`` at another area's snapshot, a link into a kept
snapshot) is refused; ``/.trees/``, ``.meta`` and ``.meta.swap-*`` answer 404 and listings
hide them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_daemon.serving import policy
from repo_daemon.serving import static as serving
from tests.integration.test_serving import fetch
from tests.support import tree_layout
from tests.support.nginx_server import NginxServer, tools_missing

AREA = "production/7/updates"
KEY = "production~7~updates"
OTHER = "production/8/updates"
KEPT = "000001-20261205T000000Z"
LIVE = "000002-20261206T000000Z"
NEXT = "000003-20261207T000000Z"
RPM = "el9/x86_64/Packages/tool-1.0-1.x86_64.rpm"
DEB = "deb/tool_1.0-1_all.deb"
REPOMD = "el9/x86_64/repodata/repomd.xml"
PRIMARY = f"el9/x86_64/repodata/{'c' * 64}-primary.xml.gz"
PACKAGES = "deb/Packages"
SECRET = b"the other area's unverified bytes"

pytestmark = pytest.mark.skipif(
    bool(tools_missing()), reason=f"apt-get install {' '.join(tools_missing())}"
)


def _metadata(area: str, snapshot: str, marker: bytes) -> dict[str, bytes]:
    found = tree_layout.sample_metadata(area, snapshot, repomd=b"<repomd>" + marker + b"</repomd>")
    found[PRIMARY] = b"gzip " + marker
    found[PACKAGES] = b"Package: tool\n" + marker
    found["index.html"] = b"<h1>" + area.encode() + b"</h1>" + marker
    return found


@dataclass
class Tree:
    root: Path
    files: dict[str, bytes]

    @property
    def tree(self) -> Path:
        return self.root / ".trees" / KEY

    def snapshot(self, name: str = LIVE) -> Path:
        return self.root / ".snapshots" / KEY / name


@pytest.fixture
def built(tmp_path: Path) -> Tree:
    root = tmp_path / "repo"
    files = {RPM: b"rpm bytes " * 50, DEB: b"deb bytes " * 30}
    tree_layout.build_tree_area(root, AREA, {RPM: files[RPM]}, _metadata(AREA, KEPT, b"1"), KEPT)
    tree_layout.build_tree_area(root, AREA, {DEB: files[DEB]}, _metadata(AREA, LIVE, b"2"), LIVE)
    tree_layout.switch(root, AREA, LIVE)
    # Another area, without an index page (so its top is a listing), and a stale swap link.
    other = tree_layout.sample_metadata(OTHER, LIVE, repomd=SECRET)
    tree_layout.build_tree_area(root, OTHER, {"el9/secret.rpm": SECRET}, other, LIVE)
    (root / ".trees" / "production~8~updates" / ".meta.swap-0123abcd").symlink_to(
        f"../../.snapshots/production~8~updates/{LIVE}"
    )
    (root / ".locks").mkdir()
    return Tree(root=root, files=files)


@pytest.fixture(params=["nginx", "embedded"])
def server(request: pytest.FixtureRequest, built: Tree, tmp_path: Path) -> Iterator[int]:
    """The port of a server of each kind, serving ``built``."""
    if request.param == "nginx":
        with NginxServer(tmp_path / "nginx", built.root, protected=()) as nginx:
            yield nginx.port
    else:
        with serving.running(built.root) as embedded:
            yield embedded.port


def _refused(port: int, path: str) -> None:
    answer = fetch(port, path)
    assert answer.status in (403, 404), (path, answer.status)
    assert SECRET not in answer.body, path
    assert b"root:" not in answer.body, path


def test_the_payload_and_metadata_of_a_tree_area_are_served(server: int, built: Tree) -> None:
    expected = {
        RPM: ("application/x-rpm", policy.PACKAGE, built.files[RPM]),
        DEB: ("application/vnd.debian.binary-package", policy.PACKAGE, built.files[DEB]),
        REPOMD: ("application/xml", policy.NO_CACHE, b"<repomd>2</repomd>"),
        PRIMARY: ("application/gzip", policy.IMMUTABLE, b"gzip 2"),
        PACKAGES: ("text/plain", policy.NO_CACHE, b"Package: tool\n2"),
        "index.json": ("application/json", policy.NO_CACHE, None),
        ".rollout-serial": ("text/plain", policy.NO_CACHE, f"{KEY}/{LIVE}\n".encode()),
        ".rollout-manifest.json": ("application/json", policy.NO_CACHE, None),
    }
    for path, (kind, cache, body) in expected.items():
        answer = fetch(server, f"/{AREA}/{path}")
        assert answer.status == 200, path
        assert answer.headers["content-type"].split(";")[0] == kind, path
        assert answer.headers["cache-control"] == cache, path
        if body is not None:
            assert answer.body == body, path
    page = fetch(server, f"/{AREA}/")
    assert (page.status, page.body) == (200, b"<h1>production/7/updates</h1>2")
    assert page.headers["cache-control"] == policy.NO_CACHE


def test_a_meta_switch_is_seen_at_the_next_request(server: int, built: Tree) -> None:
    assert fetch(server, f"/{AREA}/{REPOMD}").body == b"<repomd>2</repomd>"
    new_rpm = "el9/x86_64/Packages/tool-1.1-1.x86_64.rpm"
    metadata = _metadata(AREA, NEXT, b"3")
    tree_layout.build_tree_area(built.root, AREA, {new_rpm: b"new"}, metadata, NEXT)
    tree_layout.switch(built.root, AREA, NEXT)
    assert fetch(server, f"/{AREA}/{REPOMD}").body == b"<repomd>3</repomd>"
    assert fetch(server, f"/{AREA}/.rollout-serial").body == f"{KEY}/{NEXT}\n".encode()
    assert fetch(server, f"/{AREA}/").body.endswith(b"3")
    assert fetch(server, f"/{AREA}/{new_rpm}").body == b"new"


def test_links_planted_in_a_tree_or_its_metadata_snapshot_are_refused(
    server: int, built: Tree
) -> None:
    root, tree, live = built.root, built.tree, built.snapshot()
    other_tree = root / ".trees" / "production~8~updates"
    other_snapshot = root / ".snapshots" / "production~8~updates" / LIVE
    pool = root / ".pool" / hashlib.sha256(built.files[RPM]).hexdigest()
    planted = {
        "el9/x86_64/Packages/pool.rpm": pool,
        "etc": Path("/etc"),
        "other": other_tree,
        "othermeta": other_snapshot,
        # A metadata link to another path of the live snapshot.
        "el9/x86_64/repodata2": Path("../../.meta/el9/x86_64/repodata"),
        "deb/Release": Path("../.meta/deb/Packages"),
    }
    for where, target in planted.items():
        (tree / where).symlink_to(target)
    # Inside the (sealed) metadata snapshot: root may write there; the bridge never does.
    (live / "el9/x86_64/repodata/alias.xml").symlink_to("repomd.xml")
    (live / "el9/x86_64/repodata/secret.xml").symlink_to(other_snapshot / REPOMD)
    for path in (
        "el9/x86_64/Packages/pool.rpm",
        "etc/passwd",
        "other/el9/secret.rpm",
        "othermeta/el9/x86_64/repodata/repomd.xml",
        "el9/x86_64/repodata2/repomd.xml",
        "deb/Release",
        "el9/x86_64/repodata/alias.xml",
        "el9/x86_64/repodata/secret.xml",
    ):
        _refused(server, f"/{AREA}/{path}")
    # The area's own files are still served beside them.
    assert fetch(server, f"/{AREA}/{REPOMD}").status == 200
    assert fetch(server, f"/{AREA}/{RPM}").body == built.files[RPM]


def test_meta_pointing_at_another_areas_snapshot_is_refused(server: int, built: Tree) -> None:
    swap = built.tree / ".meta.swap-feedf00d"
    swap.symlink_to(f"../../.snapshots/production~8~updates/{LIVE}")
    swap.replace(built.tree / ".meta")
    for path in (REPOMD, "index.json", ".rollout-serial", ""):
        _refused(server, f"/{AREA}/{path}")
    assert fetch(server, f"/{AREA}/{RPM}").body == built.files[RPM]  # the payload's own rule


def test_a_metadata_link_into_a_kept_snapshot_is_refused(server: int, built: Tree) -> None:
    link = built.tree / "el9/x86_64/repodata"
    link.unlink()
    link.symlink_to(f"../../../../.snapshots/{KEY}/{KEPT}/el9/x86_64/repodata")
    assert (built.root / AREA / REPOMD).read_bytes() == b"<repomd>1</repomd>"  # it resolves
    _refused(server, f"/{AREA}/{REPOMD}")
    assert fetch(server, f"/{AREA}/index.json").status == 200


def test_trees_meta_and_swap_links_answer_404(server: int, built: Tree) -> None:
    for path in (
        "/.trees/",
        f"/.trees/{KEY}/{RPM}",
        f"/.trees/{KEY}/.meta/index.json",
        f"/{AREA}/.meta",
        f"/{AREA}/.meta/",
        f"/{AREA}/.meta/index.json",
        f"/{OTHER}/.meta.swap-0123abcd/index.json",
        f"/{OTHER}/.meta.swap-0123abcd",
        f"/.snapshots/{KEY}/{LIVE}/index.json",
    ):
        answer = fetch(server, path)
        assert answer.status == 404, (path, answer.status)


def test_listings_of_a_tree_area_show_its_payload_and_metadata_links_only(
    server: int, built: Tree
) -> None:
    top = fetch(server, f"/{OTHER}/")
    assert top.status == 200
    assert b'href="el9/"' in top.body
    assert b'href="index.json"' in top.body
    assert b".meta" not in top.body
    assert b".rollout" not in top.body
    arch = fetch(server, f"/{AREA}/el9/x86_64/")
    assert arch.status == 200
    assert b'href="Packages/"' in arch.body
    assert b'href="repodata/"' in arch.body  # a metadata link, shown as the directory it is
    repodata = fetch(server, f"/{AREA}/el9/x86_64/repodata/")
    assert repodata.status == 200
    assert b'href="repomd.xml"' in repodata.body
    root = fetch(server, "/")
    assert root.status == 200
    assert b".trees" not in root.body
    assert b'href="production/"' in root.body


def test_a_snapshots_layout_area_and_a_tree_area_side_by_side(server: int, built: Tree) -> None:
    """Today's layout still works beside the tree layout (the area links into a snapshot)."""
    snapshot = built.root / ".snapshots" / "production~9" / LIVE
    (snapshot / "el9").mkdir(parents=True)
    (snapshot / "el9" / "x.rpm").write_bytes(b"x")
    (built.root / "production/9").symlink_to(f"../.snapshots/production~9/{LIVE}")
    assert fetch(server, "/production/9/el9/x.rpm").body == b"x"
    assert fetch(server, f"/{AREA}/{RPM}").body == built.files[RPM]
