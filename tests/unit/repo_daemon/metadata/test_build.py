"""``build_metadata`` and ``metadata_step`` driven by a fake ``CommandRunner``: the order of
commands, what is written, carried over and refused, and the key checks that run first."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_daemon.metadata import apt, commands, signing
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import errors as metadata_errors
from repo_daemon.release_xml import model as release_model
from tests.support.metadata_runner import (
    FPR,
    KEY,
    PACKAGES,
    FakeRunner,
    apt_repository,
    make_tree,
    signer,
    verb_of,
    yum_repository,
)


def test_build_metadata_signed_runs_the_tools_in_order_and_writes_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    runner = FakeRunner()
    done = metadata.build_metadata(
        tree,
        [yum_repository(), apt_repository()],
        signer=signer(),
        base_url="http://m/",
        area_path="production/7",
        runner=runner,
    )
    # The key is checked before anything is indexed; every command has its cwd in the tree.
    assert runner.verbs() == [
        "list", "export", "createrepo_c", "sign", "packages", "release", "clearsign", "sign",
    ]  # fmt: skip
    assert [cwd for _, cwd in runner.calls] == [
        tree, tree, *[tree / "rpms"] * 2, *[tree / "debs"] * 4,
    ]  # fmt: skip
    debs = tree / "debs"
    assert (debs / "Packages").read_bytes() == PACKAGES
    assert gzip.decompress((debs / "Packages.gz").read_bytes()) == PACKAGES
    for name in apt.APT_INDEXES:
        digest = hashlib.sha256((debs / name).read_bytes()).hexdigest()
        assert (debs / "by-hash/SHA256" / digest).samefile(debs / name)
    for name in ("Release", "InRelease", "Release.gpg"):
        assert (debs / name).is_file()
    assert (tree / "rpms/repodata/repomd.xml.asc").is_file()
    assert (tree / "rpms/repodata/repomd.xml.key").read_bytes() == KEY
    assert (tree / signing.APT_KEY_FILE).read_bytes() == KEY
    assert (tree / signing.RPM_KEY_FILE).read_bytes() == KEY
    assert sorted(p.name for p in tree.glob("rollout.*")) == [
        "rollout.list", "rollout.repo", "rollout.sources",
    ]  # fmt: skip
    assert done[0].startswith("YUM repository r (rpms): repodata/ by createrepo_c (3 packages)")
    assert "Packages (1 package)" in done[1]
    assert (
        done[2] == f"public key {FPR} published as rollout-archive-keyring.asc, RPM-GPG-KEY-rollout"
    )
    assert done[3] == "client configuration rollout.list, rollout.repo, rollout.sources"


def test_build_metadata_publishes_the_package_keys_in_the_rpm_key_file_only(
    tmp_path: Path,
) -> None:
    tree = make_tree(tmp_path)
    rpm_key = KEY.replace(b"mDMEZ", b"mDMEZ\nmDMEY")
    runner = FakeRunner()
    listing = f"fpr:::::::::{FPR}:\nfpr:::::::::{'C' * 40}:\n".encode()
    runner.answers["list"] = lambda argv, cwd: commands.Completed(returncode=0, stdout=listing)
    runner.answers["export"] = lambda argv, cwd: commands.Completed(
        returncode=0, stdout=rpm_key if argv[-1] == "C" * 40 else KEY
    )
    done = metadata.build_metadata(
        tree, [yum_repository(), apt_repository()], signer=signer(package_keys=("C" * 40,)),
        runner=runner,
    )  # fmt: skip
    assert runner.verbs()[:3] == ["list", "export", "export"]
    assert (tree / signing.APT_KEY_FILE).read_bytes() == KEY
    assert (tree / signing.RPM_KEY_FILE).read_bytes() == rpm_key
    assert (tree / "rpms/repodata/repomd.xml.key").read_bytes() == rpm_key
    assert f"package keys {'C' * 40} published in RPM-GPG-KEY-rollout" in done


def test_build_metadata_unsigned_signs_nothing(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    runner = FakeRunner()
    metadata.build_metadata(tree, [yum_repository(), apt_repository()], runner=runner)
    assert runner.verbs() == ["createrepo_c", "packages", "release"]
    assert not (tree / "debs/InRelease").exists()
    assert not (tree / "rpms/repodata/repomd.xml.asc").exists()
    assert not list(tree.glob("rollout.*"))
    assert not (tree / signing.APT_KEY_FILE).exists()


@pytest.mark.parametrize(
    ("shipped", "kw"),
    [
        ("rpms/repodata", {}),
        ("rpms/.repodata", {}),
        ("debs/Release", {}),
        ("debs/by-hash", {}),
        ("rollout.repo", {"base_url": "http://m/"}),
        ("RPM-GPG-KEY-rollout", {"signer": signer()}),
    ],
)
def test_metadata_a_release_shipped_is_refused_before_anything_runs(
    tmp_path: Path, shipped: str, kw: dict[str, object]
) -> None:
    """Metadata is made for the whole area; files of a release are never replaced (publish
    checks they stay as linked)."""
    tree = make_tree(tmp_path)
    (tree / shipped).write_text("from the provider")
    runner = FakeRunner()
    with pytest.raises(metadata_errors.MetadataFailed, match=f"already holds {shipped}: "):
        metadata.build_metadata(tree, [yum_repository(), apt_repository()], runner=runner, **kw)  # type: ignore[arg-type]
    assert runner.calls == []
    assert (tree / shipped).read_text() == "from the provider"


def test_build_metadata_creates_the_directory_of_an_empty_repository(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    metadata.build_metadata(tree, [apt_repository("debs/bookworm")], runner=FakeRunner())
    assert (tree / "debs/bookworm/Release").is_file()


def test_build_metadata_carries_the_previous_indexes_over(tmp_path: Path) -> None:
    old = make_tree(tmp_path / "old")
    metadata.build_metadata(old, [yum_repository(), apt_repository()], runner=FakeRunner())
    old_gz = hashlib.sha256((old / "debs/Packages.gz").read_bytes()).hexdigest()
    (old / "debs/Packages.gz").unlink()  # the by-hash link is what must survive
    (old / "rpms/repodata/aa-primary.xml.gz").rename(old / "rpms/repodata/bb-primary.xml.gz")
    text = (old / "rpms/repodata/repomd.xml").read_text().replace("aa-", "bb-")
    (old / "rpms/repodata/repomd.xml").write_text(text)
    before = (old / "debs/Release").stat().st_mtime

    new = make_tree(tmp_path / "new")
    answers = {
        "packages": lambda a, c: commands.Completed(returncode=0, stdout=PACKAGES + PACKAGES)
    }
    done = metadata.build_metadata(
        new,
        [yum_repository(), apt_repository()],
        previous_tree=old,
        runner=FakeRunner(answers=answers),
    )
    assert (new / "debs/by-hash/SHA256" / old_gz).samefile(old / "debs/by-hash/SHA256" / old_gz)
    assert (new / "rpms/repodata/bb-primary.xml.gz").samefile(
        old / "rpms/repodata/bb-primary.xml.gz"
    )
    assert "1 files of the previous repodata kept" in done[0]
    assert "+2 indexes of the previous snapshot" in done[1]
    # Newer to the second than the previous Release, for If-Modified-Since.
    assert int((new / "debs/Release").stat().st_mtime) > int(before)


def test_build_metadata_gives_apt_ftparchive_a_cache_outside_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    runner = FakeRunner()
    metadata.build_metadata(
        tree, [yum_repository(), apt_repository()], cache_dir=tmp_path / "cache", runner=runner
    )
    argvs = {verb_of(argv): argv for argv, _ in runner.calls}
    # createrepo_c's own checksum cache trusts header, size and mtime: never used.
    assert not any(a.startswith("--cachedir") for a in argvs["createrepo_c"])
    db = Path(argvs["packages"][argvs["packages"].index("--db") + 1])
    assert db.parent == tmp_path / "cache" and db.name.startswith(".apt-ftparchive.db.")


def test_metadata_step_reads_the_area_from_publish_s_manifest(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Entry:
        repositories: tuple[release_model.RepositorySpec, ...]

    @dataclass(frozen=True)
    class Contents:
        area: str
        releases: tuple[Entry, ...]

    root = tmp_path / "root"
    live = make_tree(tmp_path / "snap1")
    (root / "production").mkdir(parents=True)
    (root / "production/7").symlink_to(live)
    runner = FakeRunner()
    step = metadata.metadata_step(root, "http://m/", cache_root=tmp_path / "cache", runner=runner)
    snapshot = make_tree(tmp_path / "snap2")
    step(
        snapshot,
        Contents(
            "production/7", (Entry((apt_repository(),)), Entry((apt_repository(identifier="e"),)))
        ),
    )
    assert runner.verbs() == ["packages", "release"]  # one directory, indexed once
    db = Path(runner.calls[0][0][runner.calls[0][0].index("--db") + 1])
    assert db.parent == tmp_path / "cache/production-7"
    assert "http://m/production/7/debs/" in (snapshot / "rollout.list").read_text()


@pytest.mark.parametrize(
    ("repositories", "message"),
    [
        ([yum_repository("rpms"), yum_repository("rpms/el9", "r9")], "inside one another"),
        ([apt_repository(""), apt_repository("debs", "d2")], "inside one another"),
        ([apt_repository("../x")], "leaves the tree"),
        ([release_model.RepositorySpec(identifier="z", name="Z", type="ZYPP", relative_path="")],
         "expected YUM or APT"),
    ],
)  # fmt: skip
def test_build_metadata_refuses_repositories_it_cannot_index_safely(
    tmp_path: Path, repositories: list[release_model.RepositorySpec], message: str
) -> None:
    runner = FakeRunner()
    with pytest.raises(metadata_errors.MetadataFailed, match=message):
        metadata.build_metadata(make_tree(tmp_path), repositories, runner=runner)
    assert runner.calls == []


def test_yum_and_apt_may_share_a_directory(tmp_path: Path) -> None:
    runner = FakeRunner()
    metadata.build_metadata(
        make_tree(tmp_path), [yum_repository("pkgs"), apt_repository("pkgs")], runner=runner
    )
    assert runner.verbs() == ["createrepo_c", "packages", "release"]


def test_build_metadata_refuses_a_symlinked_repository_directory(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(metadata_errors.MetadataFailed, match="symlink"):
        metadata.build_metadata(tree, [apt_repository("elsewhere/debs")], runner=FakeRunner())
    assert not (tmp_path / "debs").exists()


def test_a_key_gpg_does_not_have_fails_before_indexing(tmp_path: Path) -> None:
    answers = {
        "list": lambda a, c: commands.Completed(
            returncode=2, stderr=b"gpg: error reading key: No public key\n"
        )
    }
    runner = FakeRunner(answers=answers)
    with pytest.raises(
        metadata_errors.MetadataFailed, match=f"gpg has no public key {FPR} in /srv/gnupg"
    ):
        metadata.build_metadata(
            make_tree(tmp_path), [yum_repository()], signer=signer(), runner=runner
        )
    assert runner.verbs() == ["list"]


def test_a_key_to_publish_that_gpg_does_not_have_is_named(tmp_path: Path) -> None:
    """gpg --export leaves out a key it does not have and still succeeds: the keys are listed
    first, so a rotation never publishes one key where two were asked for."""
    nxt = "0123456789ABCDEF"
    runner = FakeRunner()
    with pytest.raises(metadata_errors.MetadataFailed, match=f"gpg has no public key {nxt} in"):
        metadata.build_metadata(
            make_tree(tmp_path),
            [apt_repository()],
            signer=signer(also_publish=(nxt,)),
            runner=runner,
        )
    assert runner.verbs() == ["list"]
    assert runner.calls[0][0][-3:] == ["--", FPR, nxt]


def test_an_empty_export_fails(tmp_path: Path) -> None:
    answers = {"export": lambda a, c: commands.Completed(returncode=0)}
    with pytest.raises(metadata_errors.MetadataFailed, match="exported no armored public key"):
        metadata.build_metadata(
            make_tree(tmp_path),
            [apt_repository()],
            signer=signer(),
            runner=FakeRunner(answers=answers),
        )
