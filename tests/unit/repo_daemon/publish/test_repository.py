"""Publication on the real file system (tmp_path): pool, snapshots, swaps, promotion by hard
link, union and conflicts, removal, retention, pool GC, refused names, failures mid-build."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import areas, errors, fsops, locks, manifest, names, pool
from repo_daemon.publish import repository as publish
from repo_daemon.release_xml import model as release_model
from tests.support.release_factory import release_info

MakeRelease = Callable[..., release_model.ReleaseInfo]


def _info(
    short: str, version: str, packages: list[release_model.PackageFile]
) -> release_model.ReleaseInfo:
    return release_info(
        short,
        version,
        packages,
        distribution_name=f"{short} distribution",
        description="test release",
        synch_protocol="rsync",
        synch_url="rsync://example.org/x/",
        repositories=(
            release_model.RepositorySpec(
                identifier="r", name="R", type="YUM", relative_path="rpms"
            ),
        ),
    )


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    path = tmp_path / "scratch"
    path.mkdir()
    return path


@pytest.fixture
def make_release(scratch_root: Path) -> MakeRelease:
    """Write a release's files into its own scratch tree and describe them."""

    def make(
        short: str = "Demo", version: str = "1.0.0", files: dict[str, bytes] | None = None
    ) -> release_model.ReleaseInfo:
        files = files if files is not None else {f"rpms/{short}-{version}.rpm": version.encode()}
        scratch = scratch_root / f"{short}-{version}"
        packages = []
        for path, data in files.items():
            target = scratch / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            packages.append(
                release_model.PackageFile(
                    path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest()
                )
            )
        return _info(short, version, packages)

    return make


def scratch_of(scratch_root: Path, info: release_model.ReleaseInfo) -> Path:
    return scratch_root / f"{info.short_name}-{info.version}"


@pytest.fixture
def settings(tmp_path: Path) -> RepositorySettings:
    return RepositorySettings(
        root=tmp_path / "repo", base_url="http://repo.example/", keep_snapshots=2
    )


@pytest.fixture
def repo(settings: RepositorySettings) -> publish.Repository:
    return publish.Repository(settings, lock_timeout=5)


def tree(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` (through the area symlink), without the manifest."""
    top = path.resolve()
    return {
        p.relative_to(top).as_posix(): p.read_bytes()
        for p in sorted(top.rglob("*"))
        if p.is_file() and p.name != manifest.MANIFEST_NAME
    }


def everything(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def snapshots(repo: publish.Repository, area: str) -> list[str]:
    snaps = repo.root / publish.SNAPSHOT_DIR / areas.Area.parse(area).key
    return sorted(p.name for p in snaps.iterdir()) if snaps.exists() else []


# --------------------------------------------------------------------------- publish


def test_publish_unverified_has_exactly_the_release(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    files = {"rpms/a.rpm": b"a" * 100, "rpms/sub/b.rpm": b"b" * 7, "README": b"read me"}
    info = make_release("Demo", "1.2.3", files)

    result = repo.publish_unverified(11, info, scratch_of(scratch_root, info))

    assert result.area.path == "unverified/Demo/1.2.3"
    assert result.url == "http://repo.example/unverified/Demo/1.2.3/"
    assert result.changed and result.snapshot is not None
    area = repo.root / "unverified/Demo/1.2.3"
    assert area.is_symlink()
    assert not area.readlink().is_absolute()  # the root can be served at another path
    assert tree(area) == files
    found = repo.manifest(areas.Area.parse("unverified/Demo/1.2.3"))
    assert found is not None
    assert [(r.ticket_id, r.short_name, r.version) for r in found.releases] == [
        (11, "Demo", "1.2.3")
    ]
    for f in found.files():
        pooled = repo.pool.path(f.sha256)
        assert stat.S_IMODE(pooled.stat().st_mode) == 0o444
        assert (area / f.path).stat().st_ino == pooled.stat().st_ino


def test_snapshots_are_read_only(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release(files={"a/b/c.rpm": b"x"})
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    live = (repo.root / "unverified/Demo/1.0.0").resolve()
    for directory in (live, live / "a", live / "a/b"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o555
    assert stat.S_IMODE((live / manifest.MANIFEST_NAME).stat().st_mode) == 0o444


def test_publishing_twice_changes_nothing(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    scratch = scratch_of(scratch_root, info)
    first = repo.publish_unverified(3, info, scratch)
    before = everything(repo.root)
    for path in sorted(scratch.rglob("*"), reverse=True):  # a resumed job: scratch is gone
        path.unlink() if path.is_file() else path.rmdir()

    again = repo.publish_unverified(3, info, scratch)

    assert not again.changed
    assert again.snapshot == first.snapshot
    assert everything(repo.root) == before


def test_same_release_from_another_ticket_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(3, info, scratch_of(scratch_root, info))
    with pytest.raises(errors.PathConflict, match="already here from ticket #3") as caught:
        repo.publish_unverified(4, info, scratch_of(scratch_root, info))
    assert not caught.value.transient
    assert caught.value.ticket_id == 4


# --------------------------------------------------------------------------- promotion


def test_promotion_copies_no_bytes(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release("Demo", "2.0.0", {"rpms/big.rpm": os.urandom(64 * 1024)})
    repo.publish_unverified(5, info, scratch_of(scratch_root, info))
    pooled = repo.pool.path(info.packages[0].sha256)
    links_before = pooled.stat().st_nlink

    stage = repo.promote_to_stagerollout(5, info, "7")

    assert stage.url == "http://repo.example/stagerollout/7/"
    paths = [
        pooled,
        repo.root / "unverified/Demo/2.0.0/rpms/big.rpm",
        repo.root / "stagerollout/7/rpms/big.rpm",
    ]
    assert len({p.stat().st_ino for p in paths}) == 1
    assert pooled.stat().st_nlink == links_before + 1

    production = repo.promote_to_production(5, info, "7", "Incremental")

    assert production.area.path == "production/7/updates"
    assert production.url == "http://repo.example/production/7/updates/"
    in_production = repo.root / "production/7/updates/rpms/big.rpm"
    assert in_production.stat().st_ino == pooled.stat().st_ino
    assert (
        in_production.read_bytes() == (scratch_of(scratch_root, info) / "rpms/big.rpm").read_bytes()
    )


def test_production_takes_the_release_out_of_stagerollout_and_unverified(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(5, info, scratch_of(scratch_root, info))
    repo.promote_to_stagerollout(5, info, "7")

    repo.promote_to_production(5, info, "7", "NonIncremental")

    assert tree(repo.root / "production/7/base") == {"rpms/Demo-1.0.0.rpm": b"1.0.0"}
    assert not (repo.root / "unverified/Demo/1.0.0").exists()
    assert not (repo.root / publish.SNAPSHOT_DIR / "unverified~Demo~1.0.0").exists()
    # stagerollout stays as an empty snapshot: clients configured for it keep a valid URL
    stage = repo.manifest(areas.Area.parse("stagerollout/7"))
    assert stage is not None and stage.releases == ()
    assert tree(repo.root / "stagerollout/7") == {}
    # repeating the whole step after a crash changes nothing
    again = repo.promote_to_production(5, info, "7", "NonIncremental")
    assert not again.changed


def test_emergency_release_goes_to_production_from_unverified(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(8, info, scratch_of(scratch_root, info))
    repo.promote_to_production(8, info, "7", "Incremental")
    assert tree(repo.root / "production/7/updates") == {"rpms/Demo-1.0.0.rpm": b"1.0.0"}
    assert (
        repo.live_snapshot(areas.Area.parse("stagerollout/7")) is None
    )  # never created for nothing


def test_configured_production_path(
    tmp_path: Path, make_release: MakeRelease, scratch_root: Path
) -> None:
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "r", production_paths={"7": "el/7-prod"})
    )
    info = make_release()
    repo.publish_unverified(8, info, scratch_of(scratch_root, info))
    result = repo.promote_to_production(8, info, "7", "Incremental")
    assert result.area.path == "el/7-prod/updates"
    assert tree(repo.root / "el/7-prod/updates") == {"rpms/Demo-1.0.0.rpm": b"1.0.0"}


def test_a_flat_production_path_is_one_area_for_every_release_type(
    tmp_path: Path, make_release: MakeRelease, scratch_root: Path
) -> None:
    repo = publish.Repository(
        RepositorySettings(
            root=tmp_path / "r",
            production_paths={"CAs": "production/CAs"},
            flat_production=frozenset({"CAs"}),
        )
    )
    first = make_release("ca-bundle", "1.0.0")
    second = make_release("ca-extra", "2.0.0")
    for ticket, info, kind in ((8, first, "NonIncremental"), (9, second, "Incremental")):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
        result = repo.promote_to_production(ticket, info, "CAs", kind)
        assert result.area.path == "production/CAs"
        assert result.url == "http://127.0.0.1:8751/production/CAs/"
    assert (repo.root / "production/CAs").is_symlink()
    assert tree(repo.root / "production/CAs") == {
        "rpms/ca-bundle-1.0.0.rpm": b"1.0.0",
        "rpms/ca-extra-2.0.0.rpm": b"2.0.0",
    }
    assert not (repo.root / "production/CAs/base").exists()
    assert sorted(p.name for p in (repo.root / publish.SNAPSHOT_DIR).iterdir()) == [
        "production~CAs"
    ]  # the unverified areas went with the promotion; no base or updates area was made
    # Withdrawal works the same on a flat area: the next snapshot without the release.
    previous = repo.live_snapshot(areas.Area.parse("production/CAs"))
    repo.remove_from(8, [areas.Area.parse("production/CAs")])
    assert tree(repo.root / "production/CAs") == {"rpms/ca-extra-2.0.0.rpm": b"2.0.0"}
    assert previous in snapshots(repo, "production/CAs")


def test_promotion_needs_the_files_in_the_pool(
    repo: publish.Repository, make_release: MakeRelease
) -> None:
    info = make_release()
    with pytest.raises(errors.ContentMissing, match="is not in the pool") as caught:
        repo.promote_to_stagerollout(5, info, "7")
    assert not caught.value.transient
    assert repo.live_snapshot(areas.Area.parse("stagerollout/7")) is None


# --------------------------------------------------------------------------- union, conflicts


def test_production_area_accumulates_releases(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    first = make_release("Demo", "1.0.1", {"rpms/a.rpm": b"a1", "rpms/common.rpm": b"same"})
    second = make_release("Demo", "1.0.2", {"rpms/b.rpm": b"b2", "rpms/common.rpm": b"same"})
    for ticket, info in ((21, first), (22, second)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
        repo.promote_to_production(ticket, info, "7", "Incremental")

    assert tree(repo.root / "production/7/updates") == {
        "rpms/a.rpm": b"a1",
        "rpms/b.rpm": b"b2",
        "rpms/common.rpm": b"same",
    }
    found = repo.manifest(areas.Area.parse("production/7/updates"))
    assert found is not None
    assert [r.ticket_id for r in found.releases] == [21, 22]
    assert [f.path for f in found.files()] == ["rpms/a.rpm", "rpms/b.rpm", "rpms/common.rpm"]


def test_a_path_claimed_with_other_content_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    first = make_release("Demo", "1.0.1", {"rpms/x.rpm": b"one"})
    second = make_release("Other", "1.0.2", {"rpms/x.rpm": b"two"})
    for ticket, info in ((31, first), (32, second)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
    repo.promote_to_stagerollout(31, first, "7")
    live = repo.live_snapshot(areas.Area.parse("stagerollout/7"))

    with pytest.raises(errors.PathConflict) as caught:
        repo.promote_to_stagerollout(32, second, "7")

    message = str(caught.value)
    assert "rpms/x.rpm" in message
    assert "Demo 1.0.1 (ticket #31)" in message and "Other 1.0.2 (ticket #32)" in message
    assert not caught.value.transient
    assert repo.live_snapshot(areas.Area.parse("stagerollout/7")) == live
    assert tree(repo.root / "stagerollout/7") == {"rpms/x.rpm": b"one"}


def test_a_file_where_another_release_has_a_directory_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    first = make_release("Demo", "1.0.1", {"rpms": b"a file"})
    second = make_release("Other", "1.0.2", {"rpms/x.rpm": b"x"})
    for ticket, info in ((31, first), (32, second)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
    repo.promote_to_stagerollout(31, first, "7")
    with pytest.raises(errors.PathConflict, match=r"rpms is a file in Demo 1\.0\.1"):
        repo.promote_to_stagerollout(32, second, "7")


# --------------------------------------------------------------------------- removal


def test_remove_release_from_unverified_and_stagerollout(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    kept = make_release("Keep", "1.0.0")
    gone = make_release("Gone", "1.0.0")
    for ticket, info in ((41, kept), (42, gone)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
        repo.promote_to_stagerollout(ticket, info, "7")

    unverified, stage = repo.remove_release(42, gone, "7")

    assert unverified.changed and unverified.snapshot is None
    assert stage.changed
    assert not os.path.lexists(repo.root / "unverified/Gone/1.0.0")
    assert snapshots(repo, "unverified/Gone/1.0.0") == []
    assert tree(repo.root / "stagerollout/7") == {"rpms/Keep-1.0.0.rpm": b"1.0.0"}
    assert tree(repo.root / "unverified/Keep/1.0.0") == {"rpms/Keep-1.0.0.rpm": b"1.0.0"}
    again = repo.remove_release(42, gone, "7")
    assert not any(r.changed for r in again)


def test_removal_leaves_another_tickets_release(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(51, info, scratch_of(scratch_root, info))
    unverified, stage = repo.remove_release(52, info, "7")  # another ticket, same version
    assert not unverified.changed and not stage.changed
    assert tree(repo.root / "unverified/Demo/1.0.0") == {"rpms/Demo-1.0.0.rpm": b"1.0.0"}


def test_a_removal_interrupted_after_the_unlink_finishes_when_repeated(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    (repo.root / "unverified/Demo/1.0.0").unlink()  # the crash: symlink gone, snapshots left

    unverified, _ = repo.remove_release(1, info, "7")

    assert unverified.changed
    assert snapshots(repo, "unverified/Demo/1.0.0") == []


def test_removing_what_was_never_published_is_a_no_op(
    repo: publish.Repository, make_release: MakeRelease
) -> None:
    results = repo.remove_release(60, make_release(), "7")
    assert not any(r.changed for r in results)
    assert not (repo.root / "stagerollout").exists() or not any(
        (repo.root / "stagerollout").iterdir()
    )


# --------------------------------------------------------------------------- refused names


Operation = Callable[[publish.Repository, release_model.ReleaseInfo, Path], object]


def _bad_release(short: str = "Demo", path: str = "a.rpm") -> Operation:
    def run(repo: publish.Repository, good: release_model.ReleaseInfo, scratch: Path) -> object:
        package = release_model.PackageFile(path=path, size=1, sha256=good.packages[0].sha256)
        return repo.publish_unverified(2, _info(short, "1.0.1", [package]), scratch)

    return run


UNSAFE: dict[str, Operation] = {
    "short-dotdot": _bad_release(short="../x"),
    "short-absolute": _bad_release(short="/abs"),
    "short-slash": _bad_release(short="a/b"),
    "short-hidden": _bad_release(short=".hidden"),
    "short-empty": _bad_release(short=""),
    "path-dotdot": _bad_release(path="../../etc/passwd"),
    "path-absolute": _bad_release(path="/etc/passwd"),
    "path-inner-dotdot": _bad_release(path="a/../../b"),
    "path-empty-part": _bad_release(path="a//b"),
    "path-hidden": _bad_release(path=".git/config"),
    "path-nul": _bad_release(path="a\x00b"),
    "path-backslash": _bad_release(path="..\\x"),
    "stage-major-dotdot": lambda repo, good, _: repo.promote_to_stagerollout(1, good, "../7"),
    "stage-major-slash": lambda repo, good, _: repo.promote_to_stagerollout(1, good, "7/x"),
    "production-major-dotdot": lambda repo, good, _: repo.promote_to_production(
        1, good, "..", "Incremental"
    ),
    "production-release-type": lambda repo, good, _: repo.promote_to_production(
        1, good, "7", "../Sideways"
    ),
    "remove-major-absolute": lambda repo, good, _: repo.remove_release(1, good, "/7"),
}


@pytest.mark.parametrize("operation", list(UNSAFE.values()), ids=list(UNSAFE))
def test_unsafe_names_are_refused_before_touching_disk(
    repo: publish.Repository,
    make_release: MakeRelease,
    scratch_root: Path,
    operation: Operation,
) -> None:
    good = make_release("Demo", "1.0.0", {"a.rpm": b"a"})
    repo.publish_unverified(1, good, scratch_of(scratch_root, good))
    before = everything(repo.root)
    outside = everything(repo.root.parent)

    with pytest.raises(errors.PathRefused) as caught:
        operation(repo, good, scratch_of(scratch_root, good))

    assert not caught.value.transient
    assert str(repo.root) not in str(caught.value)
    assert everything(repo.root) == before
    assert everything(repo.root.parent) == outside


def test_a_production_path_leaving_the_root_is_refused(
    tmp_path: Path, make_release: MakeRelease, scratch_root: Path
) -> None:
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "r", production_paths={"7": "../outside"})
    )
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    with pytest.raises(errors.PathRefused):
        repo.promote_to_production(1, info, "7", "Incremental")
    assert not (tmp_path / "outside").exists()


def test_an_area_below_a_symlink_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (repo.root / "stagerollout").symlink_to(tmp_path / "elsewhere")
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    with pytest.raises(errors.PathConflict, match="not a plain directory"):
        repo.promote_to_stagerollout(1, info, "7")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_symlink_in_scratch_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path, tmp_path: Path
) -> None:
    info = make_release("Demo", "1.0.0", {"a.rpm": b"a"})
    secret = tmp_path / "secret"
    secret.write_bytes(b"a")
    (scratch_of(scratch_root, info) / "a.rpm").unlink()
    (scratch_of(scratch_root, info) / "a.rpm").symlink_to(secret)
    with pytest.raises(errors.PathRefused, match="symlink"):
        repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert repo.live_snapshot(areas.Area.parse("unverified/Demo/1.0.0")) is None


def test_a_symlinked_directory_in_scratch_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path, tmp_path: Path
) -> None:
    info = make_release("Demo", "1.0.0", {"sub/a.rpm": b"a"})
    scratch = scratch_of(scratch_root, info)
    elsewhere = tmp_path / "elsewhere"
    (scratch / "sub").rename(elsewhere)
    (scratch / "sub").symlink_to(elsewhere)
    with pytest.raises(errors.PathRefused, match="symlink"):
        repo.publish_unverified(1, info, scratch)


def test_scratch_that_does_not_match_the_release_is_refused(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release("Demo", "1.0.0", {"a.rpm": b"aaaa", "b.rpm": b"bbbb"})
    scratch = scratch_of(scratch_root, info)
    (scratch / "a.rpm").write_bytes(b"short")
    (scratch / "b.rpm").unlink()
    with pytest.raises(errors.ContentMissing) as caught:
        repo.publish_unverified(1, info, scratch)
    assert len(caught.value.problems) == 2  # every problem, not the first
    assert repo.live_snapshot(areas.Area.parse("unverified/Demo/1.0.0")) is None


def test_an_area_occupied_by_a_real_directory_is_not_replaced(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    (repo.root / "unverified/Demo/1.0.0").mkdir(parents=True)
    (repo.root / "unverified/Demo/1.0.0/precious").write_text("x")
    info = make_release()
    with pytest.raises(errors.PathConflict, match="did not make"):
        repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert (repo.root / "unverified/Demo/1.0.0/precious").read_text() == "x"


# --------------------------------------------------------------------------- the pool


def test_scratch_on_another_file_system_is_copied_and_checked(
    repo: publish.Repository,
    make_release: MakeRelease,
    scratch_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_link = os.link

    def link(src: os.PathLike[str] | str, dst: os.PathLike[str] | str, **kwargs: object) -> None:
        if Path(src).is_relative_to(scratch_root):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    info = make_release("Demo", "1.0.0", {"a.rpm": b"payload"})
    scratch = scratch_of(scratch_root, info)
    repo.publish_unverified(1, info, scratch)
    pooled = repo.pool.path(info.packages[0].sha256)
    assert pooled.read_bytes() == b"payload"
    assert pooled.stat().st_ino != (scratch / "a.rpm").stat().st_ino
    assert stat.S_IMODE(pooled.stat().st_mode) == 0o444
    assert list((repo.pool.dir / ".tmp").iterdir()) == []

    corrupt = make_release("Demo", "1.0.1", {"b.rpm": b"right"})
    (scratch_of(scratch_root, corrupt) / "b.rpm").write_bytes(b"wrong")  # same size
    with pytest.raises(errors.ContentMissing, match="does not match its SHA-256"):
        repo.publish_unverified(2, corrupt, scratch_of(scratch_root, corrupt))
    assert not repo.pool.path(corrupt.packages[0].sha256).exists()


def test_pool_gc_removes_unreferenced_files_only(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    kept = make_release("Keep", "1.0.0", {"k.rpm": b"kept", "shared.rpm": b"shared"})
    gone = make_release("Gone", "1.0.0", {"g.rpm": b"gone", "shared.rpm": b"shared"})
    held = make_release("Held", "1.0.0", {"h.rpm": b"held"})
    for ticket, info in ((1, kept), (2, gone), (3, held)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
    repo.remove_release(2, gone, "7")
    repo.remove_release(3, held, "7")
    for info in (kept, gone):  # scratch trees cleaned up; Held's still links its file
        for path in scratch_of(scratch_root, info).rglob("*.rpm"):
            path.unlink()
    sha = {p.path: p.sha256 for info in (kept, gone, held) for p in info.packages}

    report = repo.collect_garbage()

    assert report.pool_removed == 1 and report.pool_removed_bytes == 4
    assert report.pool_held_elsewhere == 1
    assert not repo.pool.path(sha["g.rpm"]).exists()
    assert repo.pool.path(sha["k.rpm"]).exists()
    assert repo.pool.path(sha["shared.rpm"]).exists()
    assert repo.pool.path(sha["h.rpm"]).exists()
    assert tree(repo.root / "unverified/Keep/1.0.0") == {"k.rpm": b"kept", "shared.rpm": b"shared"}
    assert repo.collect_garbage().pool_removed == 0


def test_pool_gc_keeps_files_of_retained_snapshots(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    first = make_release("Demo", "1.0.1", {"a.rpm": b"first"})
    second = make_release("Demo", "1.0.2", {"b.rpm": b"second"})
    for ticket, info in ((1, first), (2, second)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
        repo.promote_to_stagerollout(ticket, info, "7")
    repo.remove_release(1, first, "7")
    for path in scratch_root.rglob("*.rpm"):
        path.unlink()
    # a.rpm is in no live tree now, but a retained (previous) stagerollout snapshot has it
    assert repo.collect_garbage().pool_removed == 0
    assert repo.pool.path(first.packages[0].sha256).exists()


def test_pool_gc_clears_half_built_snapshots(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    stale = repo.root / publish.SNAPSHOT_DIR / "unverified~Demo~1.0.0" / ".building-000009-x"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub").chmod(0o555)
    assert repo.collect_garbage().stale_removed == 1
    assert not stale.exists()


# --------------------------------------------------------------------------- retention


def test_retention_keeps_the_live_snapshot_and_n_before_it(
    tmp_path: Path, make_release: MakeRelease, scratch_root: Path
) -> None:
    repo = publish.Repository(RepositorySettings(root=tmp_path / "r", keep_snapshots=2))
    for n in range(1, 6):
        info = make_release("Demo", f"1.0.{n}")
        repo.publish_unverified(n, info, scratch_of(scratch_root, info))
        repo.promote_to_stagerollout(n, info, "7")
    kept = snapshots(repo, "stagerollout/7")
    assert [names.snapshot_number(n) for n in kept] == [3, 4, 5]
    assert repo.live_snapshot(areas.Area.parse("stagerollout/7")) == kept[-1]


def test_retention_zero_keeps_only_the_live_snapshot(
    tmp_path: Path, make_release: MakeRelease, scratch_root: Path
) -> None:
    repo = publish.Repository(RepositorySettings(root=tmp_path / "r", keep_snapshots=0))
    for n in range(1, 4):
        info = make_release("Demo", f"1.0.{n}")
        repo.publish_unverified(n, info, scratch_of(scratch_root, info))
        repo.promote_to_stagerollout(n, info, "7")
    assert snapshots(repo, "stagerollout/7") == [
        repo.live_snapshot(areas.Area.parse("stagerollout/7"))
    ]


def _promote_all(
    repo: publish.Repository, scratch_root: Path, *infos: release_model.ReleaseInfo
) -> None:
    for info in infos:
        ticket = info.minor_version * 100 + info.revision_version
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
        repo.promote_to_stagerollout(ticket, info, "7")


def test_an_area_without_its_symlink_adopts_its_newest_snapshot(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    first, second = make_release("Demo", "1.0.1"), make_release("Demo", "1.0.2")
    _promote_all(repo, scratch_root, first)
    area = repo.root / "stagerollout/7"
    area.unlink()  # a person's mistake, or a crash before an area's first swap

    _promote_all(repo, scratch_root, second)

    assert tree(area) == {"rpms/Demo-1.0.1.rpm": b"1.0.1", "rpms/Demo-1.0.2.rpm": b"1.0.2"}
    live = repo.live_snapshot(areas.Area.parse("stagerollout/7"))
    area.unlink()
    again = repo.promote_to_stagerollout(2, second, "7")  # same content: only relinked
    assert again.changed and again.snapshot == live
    assert repo.live_snapshot(areas.Area.parse("stagerollout/7")) == live


def test_a_rollback_by_hand_is_where_the_next_publication_starts(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    first, second, third = (make_release("Demo", f"1.0.{n}") for n in (1, 2, 3))
    _promote_all(repo, scratch_root, first, second)
    area = repo.root / "stagerollout/7"
    older, newer = snapshots(repo, "stagerollout/7")
    area.unlink()
    area.symlink_to(f"../.snapshots/stagerollout~7/{older}")  # what docs/publication.md says

    _promote_all(repo, scratch_root, third)

    assert sorted(tree(area)) == ["rpms/Demo-1.0.1.rpm", "rpms/Demo-1.0.3.rpm"]
    assert snapshots(repo, "stagerollout/7")[:2] == [older, newer]  # kept, as retention says


# --------------------------------------------------------------------------- failures


def test_a_failure_mid_build_leaves_the_live_area_unchanged(
    repo: publish.Repository,
    make_release: MakeRelease,
    scratch_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_release("Demo", "1.0.1", {f"a/{i}.rpm": b"a%d" % i for i in range(10)})
    second = make_release("Demo", "1.0.2", {f"b/{i}.rpm": b"b%d" % i for i in range(10)})
    for ticket, info in ((1, first), (2, second)):
        repo.publish_unverified(ticket, info, scratch_of(scratch_root, info))
    repo.promote_to_stagerollout(1, first, "7")
    area = repo.root / "stagerollout/7"
    target, content, names = area.readlink(), tree(area), snapshots(repo, "stagerollout/7")
    real_link, calls = os.link, []

    def failing_link(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        calls.append(dst)
        if len(calls) > 13:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real_link(src, dst)

    monkeypatch.setattr(os, "link", failing_link)
    with pytest.raises(errors.StorageFailed) as caught:
        repo.promote_to_stagerollout(2, second, "7")

    assert caught.value.transient  # disk full: retried later
    assert "No space left" in str(caught.value)
    assert str(repo.root) not in str(caught.value)
    assert area.readlink() == target
    assert tree(area) == content
    assert snapshots(repo, "stagerollout/7") == names  # no half snapshot behind
    monkeypatch.setattr(os, "link", real_link)
    repo.promote_to_stagerollout(2, second, "7")  # the retry succeeds
    assert len(tree(area)) == 20


def test_a_permanent_storage_error_is_not_transient(
    repo: publish.Repository,
    make_release: MakeRelease,
    scratch_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))

    def denied(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "link", denied)
    with pytest.raises(errors.StorageFailed) as caught:
        repo.promote_to_stagerollout(1, info, "7")
    assert not caught.value.transient
    assert caught.value.ticket_id == 1


def test_metadata_runs_in_the_new_snapshot_before_the_swap(
    settings: RepositorySettings, make_release: MakeRelease, scratch_root: Path
) -> None:
    seen: list[tuple[str, str | None, list[str]]] = []

    def metadata(snapshot: Path, area: manifest.AreaManifest) -> None:
        live = repository.live_snapshot(areas.Area.parse(area.area))
        seen.append((snapshot.name, live, [f.path for f in area.files()]))
        (snapshot / "repodata").mkdir()
        (snapshot / "repodata/repomd.xml").write_text(f"<repomd>{len(area.releases)}</repomd>")

    repository = publish.Repository(settings, metadata=metadata)
    first, second = make_release("Demo", "1.0.1"), make_release("Demo", "1.0.2")
    for ticket, info in ((1, first), (2, second)):
        repository.publish_unverified(ticket, info, scratch_of(scratch_root, info))
    seen.clear()
    one = repository.promote_to_stagerollout(1, first, "7")
    two = repository.promote_to_stagerollout(2, second, "7")

    assert seen == [
        (f".building-{one.snapshot}", None, ["rpms/Demo-1.0.1.rpm"]),
        (f".building-{two.snapshot}", one.snapshot, ["rpms/Demo-1.0.1.rpm", "rpms/Demo-1.0.2.rpm"]),
    ]
    repomd = repository.root / "stagerollout/7/repodata/repomd.xml"
    assert repomd.read_text() == "<repomd>2</repomd>"


@pytest.mark.parametrize(
    ("action", "error", "match"),
    [
        ("raise", errors.PublishFailed, "metadata step for unverified/Demo/1.0.0 failed"),
        ("symlink", errors.SnapshotInvalid, "repodata is a symlink"),
        ("replace", errors.SnapshotInvalid, "not linked to the pool"),
    ],
)
def test_a_failing_metadata_step_publishes_nothing(
    settings: RepositorySettings,
    make_release: MakeRelease,
    scratch_root: Path,
    action: str,
    error: type[Exception],
    match: str,
) -> None:
    def metadata(snapshot: Path, area: manifest.AreaManifest) -> None:
        if action == "raise":
            raise RuntimeError(f"createrepo_c failed in {snapshot}")
        if action == "symlink":
            (snapshot / "repodata").symlink_to("/etc")
        if action == "replace":
            payload = snapshot / "rpms/Demo-1.0.0.rpm"
            payload.unlink()
            payload.write_bytes(b"1.0.0")

    repo = publish.Repository(settings, metadata=metadata)
    info = make_release()
    with pytest.raises(error, match=match) as caught:
        repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert str(repo.root) not in str(caught.value)
    assert repo.live_snapshot(areas.Area.parse("unverified/Demo/1.0.0")) is None
    assert snapshots(repo, "unverified/Demo/1.0.0") == []


def test_leftovers_of_a_crash_are_cleared_on_the_next_publish(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    snaps = repo.root / publish.SNAPSHOT_DIR / "unverified~Demo~1.0.0"
    (snaps / ".building-000001-20260101T000000Z/x").mkdir(parents=True)
    (repo.root / "unverified/Demo").mkdir(parents=True)
    (repo.root / "unverified/Demo/.1.0.0.swap-dead").symlink_to("nowhere")
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert [p.name for p in snaps.iterdir()] == [
        repo.live_snapshot(areas.Area.parse("unverified/Demo/1.0.0"))
    ]
    assert [p.name for p in (repo.root / "unverified/Demo").iterdir()] == ["1.0.0"]


def test_a_live_snapshot_deleted_by_hand_is_reported(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    live = (repo.root / "unverified/Demo/1.0.0").resolve()
    fsops.delete_tree(live)
    with pytest.raises(errors.SnapshotInvalid, match="is gone") as caught:
        repo.remove_release(1, info, "7")
    assert not caught.value.transient


def test_a_busy_area_is_a_transient_error(
    settings: RepositorySettings, make_release: MakeRelease, scratch_root: Path
) -> None:
    repo = publish.Repository(settings, lock_timeout=0.2)
    info = make_release()
    with (
        locks.FileLocks(repo.root).area(areas.Area.parse("unverified/Demo/1.0.0")),
        pytest.raises(errors.AreaBusy) as caught,
    ):
        repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert caught.value.transient


def test_gc_waits_for_publishers(repo: publish.Repository) -> None:
    slow = publish.Repository(repo.settings, lock_timeout=0.2)
    with (
        repo.locks.area(areas.Area.stagerollout("7")),
        pytest.raises(errors.AreaBusy, match="global"),
    ):
        slow.collect_garbage()


def test_removal_works_from_the_areas_alone(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    # No release.xml is read: only the areas the bridge recorded, and their manifests.
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    repo.promote_to_stagerollout(1, info, "7")
    unverified, staged, never = repo.remove_from(
        1,
        [
            areas.Area.unverified("Demo", "1.0.0"),
            areas.Area.stagerollout("7"),
            areas.Area.stagerollout("8"),
        ],
    )
    assert (unverified.changed, staged.changed, never.changed) == (True, True, False)
    assert not (repo.root / "unverified/Demo/1.0.0").exists()
    assert (repo.root / "stagerollout/7").is_symlink()  # the area stays, empty
    assert [c.changed for c in repo.remove_from(1, [areas.Area.stagerollout("7")])] == [False]


def test_an_areas_kind_follows_its_path() -> None:
    assert areas.Area.unverified("Demo", "1.0.0").kind == "unverified"
    assert areas.Area.stagerollout("7").kind == "stagerollout"
    assert areas.Area.production("production/CAs", "Incremental").kind == "production"


# --------------------------------------------------------------------------- crash leftovers


def test_a_pool_file_is_read_only_before_it_gets_its_name(
    repo: publish.Repository,
    make_release: MakeRelease,
    scratch_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A SIGKILL between two steps must never leave a writable pool file: the inode is
    # read-only when link(2) gives it its pool name.
    modes: list[int] = []
    real_link = os.link

    def link(source: str | Path, target: str | Path, **kw: object) -> None:
        if f"/{pool.POOL_DIR}/" in str(target):
            modes.append(stat.S_IMODE(Path(source).stat().st_mode))
        real_link(source, target, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", link)
    info = make_release("Demo", "1.0.0", {"a.rpm": b"a", "sub/b.rpm": b"b"})
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert modes == [0o444, 0o444]


def test_a_writable_pool_file_is_made_read_only_when_used_again(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    # What an older version left after a SIGKILL between link and chmod.
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    pooled = repo.pool.path(info.packages[0].sha256)
    pooled.chmod(0o644)
    repo.promote_to_stagerollout(1, info, "7")
    assert stat.S_IMODE(pooled.stat().st_mode) == 0o444
    served = repo.root / "stagerollout/7" / info.packages[0].path
    assert stat.S_IMODE(served.stat().st_mode) == 0o444


def test_gc_makes_writable_pool_files_read_only(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    pooled = repo.pool.path(info.packages[0].sha256)
    pooled.chmod(0o664)
    report = repo.collect_garbage()
    assert report.pool_repaired == 1 and report.pool_kept == 1
    assert stat.S_IMODE(pooled.stat().st_mode) == 0o444
    assert repo.collect_garbage().pool_repaired == 0


def test_gc_removes_stale_swap_links_beside_every_area(
    tmp_path: Path, make_release: MakeRelease, scratch_root: Path
) -> None:
    settings = RepositorySettings(root=tmp_path / "repo", production_paths={"7": "el/7"})
    repo = publish.Repository(settings, lock_timeout=5)
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    repo.promote_to_stagerollout(1, info, "7")
    repo.promote_to_production(1, info, "7", "Incremental")  # also removes unverified/Demo/1.0.0
    stale = [
        repo.root / "el/7/.updates.swap-0a1b2c3d",
        repo.root / "stagerollout/.7.swap-deadbeef",
        repo.root / "unverified/Demo/.1.0.0.swap-01234567",  # an area that is gone now
    ]
    for link in stale:
        link.symlink_to("../../.snapshots/whatever/000001-20261124T101500Z")
    not_ours = repo.root / "el/7/.updates.swap-notes"  # a person's file, not a symlink
    not_ours.write_text("mine")
    unrelated = repo.root / "el/7/.base.swap-0a1b2c3d"  # beside an area never published
    unrelated.symlink_to("nowhere")

    report = repo.collect_garbage()

    assert [p for p in stale if os.path.lexists(p)] == []
    assert report.stale_removed >= len(stale)
    assert not_ours.read_text() == "mine" and unrelated.is_symlink()
    assert tree(repo.root / "el/7/updates") == {info.packages[0].path: b"1.0.0"}


def test_gc_removes_the_snapshot_folder_of_an_area_whose_removal_was_cut_short(
    repo: publish.Repository, make_release: MakeRelease, scratch_root: Path
) -> None:
    # A crash after the area's snapshots were deleted, before their folder was.
    folder = repo.root / publish.SNAPSHOT_DIR / "unverified~Gone~1.0.0"
    (folder / ".deleting-000001-20261124T101500Z/rpms").mkdir(parents=True)
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    assert repo.collect_garbage().stale_removed == 2
    assert not folder.exists()
    assert (repo.root / publish.SNAPSHOT_DIR / "unverified~Demo~1.0.0").is_dir()


def test_gc_never_touches_a_snapshot_that_is_being_built(
    settings: RepositorySettings, make_release: MakeRelease, scratch_root: Path
) -> None:
    building = threading.Event()
    finish = threading.Event()

    def slow_metadata(snapshot: Path, contents: manifest.AreaManifest) -> None:
        (snapshot / "repodata").mkdir()
        building.set()
        assert finish.wait(30)

    writer = publish.Repository(settings, metadata=slow_metadata, lock_timeout=5)
    info = make_release()
    published: list[publish.PublishedArea] = []
    thread = threading.Thread(
        target=lambda: published.append(
            writer.publish_unverified(1, info, scratch_of(scratch_root, info))
        )
    )
    thread.start()
    try:
        assert building.wait(30)
        snaps = writer.root / publish.SNAPSHOT_DIR / "unverified~Demo~1.0.0"
        (half_built,) = snaps.iterdir()
        assert half_built.name.startswith(names.BUILDING)
        with pytest.raises(errors.AreaBusy):
            publish.Repository(settings, lock_timeout=0.2).collect_garbage()
        assert (half_built / "repodata").is_dir()
    finally:
        finish.set()
        thread.join(30)
    assert published and published[0].snapshot is not None
    assert publish.Repository(settings).collect_garbage().stale_removed == 0
    assert tree(writer.root / "unverified/Demo/1.0.0") == {info.packages[0].path: b"1.0.0"}


def test_a_snapshot_s_metadata_files_are_sealed_read_only(
    settings: RepositorySettings, make_release: MakeRelease, scratch_root: Path
) -> None:
    def metadata(snapshot: Path, contents: manifest.AreaManifest) -> None:
        (snapshot / "repodata").mkdir()
        (snapshot / "repodata/repomd.xml").write_text("<repomd/>")  # mode from the umask

    repo = publish.Repository(settings, metadata=metadata)
    info = make_release()
    repo.publish_unverified(1, info, scratch_of(scratch_root, info))
    live = (repo.root / "unverified/Demo/1.0.0").resolve()
    modes = {
        p.relative_to(live).as_posix(): stat.S_IMODE(p.lstat().st_mode)
        for p in live.rglob("*")
        if p.is_file()
    }
    assert set(modes.values()) == {0o444}, modes
