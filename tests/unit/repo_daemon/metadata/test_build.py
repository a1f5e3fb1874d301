"""``metadata`` and ``signing`` without the tools: argument lists, Release fields, client
configuration text, and ``build_metadata`` driven by a fake ``CommandRunner`` (the order of
commands, what is written, carried over and refused, and the errors real tools cannot be
made to produce on demand)."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from repo_daemon import errors
from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import signing
from repo_daemon.release_xml import model as manifest

FPR = "23ADB7A089C9F3A0AAD45E9D39DC5FD669FCB9EE"
KEY = b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"
PACKAGES = b"Package: hello\nVersion: 1.0-1\nFilename: ./hello_1.0-1_all.deb\n\n"


def yum(path: str = "rpms", identifier: str = "r", name: str = "RPMs") -> manifest.RepositorySpec:
    return manifest.RepositorySpec(identifier=identifier, name=name, type="YUM", relative_path=path)


def apt(path: str = "debs", identifier: str = "d", name: str = "Debs") -> manifest.RepositorySpec:
    return manifest.RepositorySpec(identifier=identifier, name=name, type="APT", relative_path=path)


@dataclass
class FakeRunner:
    """Answers like the tools do, and writes what they would write."""

    calls: list[tuple[list[str], Path]] = field(default_factory=list)
    answers: dict[str, Callable[[list[str], Path], metadata.Completed]] = field(
        default_factory=dict
    )

    def __call__(
        self, argv: Sequence[str], *, cwd: Path, stdout: Path | None = None
    ) -> metadata.Completed:
        result = self._answer(list(argv), cwd)
        if stdout is None:
            return result
        stdout.write_bytes(result.stdout)
        return metadata.Completed(returncode=result.returncode, stderr=result.stderr)

    def _answer(self, argv: list[str], cwd: Path) -> metadata.Completed:
        self.calls.append((argv, cwd))
        verb = _verb(argv)
        if verb in self.answers:
            return self.answers[verb](argv, cwd)
        if verb == "createrepo_c":
            repodata = Path(argv[-1]) / "repodata"
            repodata.mkdir()
            (repodata / "repomd.xml").write_text(
                '<repomd><data type="primary"><location href="repodata/aa-primary.xml.gz"/>'
                "</data></repomd>"
            )
            (repodata / "aa-primary.xml.gz").write_bytes(b"primary")
            return metadata.Completed(returncode=0, stdout=b"Directory walk done - 3 packages\n")
        if verb == "packages":
            return metadata.Completed(returncode=0, stdout=PACKAGES)
        if verb == "release":
            lines = [b"Origin: Rollout bridge", b"SHA256:"]
            for name in metadata.APT_INDEXES:
                data = (cwd / name).read_bytes()
                digest = hashlib.sha256(data).hexdigest().encode()
                lines.append(b" " + digest + b" " + str(len(data)).encode() + b" " + name.encode())
            return metadata.Completed(returncode=0, stdout=b"\n".join(lines) + b"\n")
        if verb == "list":
            return metadata.Completed(
                returncode=0, stdout=f"pub:u:255:22:x\nfpr:::::::::{FPR}:\n".encode()
            )
        if verb == "export":
            return metadata.Completed(returncode=0, stdout=KEY)
        if verb in ("sign", "clearsign"):
            Path(argv[argv.index("--output") + 1]).write_text("-----BEGIN PGP SIGNATURE-----\n")
            return metadata.Completed(returncode=0)
        raise AssertionError(f"unexpected command {argv}")

    def verbs(self) -> list[str]:
        return [_verb(argv) for argv, _ in self.calls]


def _verb(argv: list[str]) -> str:
    if argv[0] == "apt-ftparchive":
        return argv[-2]
    if argv[0] == "gpg":
        if "--export" in argv:
            return "export"
        if "--list-keys" in argv:
            return "list"
        return "clearsign" if "--clearsign" in argv else "sign"
    return argv[0]


def make_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "snapshot"
    (tree / "rpms").mkdir(parents=True)
    (tree / "debs").mkdir()
    return tree


def signer(**kw: object) -> signing.Signer:
    return signing.Signer(key_id=FPR, gnupghome=Path("/srv/gnupg"), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- argument lists


def test_createrepo_argv_is_deterministic_and_fails_on_a_bad_rpm() -> None:
    assert metadata.createrepo_argv(Path("/t/rpms")) == [
        "createrepo_c",
        "--no-database",
        "--unique-md-filenames",
        "--checksum=sha256",
        "--general-compress-type=gz",
        "--error-exit-val",
        "--",
        "/t/rpms",
    ]
    pinned = metadata.createrepo_argv(Path("/t/rpms"), timestamp=1700000000, cache_dir=Path("/c"))
    assert pinned[-5:] == [
        "--revision=1700000000",
        "--set-timestamp-to-revision",
        "--cachedir=/c",
        "--",
        "/t/rpms",
    ]


def test_packages_argv_runs_in_the_repository_directory() -> None:
    assert metadata.packages_argv() == [
        "apt-ftparchive",
        "-o",
        "APT::FTPArchive::Packages::SHA1=false",
        "-o",
        "APT::FTPArchive::Packages::SHA512=false",
        "packages",
        ".",
    ]
    assert metadata.packages_argv(cache_db=Path("/c/a.db"))[-4:] == [
        "--db",
        "/c/a.db",
        "packages",
        ".",
    ]


def test_release_argv_hashes_only_our_indexes_with_sha256_and_asks_for_by_hash() -> None:
    fields = metadata.ReleaseFields(
        origin="Rollout bridge",
        label="Rollout bridge",
        suite="production",
        codename="production-7",
        description="Hello debs",
        date=datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
    )
    argv = metadata.release_argv(fields)
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
    fields = metadata.release_fields(
        apt(name="Hello\nOrigin: evil\tdebs"),
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
    with pytest.raises(metadata.MetadataFailed, match=message):
        metadata.release_fields(apt(), area_path="production/7", timestamp=None, **base)  # type: ignore[arg-type]


def test_signer_argv_reads_the_passphrase_from_a_file_and_never_holds_it() -> None:
    s = signer(passphrase_file=Path("/srv/pass"))
    assert s.sign_argv(Path("Release"), Path("InRelease"), clearsign=True) == [
        "gpg", "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback",
        "--homedir", "/srv/gnupg", "--passphrase-file", "/srv/pass",
        "--local-user", FPR, "--digest-algo", "SHA512",
        "--clearsign", "--output", "InRelease", "--", "Release",
    ]  # fmt: skip
    detached = signing.Signer(key_id=FPR).sign_argv(Path("repomd.xml"), Path("repomd.xml.asc"))
    assert "--homedir" not in detached
    assert detached[-6:] == ["--armor", "--detach-sign", "--output", "repomd.xml.asc", "--",
                             "repomd.xml"]  # fmt: skip


def test_signer_exports_the_signing_key_and_the_next_one() -> None:
    nxt = "0123456789ABCDEF"
    argv = signer(also_publish=(nxt, FPR)).export_argv()
    assert argv[-6:] == ["--export-options", "export-minimal", "--export", "--", FPR, nxt]


@pytest.mark.parametrize("bad", ["--homedir=/tmp", "ABCDEF12", "test@example.org", ""])
def test_signer_takes_fingerprints_only(bad: str) -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        signing.Signer(key_id=bad)
    with pytest.raises(ValueError, match="fingerprint"):
        signing.Signer(key_id=FPR, also_publish=(bad,))


# ---------------------------------------------------------------------------- client configuration


def test_client_config_signed() -> None:
    files = metadata.client_config(
        "https://repo.example.org/rollout", "production/7", [yum("rpms/noarch"), apt()], True
    )
    assert files == {
        "rollout.repo": (
            "# Rollout bridge: dnf/yum repositories of https://repo.example.org/rollout/production/7/\n"
            "# Save as /etc/yum.repos.d/rollout-production-7.repo.\n"
            "# Install https://repo.example.org/rollout/production/7/RPM-GPG-KEY-rollout as "
            "/etc/pki/rpm-gpg/RPM-GPG-KEY-rollout\n"
            "# after checking its fingerprint. repo_gpgcheck: repomd.xml is verified with\n"
            "# that key, each package against the SHA-256 in the signed metadata (so rpm\n"
            "# signatures, gpgcheck, are not needed).\n"
            "\n"
            "[rollout-production-7-r]\n"
            "name=RPMs (production/7)\n"
            "baseurl=https://repo.example.org/rollout/production/7/rpms/noarch/\n"
            "enabled=1\n"
            "gpgcheck=0\n"
            "repo_gpgcheck=1\n"
            "gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-rollout\n"
        ),
        "rollout.list": (
            "# Rollout bridge: apt sources of https://repo.example.org/rollout/production/7/\n"
            "# Save as /etc/apt/sources.list.d/rollout-production-7.list or .sources "
            "(one, not both).\n"
            "# Install https://repo.example.org/rollout/production/7/rollout-archive-keyring.asc"
            " as /etc/apt/keyrings/rollout-archive-keyring.asc\n"
            "# after checking its fingerprint.\n"
            "\n"
            "# Debs\n"
            "deb [signed-by=/etc/apt/keyrings/rollout-archive-keyring.asc] "
            "https://repo.example.org/rollout/production/7/debs/ ./\n"
        ),
        "rollout.sources": (
            "# Rollout bridge: apt sources of https://repo.example.org/rollout/production/7/\n"
            "# Save as /etc/apt/sources.list.d/rollout-production-7.list or .sources "
            "(one, not both).\n"
            "# Install https://repo.example.org/rollout/production/7/rollout-archive-keyring.asc"
            " as /etc/apt/keyrings/rollout-archive-keyring.asc\n"
            "# after checking its fingerprint.\n"
            "\n"
            "# Debs\n"
            "Types: deb\n"
            "URIs: https://repo.example.org/rollout/production/7/debs/\n"
            "Suites: ./\n"
            "Signed-By: /etc/apt/keyrings/rollout-archive-keyring.asc\n"
        ),
    }


def test_client_config_unsigned_says_so_and_turns_checks_off() -> None:
    files = metadata.client_config("http://m/", "", [yum(""), apt("")], False)
    assert "repo_gpgcheck=0" in files["rollout.repo"]
    assert "gpgkey" not in files["rollout.repo"]
    assert "[rollout-root-r]" in files["rollout.repo"]
    assert "baseurl=http://m/\n" in files["rollout.repo"]
    assert "deb [trusted=yes] http://m/ ./" in files["rollout.list"]
    assert "Trusted: yes" in files["rollout.sources"]
    for text in files.values():
        assert "UNSIGNED" in text


def test_client_config_writes_only_the_formats_present_once_per_directory() -> None:
    only_apt = metadata.client_config("http://m/", "a", [apt("x", "one"), apt("x/", "two")], True)
    assert sorted(only_apt) == ["rollout.list", "rollout.sources"]
    assert only_apt["rollout.list"].count("deb [") == 1
    only_yum = metadata.client_config("http://m/", "a", [yum()], True, rpm_gpgkey="https://k/K")
    assert sorted(only_yum) == ["rollout.repo"]
    assert "gpgkey=https://k/K\n" in only_yum["rollout.repo"]


def test_client_config_quotes_paths_and_keeps_names_on_one_line() -> None:
    files = metadata.client_config(
        "http://m/", "stage rollout/7", [yum("el 9/$arch", "a b", "x\n[evil]\nbaseurl=http://e/")],
        False,
    )  # fmt: skip
    repo = files["rollout.repo"]
    assert "baseurl=http://m/stage%20rollout/7/el%209/%24arch/\n" in repo
    assert "[rollout-stage-rollout-7-a-b]" in repo
    assert "\n[evil]" not in repo
    assert [line for line in repo.splitlines() if line.startswith(("baseurl=", "["))] == [
        "[rollout-stage-rollout-7-a-b]",
        "baseurl=http://m/stage%20rollout/7/el%209/%24arch/",
    ]


@pytest.mark.parametrize("url", ["ftp://m/", "m/", "http:///x"])
def test_client_config_wants_an_http_url(url: str) -> None:
    with pytest.raises(metadata.MetadataFailed, match="http"):
        metadata.client_config(url, "a", [yum()], True)


# ---------------------------------------------------------------------------- build_metadata


def test_build_metadata_signed_runs_the_tools_in_order_and_writes_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    runner = FakeRunner()
    done = metadata.build_metadata(
        tree, [yum(), apt()], signer=signer(), base_url="http://m/", area_path="production/7",
        runner=runner,
    )  # fmt: skip
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
    for name in metadata.APT_INDEXES:
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


def test_build_metadata_unsigned_signs_nothing(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    runner = FakeRunner()
    metadata.build_metadata(tree, [yum(), apt()], runner=runner)
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
    with pytest.raises(metadata.MetadataFailed, match=f"already holds {shipped}: "):
        metadata.build_metadata(tree, [yum(), apt()], runner=runner, **kw)  # type: ignore[arg-type]
    assert runner.calls == []
    assert (tree / shipped).read_text() == "from the provider"


def test_a_large_index_is_compressed_and_counted_across_read_chunks(tmp_path: Path) -> None:
    stanza = b"Package: p%05d\nVersion: 1\nDescription: " + b"x" * 400 + b"\n\n"
    big = b"".join(stanza.replace(b"%05d", b"%05d" % i) for i in range(5000))  # ~2 MiB
    answers = {"packages": lambda a, c: metadata.Completed(returncode=0, stdout=big)}
    tree = make_tree(tmp_path)
    done = metadata.build_metadata(tree, [apt()], runner=FakeRunner(answers=answers))
    assert "Packages (5000 packages)" in done[0]
    assert gzip.decompress((tree / "debs/Packages.gz").read_bytes()) == big
    assert (tree / "debs/Packages.gz").read_bytes()[4:8] == b"\0\0\0\0"  # no time stamp


def test_build_metadata_creates_the_directory_of_an_empty_repository(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    metadata.build_metadata(tree, [apt("debs/bookworm")], runner=FakeRunner())
    assert (tree / "debs/bookworm/Release").is_file()


def test_build_metadata_carries_the_previous_indexes_over(tmp_path: Path) -> None:
    old = make_tree(tmp_path / "old")
    metadata.build_metadata(old, [yum(), apt()], runner=FakeRunner())
    old_gz = hashlib.sha256((old / "debs/Packages.gz").read_bytes()).hexdigest()
    (old / "debs/Packages.gz").unlink()  # the by-hash link is what must survive
    (old / "rpms/repodata/aa-primary.xml.gz").rename(old / "rpms/repodata/bb-primary.xml.gz")
    text = (old / "rpms/repodata/repomd.xml").read_text().replace("aa-", "bb-")
    (old / "rpms/repodata/repomd.xml").write_text(text)
    before = (old / "debs/Release").stat().st_mtime

    new = make_tree(tmp_path / "new")
    answers = {
        "packages": lambda a, c: metadata.Completed(returncode=0, stdout=PACKAGES + PACKAGES)
    }
    done = metadata.build_metadata(
        new, [yum(), apt()], previous_tree=old, runner=FakeRunner(answers=answers)
    )
    assert (new / "debs/by-hash/SHA256" / old_gz).samefile(old / "debs/by-hash/SHA256" / old_gz)
    assert (new / "rpms/repodata/bb-primary.xml.gz").samefile(
        old / "rpms/repodata/bb-primary.xml.gz"
    )
    assert "1 files of the previous repodata kept" in done[0]
    assert "+2 indexes of the previous snapshot" in done[1]
    # Newer to the second than the previous Release, for If-Modified-Since.
    assert int((new / "debs/Release").stat().st_mtime) > int(before)


def test_build_metadata_gives_the_tools_a_cache_outside_the_tree(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    runner = FakeRunner()
    metadata.build_metadata(tree, [yum(), apt()], cache_dir=tmp_path / "cache", runner=runner)
    argvs = {_verb(argv): argv for argv, _ in runner.calls}
    assert f"--cachedir={tmp_path}/cache/createrepo_c" in argvs["createrepo_c"]
    assert str(tmp_path / "cache/apt-ftparchive.db") in argvs["packages"]


def test_metadata_step_reads_the_area_from_publish_s_manifest(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Entry:
        repositories: tuple[manifest.RepositorySpec, ...]

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
    step(snapshot, Contents("production/7", (Entry((apt(),)), Entry((apt(identifier="e"),)))))
    assert runner.verbs() == ["packages", "release"]  # one directory, indexed once
    assert f"{tmp_path}/cache/production-7/apt-ftparchive.db" in runner.calls[0][0]
    assert "http://m/production/7/debs/" in (snapshot / "rollout.list").read_text()


# ---------------------------------------------------------------------------- refusals and errors


@pytest.mark.parametrize(
    ("repositories", "message"),
    [
        ([yum("rpms"), yum("rpms/el9", "r9")], "inside one another"),
        ([apt(""), apt("debs", "d2")], "inside one another"),
        ([apt("../x")], "leaves the tree"),
        ([manifest.RepositorySpec(identifier="z", name="Z", type="ZYPP", relative_path="")],
         "expected YUM or APT"),
    ],
)  # fmt: skip
def test_build_metadata_refuses_repositories_it_cannot_index_safely(
    tmp_path: Path, repositories: list[manifest.RepositorySpec], message: str
) -> None:
    runner = FakeRunner()
    with pytest.raises(metadata.MetadataFailed, match=message):
        metadata.build_metadata(make_tree(tmp_path), repositories, runner=runner)
    assert runner.calls == []


def test_yum_and_apt_may_share_a_directory(tmp_path: Path) -> None:
    runner = FakeRunner()
    metadata.build_metadata(make_tree(tmp_path), [yum("pkgs"), apt("pkgs")], runner=runner)
    assert runner.verbs() == ["createrepo_c", "packages", "release"]


def test_build_metadata_refuses_a_symlinked_repository_directory(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / "elsewhere").symlink_to(tmp_path)
    with pytest.raises(metadata.MetadataFailed, match="symlink"):
        metadata.build_metadata(tree, [apt("elsewhere/debs")], runner=FakeRunner())
    assert not (tmp_path / "debs").exists()


@pytest.mark.parametrize(
    ("tool", "package"),
    [("createrepo_c", "createrepo-c"), ("apt-ftparchive", "apt-utils"), ("gpg", "gnupg")],
)
def test_a_missing_tool_names_its_debian_package(tmp_path: Path, tool: str, package: str) -> None:
    def missing(
        argv: Sequence[str], *, cwd: Path, stdout: Path | None = None
    ) -> metadata.Completed:
        if argv[0] == tool:
            raise FileNotFoundError(2, "No such file or directory", tool)
        return FakeRunner()(argv, cwd=cwd, stdout=stdout)

    with pytest.raises(metadata.MetadataToolMissing) as caught:
        metadata.build_metadata(
            make_tree(tmp_path), [yum(), apt()], signer=signer(), runner=missing
        )
    assert str(caught.value) == (
        f"{tool} is not installed on the repository host: install the Debian package "
        f"{package} (apt-get install {package})"
    )
    assert isinstance(caught.value, errors.DaemonError)
    assert caught.value.transient is False


def test_a_failing_tool_reports_its_exit_code_and_the_end_of_its_stderr(tmp_path: Path) -> None:
    stderr = "".join(f"line {i}\n" for i in range(40)).encode()
    answers = {"createrepo_c": lambda a, c: metadata.Completed(returncode=2, stderr=stderr)}
    with pytest.raises(metadata.MetadataFailed) as caught:
        metadata.build_metadata(make_tree(tmp_path), [yum()], runner=FakeRunner(answers=answers))
    failed = caught.value
    assert failed.returncode == 2
    assert failed.argv[0] == "createrepo_c"
    assert failed.stderr_tail == "\n".join(f"line {i}" for i in range(25, 40))
    assert str(failed).startswith(f"createrepo_c failed with exit code 2 indexing {tmp_path}")
    assert str(failed).endswith("line 39")
    assert failed.transient is False


def test_a_timeout_is_transient(tmp_path: Path) -> None:
    def slow(argv: Sequence[str], *, cwd: Path, stdout: Path | None = None) -> metadata.Completed:
        raise subprocess.TimeoutExpired(list(argv), 3600)

    with pytest.raises(metadata.MetadataFailed, match="did not finish") as caught:
        metadata.build_metadata(make_tree(tmp_path), [apt()], runner=slow)
    assert caught.value.transient is True


def test_apt_ftparchive_errors_fail_although_it_exits_0(tmp_path: Path) -> None:
    stderr = b"W: something harmless\nE: read, still have 1 to read but none left\n" \
        b"E: Errors apply to file './broken.deb'\n"  # fmt: skip
    answers = {"packages": lambda a, c: metadata.Completed(returncode=0, stderr=stderr)}
    with pytest.raises(metadata.MetadataFailed) as caught:
        metadata.build_metadata(make_tree(tmp_path), [apt()], runner=FakeRunner(answers=answers))
    assert caught.value.stderr_tail == (
        "E: read, still have 1 to read but none left\nE: Errors apply to file './broken.deb'"
    )
    assert "could not index every package" in str(caught.value)


def test_a_key_gpg_does_not_have_fails_before_indexing(tmp_path: Path) -> None:
    answers = {
        "list": lambda a, c: metadata.Completed(
            returncode=2, stderr=b"gpg: error reading key: No public key\n"
        )
    }
    runner = FakeRunner(answers=answers)
    with pytest.raises(metadata.MetadataFailed, match=f"gpg has no public key {FPR} in /srv/gnupg"):
        metadata.build_metadata(make_tree(tmp_path), [yum()], signer=signer(), runner=runner)
    assert runner.verbs() == ["list"]


def test_a_key_to_publish_that_gpg_does_not_have_is_named(tmp_path: Path) -> None:
    """gpg --export leaves out a key it does not have and still succeeds: the keys are listed
    first, so a rotation never publishes one key where two were asked for."""
    nxt = "0123456789ABCDEF"
    runner = FakeRunner()
    with pytest.raises(metadata.MetadataFailed, match=f"gpg has no public key {nxt} in"):
        metadata.build_metadata(
            make_tree(tmp_path), [apt()], signer=signer(also_publish=(nxt,)), runner=runner
        )
    assert runner.verbs() == ["list"]
    assert runner.calls[0][0][-3:] == ["--", FPR, nxt]


def test_an_empty_export_fails(tmp_path: Path) -> None:
    answers = {"export": lambda a, c: metadata.Completed(returncode=0)}
    with pytest.raises(metadata.MetadataFailed, match="exported no armored public key"):
        metadata.build_metadata(
            make_tree(tmp_path), [apt()], signer=signer(), runner=FakeRunner(answers=answers)
        )


def test_signer_matches_long_key_ids_to_fingerprints() -> None:
    s = signing.Signer(key_id="0x" + FPR[-16:].lower(), also_publish=("0123456789ABCDEF",))
    assert s.missing({FPR}) == ["0123456789ABCDEF"]
    assert s.missing({FPR, "F" * 24 + "0123456789ABCDEF"}) == []


def test_release_sha256_reads_only_the_sha256_section() -> None:
    release = (
        "Origin: x\nMD5Sum:\n " + "a" * 32 + " 1 Packages\nSHA256:\n "
        + "b" * 64 + " 10 Packages\n " + "c" * 64 + " 5 Packages.gz\nDescription: y\n"
    )  # fmt: skip
    assert metadata.release_sha256(release) == {"b" * 64: "Packages", "c" * 64: "Packages.gz"}
