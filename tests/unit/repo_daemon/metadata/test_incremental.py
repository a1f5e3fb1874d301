"""When the tools may reuse what they recorded (``metadata.incremental``): plain files, hard
links and mtimes in ``tmp_path``; and what ``build_metadata``/``metadata_step`` pass the tools."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_daemon.metadata import apt, commands, incremental, yum
from repo_daemon.metadata import build as metadata
from repo_daemon.release_xml import model as release_model
from tests.support.metadata_runner import (
    PACKAGES,
    FakeRunner,
    apt_repository,
    make_tree,
    yum_repository,
)


def _file(path: Path, data: bytes = b"package", mtime: int = 1_700_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def _linked(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, target)
    return target


def _previous_repo(tmp_path: Path) -> Path:
    previous = tmp_path / "previous"
    (previous / "repodata").mkdir(parents=True)
    (previous / "repodata/repomd.xml").write_text("<repomd/>")
    return previous


def test_scan_lists_packages_by_inode_and_skips_the_tools_own_directories(tmp_path: Path) -> None:
    a = _file(tmp_path / "sub/a.rpm")
    _file(tmp_path / "repodata/x.rpm")
    _file(tmp_path / "notes.txt")
    (tmp_path / "link.rpm").symlink_to(a)
    assert incremental.scan(tmp_path, (".rpm",)) == {"sub/a.rpm": a.stat().st_ino}


def test_yum_update_needs_a_previous_snapshot_with_repodata(tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    assert incremental.yum_update(new, None).reason == "no previous snapshot"
    bare = tmp_path / "bare"
    bare.mkdir()
    assert "no repodata/repomd.xml" in incremental.yum_update(new, bare).reason
    assert incremental.yum_update(new, _previous_repo(tmp_path)).reuse


def test_yum_update_trusts_the_same_inode_and_new_names(tmp_path: Path) -> None:
    previous = _previous_repo(tmp_path)
    pool = _file(tmp_path / "pool/a")
    _linked(pool, previous / "a-1.rpm")
    new = tmp_path / "new"
    _linked(pool, new / "a-1.rpm")
    _file(new / "b-1.rpm")
    assert incremental.yum_update(new, previous).reuse


def test_yum_update_refuses_other_bytes_under_the_same_name_size_and_mtime(
    tmp_path: Path,
) -> None:
    previous = _previous_repo(tmp_path)
    _file(previous / "el/a-1.rpm", b"signed-1")
    new = tmp_path / "new"
    _file(new / "el/a-1.rpm", b"signed-2")  # another inode, same size and mtime
    decision = incremental.yum_update(new, previous)
    assert not decision.reuse
    assert "el/a-1.rpm has other bytes than in the previous snapshot" in decision.reason


def test_yum_update_leaves_a_changed_mtime_or_size_to_createrepo_c(tmp_path: Path) -> None:
    previous = _previous_repo(tmp_path)
    _file(previous / "a-1.rpm", b"signed-1")
    new = tmp_path / "new"
    _file(new / "a-1.rpm", b"signed-2", mtime=1_700_000_001)
    _file(new / "b-1.rpm", b"longer bytes")
    _file(previous / "b-1.rpm", b"short")
    assert incremental.yum_update(new, previous).reuse  # createrepo_c sees these itself


@pytest.mark.parametrize("where", ["previous", "new"])
def test_yum_update_refuses_two_packages_of_one_name(tmp_path: Path, where: str) -> None:
    previous = _previous_repo(tmp_path)
    new = tmp_path / "new"
    tree = previous if where == "previous" else new
    _file(tree / "el8/a-1.rpm")
    _file(tree / "el9/a-1.rpm")
    decision = incremental.yum_update(new, previous)
    assert not decision.reuse and "two packages named a-1.rpm" in decision.reason


def test_apt_cache_is_used_only_with_a_record_that_fits(tmp_path: Path) -> None:
    a = _file(tmp_path / "a.deb", b"deb-1")
    current = incremental.scan(tmp_path, incremental.DEB_SUFFIXES)
    state = incremental.state(a)
    assert not incremental.apt_cache(tmp_path, current, None).reuse
    assert incremental.apt_cache(tmp_path, current, {"a.deb": (state,)}).reuse
    many = {f"gone-{i}.deb": (state,) for i in range(1100)}
    assert "mostly gone" in incremental.apt_cache(tmp_path, current, many).reason
    stale = incremental.FileState(inode=state.inode + 1, size=state.size, mtime=state.mtime)
    decision = incremental.apt_cache(tmp_path, current, {"a.deb": (state, stale)})
    assert "a.deb has other bytes than the cache recorded" in decision.reason


def test_the_record_keeps_both_states_until_the_database_has_moved(tmp_path: Path) -> None:
    old = incremental.FileState(inode=1, size=5, mtime=9)
    a = _file(tmp_path / "a.deb", b"deb-2")
    current = incremental.scan(tmp_path, incremental.DEB_SUFFIXES)
    older = incremental.FileState(inode=2, size=5, mtime=9)
    known = {"a.deb": (old,), "gone.deb": (older, old)}
    pending, final = incremental.indexed(tmp_path, current, known)
    now = incremental.state(a)
    assert pending == {"a.deb": (old, now), "gone.deb": (older, old)}
    # A name not indexed this time keeps both states: its entry may be of either.
    assert final == {"a.deb": (now,), "gone.deb": (older, old)}
    record = tmp_path / "cache" / incremental.KNOWN
    record.parent.mkdir()
    incremental.write_known(record, pending)
    assert incremental.read_known(record) == pending


def test_a_record_kept_in_memory_gives_way_to_one_another_writer_put_there(
    tmp_path: Path,
) -> None:
    record = tmp_path / incremental.KNOWN
    mine = {"a.deb": (incremental.FileState(inode=1, size=2, mtime=3),)}
    incremental.write_known(record, mine)
    assert incremental.read_known(record) == mine  # kept from the write
    # another daemon's run replaced it (a new file renamed over it), as write_known does
    other = tmp_path / "other"
    other.write_text("7\t8\t9\tb.deb\n")
    other.replace(record)
    assert incremental.read_known(record) == {
        "b.deb": (incremental.FileState(inode=7, size=8, mtime=9),)
    }
    record.write_text("damaged")  # rewritten in place: another size, read again
    assert incremental.read_known(record) is None


@pytest.mark.parametrize(
    "text", ["1\t2\t3\ta.deb", "x\t2\t3\ta.deb\n", "1\t2\ta.deb\n"], ids=["cut", "nan", "short"]
)
def test_a_damaged_record_is_no_record(tmp_path: Path, text: str) -> None:
    record = tmp_path / incremental.KNOWN
    record.write_text(text)
    assert incremental.read_known(record) is None


def test_createrepo_argv_updates_from_the_previous_repository() -> None:
    argv = yum.createrepo_argv(Path("/s/2/rpms"), update_from=Path("/s/1/rpms"))
    assert argv[-4:] == ["--update", "--update-md-path=/s/1/rpms", "--", "/s/2/rpms"]


@dataclass(frozen=True)
class Entry:
    repositories: tuple[release_model.RepositorySpec, ...]


@dataclass(frozen=True)
class Contents:
    """What ``metadata_step`` reads of publish's manifest."""

    area: str
    releases: tuple[Entry, ...]


def _createrepo(runner: FakeRunner) -> list[str]:
    return next(argv for argv, _ in runner.calls if argv[0] == "createrepo_c")


def test_build_metadata_updates_from_the_previous_snapshot_unless_told_not_to(
    tmp_path: Path,
) -> None:
    previous = make_tree(tmp_path / "1")
    (previous / "rpms/repodata").mkdir()
    (previous / "rpms/repodata/repomd.xml").write_text("<repomd/>")
    for incremental_on, expected in ((True, True), (False, False)):
        runner = FakeRunner()
        tree = make_tree(tmp_path / str(incremental_on))
        done = metadata.build_metadata(
            tree,
            [yum_repository()],
            previous_tree=previous,
            incremental=incremental_on,
            runner=runner,
        )
        argv = _createrepo(runner)
        assert (f"--update-md-path={previous / 'rpms'}" in argv) is expected
        assert ("unchanged packages from the previous" in done[0]) is expected
        if not incremental_on:
            assert "read in full: incremental metadata is off" in done[0]


def test_a_cache_that_cannot_be_trusted_is_dropped_before_the_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / apt.CACHE_DB).write_bytes(b"entries of unknown files")  # no record beside it
    seen: list[bool] = []

    def packages(argv: list[str], cwd: Path) -> commands.Completed:
        db = Path(argv[argv.index("--db") + 1])
        seen.append(db.exists() or (cache / apt.CACHE_DB).exists())
        db.write_bytes(b"fresh")
        return commands.Completed(returncode=0, stdout=PACKAGES)

    tree = make_tree(tmp_path)
    done = metadata.build_metadata(
        tree,
        [apt_repository()],
        cache_dir=cache,
        runner=FakeRunner(answers={"packages": packages}),
    )
    assert seen == [False]  # the untrusted database was gone before apt-ftparchive ran
    assert "read in full: no record of what the cache holds" in done[0]
    assert (cache / apt.CACHE_DB).read_bytes() == b"fresh"
    assert incremental.read_known(cache / incremental.KNOWN) == {}


def test_metadata_step_keeps_the_caches_below_the_root_by_default(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    contents = Contents("production/7/updates", (Entry((apt_repository(),)),))
    for incremental_on in (True, False):
        runner = FakeRunner()
        step = metadata.metadata_step(root, "http://m/", incremental=incremental_on, runner=runner)
        step(make_tree(tmp_path / str(incremental_on)), contents)
        argv = runner.calls[0][0]
        if incremental_on:
            db = Path(argv[argv.index("--db") + 1])
            assert db.parent == root / metadata.CACHE_DIR / "production-7-updates"
        else:
            assert "--db" not in argv


def test_metadata_step_keeps_no_cache_for_an_unverified_area(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    runner = FakeRunner()
    step = metadata.metadata_step(root, "http://m/", runner=runner)
    contents = Contents("unverified/Demo/1.0.0", (Entry((apt_repository(),)),))
    step(make_tree(tmp_path), contents)
    assert "--db" not in runner.calls[0][0]
    assert not (root / metadata.CACHE_DIR).exists()
