"""Incremental metadata with the real tools (createrepo_c, apt-ftparchive) and real packages:
an area published over several publications (add, remove, add again) through
``publish.Repository`` and the daemon's ``metadata_step`` ends with the metadata content of a
full rebuild; unchanged packages are really not read again; a package whose bytes changed
under the same name, size and mtime is read again (where the tools alone would keep stale
metadata)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import logging
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.metadata import apt, yum
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import errors as metadata_errors
from repo_daemon.publish import areas
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support import packages
from tests.support.release_factory import scratch_release

YUM = release_model.RepositorySpec(identifier="r", name="RPMs", type="YUM", relative_path="rpms")
APT = release_model.RepositorySpec(identifier="d", name="Debs", type="APT", relative_path="debs")
COMMON = "{http://linux.duke.edu/metadata/common}"


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    missing = [t for t in ("createrepo_c", "apt-ftparchive") if shutil.which(t) is None]
    missing += packages.tools_missing()
    if missing:
        pytest.fail(f"install {' '.join(missing)} (scripts/bootstrap)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Releases a, b, c: each one real RPM and one real .deb (path → bytes)."""
    work = tmp_path_factory.mktemp("packages")
    out: dict[str, dict[str, bytes]] = {}
    for name in ("a", "b", "c"):
        rpm = packages.build_rpm(work, f"rollout-{name}", payload=name)
        deb = packages.build_deb(work, f"rollout-{name}", payload=name)
        out[name] = {f"rpms/{rpm.name}": rpm.read_bytes(), f"debs/{deb.name}": deb.read_bytes()}
    return out


# ---------------------------------------------------------------------------- reading metadata


def yum_documents(repo: Path) -> dict[str, bytes]:
    """primary, filelists, other of ``repo``'s repomd.xml, decompressed."""
    repomd = ET.fromstring((repo / "repodata/repomd.xml").read_bytes())  # noqa: S314 (the tool's own output)
    found = {}
    for data in repomd.findall("{http://linux.duke.edu/metadata/repo}data"):
        href = data.find("{http://linux.duke.edu/metadata/repo}location").get("href")  # type: ignore[union-attr]
        found[data.get("type") or ""] = gzip.decompress((repo / str(href)).read_bytes())
    return found


def by_package(document: bytes) -> dict[str, bytes]:
    """Each package element of a primary/filelists/other document, keyed by its checksum
    (pkgid) and location, serialised as parsed."""
    root = ET.fromstring(document)  # noqa: S314 (createrepo_c's output, just written)
    out = {}
    for package in root:
        pkgid = package.get("pkgid") or package.findtext(f"{COMMON}checksum") or ""
        key = f"{pkgid} {package.get('name') or ''}"
        assert key not in out, key
        out[key] = ET.tostring(package)
    return out


def primary_checksums(repo: Path) -> dict[str, str]:
    """location href → the checksum (SHA-256 of the file) primary.xml gives."""
    root = ET.fromstring(yum_documents(repo)["primary"])  # noqa: S314 (as above)
    return {
        p.find(f"{COMMON}location").get("href"): p.findtext(f"{COMMON}checksum")  # type: ignore[union-attr,misc]
        for p in root
    }


def apt_sha256(repo: Path) -> dict[str, str]:
    """Filename → SHA256 of the Packages index."""
    out, name = {}, ""
    for line in (repo / "Packages").read_text().splitlines():
        if line.startswith("Filename: "):
            name = line.split(" ", 1)[1]
        if line.startswith("SHA256: "):
            out[name] = line.split(" ", 1)[1]
    return out


def full_rebuild(snapshot: Path, where: Path) -> Path:
    """The packages of ``snapshot`` (hard links) with metadata built from scratch: no previous
    snapshot, no cache, ``incremental=False``."""
    tree = where / "full"
    for sub in ("rpms", "debs"):
        (tree / sub).mkdir(parents=True)
        for f in (snapshot / sub).iterdir():
            if f.is_file() and f.suffix in (".rpm", ".deb"):
                os.link(f, tree / sub / f.name)
    metadata.build_metadata(tree, [YUM, APT], incremental=False)
    return tree


# ---------------------------------------------------------------------------- the tests


def test_an_area_built_incrementally_has_the_metadata_content_of_a_full_rebuild(
    tmp_path: Path, built: dict[str, dict[str, bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "repo"
    settings = RepositorySettings(root=root, base_url="http://127.0.0.1:1/")
    repo = publish.Repository(
        settings, metadata=metadata.metadata_step(root.resolve(), settings.base_url)
    )
    infos = {}
    for ticket, name in enumerate(("a", "b", "c"), start=1):
        info = scratch_release(tmp_path / f"scratch-{name}", name, "1.0.0", built[name])
        infos[name] = (ticket, dataclasses.replace(info, repositories=(YUM, APT)))
        repo.publish_unverified(ticket, infos[name][1], tmp_path / f"scratch-{name}")
    stage = areas.Area.stagerollout("7")
    caplog.set_level(logging.INFO, logger="repo_daemon.metadata.build")
    for number, (verb, name) in enumerate(
        [("add", "a"), ("add", "b"), ("remove", "a"), ("add", "a"), ("add", "c")]
    ):
        caplog.clear()
        ticket, info = infos[name]
        if verb == "add":
            repo.promote_to_stagerollout(ticket, info, "7")
        else:
            repo.remove_from(ticket, [stage])
        yum_line, apt_line = [r.getMessage() for r in caplog.records]
        if number == 0:
            assert "read in full: no previous snapshot" in yum_line
            assert "read in full: no record of what the cache holds" in apt_line
        else:  # every later publication of the area is incremental
            assert "unchanged packages from the previous snapshot's" in yum_line
            assert "unchanged packages from the cache" in apt_line
    live = (root / stage.path).resolve()
    assert (root / ".metadata-cache" / "stagerollout-7" / apt.CACHE_DB).is_file()
    full = full_rebuild(live, tmp_path)

    # YUM: primary, filelists and other, decompressed, are the same bytes, and so is each
    # package's element (repomd.xml differs legitimately: timestamps, the .gz files' own
    # checksums and sizes).
    ours, theirs = yum_documents(live / "rpms"), yum_documents(full / "rpms")
    assert set(ours) == set(theirs) == {"primary", "filelists", "other"}
    for kind in ours:
        assert by_package(ours[kind]) == by_package(theirs[kind]), kind
        assert ours[kind] == theirs[kind], kind
    assert len(by_package(ours["primary"])) == 3
    # APT: Packages and Packages.gz byte for byte, so Release's checksums of them match.
    for name in apt.APT_INDEXES:
        assert (live / "debs" / name).read_bytes() == (full / "debs" / name).read_bytes()
    assert apt.release_sha256((live / "debs/Release").read_text()) == apt.release_sha256(
        (full / "debs/Release").read_text()
    )
    assert len(apt_sha256(live / "debs")) == 3


def _area(tmp_path: Path, built: dict[str, dict[str, bytes]], names: tuple[str, ...]) -> Path:
    """A snapshot of hard links to the files of ``names`` from ``tmp_path/pool``."""
    pool = tmp_path / "pool"
    pool.mkdir(exist_ok=True)
    tree = tmp_path / f"snapshot-{len(list(tmp_path.glob('snapshot-*')))}"
    for name in names:
        for path, data in built[name].items():
            source = pool / Path(path).name
            if not source.exists():
                source.write_bytes(data)
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            os.link(source, tree / path)
    return tree


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    st = path.stat()
    assert len(data) == st.st_size
    path.chmod(0o644)
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_unchanged_packages_are_not_read_again(
    tmp_path: Path, built: dict[str, dict[str, bytes]]
) -> None:
    # The counter that cannot lie: after the previous snapshot was indexed, a's bytes are
    # overwritten with zeros in the pool (same inode, size and mtime). Read, they fail both
    # tools; not read, the metadata keeps a's entries. A full rebuild of the same tree fails.
    cache = tmp_path / "cache"
    previous = _area(tmp_path, built, ("a", "b"))
    metadata.build_metadata(previous, [YUM, APT], cache_dir=cache)
    before_rpm, before_deb = primary_checksums(previous / "rpms"), apt_sha256(previous / "debs")
    new = _area(tmp_path, built, ("a", "b", "c"))
    for path in built["a"]:
        _rewrite_keeping_size_and_mtime(new / path, bytes(len(built["a"][path])))

    done = metadata.build_metadata(new, [YUM, APT], previous_tree=previous, cache_dir=cache)

    assert "unchanged packages from the previous snapshot's" in done[0]
    assert "3 packages; unchanged packages from the cache" in done[1]
    after_rpm, after_deb = primary_checksums(new / "rpms"), apt_sha256(new / "debs")
    for path, data in built["a"].items():
        digest = hashlib.sha256(data).hexdigest()
        if path.startswith("rpms/"):
            assert after_rpm[Path(path).name] == before_rpm[Path(path).name] == digest
        else:
            assert after_deb[f"./{Path(path).name}"] == before_deb[f"./{Path(path).name}"]
    assert len(after_rpm) == len(after_deb) == 3  # c was read
    with pytest.raises(metadata_errors.MetadataFailed, match="createrepo_c failed"):
        full_rebuild(new, tmp_path)


def test_other_bytes_under_the_same_name_size_and_mtime_are_read_again(
    tmp_path: Path, built: dict[str, dict[str, bytes]]
) -> None:
    # A package replaced by another of the same name, size and mtime (re-signed with the
    # provider's mtime kept, say): the tools alone would keep the old entry; the bridge sees
    # another inode and has them read everything.
    cache, direct_cache = tmp_path / "cache", tmp_path / "direct-cache"
    previous = _area(tmp_path, built, ("a", "b"))
    metadata.build_metadata(previous, [YUM, APT], cache_dir=cache)
    direct_cache.mkdir()
    argv = apt.packages_argv(cache_db=direct_cache / apt.CACHE_DB)
    subprocess.run(argv, cwd=previous / "debs", check=True, capture_output=True)

    new = _area(tmp_path, built, ("b",))
    replaced: dict[str, str] = {}
    for path, data in built["a"].items():
        if path.endswith(".rpm"):  # the lead's reserved bytes: rpm and createrepo_c skip them
            other = data[:80] + b"\x01" * 16 + data[96:]
        else:  # the first digit of the ar header's mtime of debian-binary: still a valid .deb
            digit = data[8 + 16 : 8 + 17]
            assert digit.isdigit()
            other = data[: 8 + 16] + (b"2" if digit != b"2" else b"3") + data[8 + 17 :]
        assert other != data and len(other) == len(data)
        (new / path).parent.mkdir(parents=True, exist_ok=True)
        (new / path).write_bytes(other)
        st = (previous / path).stat()
        os.utime(new / path, ns=(st.st_atime_ns, st.st_mtime_ns))
        replaced[Path(path).name] = hashlib.sha256(other).hexdigest()
    subprocess.run(["dpkg-deb", "--info", str(next((new / "debs").glob("rollout-a*")))], check=True)

    direct = tmp_path / "direct"
    shutil.copytree(new, direct, copy_function=os.link)
    subprocess.run(
        yum.createrepo_argv(direct / "rpms", update_from=previous / "rpms"),
        check=True,
        capture_output=True,
    )
    with (direct / "debs/Packages").open("wb") as out:
        subprocess.run(argv, cwd=direct / "debs", stdout=out, check=True)
    stale_rpm, stale_deb = primary_checksums(direct / "rpms"), apt_sha256(direct / "debs")

    done = metadata.build_metadata(new, [YUM, APT], previous_tree=previous, cache_dir=cache)

    assert "read in full" in done[0] and "other bytes than in the previous snapshot" in done[0]
    assert "read in full" in done[1] and "other bytes than the cache recorded" in done[1]
    rpm_name = next(n for n in replaced if n.endswith(".rpm"))
    deb_name = next(n for n in replaced if n.endswith(".deb"))
    assert primary_checksums(new / "rpms")[rpm_name] == replaced[rpm_name]
    assert apt_sha256(new / "debs")[f"./{deb_name}"] == replaced[deb_name]
    # What the tools alone wrote: the replaced package's old checksum (the hazard is real).
    assert stale_rpm[rpm_name] != replaced[rpm_name]
    assert stale_deb[f"./{deb_name}"] != replaced[deb_name]
