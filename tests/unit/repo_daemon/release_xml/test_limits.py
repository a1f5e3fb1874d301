"""The one set of limits and reserved names: what it refuses and lets through, and that it
covers every name the bridge's metadata, index and keys write (so validation refuses what
publication would trip over)."""

from __future__ import annotations

import re

import pytest

from repo_daemon.metadata import apt, clients, signing, yum
from repo_daemon.publish import errors as publish_errors
from repo_daemon.publish import index, names
from repo_daemon.release_xml import limits
from tests.support import paths
from tests.support.release_xml_samples import problems_of, valid_with

ARCCTL = "<Path>el9/x86_64/nordugrid-arc-arcctl-7.1.2-1.el9.noarch.rpm</Path>"


def test_the_limits_leave_room_for_temporary_names_and_the_bridges_prefix() -> None:
    assert limits.MAX_NAME_BYTES == 249
    assert len(limits.temp_name("a" * limits.MAX_NAME_BYTES).encode()) == limits.NAME_MAX
    assert limits.MAX_PATH_BYTES == 3072
    longest = "/" + "p" * (limits.MAX_PREFIX_BYTES - 1) + "/" + "a" * limits.MAX_PATH_BYTES
    assert len(longest.encode()) + len(limits.TEMP_PREFIX + limits.TEMP_SUFFIX) < limits.PATH_MAX


def test_a_bridge_directory_too_long_for_the_limits_is_refused() -> None:
    assert limits.check_prefix("/var/lib/rollout/scratch/42") is None
    assert limits.check_prefix("/" + "d" * (limits.MAX_PREFIX_BYTES - 1)) is None
    problem = limits.check_prefix("/" + "d" * limits.MAX_PREFIX_BYTES)
    assert problem is not None and "may have at most 1016 bytes" in problem


def test_the_schema_says_the_same_path_length() -> None:
    xsd = (paths.ROOT / "schemas" / "release.xsd").read_text()
    assert (
        re.findall(r'<xs:maxLength value="(\d+)"/>', xsd).count(str(limits.MAX_PATH_BYTES)) == 2
    )  # FilePath and DirectoryPath


def test_every_name_the_bridge_writes_at_the_top_of_an_area_is_reserved() -> None:
    written = {*index.WRITTEN, clients.DNF_REPO_FILE, clients.APT_LIST_FILE,
               clients.APT_SOURCES_FILE, signing.APT_KEY_FILE, signing.RPM_KEY_FILE}  # fmt: skip
    hidden = {n for n in written if n.startswith(".")}  # refused as hidden components anyway
    assert written - hidden <= limits.AREA_ROOT_NAMES


def test_every_name_the_metadata_writes_in_a_repository_is_reserved() -> None:
    written = set(apt.APT_OUTPUTS) | set(yum.YUM_OUTPUTS)
    assert {n for n in written if not n.startswith(".")} <= limits.REPOSITORY_NAMES


@pytest.mark.parametrize(
    ("path", "dirs", "words"),
    [
        ("index.json", [], "uses the name 'index.json', which the bridge writes at the top"),
        ("index.html/x.rpm", [], "uses the name 'index.html'"),
        ("rollout.repo", ["el9"], "uses the name 'rollout.repo'"),
        ("RPM-GPG-KEY-rollout", [], "uses the name 'RPM-GPG-KEY-rollout'"),
        ("rollout-archive-keyring.asc", [], "uses the name 'rollout-archive-keyring.asc'"),
        ("el9/repodata/repomd.xml", ["el9"], "uses the name 'repodata' in repository directory"),
        ("debs/Release", ["debs"], "uses the name 'Release' in repository directory 'debs'"),
        ("InRelease", [""], "uses the name 'InRelease' in the root"),
        ("debs/by-hash/SHA256/x", ["debs/"], "uses the name 'by-hash'"),
    ],
)
def test_reserved_names_are_refused(path: str, dirs: list[str], words: str) -> None:
    assert any(words in p for p in limits.reserved_problems(path, dirs))
    with pytest.raises(publish_errors.PathRefused, match=re.escape(words)):
        names.check_not_reserved(path, dirs)


@pytest.mark.parametrize(
    ("path", "dirs"),
    [
        ("el9/x86_64/repodata-tools-1.0.rpm", ["el9/x86_64"]),
        ("Packages/foo.rpm", ["el9"]),  # a RHEL-style Packages/ outside any APT repository
        ("el9/sub/Release", ["el9/x86_64"]),
        ("docs/index.json", []),
    ],
)
def test_names_elsewhere_are_not_reserved(path: str, dirs: list[str]) -> None:
    assert limits.reserved_problems(path, dirs) == []


def test_release_xml_with_a_reserved_name_is_refused_with_its_line() -> None:
    problems = problems_of(valid_with((ARCCTL, "<Path>el9/x86_64/repodata</Path>")))
    assert problems == [
        "line 60, /Release/Packages/Package[2]/Path: 'el9/x86_64/repodata' uses the name "
        "'repodata' in repository directory 'el9/x86_64', which the bridge's repository "
        "metadata takes"
    ]


@pytest.mark.parametrize("digits", [10, 12, 18])
def test_a_version_number_of_more_than_nine_digits_is_refused(digits: int) -> None:
    value = "1" * digits
    problems = problems_of(
        valid_with(
            ("<RevisionVersion>2</RevisionVersion>", f"<RevisionVersion>{value}</RevisionVersion>")
        )
    )
    assert problems == [
        f"line 19, /Release/RevisionVersion: '{value}' is larger than 999,999,999 (at most "
        "nine digits)"
    ]


def test_nine_digits_and_leading_zeros_pass() -> None:
    assert limits.version_problem(999_999_999) is None
    assert limits.version_problem(1_000_000_000) is not None
    assert names.check_version("999999999.0.0") == "999999999.0.0"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("a\udcffb.rpm", "is not valid UTF-8"),
        ("a\x1b[31m.rpm", "contains a control character (U+001B)"),
        ("a\nb.rpm", "contains a control character (U+000A)"),
        ("a\u202eb.rpm", "contains a bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE)"),
        ("a" * 250, "is 250 bytes long (a name has at most 249)"),
    ],
)
def test_names_from_a_file_system_are_checked(name: str, words: str) -> None:
    assert words in limits.name_problems(name)


def test_a_path_that_is_not_utf8_is_refused() -> None:
    assert limits.path_problems("el9/\udce9.rpm") == ["is not valid UTF-8"]
