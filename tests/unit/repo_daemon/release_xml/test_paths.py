"""What the schema cannot say: paths and names safe on disk, and no two that a file system
would confuse."""

from __future__ import annotations

import pytest

from repo_daemon.release_xml import paths
from tests.support.release_xml_samples import problems_of, valid_with

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
    # A name's temporary ".NAME.part" must fit NAME_MAX (255): at most 249 bytes.
    ("a" * 246 + ".rpm", "has a component of 250 bytes (at most 249)", None),
    ("é" * 124 + ".rpm", "has a component of 252 bytes (at most 249)", None),
    # release.xsd already limits the length (in characters), and says so first
    ("/".join(["d" * 200] * 16), "is 3215 bytes long (at most 3072)", "path of 1 to 3072"),
    # in bytes: 1,035 characters (3 bytes each) pass the schema, not the bridge
    ("/".join(["€" * 200] * 5) + "/" + "€" * 30 + ".rpm", "is 3099 bytes long (at most 3072)",
     None),
    ("/".join(["d"] * 32) + "/x.rpm", "has 33 components (at most 32 levels)", None),
    ("el9/x\u202egpj.rpm", "contains a bidirectional control (U+202E RIGHT-TO-LEFT OVERRIDE)",
     None),
    ("el9/x\u2066.rpm", "contains a bidirectional control (U+2066 LEFT-TO-RIGHT ISOLATE)", None),
    ("el9/x\u200b.rpm", "contains an invisible character (U+200B ZERO WIDTH SPACE)", None),
    ("el9/x\ufeff.rpm", "contains an invisible character (U+FEFF ZERO WIDTH NO-BREAK SPACE)",
     None),
    ("el9/x\u2028.rpm", "contains an invisible character (U+2028 LINE SEPARATOR)", None),
    ("el9/x\x85.rpm", "contains a control character (U+0085)", None),
    ("el9/x\x9b31m.rpm", "contains a control character (U+009B)", None),
]  # fmt: skip


@pytest.mark.parametrize(("path", "words", "in_xml"), PATH_CASES, ids=[w for _, w, _ in PATH_CASES])
def test_unsafe_package_path_is_refused(path: str, words: str, in_xml: str | None) -> None:
    assert any(words in p for p in paths.path_problems(path))
    if "\x01" in path:
        return  # XML 1.0 cannot carry it at all (a tab it can)
    data = valid_with(
        (
            "<Path>el9/x86_64/nordugrid-arc-arcctl-7.1.2-1.el9.noarch.rpm</Path>",
            f"<Path>{path}</Path>",
        )
    )
    problems = problems_of(data)
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
        ("a" * 245 + ".rpm", False),  # 249 bytes
        ("/".join(["€" * 83] * 12) + "/x.rpm", False),  # 2,999 + 6 bytes
        ("/".join(["d"] * 31) + "/x.rpm", False),  # 32 levels
        ("", True),
        ("el9/x86_64/", True),
    ],
)
def test_safe_paths_pass(path: str, directory: bool) -> None:
    assert paths.path_problems(path, directory=directory) == []


def test_relative_path_of_a_repository_is_checked() -> None:
    problems = problems_of(
        valid_with(
            ("<RelativePath>el9/x86_64</RelativePath>", "<RelativePath>../el9</RelativePath>")
        )
    )
    assert problems == [
        "line 37, /Release/Repositories/Repository[1]/RelativePath: '../el9' contains '..' "
        "(it must stay below the release's root)"
    ]


def test_paths_differing_only_in_case_are_duplicates() -> None:
    problems = problems_of(
        valid_with(
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
    problems = problems_of(
        valid_with(
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
    problems = problems_of(
        valid_with(
            (
                "<Identifier>arc-ce-bookworm</Identifier>",
                "<Identifier>ARC-CE-EL9-x86_64</Identifier>",
            )
        )
    )
    assert len(problems) == 1
    assert "the identifier of the Repository on line 33" in problems[0]


def test_major_release_must_be_a_safe_name() -> None:
    problems = problems_of(
        valid_with(("<MajorRelease>UMD-5</MajorRelease>", "<MajorRelease>UMD/5</MajorRelease>"))
    )
    assert len(problems) == 1
    assert problems[0].startswith(
        "line 31, /Release/MajorRelease: 'UMD/5' is not a name of 1 to 64"
    )
