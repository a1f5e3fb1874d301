"""The schema's checks: every structure and value problem collected, each with its line and
element path, in words a provider can act on; xsi: hints allowed, xsi:type and xsi:nil not."""

from __future__ import annotations

import pytest
import xmlschema

from repo_daemon.release_xml import parse
from tests.support.release_xml_samples import problems_of, valid_with


def test_schema_location_hint_is_allowed() -> None:
    data = valid_with(
        (
            "<Release>",
            '<Release xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
            ' xsi:noNamespaceSchemaLocation="release.xsd">',
        )
    )
    assert parse.parse_release(data).short_name == "arc-ce"


def test_xsi_type_and_nil_cannot_change_the_checks() -> None:
    problems = problems_of(
        valid_with(
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


XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


@pytest.mark.parametrize("xsi_type", ["Nope", "a:b:c", "xs:ID", "Package", ""])
def test_an_xsi_type_naming_an_unknown_type_is_a_listed_problem(xsi_type: str) -> None:
    """xmlschema raised XMLSchemaKeyError on an unknown type: a traceback, not a problem."""
    problems = problems_of(
        valid_with(("<MajorVersion>7", f'<MajorVersion {XSI} xsi:type="{xsi_type}">7'))
    )
    assert problems == [
        "line 17, /Release/MajorVersion: unknown attribute 'xsi:type' "
        "(release.xml uses no attributes)"
    ]


def test_whatever_the_schema_library_raises_is_a_listed_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No real document is known to make xmlschema fail now that xsi:type is taken out; any
    such failure still ends as one problem with a line, never an exception."""

    def broken(*args: object, **kwargs: object) -> None:
        raise xmlschema.XMLSchemaNamespaceError("something \x1b[2J odd")

    monkeypatch.setattr(xmlschema.XMLSchema10, "iter_errors", broken)
    problems = problems_of(valid_with())
    assert problems == [
        "line 3, /Release: the schema check could not be completed on this document "
        "(XMLSchemaNamespaceError: something \\x1b[2J odd)"
    ]


def test_every_problem_is_collected_with_line_and_path() -> None:
    data = valid_with(
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
    problems = problems_of(data)
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
