"""The mirror index written into each snapshot: index.json, index.html and .rollout-serial, as
a metadata step of a real ``publish.Repository`` on tmp_path and on a plain directory."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, errors, index, manifest
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import scratch_release

CREATED = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)


def _release(
    scratch: Path, short: str, version: str, files: dict[str, bytes]
) -> release_model.ReleaseInfo:
    return scratch_release(scratch, short, version, files)


def _repo(tmp_path: Path, step: publish.MetadataStep) -> publish.Repository:
    return publish.Repository(
        RepositorySettings(root=tmp_path / "repo"), metadata=step, clock=lambda: CREATED
    )


def _fake_metadata(snapshot: Path, contents: manifest.AreaManifest) -> None:
    """Stands in for the repository metadata step: one more file, written first."""
    (snapshot / "repodata").mkdir()
    (snapshot / "repodata" / "repomd.xml").write_text(f"<repomd>{len(contents.releases)}</repomd>")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ODD = 'rpms/a&b "q" <x>.rpm'  # a legal release path that HTML must escape


@pytest.fixture
def published(tmp_path: Path) -> tuple[publish.Repository, Path]:
    repo = _repo(tmp_path, index.compose(_fake_metadata, index.write_index))
    one = _release(tmp_path / "s1", "Dist", "1.0.0", {"rpms/one.rpm": b"one", ODD: b"odd"})
    two = _release(tmp_path / "s2", "Other", "2.1.0", {"debs/two.deb": b"two!"})
    repo.publish_unverified(11, one, tmp_path / "s1")
    repo.publish_unverified(12, two, tmp_path / "s2")
    repo.promote_to_production(11, one, "7", "Incremental")
    repo.promote_to_production(12, two, "7", "Incremental")
    return repo, repo.root / "production/7/updates"


def test_index_json_lists_the_area_its_releases_and_every_file(
    published: tuple[publish.Repository, Path],
) -> None:
    repo, area = published
    live = repo.live_snapshot(areas.Area.parse("production/7/updates"))
    document = json.loads((area / index.INDEX_JSON).read_bytes())
    assert document["format"] == 1
    assert document["area"] == "production/7/updates"
    assert document["snapshot"] == live
    assert document["serial"] == f"production~7~updates/{live}"
    assert document["generated"] == CREATED.isoformat()
    assert (document["packages"], document["bytes"]) == (3, 10)
    assert [
        (r["ticket_id"], r["short_name"], r["version"], r["packages"], r["bytes"])
        for r in document["releases"]
    ] == [(11, "Dist", "1.0.0", 2, 6), (12, "Other", "2.1.0", 1, 4)]
    assert document["releases"][0]["files"] == [
        {"path": ODD, "size": 3, "sha256": _sha(b"odd")},
        {"path": "rpms/one.rpm", "size": 3, "sha256": _sha(b"one")},
    ]
    # Every other file, hashed: the metadata, the manifest and the serial.
    others = {f["path"]: f for f in document["metadata_files"]}
    assert sorted(others) == [".rollout-manifest.json", ".rollout-serial", "repodata/repomd.xml"]
    for path, entry in others.items():
        data = (area / path).read_bytes()
        assert (entry["size"], entry["sha256"]) == (len(data), _sha(data)), path


def test_the_index_describes_exactly_the_tree(published: tuple[publish.Repository, Path]) -> None:
    """What a mirror checks: the files of the tree are those index.json lists, plus itself
    and index.html, each with its size and SHA-256."""
    _, area = published
    found = index.read_json((area / index.INDEX_JSON).read_bytes())
    on_disk = {
        (Path(d) / name).relative_to(area).as_posix()
        for d, _, names in os.walk(area)
        for name in names
    }
    listed = {f.path: f for f in found.files()}
    assert on_disk == set(listed) | index.UNLISTED
    for path, entry in listed.items():
        assert _sha((area / path).read_bytes()) == entry.sha256, path


def test_serial_names_the_live_snapshot(published: tuple[publish.Repository, Path]) -> None:
    repo, area = published
    serial = (area / index.SERIAL_NAME).read_text()
    assert (
        serial
        == f"production~7~updates/{repo.live_snapshot(areas.Area.parse('production/7/updates'))}\n"
    )
    assert (repo.root / ".snapshots" / serial.strip()).resolve() == area.resolve()


def test_index_html_links_and_escapes(published: tuple[publish.Repository, Path]) -> None:
    _, area = published
    page = (area / index.INDEX_HTML).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>production/7/updates</h1>" in page
    assert "<td>#11</td>" in page
    assert "<td>#12</td>" in page
    assert '<a href="rpms/one.rpm">rpms/one.rpm</a>' in page
    assert '<a href="repodata/repomd.xml">repodata/repomd.xml</a>' in page
    # The odd path: percent-encoded in the link, entity-escaped in the text.
    link = '<a href="rpms/a%26b%20%22q%22%20%3Cx%3E.rpm">'
    assert f"{link}rpms/a&amp;b &quot;q&quot; &lt;x&gt;.rpm</a>" in page
    assert "<x>" not in page
    # Rows, each table with its header: releases, Dist's files, Other's, the repository files.
    assert page.count("<tr>") == (1 + 2) + (1 + 2) + (1 + 1) + (1 + 3)


def test_the_index_is_deterministic(tmp_path: Path) -> None:
    pages = []
    for n in (1, 2):
        repo = _repo(tmp_path / str(n), index.write_index)
        info = _release(tmp_path / f"s{n}", "Dist", "1.0.0", {"a/b.rpm": b"b", "a/c.rpm": b"c"})
        repo.publish_unverified(5, info, tmp_path / f"s{n}")
        area = repo.root / "unverified/Dist/1.0.0"
        pages.append(tuple((area / name).read_bytes() for name in index.WRITTEN))
    assert pages[0] == pages[1]


def test_index_of_an_empty_area(tmp_path: Path) -> None:
    repo = _repo(tmp_path, index.write_index)
    info = _release(tmp_path / "s", "Dist", "1.0.0", {"x.rpm": b"x"})
    repo.publish_unverified(5, info, tmp_path / "s")
    repo.promote_to_stagerollout(5, info, "7")
    repo.remove_release(5, info, "7")  # stagerollout/7 stays, empty
    found = index.read_json((repo.root / "stagerollout/7" / index.INDEX_JSON).read_bytes())
    assert found.releases == ()
    assert [f.path for f in found.files()] == [".rollout-manifest.json", ".rollout-serial"]
    assert (
        "0 release(s), 0 package file(s), 0 B"
        in (repo.root / "stagerollout/7" / index.INDEX_HTML).read_text()
    )


@pytest.mark.parametrize("name", ["index.json", "index.html"])
def test_a_release_with_a_file_of_the_index_name_is_refused(tmp_path: Path, name: str) -> None:
    """Refused by name before anything is built (the names validation reserves too)."""
    repo = _repo(tmp_path, index.write_index)
    info = _release(tmp_path / "s", "Dist", "1.0.0", {name: b"mine", "x.rpm": b"x"})
    with pytest.raises(errors.PathRefused, match=f"uses the name '{name}'"):
        repo.publish_unverified(5, info, tmp_path / "s")
    assert not (repo.root / "unverified/Dist/1.0.0").exists()


@pytest.mark.parametrize("name", ["index.json", "index.html"])
def test_write_index_refuses_a_tree_holding_its_names(tmp_path: Path, name: str) -> None:
    """The index's own guard, should a file of its name reach a snapshot some other way."""
    snapshot = tmp_path / ".building-000007-20261124T101500Z"
    snapshot.mkdir()
    (snapshot / name).write_bytes(b"mine")
    contents = manifest.AreaManifest(area="unverified/Dist/1.0.0")
    with pytest.raises(errors.PathConflict, match=f"{name} is already in the tree"):
        index.write_index(snapshot, contents)


def test_write_index_on_a_plain_directory(tmp_path: Path) -> None:
    """Without a manifest file (called outside publish): the directory's name is the
    snapshot's, the clock gives the time."""
    snapshot = tmp_path / ".building-000007-20261124T101500Z"
    (snapshot / "rpms").mkdir(parents=True)
    (snapshot / "rpms/x.rpm").write_bytes(b"x")
    entry = manifest.ReleaseEntry(
        ticket_id=3,
        short_name="Dist",
        version="1.0.0",
        files=(manifest.FileEntry(path="rpms/x.rpm", size=1, sha256=_sha(b"x")),),
    )
    index.write_index(snapshot, manifest.AreaManifest(area="stagerollout/7", releases=(entry,)))
    assert (snapshot / index.SERIAL_NAME).read_text() == (
        "stagerollout~7/000007-20261124T101500Z\n"
    )
    found = index.read_json((snapshot / index.INDEX_JSON).read_bytes())
    assert found.snapshot == "000007-20261124T101500Z"
    assert datetime.fromisoformat(found.generated).tzinfo is not None
    assert [f.path for f in found.files()] == [".rollout-serial", "rpms/x.rpm"]


def test_compose_runs_the_steps_in_order(tmp_path: Path) -> None:
    calls: list[str] = []
    manifest_ = manifest.AreaManifest(area="stagerollout/7")
    step = index.compose(
        lambda d, m: calls.append(f"first {d.name} {m.area}"),
        lambda d, m: calls.append(f"second {d.name} {m.area}"),
    )
    step(tmp_path, manifest_)
    assert calls == [
        f"first {tmp_path.name} stagerollout/7",
        f"second {tmp_path.name} stagerollout/7",
    ]


def test_read_json_refuses_other_documents() -> None:
    with pytest.raises(ValueError, match="format"):
        index.read_json(b'{"format": 2}')
    with pytest.raises(ValueError, match="not a mirror index"):
        index.read_json(b'{"format": 1}')
    bad = {
        "format": 1, "area": "a", "snapshot": "s", "generated": "g", "releases": [],
        "metadata_files": [{"path": "../x", "size": 1, "sha256": "0" * 64}],
    }  # fmt: skip
    with pytest.raises(ValueError, match="unsafe path"):
        index.read_json(json.dumps(bad).encode())


def test_human_sizes() -> None:
    sizes = (0, 1023, 1024, 1536, 5 * 1024**2, 3 * 1024**4, 2048 * 1024**4)
    assert [index._human(n) for n in sizes] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 TiB", "2048.0 TiB"
    ]  # fmt: skip


# ---------------------------------------------------------------------------- the tree layout


def _tree_contents(files: dict[str, bytes]) -> manifest.AreaManifest:
    entry = manifest.ReleaseEntry(
        ticket_id=11,
        short_name="Dist",
        version="1.0.0",
        files=tuple(
            manifest.FileEntry(path=p, size=len(d), sha256=_sha(d))
            for p, d in sorted(files.items())
        ),
    )
    return manifest.AreaManifest(area="production/7/updates", releases=(entry,))


def _tree_area(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, Path]:
    """A payload tree holding ``files``, a leftover and a metadata link; an empty snapshot
    with one metadata file."""
    tree, snapshot = tmp_path / "tree", tmp_path / ".building-000003-20261124T101500Z"
    for path, data in {**files, "rpms/leftover.rpm": b"left"}.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    (tree / index.INDEX_JSON).symlink_to(".meta/index.json")  # the live index's link
    (snapshot / "rpms/repodata").mkdir(parents=True)
    (snapshot / "rpms/repodata/repomd.xml").write_bytes(b"<repomd/>")
    return tree, snapshot


def test_a_tree_layout_index_says_so_and_lists_the_snapshots_files_as_metadata(
    tmp_path: Path,
) -> None:
    files = {"rpms/one.rpm": b"one", "debs/two.deb": b"two!"}
    tree, snapshot = _tree_area(tmp_path, files)
    before = sorted((p, p.lstat().st_mtime_ns) for p in tree.rglob("*"))

    index.write_index(snapshot, _tree_contents(files), payload_dir=tree)

    data = (snapshot / index.INDEX_JSON).read_bytes()
    assert data.startswith(b'{"format": 1, "layout": "tree", "area": "production/7/updates"')
    document = index.read_json(data)
    assert document.layout == index.LAYOUT_TREE
    assert [f.path for f in document.releases[0].files] == ["debs/two.deb", "rpms/one.rpm"]
    assert [(f.path, f.sha256) for f in document.metadata_files] == [
        (index.SERIAL_NAME, _sha(b"production~7~updates/000003-20261124T101500Z\n")),
        ("rpms/repodata/repomd.xml", _sha(b"<repomd/>")),
    ]
    assert sorted((p, p.lstat().st_mtime_ns) for p in tree.rglob("*")) == before


def test_a_snapshots_layout_index_has_no_layout_member(
    published: tuple[publish.Repository, Path],
) -> None:
    _, live = published
    document = json.loads((live / index.INDEX_JSON).read_bytes())
    assert "layout" not in document
    assert index.read_json((live / index.INDEX_JSON).read_bytes()).layout == "snapshots"


def test_a_release_file_named_index_html_clashes_in_the_tree_layout_too(tmp_path: Path) -> None:
    files = {"index.html": b"mine"}
    tree, snapshot = _tree_area(tmp_path, files)
    with pytest.raises(errors.PathConflict, match=r"index\.html is already in the tree"):
        index.write_index(snapshot, _tree_contents(files), payload_dir=tree)


def test_compose_passes_payload_dir_on_only_when_given(tmp_path: Path) -> None:
    seen: list[tuple[str, Path | None]] = []

    def older(snapshot: Path, contents: manifest.AreaManifest) -> None:
        seen.append(("older", None))

    def newer(
        snapshot: Path, contents: manifest.AreaManifest, *, payload_dir: Path | None = None
    ) -> None:
        seen.append(("newer", payload_dir))

    contents = manifest.AreaManifest(area="production/7/updates")
    index.compose(older, newer)(tmp_path, contents)
    index.compose(newer)(tmp_path, contents, payload_dir=tmp_path / "tree")
    assert seen == [("older", None), ("newer", None), ("newer", tmp_path / "tree")]


def test_an_index_rendered_from_cached_releases_is_the_index_rendered_afresh(
    tmp_path: Path,
) -> None:
    """A tree-layout area's third change renders only the new release's files (the others
    come from the cache of rendered releases, their entries from the cache of read entries);
    index.json, index.html and the serial are byte for byte what a cold rendering writes."""
    from repo_daemon.publish import release_entries

    def fake_metadata(
        snapshot: Path, contents: manifest.AreaManifest, *, payload_dir: Path | None = None
    ) -> None:
        _fake_metadata(snapshot, contents)

    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo", area_layout="tree"),
        metadata=index.compose(fake_metadata, index.write_index),
        clock=lambda: CREATED,
    )
    for n, files in enumerate(
        ({"rpms/a.rpm": b"a", ODD: b"odd"}, {"debs/b.deb": b"bb"}, {"rpms/c/c.rpm": b"ccc"})
    ):
        info = _release(tmp_path / f"s{n}", f"Dist{n}", "1.0.0", files)
        repo.publish_unverified(20 + n, info, tmp_path / f"s{n}")
        repo.promote_to_production(20 + n, info, "7", "Incremental")
        if n == 1:  # every release so far is cached: the next change renders one release only
            assert len(index._RENDERED) >= 2
    live = (repo.root / "production/7/updates" / ".meta").resolve()
    assert (repo.root / "production/7/updates" / ".meta").is_symlink()

    cold = tmp_path / "cold"
    cold.mkdir()
    for name in (".rollout-manifest.json", "repodata"):
        src = live / name
        if src.is_dir():
            (cold / name).mkdir()
            (cold / name / "repomd.xml").write_bytes((src / "repomd.xml").read_bytes())
        else:
            (cold / name).write_bytes(src.read_bytes())
    index._RENDERED.clear()  # nothing cached: every release rendered from its entry, read again
    release_entries._READ.clear()
    contents = release_entries.read_any(repo.root, "production/7/updates", live)
    index.write_index(cold, contents, payload_dir=repo.root / ".trees/production~7~updates")

    for name in (index.INDEX_JSON, index.INDEX_HTML, index.SERIAL_NAME):
        assert (cold / name).read_bytes() == (live / name).read_bytes(), name
    assert index.read_json((live / index.INDEX_JSON).read_bytes()).releases == contents.releases


def test_the_tree_layout_totals_are_the_union_of_the_releases_files() -> None:
    one = manifest.FileEntry(path="rpms/a.rpm", size=3, sha256=_sha(b"abc"))
    two = manifest.FileEntry(path="rpms/b.rpm", size=5, sha256=_sha(b"abcde"))
    releases = tuple(
        manifest.ReleaseEntry(ticket_id=t, short_name=f"R{t}", version="1.0.0", files=files)
        for t, files in ((1, (one, two)), (2, (one,)), (3, ()))
    )
    for chosen in (releases, releases[:1], releases[1:]):
        fast = index.Index(
            area="production/7/updates",
            snapshot="000001-x",
            generated="t",
            releases=chosen,
            metadata_files=(),
            layout=index.LAYOUT_TREE,
        )
        union = manifest.union_files(chosen, area="production/7/updates")
        assert fast.totals == (len(union), sum(f.size for f in union))
