"""release.xml against the ticket's ReleaseType and AssociatedMajorRelease: stated by at least
one, equal where both state it, and the ticket's values themselves valid."""

from __future__ import annotations

import dataclasses

import pytest

from repo_daemon.release_xml import parse, report, ticket_fields
from tests.support.release_xml_samples import VALID

INFO = parse.parse_release(VALID)  # ReleaseType Incremental, MajorRelease UMD-5


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
            # A release type nobody states is the major release's default (NonIncremental).
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
        ticket_fields.check_against_ticket(
            info, release_type=on_ticket[0], major_release=on_ticket[1]
        )
        return
    with pytest.raises(report.ReleaseInvalid) as caught:
        ticket_fields.check_against_ticket(
            info, release_type=on_ticket[0], major_release=on_ticket[1]
        )
    assert caught.value.problems == expected
    assert str(caught.value).startswith("release.xml is invalid:\n  - ")
