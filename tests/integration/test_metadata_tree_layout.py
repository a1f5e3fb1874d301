"""The metadata step in the tree layout, with the real tools (createrepo_c, apt-ftparchive,
gpg) and real packages: packages read from a payload tree that holds more than the area's
releases (leftovers, stray symlinks, the metadata links into the live snapshot), only metadata
written into the snapshot, the same content as the snapshots layout gives, publications in a
row from the previous tree-layout metadata, signatures that verify.

The tree-layout area is laid out here by hand, as ``docs/publication.md`` describes it (the
payload tree, ``.meta``, the metadata links), so that only the metadata step is tested."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from repo_daemon.metadata import apt, payload, signing
from repo_daemon.metadata import build as metadata
from repo_daemon.publish import areas, index, manifest
from tests.integration.test_metadata_incremental import apt_sha256, by_package, yum_documents
from tests.support import packages, repo_clients

AREA = areas.Area.stagerollout("7")
BASE_URL = "http://127.0.0.1:1/"
YUM = manifest.RepositoryEntry(identifier="r", name="RPMs", type="YUM", relative_path="rpms")
APT = manifest.RepositoryEntry(identifier="d", name="Debs", type="APT", relative_path="debs")


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    missing = [t for t in ("createrepo_c", "apt-ftparchive", "gpg") if shutil.which(t) is None]
    missing += packages.tools_missing()
    if missing:
        pytest.fail(f"install {' '.join(missing)} (scripts/bootstrap)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Releases a, b, c, d: one real RPM and one real .deb each (path → bytes); b's below
    subdirectories, so that location hrefs and Filename lines have directories in them."""
    work = tmp_path_factory.mktemp("packages")
    out: dict[str, dict[str, bytes]] = {}
    for name in ("a", "b", "c", "d"):
        rpm = packages.build_rpm(work, f"rollout-{name}", payload=name)
        deb = packages.build_deb(work, f"rollout-{name}", payload=name)
        sub = "el9/" if name == "b" else ""
        out[name] = {
            f"rpms/{sub}{rpm.name}": rpm.read_bytes(),
            f"debs/{sub}{deb.name}": deb.read_bytes(),
        }
    return out


def release(ticket: int, name: str, files: dict[str, bytes]) -> manifest.ReleaseEntry:
    return manifest.ReleaseEntry(
        ticket_id=ticket,
        short_name=name,
        version="1.0.0",
        files=tuple(
            manifest.FileEntry(path=p, size=len(d), sha256=hashlib.sha256(d).hexdigest())
            for p, d in sorted(files.items())
        ),
        repositories=(YUM, APT),
    )


class TreeArea:
    """A tree-layout area below ``root``, changed as publication does: payload files linked
    from a pool, a metadata snapshot built, its links made, ``.meta`` switched, then what no
    release claims any more unlinked."""

    def __init__(self, root: Path, step: metadata.Step) -> None:
        self.root = root
        self.tree = root / ".trees" / AREA.key
        self.snapshots = root / ".snapshots" / AREA.key
        self.pool = root / ".pool"
        for directory in (self.tree, self.snapshots, self.pool):
            directory.mkdir(parents=True, exist_ok=True)
        link = root / AREA.path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("../" * AREA.depth + f".trees/{AREA.key}")
        self.step = index.compose(step, index.write_index)
        self.count = 0

    def link_payload(self, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            pooled = self.pool / hashlib.sha256(data).hexdigest()
            if not pooled.exists():
                pooled.write_bytes(data)
                pooled.chmod(0o444)
            target = self.tree / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(pooled, target)

    def publish(self, releases: Iterable[manifest.ReleaseEntry]) -> Path:
        """A new metadata snapshot of ``releases`` (whose files are in the tree), live."""
        contents = manifest.AreaManifest(area=AREA.path, releases=tuple(releases))
        snapshot = self.build(contents)
        self.go_live(snapshot, contents)
        return snapshot

    def build(self, contents: manifest.AreaManifest) -> Path:
        """The metadata step, into a new snapshot (not live yet)."""
        self.count += 1
        name = f"{self.count:06d}-20261206T0000{self.count:02d}Z"
        building = self.snapshots / f".building-{name}"
        building.mkdir()
        self.step(building, contents, payload_dir=self.tree)
        snapshot = self.snapshots / name
        building.rename(snapshot)
        return snapshot

    def go_live(self, snapshot: Path, contents: manifest.AreaManifest) -> None:
        """Its links, the switch, then what no release claims unlinked."""
        name = snapshot.name
        self._links(snapshot, "")
        swap = self.tree / f".meta.swap-{secrets.token_hex(4)}"
        swap.symlink_to(f"../../.snapshots/{AREA.key}/{name}")
        swap.replace(self.tree / ".meta")
        for link in self.tree.rglob("*"):  # links the live snapshot no longer has
            if ".meta/" in str(link.readlink() if link.is_symlink() else "") and not link.exists():
                link.unlink()
        claimed = {f.path for f in contents.files()}
        for path in [*self.tree.rglob("*.rpm"), *self.tree.rglob("*.deb")]:
            relative = path.relative_to(self.tree).as_posix()
            if not path.is_symlink() and relative not in claimed:
                path.unlink()

    def _links(self, snapshot: Path, prefix: str) -> None:
        for entry in sorted((snapshot / prefix).iterdir()):
            relative = prefix + entry.name
            here = self.tree / relative
            target = "../" * relative.count("/") + ".meta/" + relative
            if here.is_dir() and not here.is_symlink() and (snapshot / relative).is_dir():
                self._links(snapshot, relative + "/")
            elif not here.is_symlink() or str(here.readlink()) != target:  # replace a stray
                here.unlink(missing_ok=True)
                here.symlink_to(target)


def listing(top: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry below ``top``: mtime, size, inode, link target (a change of any shows)."""
    out = {}
    for path in [top, *top.rglob("*")]:
        st = path.lstat()
        target = str(path.readlink()) if path.is_symlink() else ""
        out[path.relative_to(top).as_posix()] = (st.st_mtime_ns, st.st_size, st.st_ino, target)
    return out


def snapshots_layout(where: Path, releases: dict[str, dict[str, bytes]], tree: Path) -> Path:
    """The same releases in a snapshot of today's layout (hard links of the tree's files, as
    ``publish`` makes: createrepo_c records each file's mtime), metadata built from scratch."""
    where.mkdir()
    for files in releases.values():
        for path in files:
            (where / path).parent.mkdir(parents=True, exist_ok=True)
            os.link(tree / path, where / path)
    metadata.build_metadata(where, [YUM, APT], incremental=False)
    return where


def assert_same_content(ours: Path, theirs: Path) -> None:
    """The decompressed primary, filelists and other, and Packages, are the same."""
    mine, reference = yum_documents(ours / "rpms"), yum_documents(theirs / "rpms")
    assert set(mine) == set(reference) == {"primary", "filelists", "other"}
    for kind in mine:
        assert by_package(mine[kind]) == by_package(reference[kind]), kind
        assert mine[kind] == reference[kind], kind
    for name in apt.APT_INDEXES:
        assert (ours / "debs" / name).read_bytes() == (theirs / "debs" / name).read_bytes()


def assert_metadata_only(snapshot: Path) -> None:
    """No package, no symlink, no work directory in a metadata snapshot."""
    for path in snapshot.rglob("*"):
        assert not path.is_symlink(), path
        assert path.suffix not in (".rpm", ".deb"), path
        assert not path.name.startswith(payload.WORK_PREFIX), path


def test_tree_layout_metadata_equals_the_snapshots_layouts_and_leaves_the_payload_untouched(
    tmp_path: Path, built: dict[str, dict[str, bytes]]
) -> None:
    root = tmp_path / "repo"
    area = TreeArea(root, metadata.metadata_step(root, BASE_URL))
    current = {"a": built["a"], "b": built["b"]}
    for files in (*current.values(), built["d"]):  # d: a leftover nobody live references
        area.link_payload(files)
    (area.tree / "rpms/broken.rpm").write_bytes(b"not an rpm: indexed, it fails createrepo_c")
    (area.tree / "debs/broken.deb").write_bytes(b"not a deb: indexed, apt-ftparchive says E:")
    (area.tree / "rpms/stray.rpm").symlink_to("/etc/hostname")
    (area.tree / "debs/stray.deb").symlink_to("../rpms/broken.rpm")
    (area.tree / "rpms/repodata").symlink_to("/nonexistent/repodata")  # a dangling stray
    before = listing(area.tree)

    contents = manifest.AreaManifest(
        area=AREA.path,
        releases=tuple(release(n, k, f) for n, (k, f) in enumerate(current.items(), start=1)),
    )
    snapshot = area.build(contents)

    assert listing(area.tree) == before  # nothing written, nothing even touched
    area.go_live(snapshot, contents)
    assert_metadata_only(snapshot)
    assert_same_content(snapshot, snapshots_layout(tmp_path / "full", current, area.tree))
    hrefs = sorted(
        by_package(yum_documents(snapshot / "rpms")["primary"])
    )  # two packages, not the leftover nor the strays
    assert len(hrefs) == 2
    assert sorted(apt_sha256(snapshot / "debs")) == [
        "./el9/rollout-b_1.0-1_all.deb",
        "./rollout-a_1.0-1_all.deb",
    ]
    document = index.read_json((snapshot / index.INDEX_JSON).read_bytes())
    assert document.layout == index.LAYOUT_TREE
    assert b'"layout": "tree"' in (snapshot / index.INDEX_JSON).read_bytes()
    listed = {f.path for f in document.metadata_files}
    assert "rpms/repodata/repomd.xml" in listed
    assert "debs/Packages" in listed
    assert not any(p.endswith((".rpm", ".deb")) for p in listed)
    # Served through the area: each metadata path resolves into the live snapshot.
    assert (root / AREA.path / "debs/Packages").resolve() == snapshot / "debs/Packages"


def test_publications_in_a_row_from_the_previous_tree_metadata_equal_a_full_rebuild(
    tmp_path: Path, built: dict[str, dict[str, bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "repo"
    area = TreeArea(root, metadata.metadata_step(root, BASE_URL))
    entries = {name: release(n, name, built[name]) for n, name in enumerate("abc", start=1)}
    live: list[str] = []
    caplog.set_level(logging.INFO, logger="repo_daemon.metadata.build")
    previous: Path | None = None
    for number, (verb, name) in enumerate(
        [("add", "a"), ("add", "b"), ("remove", "a"), ("add", "a"), ("add", "c")]
    ):
        caplog.clear()
        if verb == "add":
            area.link_payload(built[name])
            live.append(name)
        else:
            live.remove(name)
        snapshot = area.publish(entries[n] for n in live)
        yum_line, apt_line = [r.getMessage() for r in caplog.records]
        if number == 0:
            assert "read in full: no previous snapshot" in yum_line
            assert "read in full: no record of what the cache holds" in apt_line
        else:  # from the previous tree-layout metadata and the area's cache
            assert "unchanged packages from the previous snapshot's" in yum_line, yum_line
            assert "unchanged packages from the cache" in apt_line, apt_line
        assert_metadata_only(snapshot)
        if previous is not None:  # the previous indexes stay reachable in the new snapshot
            for digest in apt.release_sha256((previous / "debs/Release").read_text()):
                assert (snapshot / "debs/by-hash/SHA256" / digest).is_file()
            repomd = (previous / "rpms/repodata/repomd.xml").read_text()
            for old in re.findall(r'<location href="repodata/([^"/]+)"', repomd):
                assert (snapshot / "rpms/repodata" / old).is_file()
        previous = snapshot

    assert live == ["b", "a", "c"]
    full = snapshots_layout(tmp_path / "full", {n: built[n] for n in live}, area.tree)
    assert_same_content(previous, full)
    assert len(apt_sha256(previous / "debs")) == 3


def test_signed_tree_layout_metadata_verifies_with_gpg(
    tmp_path: Path, built: dict[str, dict[str, bytes]]
) -> None:
    key = repo_clients.shared_key()
    signer = signing.Signer(
        key_id=key.fingerprint, gnupghome=key.home, passphrase_file=key.passphrase_file
    )
    root = tmp_path / "repo"
    area = TreeArea(root, metadata.metadata_step(root, BASE_URL, signer=signer))
    area.link_payload(built["a"])
    snapshot = area.publish([release(1, "a", built["a"])])

    assert_metadata_only(snapshot)
    verify = ["gpg", "--homedir", str(key.home), "--batch", "--verify"]
    for argv in (
        [*verify, str(snapshot / "debs/InRelease")],
        [*verify, str(snapshot / "debs/Release.gpg"), str(snapshot / "debs/Release")],
        [*verify, str(snapshot / "rpms/repodata/repomd.xml.asc"),
         str(snapshot / "rpms/repodata/repomd.xml")],
    ):  # fmt: skip
        done = subprocess.run(argv, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
    for name in (signing.APT_KEY_FILE, signing.RPM_KEY_FILE):
        assert (snapshot / name).is_file()
        assert (root / AREA.path / name).resolve() == snapshot / name  # a metadata link


def test_the_first_tree_layout_publication_updates_from_the_snapshots_layouts_metadata(
    tmp_path: Path, built: dict[str, dict[str, bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    """Migration: the area still points at a full snapshot of today's layout; the first
    metadata snapshot of the tree layout reuses its metadata and the area's cache."""
    root = tmp_path / "repo"
    step = metadata.metadata_step(root, BASE_URL)
    old = root / ".snapshots" / AREA.key / "000001-20261206T000001Z"
    old.mkdir(parents=True)
    for path, data in built["a"].items():
        (old / path).parent.mkdir(parents=True, exist_ok=True)
        (old / path).write_bytes(data)
    step(old, manifest.AreaManifest(area=AREA.path, releases=(release(1, "a", built["a"]),)))
    (root / AREA.path).parent.mkdir(parents=True)
    (root / AREA.path).symlink_to("../" * AREA.depth + f".snapshots/{AREA.key}/{old.name}")
    tree = root / ".trees" / AREA.key
    for files in (built["a"], built["b"]):
        for path, data in files.items():
            source = old / path if (old / path).exists() else tmp_path / Path(path).name
            if not source.exists():
                source.write_bytes(data)
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            os.link(source, tree / path)
    snapshot = root / ".snapshots" / AREA.key / ".building-000002-20261206T000002Z"
    snapshot.mkdir()
    caplog.set_level(logging.INFO, logger="repo_daemon.metadata.build")
    contents = manifest.AreaManifest(
        area=AREA.path, releases=(release(1, "a", built["a"]), release(2, "b", built["b"]))
    )

    step(snapshot, contents, payload_dir=tree)

    yum_line, apt_line = [r.getMessage() for r in caplog.records]
    assert "unchanged packages from the previous snapshot's" in yum_line, yum_line
    assert "unchanged packages from the cache" in apt_line, apt_line
    assert_metadata_only(snapshot)
    full = snapshots_layout(tmp_path / "full", {"a": built["a"], "b": built["b"]}, tree)
    assert_same_content(snapshot, full)
    for digest in apt.release_sha256((old / "debs/Release").read_text()):
        assert (snapshot / "debs/by-hash/SHA256" / digest).is_file()
