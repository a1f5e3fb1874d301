"""The release fields of a mailed release: lines read as hostile input, and the one rule (ticket
given by a person → newest mail → release.xml → what the ticket holds). Pure."""

from __future__ import annotations

import re

import pytest

from repo_daemon.workflow import mail_fields
from repo_daemon.workflow.mail_fields import Message
from repo_daemon.workflow.mail_intake import MailIntake
from tests.support import paths

DOC = (paths.ROOT / "docs" / "mail-intake.md").read_text()
EMPTY = {name: None for name in mail_fields.FIELDS}
MAILED = {**EMPTY, "Sync-Protocol": "rsync", "ReleaseType": "NonIncremental"}  # RT's defaults
URL = "rsync://download.example.org/arc/6.20.1/"


def _lines(text: str, txn: int = 51) -> tuple[dict[str, str], list[str]]:
    found, problems = mail_fields.read_lines(Message(transaction_id=txn, text=text))
    return {name: line.value for name, line in found.items()}, problems


def _decide(
    *texts: str,
    current: dict[str, str | None] | None = None,
    given: frozenset[str] = frozenset(),
    release_xml: dict[str, str] | None = None,
) -> mail_fields.Filled:
    return mail_fields.decide(
        current=MAILED if current is None else current,
        given=given,
        messages=[Message(transaction_id=51 + i, text=t) for i, t in enumerate(texts)],
        release_xml=release_xml,
        check_url=MailIntake().check_url,
    )


def _doc_block(after: str) -> str:
    """The first fenced block after the text ``after`` in docs/mail-intake.md."""
    match = re.search(re.escape(after) + r".*?\n```\n(.*?)\n```", DOC, re.DOTALL)
    assert match, f"docs/mail-intake.md has no block after {after!r}"
    return match.group(1)


# -- reading lines --------------------------------------------------------------------------


def test_the_four_fields_are_read_in_any_case_and_other_lines_are_free_text() -> None:
    text = (
        "Hello,\nplease publish.\n sync-url :  rsync://h/m/p/ \nSYNC-PROTOCOL: rsync\n"
        "AssociatedMajorRelease: UMD-5\nReleaseType: Incremental\nEmergencyRelease: Yes\n"
        "Note: Sync-URL: rsync://elsewhere/x/\n"
    )
    assert _lines(text) == (
        {
            "Sync-URL": "rsync://h/m/p/",
            "Sync-Protocol": "rsync",
            "AssociatedMajorRelease": "UMD-5",
            "ReleaseType": "Incremental",
        },
        [],
    )


def test_in_one_message_the_first_line_counts() -> None:
    assert _lines("Sync-URL: rsync://a/m/\nSync-URL: rsync://b/m/\n")[0] == {
        "Sync-URL": "rsync://a/m/"
    }


def test_quoted_lines_and_the_signature_are_not_read() -> None:
    text = "> Sync-URL: rsync://quoted/m/\nThanks\n-- \nSync-URL: rsync://signature/m/\n"
    assert _lines(text) == ({}, [])


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("Sync-URL:", "it gives no value"),
        ("Sync-URL: rsync://h/m/\x1b[2J", "control or invisible character (U+001B)"),
        ("AssociatedMajorRelease: UMD\u200b5", "invisible character (U+200B)"),
        ("Sync-URL: rsync://h/" + "a" * 2100, "longer than 2048 characters"),
    ],
    ids=["empty", "escape-sequence", "zero-width-space", "too-long"],
)
def test_a_line_that_breaks_the_text_rules_is_refused(line: str, why: str) -> None:
    found, problems = _lines(line + "\n")
    assert found == {}
    (problem,) = problems
    assert problem.startswith(f"the line {line.split(':')[0]} in the mail of transaction #51")
    assert why in problem


def test_only_so_many_lines_are_looked_at() -> None:
    text = "blah\n" * mail_fields.MAX_LINES + "Sync-URL: rsync://h/m/\n"
    assert _lines(text) == ({}, [])


# -- the rule ---------------------------------------------------------------------------------


def test_a_field_a_person_gave_on_the_ticket_wins_over_the_mail() -> None:
    current = {**MAILED, "Sync-URL": "rsync://ticket/m/"}
    filled = _decide(
        f"Sync-URL: {URL}\nAssociatedMajorRelease: UMD-5\n",
        current=current,
        given=frozenset({"Sync-URL"}),
    )
    assert dict(filled.values) == {"AssociatedMajorRelease": "UMD-5"}


def test_a_mailed_tickets_queue_defaults_give_way_to_the_mail_and_release_xml() -> None:
    filled = _decide(
        f"Sync-URL: {URL}\nSync-Protocol: RSYNC\nReleaseType: incremental\n",
        release_xml={"AssociatedMajorRelease": "UMD-5", "ReleaseType": "NonIncremental"},
    )
    # Sync-Protocol equals what the ticket holds: nothing to write.
    assert dict(filled.values) == {
        "Sync-URL": URL,
        "ReleaseType": "Incremental",
        "AssociatedMajorRelease": "UMD-5",
    }
    assert filled.sources["ReleaseType"] == "the mail of transaction #51"
    assert filled.sources["AssociatedMajorRelease"] == "release.xml"


def test_the_newest_message_wins() -> None:
    filled = _decide(
        f"Sync-URL: {URL}\nAssociatedMajorRelease: UMD-4\n", "AssociatedMajorRelease: UMD-5\n"
    )
    assert filled.values["AssociatedMajorRelease"] == "UMD-5"
    assert filled.sources["AssociatedMajorRelease"] == "the mail of transaction #52"
    assert filled.sources["Sync-URL"] == "the mail of transaction #51"


def test_release_xml_fills_what_no_line_gives() -> None:
    release_xml = {"Sync-URL": "https://download.example.org/arc/", "Sync-Protocol": "https"}
    filled = _decide("", release_xml=release_xml)
    assert dict(filled.values) == release_xml
    assert filled.problems == ()


def test_nothing_said_anywhere_fills_nothing() -> None:
    assert _decide("Please publish.") == mail_fields.Filled()


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Sync-URL: file:///etc/passwd", "not an rsync daemon URL"),
        ("Sync-URL: -e sh@host::m/", "starts with '-'"),
        ("Sync-URL: rsync://h/m/../../etc/", "empty, '.' or '..' component"),
        ("Sync-URL: rsync://h/m;reboot/", "characters other than"),
        ("Sync-Protocol: https\nSync-URL: rsync://h/m/", "not an https:// URL"),
        ("Sync-Protocol: ftp", "it must be one of rsync, sftp, https"),
        ("ReleaseType: Major", "it must be one of Incremental, NonIncremental"),
        ("AssociatedMajorRelease: ../../etc", "it must be 1 to 64 letters"),
    ],
    ids=[
        "file-url", "option", "dot-dot", "shell-character", "url-for-another-protocol",
        "unknown-protocol", "unknown-release-type", "path-as-major-release",
    ],
)  # fmt: skip
def test_a_value_the_field_would_refuse_is_a_problem_never_a_value(text: str, why: str) -> None:
    filled = _decide(text, release_xml={"Sync-URL": URL, "AssociatedMajorRelease": "UMD-5"})
    field = text.splitlines()[-1].split(":")[0]
    assert field not in filled.values  # not even release.xml's: the provider said otherwise
    (problem,) = filled.problems
    assert problem.startswith(f"{field} '") and "in the mail of transaction #51" in problem
    assert why in problem


def test_a_sync_url_from_release_xml_is_checked_too() -> None:
    filled = _decide("", release_xml={"Sync-URL": "rsync://h/m/../x/"})
    assert "Sync-URL" not in filled.values
    assert filled.problems == (
        "Sync-URL 'rsync://h/m/../x/' in release.xml: its module path has an empty, '.' or "
        "'..' component",
    )


def test_a_sync_url_is_checked_with_the_protocol_the_ticket_gives() -> None:
    current = {**MAILED, "Sync-Protocol": "https"}
    filled = _decide(f"Sync-URL: {URL}", current=current, given=frozenset({"Sync-Protocol"}))
    assert "not an https:// URL" in filled.problems[0]


# -- the docs ---------------------------------------------------------------------------------


def test_the_docs_example_mail_gives_the_fields_it_shows() -> None:
    example = _doc_block("An example (with release.xml attached):")
    body = example.split("\n\n", 1)[1]  # the mail's text, after its headers
    assert _lines(body) == (
        {
            "Sync-URL": URL,
            "AssociatedMajorRelease": "UMD-5",
            "ReleaseType": "Incremental",
        },
        [],
    )
    comment = _doc_block("for the example mail above (transaction #51 in RT):")
    assert _decide(body).comment() == comment
