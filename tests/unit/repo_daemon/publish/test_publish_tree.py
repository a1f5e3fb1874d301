"""The tree layout of shared areas on the real file system (tmp_path): the payload tree and
its metadata links, promotion, removal, replacement, conflicts and leftovers, the order of
the switch, rollback, retention, migration in both directions and the GC."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, errors, manifest, names, release_entries
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import release_info

STAGE = areas.Area.stagerollout("7")
PROD = areas.Area("production/7/updates")
REPOS = (release_model.RepositorySpec(identifier="r", name="R", type="YUM", relative_path="rpms"),)


class FakeMetadata:
    """Writes ``rpms/repodata/repomd.xml`` (the payload paths it was given) and a top-level
    key file into the snapshot, and records which payload files the tree held at the time."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def __call__(
        self,
        snapshot_dir: Path,
        contents: manifest.AreaManifest,
        *,
        payload_dir: Path | None = None,
    ) -> None:
        files = [f.path for f in contents.files()]
        where = payload_dir or snapshot_dir
        present = sorted(
            p.relative_to(where).as_posix()
            for p in where.rglob("*.rpm")
            if p.is_file() and not p.is_symlink()
        )
        self.calls.append({"payload_dir": payload_dir, "files": files, "present": present})
        (snapshot_dir / "rpms" / "repodata").mkdir(parents=True, exist_ok=True)
        (snapshot_dir / "rpms" / "repodata" / "repomd.xml").write_text("\n".join(files))
        (snapshot_dir / "RPM-GPG-KEY-test").write_text("key")


@pytest.fixture
def step() -> FakeMetadata:
    return FakeMetadata()


@pytest.fixture
def settings(tmp_path: Path) -> RepositorySettings:
    return RepositorySettings(
        root=tmp_path / "repo", base_url="http://repo.example/", keep_snapshots=2,
        area_layout="tree",
    )  # fmt: skip


@pytest.fixture
def repo(settings: RepositorySettings, step: FakeMetadata) -> publish.Repository:
    return publish.Repository(settings, metadata=step, lock_timeout=5)


class Releases:
    """Releases written into scratch trees (a fresh one each time: a pooled scratch file is
    the pool's inode and must never be rewritten)."""

    def __init__(self, repo: publish.Repository, scratch: Path) -> None:
        self.repo = repo
        self.scratch = scratch
        self.made = 0
        self.last = scratch

    def make(self, short: str, files: dict[str, bytes], version: str = "1.0.0") -> object:
        self.made += 1
        top = self.last = self.scratch / f"{self.made}-{short}-{version}"
        packages = []
        for path, data in files.items():
            (top / path).parent.mkdir(parents=True, exist_ok=True)
            (top / path).write_bytes(data)
            sha = hashlib.sha256(data).hexdigest()
            packages.append(release_model.PackageFile(path=path, size=len(data), sha256=sha))
        return release_info(short, version, packages, repositories=REPOS)

    def stage(self, ticket: int, short: str, files: dict[str, bytes]) -> release_model.ReleaseInfo:
        info = self.make(short, files)
        assert isinstance(info, release_model.ReleaseInfo)
        self.repo.publish_unverified(ticket, info, self.last)
        self.repo.promote_to_stagerollout(ticket, info, "7")
        return info


@pytest.fixture
def releases(repo: publish.Repository, tmp_path: Path) -> Releases:
    return Releases(repo, tmp_path / "scratch")


def served(repo: publish.Repository, area: areas.Area) -> dict[str, bytes]:
    """What a reader of the area sees: every file through the area's path (links followed),
    without ``.meta``."""
    top = repo.root / area.path
    found: dict[str, bytes] = {}
    for directory, dirs, files in os.walk(top, followlinks=True):
        dirs[:] = [d for d in dirs if d != names.META_LINK]
        for name in files:
            full = Path(directory, name)
            found[full.relative_to(top).as_posix()] = full.read_bytes()
    return found


def readlink(path: Path) -> str:
    return str(path.readlink())


def tree_dir(repo: publish.Repository, area: areas.Area) -> Path:
    return repo.root / names.TREES_DIR / area.key


def test_a_promotion_links_the_payload_into_the_tree_and_metadata_beside_it(
    repo: publish.Repository, releases: Releases, step: FakeMetadata
) -> None:
    releases.stage(1, "Alpha", {"rpms/a.rpm": b"a", "rpms/sub/b.rpm": b"b"})

    area = repo.root / STAGE.path
    assert readlink(area) == f"../{names.TREES_DIR}/{STAGE.key}"
    live = repo.live_snapshot(STAGE)
    assert live is not None
    snap = repo.root / ".snapshots" / STAGE.key / live
    assert (
        readlink(tree_dir(repo, STAGE) / names.META_LINK) == f"../../.snapshots/{STAGE.key}/{live}"
    )
    assert os.path.realpath(area / "rpms/a.rpm") == str(tree_dir(repo, STAGE) / "rpms/a.rpm")
    assert os.path.realpath(area / "rpms/repodata/repomd.xml") == str(
        snap / "rpms/repodata/repomd.xml"
    )
    assert readlink(tree_dir(repo, STAGE) / "rpms/repodata") == "../.meta/rpms/repodata"
    assert (area / "rpms/a.rpm").stat().st_ino == repo.pool.path(
        hashlib.sha256(b"a").hexdigest()
    ).stat().st_ino
    document = json.loads((snap / manifest.MANIFEST_NAME).read_bytes())
    assert (document["format"], document["layout"]) == (2, "tree")
    assert document["links"] == [".rollout-manifest.json", "RPM-GPG-KEY-test", "rpms/repodata"]
    assert [r["files"] for r in document["releases"]] == [2]
    assert not any(p.is_file() and p.suffix == ".rpm" for p in snap.rglob("*"))  # metadata only
    assert step.calls[-1]["payload_dir"] == tree_dir(repo, STAGE)
    assert served(repo, STAGE)["rpms/repodata/repomd.xml"] == b"rpms/a.rpm\nrpms/sub/b.rpm"
    assert repo.manifest(STAGE) is not None
    # unverified areas keep full snapshots, metadata step called without payload_dir
    unverified = repo.root / "unverified/Alpha/1.0.0"
    assert ".snapshots/unverified~Alpha~1.0.0/" in readlink(unverified)
    assert step.calls[0]["payload_dir"] is None


def record_calls(monkeypatch: pytest.MonkeyPatch, method: str) -> list[release_entries.ReleaseRef]:
    """The references ``Entries.<method>`` is called with from now on (the calls still run)."""
    calls: list[release_entries.ReleaseRef] = []
    original = getattr(release_entries.Entries, method)

    def recording(
        self: release_entries.Entries, ref: release_entries.ReleaseRef, *, area: str
    ) -> manifest.ReleaseEntry:
        calls.append(ref)
        return original(self, ref, area=area)

    monkeypatch.setattr(release_entries.Entries, method, recording)
    return calls


def test_a_promotion_reads_no_other_release_s_entry_without_metadata(
    settings: RepositorySettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = publish.Repository(settings, lock_timeout=5)
    releases = Releases(repo, tmp_path / "scratch")
    for n in range(1, 4):
        releases.stage(n, f"R{n}", {f"r{n}/x.rpm": bytes([n])})
    reads = record_calls(monkeypatch, "read")
    releases.stage(4, "R4", {"r4/x.rpm": b"4"})

    assert reads == []
    assert sorted(served(repo, STAGE)) == [".rollout-manifest.json"] + [
        f"r{n}/x.rpm" for n in range(1, 5)
    ]


def test_removal_switches_the_metadata_before_it_unlinks_the_payload(
    repo: publish.Repository, releases: Releases, step: FakeMetadata
) -> None:
    alpha = releases.stage(1, "Alpha", {"rpms/a.rpm": b"a", "rpms/shared.rpm": b"s"})
    releases.stage(2, "Beta", {"rpms/b.rpm": b"b", "rpms/shared.rpm": b"s"})

    repo.remove_release(1, alpha, "7")

    during = step.calls[-1]
    assert during["files"] == ["rpms/b.rpm", "rpms/shared.rpm"]  # the new metadata ...
    assert "rpms/a.rpm" in during["present"]  # ... was built while Alpha's file was served
    assert sorted(served(repo, STAGE)) == [
        ".rollout-manifest.json", "RPM-GPG-KEY-test", "rpms/b.rpm", "rpms/repodata/repomd.xml",
        "rpms/shared.rpm",
    ]  # fmt: skip
    assert not (tree_dir(repo, STAGE) / "rpms/a.rpm").exists()


def test_production_withdraws_from_stagerollout_and_a_withdrawal_empties_the_tree(
    repo: publish.Repository, releases: Releases
) -> None:
    info = releases.stage(1, "Alpha", {"rpms/deep/a.rpm": b"a"})
    repo.promote_to_production(1, info, "7", "Incremental")
    assert not (tree_dir(repo, STAGE) / "rpms/deep").exists()  # empty dirs go too
    assert served(repo, PROD)["rpms/deep/a.rpm"] == b"a"

    result = repo.remove_from(1, [PROD])[0]

    assert result.changed and result.snapshot is not None
    assert "rpms/deep/a.rpm" not in served(repo, PROD)
    assert repo.manifest(PROD) == manifest.AreaManifest(area=PROD.path)


def test_a_repeated_promotion_changes_nothing(repo: publish.Repository, releases: Releases) -> None:
    info = releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    before = repo.live_snapshot(STAGE)
    again = repo.promote_to_stagerollout(1, info, "7")
    assert (again.changed, again.snapshot) == (False, before)


def test_a_replacement_by_the_same_ticket_never_rewrites_a_live_file(
    repo: publish.Repository, releases: Releases, step: FakeMetadata
) -> None:
    releases.stage(1, "Alpha", {"rpms/a.rpm": b"old", "rpms/keep.rpm": b"k"})
    inode = (tree_dir(repo, STAGE) / "rpms/a.rpm").stat().st_ino

    releases.stage(1, "Alpha", {"rpms/a.rpm": b"new", "rpms/keep.rpm": b"k", "rpms/c.rpm": b"c"})

    assert served(repo, STAGE)["rpms/a.rpm"] == b"new"
    assert (tree_dir(repo, STAGE) / "rpms/a.rpm").stat().st_ino != inode
    # two switches: first without the old release, then with the new one
    assert [c["files"] for c in step.calls if c["payload_dir"]][-2:] == [
        [],
        ["rpms/a.rpm", "rpms/c.rpm", "rpms/keep.rpm"],
    ]
    releases.stage(1, "Alpha", {"rpms/a.rpm": b"new", "rpms/c.rpm": b"c"})  # one file less
    assert not (tree_dir(repo, STAGE) / "rpms/keep.rpm").exists()


def test_a_path_claimed_by_another_release_is_a_conflict_naming_both(
    repo: publish.Repository, releases: Releases
) -> None:
    releases.stage(1, "Alpha", {"rpms/same.rpm": b"alpha"})
    with pytest.raises(errors.PathConflict) as caught:
        releases.stage(2, "Beta", {"rpms/same.rpm": b"beta"})
    text = str(caught.value)
    assert (
        "rpms/same.rpm" in text
        and "Alpha 1.0.0 (ticket #1)" in text
        and "Beta 1.0.0 (ticket #2)" in text
    )
    assert served(repo, STAGE)["rpms/same.rpm"] == b"alpha"
    with pytest.raises(errors.PathConflict, match="is a file in Alpha"):
        releases.stage(3, "Gamma", {"rpms/same.rpm/x.rpm": b"g"})
    with pytest.raises(errors.PathConflict, match="already here from ticket #1"):
        info = releases.make("Alpha", {"rpms/z.rpm": b"z"})
        assert isinstance(info, release_model.ReleaseInfo)
        repo.promote_to_stagerollout(9, info, "7")


def test_a_leftover_nobody_live_names_is_replaced_not_a_conflict(
    repo: publish.Repository, releases: Releases
) -> None:
    releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    tree = tree_dir(repo, STAGE)
    (tree / "rpms/b.rpm").write_bytes(b"an interrupted change's file")
    (tree / "rpms/dir.rpm").mkdir()
    (tree / "rpms/dir.rpm/stray").write_bytes(b"x")
    (tree / "other").write_bytes(b"a file where a directory must go")

    releases.stage(2, "Beta", {"rpms/b.rpm": b"b", "rpms/dir.rpm": b"d", "other/c.rpm": b"c"})

    seen = served(repo, STAGE)
    assert (seen["rpms/b.rpm"], seen["rpms/dir.rpm"], seen["other/c.rpm"]) == (b"b", b"d", b"c")


def test_rollback_relinks_payload_removed_since(
    repo: publish.Repository, releases: Releases
) -> None:
    alpha = releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    releases.stage(2, "Beta", {"rpms/b.rpm": b"b"})
    both = repo.live_snapshot(STAGE)
    before = served(repo, STAGE)
    repo.remove_release(1, alpha, "7")
    assert not (tree_dir(repo, STAGE) / "rpms/a.rpm").exists()
    assert both is not None

    result = repo.rollback(STAGE, both)

    assert (result.snapshot, result.changed) == (both, True)
    assert repo.live_snapshot(STAGE) == both
    assert served(repo, STAGE) == before
    assert repo.rollback(STAGE, both).changed is False
    with pytest.raises(errors.SnapshotInvalid, match="no kept snapshot 000099"):
        repo.rollback(STAGE, "000099-20261206T000000Z")
    releases.stage(3, "Gamma", {"rpms/g.rpm": b"g"})  # the next change starts from it
    assert {r.short_name for r in repo.manifest(STAGE).releases} == {"Alpha", "Beta", "Gamma"}  # type: ignore[union-attr]


def test_retention_keeps_keep_snapshots_metadata_snapshots(
    repo: publish.Repository, releases: Releases
) -> None:
    for n in range(1, 6):
        releases.stage(n, f"R{n}", {f"r{n}.rpm": bytes([n])})
    snaps = sorted(p.name for p in (repo.root / ".snapshots" / STAGE.key).iterdir())
    assert len(snaps) == 3  # the live one and keep_snapshots=2 before it
    assert snaps[-1] == repo.live_snapshot(STAGE)


def test_an_area_migrates_to_the_tree_on_its_first_change_and_back(
    settings: RepositorySettings, step: FakeMetadata, tmp_path: Path
) -> None:
    flat = dataclasses.replace(settings, area_layout="snapshots")
    old = publish.Repository(flat, metadata=step, lock_timeout=5)
    releases = Releases(old, tmp_path / "scratch")
    releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    assert ".snapshots/" in readlink(old.root / STAGE.path)
    before = served(old, STAGE)

    new = publish.Repository(settings, metadata=step, lock_timeout=5)
    releases.repo = new
    assert (
        new.promote_to_stagerollout(1, releases.make("Alpha", {"rpms/a.rpm": b"a"}), "7").changed
        is False
    )  # type: ignore[arg-type]
    assert ".snapshots/" in readlink(new.root / STAGE.path)  # no change, no migration
    releases.stage(2, "Beta", {"rpms/b.rpm": b"b"})

    assert readlink(new.root / STAGE.path) == f"../{names.TREES_DIR}/{STAGE.key}"
    after = served(new, STAGE)
    assert after["rpms/a.rpm"] == before["rpms/a.rpm"] and after["rpms/b.rpm"] == b"b"

    releases.repo = old  # an operator switches back: the next change builds a full snapshot
    releases.stage(3, "Gamma", {"rpms/g.rpm": b"g"})
    assert ".snapshots/" in readlink(old.root / STAGE.path)
    assert {"rpms/a.rpm", "rpms/b.rpm", "rpms/g.rpm"} <= set(served(old, STAGE))
    report = old.collect_garbage()
    assert not tree_dir(old, STAGE).exists()  # no area points at it any more
    assert report.stale_removed >= 1


def test_the_area_link_accepts_its_tree_and_names_a_wrong_target(
    repo: publish.Repository, releases: Releases
) -> None:
    releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    link = repo.root / STAGE.path
    link.unlink()
    link.symlink_to("../.trees/production~7~updates")
    with pytest.raises(errors.PathConflict) as caught:
        repo.live_snapshot(STAGE)
    assert "points at '../.trees/production~7~updates'" in str(caught.value)
    assert "its payload tree (../.trees/stagerollout~7)" in str(caught.value)


def test_gc_keeps_what_kept_snapshots_name_and_removes_the_rest(
    repo: publish.Repository, releases: Releases
) -> None:
    alpha = releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    releases.stage(2, "Beta", {"rpms/b.rpm": b"b"})
    both = repo.live_snapshot(STAGE)
    repo.remove_release(1, alpha, "7")
    tree = tree_dir(repo, STAGE)
    root = repo.root
    live_before = served(repo, STAGE)
    (root / ".releases" / ("0" * 64 + ".json")).write_bytes(b"{}")
    (root / ".snapshots" / STAGE.key / ".building-000077-20261206T000000Z").mkdir()
    (tree / ".meta.swap-0badf00d").symlink_to("../../.snapshots/x")
    (tree / "rpms/stray.rpm").write_bytes(b"stray")
    (tree / "rpms/dangling").symlink_to("../.meta/rpms/dangling")
    stale_tree = root / ".trees" / "production~9~updates"
    stale_tree.mkdir()

    repo.collect_garbage()

    assert served(repo, STAGE) == live_before  # nothing live deleted
    assert not (root / ".releases" / ("0" * 64 + ".json")).exists()
    assert not list((root / ".snapshots" / STAGE.key).glob(".building-*"))
    assert not (tree / ".meta.swap-0badf00d").exists()
    assert not (tree / "rpms/stray.rpm").exists() and not (tree / "rpms/dangling").is_symlink()
    assert not stale_tree.exists()
    # Alpha is only in a kept snapshot now: its pool file and its entry stay for a rollback
    assert repo.pool.path(hashlib.sha256(b"a").hexdigest()).exists()
    assert both is not None
    repo.rollback(STAGE, both)  # a kept snapshot can still be made live
    assert served(repo, STAGE)["rpms/a.rpm"] == b"a"


def test_gc_drops_a_release_s_pool_files_once_no_kept_snapshot_names_it(
    settings: RepositorySettings, step: FakeMetadata, tmp_path: Path
) -> None:
    repo = publish.Repository(dataclasses.replace(settings, keep_snapshots=0), metadata=step)
    releases = Releases(repo, tmp_path / "scratch")
    alpha = releases.stage(1, "Alpha", {"rpms/a.rpm": b"a"})
    releases.stage(2, "Beta", {"rpms/b.rpm": b"b"})
    repo.remove_release(1, alpha, "7")
    shutil.rmtree(tmp_path / "scratch")  # its files are hard links of the pool's

    repo.collect_garbage()

    assert not repo.pool.path(hashlib.sha256(b"a").hexdigest()).exists()
    assert repo.pool.path(hashlib.sha256(b"b").hexdigest()).exists()
    assert len(list((repo.root / ".releases").iterdir())) == 1  # Beta's


def test_a_replacement_may_turn_a_file_of_the_release_into_a_directory(
    repo: publish.Repository, releases: Releases
) -> None:
    releases.stage(1, "Alpha", {"rpms/x": b"a file"})
    releases.stage(1, "Alpha", {"rpms/x/y.rpm": b"now below a directory"})
    assert served(repo, STAGE)["rpms/x/y.rpm"] == b"now below a directory"
    assert "rpms/x" not in served(repo, STAGE)


def test_an_entry_read_again_is_the_same_record_until_its_file_changes(tmp_path: Path) -> None:
    entries = release_entries.Entries(tmp_path)
    release = manifest.ReleaseEntry(
        ticket_id=5,
        short_name="Dist",
        version="1.0.0",
        files=(manifest.FileEntry(path="rpms/a.rpm", size=1, sha256="a" * 64),),
    )
    ref = entries.write(release)
    first = entries.read(ref, area="production/7/updates")
    assert first == release
    assert entries.read(ref, area="production/7/updates") is first  # parsed once
    path = entries.path(ref.entry)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b'"Dist"', b'"Dost"'))  # other bytes: re-read
    with pytest.raises(errors.SnapshotInvalid, match="does not match its name"):
        entries.read(ref, area="production/7/updates")
    path.unlink()
    with pytest.raises(errors.SnapshotInvalid, match="is gone"):
        entries.read(ref, area="production/7/updates")


def one_file_release(ticket: int) -> manifest.ReleaseEntry:
    return manifest.ReleaseEntry(
        ticket_id=ticket,
        short_name="Dist",
        version=f"1.{ticket}.0",
        files=(manifest.FileEntry(path=f"rpms/p{ticket}.rpm", size=1, sha256="a" * 64),),
    )


def test_the_entries_of_an_area_of_many_small_releases_stay_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 6,000 one-file releases: more releases than a bound counted in releases (4,096) held,
    # far fewer files than the bound counted in files; the second pass parses nothing
    release_entries._READ.clear()
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not what is tested here
    entries = release_entries.Entries(tmp_path)
    refs = [entries.write(one_file_release(n)) for n in range(1, 6001)]
    first = [entries.read(r, area="production/7/updates") for r in refs]
    parsed = record_calls(monkeypatch, "_read")
    again = [entries.read(r, area="production/7/updates") for r in refs]
    assert parsed == []
    assert all(a is b for a, b in zip(first, again, strict=True))
    release_entries._READ.clear()


def test_a_manifest_read_again_is_the_same_record_until_its_bytes_change() -> None:
    area = "production/7/updates"
    ref = release_entries.ReleaseRef(
        ticket_id=5, short_name="Dist", version="1.0.0", repositories=(), entry="a" * 64,
        files=1, bytes=1,
    )  # fmt: skip
    data = release_entries.TreeManifest(
        area=area, snapshot="1-x", created="2026-12-07T00:00:00+00:00", releases=(ref,)
    ).to_json()
    first = release_entries.TreeManifest.from_json(data, area=area)
    assert first.releases == (ref,)
    assert release_entries.TreeManifest.from_json(data, area=area) is first  # parsed once
    other = release_entries.TreeManifest.from_json(data.replace(b"1.0.0", b"1.0.1"), area=area)
    assert other.releases[0].version == "1.0.1"
    with pytest.raises(errors.SnapshotInvalid, match="another area"):  # checked, not cached
        release_entries.TreeManifest.from_json(data, area="production/8/updates")
    bad = data.replace(b'"Dist"', b'"../x"')
    for _ in range(2):  # a refused manifest is refused every time
        with pytest.raises(errors.SnapshotInvalid):
            release_entries.TreeManifest.from_json(bad, area=area)


def test_a_manifest_read_back_after_it_was_written_is_the_one_written() -> None:
    area = "production/7/updates"
    ref = release_entries.ReleaseRef(
        ticket_id=6, short_name="Dist", version="2.0.0",
        repositories=(manifest.RepositoryEntry(identifier="r", name="R", type="yum",
                                               relative_path="el9/x86_64"),),
        entry="b" * 64, files=1, bytes=1,
    )  # fmt: skip
    written = release_entries.TreeManifest(
        area=area, snapshot="2-x", created="2026-12-07T00:00:00+00:00", releases=(ref,),
        links=("el9/x86_64/repodata",),
    )  # fmt: skip
    data = written.written()
    assert data == written.to_json()
    assert release_entries.TreeManifest.from_json(data, area=area) is written
    # what a parse of the same bytes gives is equal: the memo changes no answer
    assert release_entries.TreeManifest._parse(data, area=area) == written


def test_the_memo_drops_the_least_recently_used_once_over_its_weight() -> None:
    memo: release_entries._Memo[str, tuple[int, ...]] = release_entries._Memo(5, len)
    memo.put("a", (1, 1))
    memo.put("b", (2, 2))
    assert memo.get_or_make("a", lambda: (9,)) == (1, 1)  # "a" is now the most recent
    memo.put("b", (3,))  # replacing a key counts its weight once: 2 + 1, nothing dropped
    assert memo.get_or_make("a", lambda: (9,)) == (1, 1)
    memo.put("c", (4, 4))  # 2 + 1 + 2 = 5: still within
    assert memo.get_or_make("b", lambda: (9,)) == (3,)
    memo.put("d", (5, 5))  # 7: the least recently used, "a", goes (5)
    assert memo.get_or_make("a", lambda: (9,)) == (9,)  # made again (6): "c" goes
    assert memo.get_or_make("b", lambda: (8,)) == (3,)
    assert memo.get_or_make("c", lambda: (8,)) == (8,)
    memo.put("heavy", tuple(range(9)))  # heavier than the whole memo: kept alone
    assert memo.get_or_make("heavy", lambda: ()) == tuple(range(9))
    assert memo.get_or_make("d", lambda: (7,)) == (7,)
