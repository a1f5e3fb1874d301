"""release.xml: every refusal names its problem, the valid example becomes the exact model."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from repo_daemon import errors
from repo_daemon.release_xml import model as manifest
from repo_daemon.release_xml import parse as release
from tests.support import paths

FIXTURES = paths.ROOT / "fixtures"
VALID = (FIXTURES / "release_valid.xml").read_bytes()
DOCTYPE = "release.xml must not contain a DOCTYPE (DTDs and entities are not allowed)"


def _problems(data: bytes) -> list[str]:
    with pytest.raises(release.ReleaseInvalid) as caught:
        release.parse_release(data)
    message = str(caught.value)
    assert message == "release.xml is invalid:\n" + "\n".join(
        f"  - {p}" for p in caught.value.problems
    )
    return caught.value.problems


def _valid_with(*subs: tuple[str, str]) -> bytes:
    text = VALID.decode()
    for old, new in subs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode()


# ---------------------------------------------------------------------------- the fixtures

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
    problems = _problems((FIXTURES / f"release_{case}.xml").read_bytes())
    message = "\n".join(problems)
    for words in expected:
        assert words in message
    # Each fixture has one thing wrong (wrong_type two): nothing else is reported.
    assert len(problems) == (2 if case == "wrong_type" else 1), problems


def test_every_release_fixture_is_tested() -> None:
    named = {p.name for p in FIXTURES.glob("release_*.xml")}
    assert named == {"release_valid.xml"} | {f"release_{c}.xml" for c, _ in BAD_FIXTURES}


def _passwd_lines() -> list[str]:
    try:
        text = Path("/etc/passwd").read_text(encoding="utf-8")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("second_line_only", [False, True], ids=["prescan", "parsed-docinfo"])
def test_external_entity_never_reads_the_file(
    monkeypatch: pytest.MonkeyPatch, second_line_only: bool
) -> None:
    if second_line_only:  # what libxml2 itself does when the look before parsing misses it
        monkeypatch.setattr(release, "_has_doctype", lambda data: False)
    problems = _problems((FIXTURES / "release_external_entity.xml").read_bytes())
    message = "\n".join(problems)
    assert problems == [DOCTYPE]
    for line in _passwd_lines():
        assert line not in message
    assert "root:" not in message


@pytest.mark.timeout(30)
@pytest.mark.parametrize("second_line_only", [False, True], ids=["prescan", "parsed"])
def test_billion_laughs_is_refused_without_expanding(
    monkeypatch: pytest.MonkeyPatch, second_line_only: bool
) -> None:
    if second_line_only:
        monkeypatch.setattr(release, "_has_doctype", lambda data: False)
    started = time.monotonic()
    problems = _problems((FIXTURES / "release_billion_laughs.xml").read_bytes())
    # Expanding it would take gigabytes and minutes; refusing it takes milliseconds.
    assert time.monotonic() - started < 10
    if second_line_only:  # libxml2 stops it as an entity amplification, or we see the DTD
        assert problems == [DOCTYPE] or "entity" in problems[0].lower()
    else:
        assert problems == [DOCTYPE]
    assert "lollol" not in "\n".join(problems)


# ---------------------------------------------------------------------------- the model


def test_valid_fixture_gives_the_exact_model() -> None:
    info = release.parse_release(VALID)
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
    info = release.parse_release(text.encode())
    assert (info.synch_protocol, info.synch_url, info.release_type, info.major_release) == (
        None,
        None,
        None,
        None,
    )
    assert info.major_version == 7
    assert info.keywords == ()


def test_values_are_trimmed_and_texts_dedented() -> None:
    info = release.parse_release(
        _valid_with(
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


def test_schema_location_hint_is_allowed() -> None:
    data = _valid_with(
        (
            "<Release>",
            '<Release xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            ' xsi:noNamespaceSchemaLocation="release.xsd">',
        )
    )
    assert release.parse_release(data).short_name == "arc-ce"


def test_xsi_type_and_nil_cannot_change_the_checks() -> None:
    problems = _problems(
        _valid_with(
            (
                "<Release>",
                '<Release xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
                ' xmlns:xs="http://www.w3.org/2001/XMLSchema">',
            ),
            ("<SHA256>0d4e", '<SHA256 xsi:type="xs:string">zz0d4e'),
            ("<MajorVersion>7", '<MajorVersion xsi:nil="true">7'),
        )
    )
    assert problems == [
        "line 17, /Release/MajorVersion: unknown attribute 'xsi:nil' "
        "(release.xml uses no attributes)",
        "line 62, /Release/Packages/Package[2]/SHA256: unknown attribute 'xsi:type' "
        "(release.xml uses no attributes)",
    ]


def test_utf16_document_is_read() -> None:
    data = VALID.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert release.parse_release(data) == release.parse_release(VALID)


# ---------------------------------------------------------------------------- refusals


def test_every_problem_is_collected_with_line_and_path() -> None:
    data = _valid_with(
        ("<Release>", '<Release version="2">'),
        ("  <Contact>", "  <Foo/>\n  <Contact>"),
        ("<Contact>release-team@nordugrid.example.org</Contact>", "<Contact>nobody</Contact>"),
        ("  <RevisionVersion>2</RevisionVersion>\n", ""),
        (
            "<MinorVersion>1</MinorVersion>",
            "<MinorVersion>1</MinorVersion><MinorVersion>3</MinorVersion>",
        ),
        ("<Keywords>", "<Keywords>stray"),
        ("<ISODate>2024-05-17</ISODate>", "<ISODate>17.05.2024</ISODate>"),
        ("  <ChangeLog>", "  <changelog>x</changelog><ChangeLog>"),
        ("<SynchProtocol>rsync</SynchProtocol>", "<SynchProtocol>ftp</SynchProtocol>"),
        ("<Type>APT</Type>", "<Type>apt</Type>"),
        ("<Name>nordugrid-arc-arcctl</Name>", "<Name>a<b>c</b></Name>"),
        ("<Size>0</Size>", "<Size></Size>"),
        ("<Arch>amd64</Arch>", ""),
        ("<SHA256>9a8b", "<sha256>9a8b"),
        ("c7b8a9</SHA256>", "c7b8a9</sha256>"),
    )
    problems = _problems(data)
    assert problems == [
        "line 3, /Release: unknown attribute 'version' (release.xml uses no attributes)",
        "line 3, /Release: RevisionVersion is missing",
        "line 7, /Release/Foo: unknown element Foo (Release may contain: DistributionName, "
        "DistributionShortName, TechnologyProvider, Contact, Description, Keywords, "
        "DocumentationLinks, ISODate, MajorVersion, MinorVersion, RevisionVersion, ReleaseNotes, "
        "ChangeLog, SynchProtocol, SynchURL, ReleaseType, MajorRelease, Repositories, Packages)",
        "line 8, /Release/Contact: 'nobody' is not an e-mail address (name@domain)",
        "line 10, /Release/Keywords: text 'stray' is not allowed here, only the elements Keyword",
        "line 17, /Release/ISODate: '17.05.2024' is not a date written YYYY-MM-DD",
        "line 19, /Release/MinorVersion[2]: MinorVersion is given more than once "
        "(Release takes one)",
        "line 24, /Release/changelog: unknown element changelog; did you mean ChangeLog?",
        "line 28, /Release/SynchProtocol: 'ftp' is not one of rsync, sftp, https",
        "line 43, /Release/Repositories/Repository[2]/Type: 'apt' is not one of YUM, APT",
        "line 57, /Release/Packages/Package[2]/Name: holds text only, but contains the element <b>",
        "line 64, /Release/Packages/Package[3]: SHA256 is missing",
        "line 70, /Release/Packages/Package[3]/sha256: unknown element sha256; "
        "did you mean SHA256?",
        "line 76, /Release/Packages/Package[4]/Size: is empty; "
        "it must be a whole number of 0 or more",
    ]


PATH_CASES = [
    ("el9/../../x.rpm", "contains '..' (it must stay below the release's root)", None),
    ("/srv/x.rpm", "starts with '/'", None),
    ("el9\\x.rpm", "contains a backslash", None),
    ("el9/x\x01.rpm", "contains a control character (U+0001)", None),
    ("el9/x\t.rpm", "contains a control character (U+0009)", None),
    ("el9/./x.rpm", "contains a '.' component", None),
    ("el9//x.rpm", "has an empty component", None),
    ("el9/", "has an empty component", None),
    ("el9/.git/x.rpm", "has a hidden component '.git'", None),
    (".x.rpm", "has a hidden component '.x.rpm'", None),
    ("a" * 256 + ".rpm", "has a component of 260 bytes (at most 255)", None),
    # release.xsd already limits the length (in characters), and says so first
    ("/".join(["d" * 200] * 21), "is 4220 bytes long (at most 4096)", "path of 1 to 4096"),
]


@pytest.mark.parametrize(("path", "words", "in_xml"), PATH_CASES, ids=[w for _, w, _ in PATH_CASES])
def test_unsafe_package_path_is_refused(path: str, words: str, in_xml: str | None) -> None:
    assert any(words in p for p in release.path_problems(path))
    if "\x01" in path:
        return  # XML 1.0 cannot carry it at all (a tab it can)
    data = _valid_with(
        (
            "<Path>el9/x86_64/nordugrid-arc-arcctl-7.1.2-1.el9.noarch.rpm</Path>",
            f"<Path>{path}</Path>",
        )
    )
    problems = _problems(data)
    assert len(problems) == 1
    assert problems[0].startswith("line 60, /Release/Packages/Package[2]/Path: ")
    assert (in_xml or words) in problems[0]


@pytest.mark.parametrize(
    ("path", "directory"),
    [
        ("el9/x86_64/foo-1.0-1.el9.x86_64.rpm", False),
        ("pool/main/f/foo/foo_1.0-1_amd64.deb", False),
        ("foo bar+baz~1.rpm", False),
        ("é/ü.rpm", False),
        ("", True),
        ("el9/x86_64/", True),
    ],
)
def test_safe_paths_pass(path: str, directory: bool) -> None:
    assert release.path_problems(path, directory=directory) == []


def test_relative_path_of_a_repository_is_checked() -> None:
    problems = _problems(
        _valid_with(
            ("<RelativePath>el9/x86_64</RelativePath>", "<RelativePath>../el9</RelativePath>")
        )
    )
    assert problems == [
        "line 37, /Release/Repositories/Repository[1]/RelativePath: '../el9' contains '..' "
        "(it must stay below the release's root)"
    ]


def test_empty_relative_path_is_the_release_root() -> None:
    info = release.parse_release(
        _valid_with(("<RelativePath>el9/x86_64</RelativePath>", "<RelativePath/>"))
    )
    assert info.repositories[0].relative_path == ""


def test_paths_differing_only_in_case_are_duplicates() -> None:
    problems = _problems(
        _valid_with(
            (
                "<Path>el9/x86_64/nordugrid-arc-arcctl-7.1.2-1.el9.noarch.rpm</Path>",
                "<Path>EL9/x86_64/nordugrid-arc-arex-7.1.2-1.el9.x86_64.rpm</Path>",
            )
        )
    )
    assert problems == [
        "line 60, /Release/Packages/Package[2]/Path: "
        "'EL9/x86_64/nordugrid-arc-arex-7.1.2-1.el9.x86_64.rpm' differs only in letter case "
        "from 'el9/x86_64/nordugrid-arc-arex-7.1.2-1.el9.x86_64.rpm', the path of the Package "
        "on line 48 (some file systems cannot tell them apart)"
    ]


def test_a_file_cannot_also_be_a_directory() -> None:
    problems = _problems(
        _valid_with(
            (
                "<Path>el9/x86_64/nordugrid-arc-arcctl-7.1.2-1.el9.noarch.rpm</Path>",
                "<Path>el9/x86_64</Path>",
            )
        )
    )
    assert len(problems) == 1
    assert (
        "'el9/x86_64' is a file here but a directory in the path of the Package on line 48"
        in (problems[0])
    )


def test_repository_identifiers_are_unique() -> None:
    problems = _problems(
        _valid_with(
            (
                "<Identifier>arc-ce-bookworm</Identifier>",
                "<Identifier>ARC-CE-EL9-x86_64</Identifier>",
            )
        )
    )
    assert len(problems) == 1
    assert "the identifier of the Repository on line 33" in problems[0]


def test_major_release_must_be_a_safe_name() -> None:
    problems = _problems(
        _valid_with(("<MajorRelease>UMD-5</MajorRelease>", "<MajorRelease>UMD/5</MajorRelease>"))
    )
    assert len(problems) == 1
    assert problems[0].startswith(
        "line 31, /Release/MajorRelease: 'UMD/5' is not a name of 1 to 64"
    )


@pytest.mark.parametrize(
    "prolog",
    [
        b'<?xml version="1.0"?>\n<!-- a comment -->\n<?pi x?>\n<!DOCTYPE Release>\n',
        b"\xef\xbb\xbf<!DOCTYPE Release>",
        b'<!DOCTYPE Release SYSTEM "http://example.org/release.dtd">',
        b'<!DOCTYPE Release PUBLIC "-//X//DTD//EN" "release.dtd">',
    ],
    ids=["after-comment-and-pi", "utf8-bom", "external-system", "external-public"],
)
def test_any_doctype_is_refused(prolog: bytes) -> None:
    body = VALID.split(b"-->\n", 1)[1]
    assert _problems(prolog + body) == [DOCTYPE]


def test_doctype_in_utf16_is_refused() -> None:
    text = (FIXTURES / "release_with_dtd.xml").read_text(encoding="utf-8")
    data = text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    assert _problems(data) == [DOCTYPE]


def test_undeclared_entity_is_not_xml() -> None:
    problems = _problems(_valid_with(("<Description>A grid", "<Description>&xxe; A grid")))
    (problem,) = problems  # the column varies with libxml2's version
    assert problem.startswith("it is not well-formed XML (line 8, column ")
    assert problem.endswith(": Entity 'xxe' not defined)")


def test_root_in_a_namespace_is_refused() -> None:
    problems = _problems(_valid_with(("<Release>", '<Release xmlns="urn:example:release">')))
    assert problems == [
        "the root element <Release> is in the namespace 'urn:example:release'; "
        "release.xml uses no namespace (remove the xmlns attribute)"
    ]


def test_empty_document_is_refused() -> None:
    assert _problems(b"  \n") == ["it is empty"]


def test_long_lists_of_problems_are_cut_in_the_message_but_kept() -> None:
    package = "<Package><Name>x</Name><Version>1</Version><Path>p{}</Path><Size>x</Size>"
    package += "<SHA256>" + "0" * 64 + "</SHA256></Package>"
    many = "".join(package.format(i) for i in range(150))
    data = _valid_with(("<Packages>", "<Packages>" + many))
    with pytest.raises(release.ReleaseInvalid) as caught:
        release.parse_release(data)
    assert len(caught.value.problems) == 150
    message = str(caught.value)
    assert message.count("\n  - ") == release.MAX_LISTED_PROBLEMS
    assert message.endswith("\n  … and 50 more problems")


def test_checking_stops_after_many_problems() -> None:
    data = _valid_with(("<Release>", "<Release>" + "<a/>" * 1500))
    with pytest.raises(release.ReleaseInvalid) as caught:
        release.parse_release(data)
    assert len(caught.value.problems) == release.MAX_PROBLEMS
    assert caught.value.stopped
    assert str(caught.value).endswith(
        "\n  … and 900 more problems\n  … checking stopped after 1000; there may be more"
    )


# ---------------------------------------------------------------------------- size limit


def test_a_100_mb_document_is_refused_without_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("parsed a document above the size limit")

    monkeypatch.setattr(release, "_has_doctype", never)
    monkeypatch.setattr(release, "_parse_xml", never)
    data = b"<Release>".ljust(100 * 1024 * 1024, b" ")
    problems = _problems(data)
    assert problems == [f"it is {len(data)} bytes (100.00 MiB); the limit is 1048576 bytes (1 MiB)"]


def test_a_document_at_the_limit_is_read() -> None:
    padding = release.MAX_RELEASE_XML_BYTES - len(VALID)
    assert release.parse_release(VALID + b" " * padding).short_name == "arc-ce"
    assert "the limit is 1048576 bytes" in _problems(VALID + b" " * (padding + 1))[0]


def test_validate_file_reads_a_file(tmp_path: Path) -> None:
    assert release.validate_file(FIXTURES / "release_valid.xml") == release.parse_release(VALID)


def test_validate_file_refuses_a_large_file_reading_only_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "release.xml"
    with big.open("wb") as f:
        f.truncate(100 * 1024 * 1024)  # sparse: costs no disk
    with pytest.raises(release.ReleaseInvalid) as caught:
        release.validate_file(big)
    assert caught.value.problems == [
        "it is 104857600 bytes (100.00 MiB); the limit is 1048576 bytes (1 MiB)"
    ]
    assert caught.value.source == str(big)


def test_validate_file_names_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(release.ReleaseInvalid) as caught:
        release.validate_file(tmp_path / "missing.xml")
    assert caught.value.problems == [
        f"cannot read {tmp_path / 'missing.xml'} (No such file or directory)"
    ]


# ---------------------------------------------------------------------------- the ticket

INFO = release.parse_release(VALID)  # ReleaseType Incremental, MajorRelease UMD-5

TICKET_CASES = [
    # (release.xml type, major), (ticket type, major), expected problems
    (("Incremental", "UMD-5"), ("Incremental", "UMD-5"), []),
    (("Incremental", "UMD-5"), (None, None), []),
    ((None, None), ("NonIncremental", "CAs"), []),
    ((None, "UMD-5"), ("Incremental", " "), []),
    (
        ("Incremental", "UMD-5"),
        ("NonIncremental", "UMD-5"),
        ["release.xml says ReleaseType Incremental, the ticket says NonIncremental"],
    ),
    (
        ("Incremental", "UMD-5"),
        ("Incremental", "UMD-4"),
        ["release.xml says MajorRelease UMD-5, the ticket says UMD-4 (AssociatedMajorRelease)"],
    ),
    (
        (None, None),
        ("", None),
        [
            "neither the ticket's ReleaseType field nor release.xml says the release type: "
            "set ReleaseType on the ticket to Incremental or NonIncremental",
            "neither the ticket's AssociatedMajorRelease field nor release.xml (MajorRelease) "
            "says the major release: set AssociatedMajorRelease on the ticket (e.g. UMD-5)",
        ],
    ),
    (
        (None, None),
        ("Minor", "../UMD-5"),
        [
            "the ticket's ReleaseType is 'Minor'; it must be one of Incremental, NonIncremental",
            "the ticket's AssociatedMajorRelease is '../UMD-5'; it must be 1 to 64 letters, "
            "digits, '.', '_', '+' or '-', starting with a letter or digit (it becomes a "
            "directory name)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("in_xml", "on_ticket", "expected"),
    TICKET_CASES,
    ids=[
        "agree",
        "xml-only",
        "ticket-only",
        "blank-ticket",
        "type-differs",
        "major-differs",
        "both-missing",
        "ticket-values-bad",
    ],
)
def test_check_against_ticket(
    in_xml: tuple[str | None, str | None],
    on_ticket: tuple[str | None, str | None],
    expected: list[str],
) -> None:
    info = dataclasses.replace(INFO, release_type=in_xml[0], major_release=in_xml[1])
    if not expected:
        release.check_against_ticket(info, release_type=on_ticket[0], major_release=on_ticket[1])
        return
    with pytest.raises(release.ReleaseInvalid) as caught:
        release.check_against_ticket(info, release_type=on_ticket[0], major_release=on_ticket[1])
    assert caught.value.problems == expected
    assert str(caught.value).startswith("release.xml is invalid:\n  - ")


# ---------------------------------------------------------------------------- the rest


def test_release_invalid_is_a_permanent_daemon_error() -> None:
    error = release.ReleaseInvalid(["a", "b"], source="x.xml")
    assert isinstance(error, errors.DaemonError)
    assert error.transient is False
    assert error.source == "x.xml"
    assert str(error) == "release.xml is invalid:\n  - a\n  - b"


def test_release_sha256() -> None:
    assert release.release_sha256(VALID) == hashlib.sha256(VALID).hexdigest()
    assert release.release_sha256(b"") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
