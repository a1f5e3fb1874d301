"""``apt`` without the tools: apt-ftparchive argument lists, Release fields, Release parsing,
and the flat repository ``build_metadata`` writes with a fake ``CommandRunner`` (compression,
errors apt-ftparchive reports while exiting 0)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from repo_daemon.metadata import apt, commands, incremental
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import errors as metadata_errors
from tests.support.metadata_runner import (
    FakeRunner,
    apt_repository,
    make_tree,
)


def test_packages_argv_runs_in_the_repository_directory() -> None:
    assert apt.packages_argv() == [
        "apt-ftparchive",
        "-o",
        "APT::FTPArchive::Packages::SHA1=false",
        "-o",
        "APT::FTPArchive::Packages::SHA512=false",
        "packages",
        ".",
    ]
    assert apt.packages_argv(cache_db=Path("/c/a.db"))[-4:] == [
        "--db",
        "/c/a.db",
        "packages",
        ".",
    ]


def test_release_argv_hashes_only_our_indexes_with_sha256_and_asks_for_by_hash() -> None:
    fields = apt.ReleaseFields(
        origin="Rollout bridge",
        label="Rollout bridge",
        suite="production",
        codename="production-7",
        description="Hello debs",
        date=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
    )
    argv = apt.release_argv(fields)
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert argv[0] == "apt-ftparchive"
    assert argv[-2:] == ["release", "."]
    assert options == [
        "APT::FTPArchive::Release::Origin=Rollout bridge",
        "APT::FTPArchive::Release::Label=Rollout bridge",
        "APT::FTPArchive::Release::Suite=production",
        "APT::FTPArchive::Release::Codename=production-7",
        "APT::FTPArchive::Release::Description=Hello debs",
        "APT::FTPArchive::Release::Acquire-By-Hash=yes",
        "APT::FTPArchive::Release::Date=Tue, 14 Nov 2023 22:13:20 GMT",
        "APT::FTPArchive::Release::Default-Patterns=false",
        "APT::FTPArchive::Release::Patterns::=Packages",
        "APT::FTPArchive::Release::Patterns::=Packages.gz",
        "APT::FTPArchive::Release::MD5=true",
        "APT::FTPArchive::Release::SHA1=false",
        "APT::FTPArchive::Release::SHA256=true",
        "APT::FTPArchive::Release::SHA512=false",
    ]


@pytest.mark.parametrize(
    ("area", "suite", "codename"),
    [
        ("production/7", "production", "production-7"),
        ("stagerollout/7/", "stagerollout", "stagerollout-7"),
        ("unverified/hello/1.2.3", "unverified", "unverified-hello-1.2.3"),
        ("", "rollout", "rollout"),
    ],
)
def test_release_fields_follow_the_area_and_never_the_release(
    area: str, suite: str, codename: str
) -> None:
    fields = apt.release_fields(
        apt_repository(name="Hello\nOrigin: evil\tdebs"),
        origin="Rollout bridge",
        label="Rollout bridge",
        suite=None,
        codename=None,
        area_path=area,
        timestamp=None,
    )
    assert (fields.suite, fields.codename, fields.date) == (suite, codename, None)
    assert fields.description == "Hello Origin: evil debs"  # one line: no field injected


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"origin": "Rollout\nLabel: x"}, "origin"),
        ({"label": ""}, "label"),
        ({"suite": "two words"}, "suite"),
        ({"codename": "-o"}, "codename"),
    ],
)
def test_release_fields_refuse_what_would_break_the_release_file(
    kw: dict[str, str], message: str
) -> None:
    base: dict[str, str | None] = {
        "origin": "O",
        "label": "L",
        "suite": None,
        "codename": None,
    }
    base.update(kw)
    with pytest.raises(metadata_errors.MetadataFailed, match=message):
        apt.release_fields(apt_repository(), area_path="production/7", timestamp=None, **base)  # type: ignore[arg-type]


def test_a_large_index_is_compressed_and_counted_across_read_chunks(tmp_path: Path) -> None:
    stanza = b"Package: p%05d\nVersion: 1\nDescription: " + b"x" * 400 + b"\n\n"
    big = b"".join(stanza.replace(b"%05d", b"%05d" % i) for i in range(5000))  # ~2 MiB
    answers = {"packages": lambda a, c: commands.Completed(returncode=0, stdout=big)}
    tree = make_tree(tmp_path)
    done = metadata.build_metadata(tree, [apt_repository()], runner=FakeRunner(answers=answers))
    assert "Packages (5000 packages)" in done[0]
    assert gzip.decompress((tree / "debs/Packages.gz").read_bytes()) == big
    assert (tree / "debs/Packages.gz").read_bytes()[4:8] == b"\0\0\0\0"  # no time stamp


def test_apt_ftparchive_errors_fail_although_it_exits_0(tmp_path: Path) -> None:
    stderr = b"W: something harmless\nE: read, still have 1 to read but none left\n" \
        b"E: Errors apply to file './broken.deb'\n"  # fmt: skip
    answers = {"packages": lambda a, c: commands.Completed(returncode=0, stderr=stderr)}
    with pytest.raises(metadata_errors.MetadataFailed) as caught:
        metadata.build_metadata(
            make_tree(tmp_path), [apt_repository()], runner=FakeRunner(answers=answers)
        )
    assert caught.value.stderr_tail == (
        "E: read, still have 1 to read but none left\nE: Errors apply to file './broken.deb'"
    )
    assert "could not index every package" in str(caught.value)


def _db_of(argv: list[str]) -> Path:
    return Path(argv[argv.index("--db") + 1])


def _caching(seen: list[bytes]) -> FakeRunner:
    """apt-ftparchive that finds its cache (noting what it held) and adds an entry."""

    def packages(argv: list[str], cwd: Path) -> commands.Completed:
        db = _db_of(argv)
        seen.append(db.read_bytes() if db.exists() else b"")
        db.write_bytes((db.read_bytes() if db.exists() else b"") + b"entry\n")
        return commands.Completed(returncode=0, stdout=b"Package: p\n\n")

    return FakeRunner(answers={"packages": packages})


def test_apt_ftparchive_s_cache_moves_on_only_after_a_complete_run(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    seen: list[bytes] = []
    for n in (1, 2):
        tree = make_tree(tmp_path / str(n))
        metadata.build_metadata(tree, [apt_repository()], cache_dir=cache, runner=_caching(seen))
    assert seen == [b"", b"entry\n"]  # the second run found the first run's cache
    assert (cache / apt.CACHE_DB).read_bytes() == b"entry\nentry\n"
    assert sorted(p.name for p in cache.iterdir()) == [apt.CACHE_DB, incremental.KNOWN]


def test_a_run_that_never_finished_leaves_the_cache_as_it_was(tmp_path: Path) -> None:
    # The tool wrote half a database and its daemon died (SIGKILL: no cleanup ran), or it
    # failed: the cache is the last complete one, never the half-written copy.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / apt.CACHE_DB).write_bytes(b"complete\n")
    (cache / incremental.KNOWN).write_text("")  # it holds no package yet
    (cache / f".{apt.CACHE_DB}.deadbeef").write_bytes(b"half")  # a killed run's copy

    def broken(argv: list[str], cwd: Path) -> commands.Completed:
        _db_of(argv).write_bytes(b"half-written")
        return commands.Completed(returncode=0, stderr=b"E: Errors apply to file './x.deb'\n")

    with pytest.raises(metadata_errors.MetadataFailed):
        metadata.build_metadata(
            make_tree(tmp_path),
            [apt_repository()],
            cache_dir=cache,
            runner=FakeRunner(answers={"packages": broken}),
        )
    assert sorted(p.name for p in cache.iterdir()) == [apt.CACHE_DB, incremental.KNOWN]
    assert (cache / apt.CACHE_DB).read_bytes() == b"complete\n"


def test_release_sha256_reads_only_the_sha256_section() -> None:
    release = (
        "Origin: x\nMD5Sum:\n " + "a" * 32 + " 1 Packages\nSHA256:\n "
        + "b" * 64 + " 10 Packages\n " + "c" * 64 + " 5 Packages.gz\nDescription: y\n"
    )  # fmt: skip
    assert apt.release_sha256(release) == {"b" * 64: "Packages", "c" * 64: "Packages.gz"}
