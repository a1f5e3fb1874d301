"""release.xml read end to end: each bad fixture is refused naming its problem, the valid one
becomes the exact model, and the file-reading entry point keeps to the size limit."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest

from repo_daemon.release_xml import model as manifest
from repo_daemon.release_xml import parse, report
from tests.support.release_xml_samples import DOCTYPE, FIXTURES, VALID, problems_of, valid_with

BAD_FIXTURES = [
    ("missing_version", ["line 3, /Release: RevisionVersion is missing"]),
    (
        "wrong_type",
        [
            "line 17, /Release/MajorVersion: 'five' is not a whole number of 0 or more",
            "line 61, /Release/Packages/Package[2]/Size: '-3' is not a whole number of 0 or more",
        ],
    ),
    ("unknown_element", ["line 6, /Release/Maintainer: unknown element Maintainer (Release may"]),
    ("billion_laughs", [DOCTYPE]),
    ("external_entity", [DOCTYPE]),
    ("with_dtd", [DOCTYPE]),
    ("dotdot_path", ["/Release/Packages/Package[2]/Path: 'el9/../../../etc/", "contains '..'"]),
    ("absolute_path", ["/Package[2]/Path: '/etc/cron.d/", "starts with '/'"]),
    ("bad_short_name", ["line 5, /Release/DistributionShortName: '../evil' is not a name of"]),
    (
        "duplicate_path",
        [
            "/Release/Packages/Package[2]/Path: "
            "'el9/x86_64/nordugrid-arc-arex-7.1.2-1.el9.x86_64.rpm'"
            " is also the path of the Package on line 48"
        ],
    ),
    (
        "bad_checksum_format",
        [
            "line 62, /Release/Packages/Package[2]/SHA256: '0d4e2c8a61f3b5970e1d2c3b4a59687786xyz'"
            " is not 64 hexadecimal characters"
        ],
    ),
    ("not_xml", ["it is not well-formed XML (line 1, column 1: Start tag expected"]),
    ("wrong_root", ["the root element is <Releases>; a release.xml has <Release> as its root"]),
]


@pytest.mark.parametrize(("case", "expected"), BAD_FIXTURES, ids=[c for c, _ in BAD_FIXTURES])
def test_bad_fixture_is_refused_naming_the_problem(case: str, expected: list[str]) -> None:
    problems = problems_of((FIXTURES / f"release_{case}.xml").read_bytes())
    message = "\n".join(problems)
    for words in expected:
        assert words in message
    # Each fixture has one thing wrong (wrong_type two): nothing else is reported.
    assert len(problems) == (2 if case == "wrong_type" else 1), problems


def test_every_release_fixture_is_tested() -> None:
    named = {p.name for p in FIXTURES.glob("release_*.xml")}
    assert named == {"release_valid.xml"} | {f"release_{c}.xml" for c, _ in BAD_FIXTURES}


def test_valid_fixture_gives_the_exact_model() -> None:
    info = parse.parse_release(VALID)
    assert info == manifest.ReleaseInfo(
        distribution_name="ARC Compute Element",
        short_name="arc-ce",
        technology_provider="NorduGrid",
        contact="release-team@nordugrid.example.org",
        description=("A grid compute element: accepts jobs and runs them on a local batch system."),
        keywords=("compute", "grid"),
        documentation_links=("https://docs.example.org/arc/7/",),
        iso_date=date(2024, 5, 17),
        major_version=7,
        minor_version=1,
        revision_version=2,
        release_notes=(
            "Fixes job submission through the REST interface when the batch system is slow.\n"
            "No configuration change is needed."
        ),
        change_log=(
            "- REST: longer timeout towards the batch system\n"
            "- arcctl: clearer error when the CA bundle is missing"
        ),
        synch_protocol="rsync",
        synch_url="rsync://packages.nordugrid.example.org/releases/arc-ce/7.1.2/",
        release_type="Incremental",
        major_release="UMD-5",
        repositories=(
            manifest.RepositorySpec(
                identifier="arc-ce-el9-x86_64",
                name="ARC CE for EL9 (x86_64)",
                type="YUM",
                relative_path="el9/x86_64",
            ),
            manifest.RepositorySpec(
                identifier="arc-ce-bookworm",
                name="ARC CE for Debian 12",
                type="APT",
                relative_path="debian/bookworm",
            ),
        ),
        packages=(
            manifest.PackageFile(
                path="el9/x86_64/nordugrid-arc-arex-7.1.2-1.el9.x86_64.rpm",
                size=1834211,
                # written in upper case in the file: lower-cased
                sha256="3f1c5a0b9d2e4f6081726354a5b6c7d8e9f00112233445566778899aabbccdde",
            ),
            manifest.PackageFile(
                path="el9/x86_64/nordugrid-arc-arcctl-7.1.2-1.el9.noarch.rpm",
                size=96420,
                sha256="0d4e2c8a61f3b5970e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f7a8b9",
            ),
            manifest.PackageFile(
                path="debian/bookworm/nordugrid-arc-arex_7.1.2-1_amd64.deb",
                size=1523007,
                sha256="9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9",
            ),
            manifest.PackageFile(
                path="debian/bookworm/nordugrid-arc-arcctl_7.1.2-1_all.deb",
                size=0,
                sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
        ),
    )
    assert info.version == "7.1.2"
    assert info.total_size == 1834211 + 96420 + 1523007


def test_optional_elements_may_be_left_out_and_order_is_free() -> None:
    text = VALID.decode()
    for tag in ("SynchProtocol", "SynchURL", "ReleaseType", "MajorRelease"):
        start = text.index(f"  <{tag}>")
        text = text[:start] + text[text.index("\n", start) + 1 :]
    # MajorVersion moved to the end of Release; Keywords emptied.
    line = "  <MajorVersion>7</MajorVersion>\n"
    text = text.replace(line, "").replace("</Packages>\n", "</Packages>\n" + line)
    text = text.replace(
        "<Keywords>\n    <Keyword>compute</Keyword>\n    <Keyword>grid</Keyword>\n  </Keywords>",
        "<Keywords/>",
    )
    info = parse.parse_release(text.encode())
    assert (info.synch_protocol, info.synch_url, info.release_type, info.major_release) == (
        None,
        None,
        None,
        None,
    )
    assert info.major_version == 7
    assert info.keywords == ()


def test_values_are_trimmed_and_texts_dedented() -> None:
    info = parse.parse_release(
        valid_with(
            (
                "<DistributionName>ARC Compute Element",
                "<DistributionName>\n   ARC  Compute\n  Element",
            ),
            ("<Description>A grid", "<Description>\n    First line.\n      Indented.\n    A grid"),
            (
                "<RelativePath>el9/x86_64</RelativePath>",
                "<RelativePath> el9/x86_64/ </RelativePath>",
            ),
            ("<ReleaseNotes>\n", "<ReleaseNotes><![CDATA[<!DOCTYPE html> is fine in CDATA]]>\n"),
        )
    )
    assert info.distribution_name == "ARC Compute Element"
    assert info.description.startswith("First line.\n  Indented.\nA grid")
    assert info.repositories[0].relative_path == "el9/x86_64"
    assert info.release_notes.startswith("<!DOCTYPE html> is fine in CDATA")


def test_empty_relative_path_is_the_release_root() -> None:
    info = parse.parse_release(
        valid_with(("<RelativePath>el9/x86_64</RelativePath>", "<RelativePath/>"))
    )
    assert info.repositories[0].relative_path == ""


def test_validate_file_reads_a_file(tmp_path: Path) -> None:
    assert parse.validate_file(FIXTURES / "release_valid.xml") == parse.parse_release(VALID)


def test_validate_file_refuses_a_large_file_reading_only_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "release.xml"
    with big.open("wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(report.ReleaseInvalid) as caught:
        parse.validate_file(big)
    assert caught.value.problems == [
        "it is 104857600 bytes (100.00 MiB); the limit is 1048576 bytes (1 MiB)"
    ]
    assert caught.value.source == str(big)


def test_validate_file_names_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(report.ReleaseInvalid) as caught:
        parse.validate_file(tmp_path / "missing.xml")
    assert caught.value.problems == [
        f"cannot read {tmp_path / 'missing.xml'} (No such file or directory)"
    ]


def test_release_sha256() -> None:
    assert parse.release_sha256(VALID) == hashlib.sha256(VALID).hexdigest()
    assert parse.release_sha256(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
