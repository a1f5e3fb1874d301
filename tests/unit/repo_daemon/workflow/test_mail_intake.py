"""Mail intake in the gather step, on a fake RT: when it reads (only at an intake that lacks a
mandatory field), whose messages it reads, what counts as given on a mailed ticket, release.xml
as a source, and how check_fields and fill_in_fields pass the outcome on. The real RT and the
real rt-mailgate are in tests/integration/test_mail_intake_rt.py."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from bridge import errors, records
from bridge.records import RolloutState as S
from bridge.tracker import messages
from repo_daemon import errors as daemon_errors
from repo_daemon.workflow import effects, mail_fields, ticket_actions
from repo_daemon.workflow.gather import TicketView
from repo_daemon.workflow.mail_intake import MailIntake, fill_in_fields
from tests.support import paths
from tests.support.release_xml_samples import VALID, valid_with
from tests.unit.repo_daemon.workflow.conftest import MakeInputs

CF_IDS = {"Sync-URL": 7, "Sync-Protocol": 6, "AssociatedMajorRelease": 5, "ReleaseType": 4}
PROVIDER = "pat@provider.example"
URL = "rsync://download.example.org/arc/6.20.1/"
XML_URL = "rsync://packages.nordugrid.example.org/releases/arc-ce/7.1.2/"  # in VALID
MAILED_FIELDS = {
    "RolloutProgress": ("Unverified",),
    "Sync-Protocol": ("rsync",),
    "ReleaseType": ("NonIncremental",),
}


class FakeRT:
    """A ticket's history, messages and release.xml as the bridge reads them; counts calls."""

    def __init__(
        self,
        *,
        history: list[dict[str, Any]],
        texts: dict[int, str],
        interface: str = "Email",
        release_xml: bytes | None = VALID,
        error: errors.TrackerError | None = None,
    ) -> None:
        self.history = history
        self.texts = texts
        self.interface = interface
        self.release_xml = release_xml
        self.error = error
        self.calls: list[str] = []

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]:
        self.calls.append("transactions_of")
        if self.error is not None:
            raise self.error
        return self.history

    def message(self, ticket_id: int, transaction_id: int) -> messages.Message:
        self.calls.append(f"message {transaction_id}")
        first = transaction_id == int(self.history[0]["id"])
        return messages.Message(
            transaction_id=transaction_id,
            interface=self.interface if first else "Email",
            text=self.texts.get(transaction_id, ""),
        )

    def custom_field_id(self, name: str, queue: str) -> int:
        self.calls.append(f"custom_field_id {name}")
        return CF_IDS[name]

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment:
        self.calls.append("download_attachment")
        if self.release_xml is None:
            raise errors.TrackerNotFound("no attachment", operation="download_attachment")
        return records.Attachment(
            id=3, filename=filename, content_type="application/xml", content=self.release_xml
        )


def _txn(txn_id: int, kind: str, creator: str, field: int | None = None) -> dict[str, Any]:
    return {"id": str(txn_id), "Type": kind, "Field": str(field or ""), "Creator": {"id": creator}}


def _ticket(requestors: tuple[str, ...] = (PROVIDER,), **fields: str) -> records.Ticket:
    values = dict(MAILED_FIELDS)
    values.update({k: (v,) if v else () for k, v in fields.items()})
    return records.Ticket(
        id=9,
        queue="3",
        subject="ARC CE 6.20.1",
        status="new",
        custom_fields=values,
        requestors=tuple(records.Watcher(kind="user", name=r) for r in requestors),
    )


def _request(to: S = S.UNVERIFIED) -> records.ReleaseRequest:
    return records.ReleaseRequest(ticket_id=9, transaction_id=99, current=to, previous=S.SUBMITTED)


MAIL = f"Please publish.\n\nSync-URL: {URL}\nAssociatedMajorRelease: UMD-5\n"


# -- when it reads ----------------------------------------------------------------------------


def test_a_ticket_with_its_mandatory_fields_costs_no_rt_call() -> None:
    rt = FakeRT(history=[_txn(51, "Create", PROVIDER)], texts={51: MAIL})
    ticket = _ticket(**{"Sync-URL": "rsync://h/m/", "AssociatedMajorRelease": "UMD-5"})
    assert MailIntake().fill(rt, ticket, _request()) is mail_fields.NOTHING
    assert rt.calls == []


def test_only_the_intake_reads_the_mail() -> None:
    rt = FakeRT(history=[_txn(51, "Create", PROVIDER)], texts={51: MAIL})
    assert MailIntake().fill(rt, _ticket(), _request(S.REJECTED)) is mail_fields.NOTHING
    assert rt.calls == []


# -- what it reads ------------------------------------------------------------------------------


def test_a_mailed_release_is_filled_in_from_the_mail_and_release_xml() -> None:
    rt = FakeRT(history=[_txn(51, "Create", PROVIDER)], texts={51: MAIL})
    filled = MailIntake().fill(rt, _ticket(), _request())
    # The queue's defaults (rsync, NonIncremental) are nobody's word: release.xml says
    # Incremental; Sync-Protocol rsync is what the ticket holds already.
    assert dict(filled.values) == {
        "Sync-URL": URL,
        "AssociatedMajorRelease": "UMD-5",
        "ReleaseType": "Incremental",
    }
    assert filled.sources["ReleaseType"] == "release.xml"
    assert rt.calls == [
        "transactions_of", "message 51", "custom_field_id Sync-Protocol",
        "custom_field_id ReleaseType", "download_attachment",
    ]  # fmt: skip


def test_a_field_a_person_set_after_the_mail_came_wins() -> None:
    history = [
        _txn(51, "Create", PROVIDER),
        _txn(60, "CustomField", "manager1", field=CF_IDS["ReleaseType"]),
    ]
    rt = FakeRT(history=history, texts={51: MAIL + "ReleaseType: Incremental\n"})
    filled = MailIntake().fill(rt, _ticket(), _request())
    assert "ReleaseType" not in filled.values  # the ticket's NonIncremental stays


def test_on_a_ticket_made_in_rt_every_value_it_holds_was_given() -> None:
    rt = FakeRT(history=[_txn(51, "Create", PROVIDER)], texts={51: MAIL}, interface="Web")
    filled = MailIntake().fill(rt, _ticket(), _request())
    assert dict(filled.values) == {"Sync-URL": URL, "AssociatedMajorRelease": "UMD-5"}
    assert not any(call.startswith("custom_field_id") for call in rt.calls)


def test_only_the_requestors_messages_count_and_the_newest_wins() -> None:
    history = [
        _txn(51, "Create", PROVIDER),
        _txn(52, "Correspond", "stranger@example.net"),
        _txn(53, "Comment", PROVIDER),
        _txn(54, "Correspond", PROVIDER),
    ]
    texts = {
        51: f"Sync-URL: {URL}\n",
        52: "AssociatedMajorRelease: EVIL-1\n",
        53: "AssociatedMajorRelease: COMMENT-1\n",
        54: "> Sync-URL: rsync://quoted/m/\nAssociatedMajorRelease: UMD-6\n",
    }
    rt = FakeRT(history=history, texts=texts, release_xml=valid_with(("UMD-5", "UMD-6")))
    filled = MailIntake().fill(rt, _ticket(), _request())
    assert filled.values["AssociatedMajorRelease"] == "UMD-6"
    assert filled.sources["AssociatedMajorRelease"] == "the mail of transaction #54"
    assert filled.values["Sync-URL"] == URL
    assert "message 52" not in rt.calls and "message 53" not in rt.calls


def test_a_message_by_someone_who_is_not_a_requestor_is_not_read() -> None:
    rt = FakeRT(history=[_txn(51, "Create", "manager1")], texts={51: MAIL}, interface="REST")
    filled = MailIntake().fill(rt, _ticket(), _request())
    assert filled.values["Sync-URL"] == XML_URL  # from release.xml, not the manager's text
    assert filled.sources["Sync-URL"] == "release.xml"


@pytest.mark.parametrize(
    ("release_xml", "note"),
    [
        (None, "no release.xml is attached to the ticket: attach it (by mail: answer with "
         "release.xml attached)"),
        (b"<Release>", "nothing could be read from release.xml: release.xml is invalid:"),
    ],
    ids=["missing", "invalid"],
)  # fmt: skip
def test_release_xml_that_cannot_be_read_is_a_note(release_xml: bytes | None, note: str) -> None:
    rt = FakeRT(history=[_txn(51, "Create", PROVIDER)], texts={51: ""}, release_xml=release_xml)
    filled = MailIntake().fill(rt, _ticket(), _request())
    assert filled.values == {}
    (said,) = filled.notes
    assert said.startswith(note)


def test_a_permanent_tracker_error_becomes_a_note_and_a_transient_one_is_retried() -> None:
    denied = errors.TrackerAuthFailed("no right", operation="transactions_of")
    filled = MailIntake().fill(FakeRT(history=[], texts={}, error=denied), _ticket(), _request())
    assert filled.values == {}
    assert filled.notes[0].startswith("the bridge could not read the ticket's messages")
    down = errors.TrackerUnavailable("RT is down", operation="transactions_of")
    with pytest.raises(errors.TrackerUnavailable):
        MailIntake().fill(FakeRT(history=[], texts={}, error=down), _ticket(), _request())


def test_sync_urls_are_checked_with_the_sync_settings() -> None:
    mail = "Sync-Protocol: https\nSync-URL: http://download.example.org/arc/\n"
    rt = FakeRT(history=[_txn(51, "Create", PROVIDER)], texts={51: mail})
    refused = MailIntake().fill(rt, _ticket(), _request())
    assert "Sync-URL" not in refused.values
    assert "http:// is not allowed" in refused.problems[0]
    allowed = MailIntake(allow_http=True).fill(rt, _ticket(), _request())
    assert allowed.values["Sync-URL"] == "http://download.example.org/arc/"


# -- check_fields and fill_in_fields ------------------------------------------------------------


def _with(inputs: Any, filled: mail_fields.Filled, **fields: str) -> Any:
    ticket = dataclasses.replace(
        inputs.ticket.ticket,
        custom_fields={
            **inputs.ticket.ticket.custom_fields,
            **{k: (v,) if v else () for k, v in fields.items()},
        },
    )
    return dataclasses.replace(inputs, ticket=TicketView.of(ticket, filled=filled))


def test_what_was_filled_in_is_written_back_with_where_it_came_from(
    make_inputs: MakeInputs,
) -> None:
    filled = mail_fields.Filled(
        values={"Sync-URL": URL, "AssociatedMajorRelease": "UMD-5"},
        sources={
            "Sync-URL": "the mail of transaction #51",
            "AssociatedMajorRelease": "release.xml",
        },
    )
    inputs = _with(
        make_inputs(S.SUBMITTED, S.UNVERIFIED),
        filled,
        **{"Sync-URL": "", "AssociatedMajorRelease": ""},
    )
    assert inputs.ticket.major_release == "UMD-5"  # every action sees the filled-in value
    assert ticket_actions.check_fields(inputs).effects == ()
    assert fill_in_fields(inputs).effects == (
        effects.SetFields(fields={"Sync-URL": URL, "AssociatedMajorRelease": "UMD-5"}),
        effects.Comment(
            text=f"Filled in by the bridge at intake: Sync-URL = '{URL}' (from the mail of "
            "transaction #51); AssociatedMajorRelease = 'UMD-5' (from release.xml)."
        ),
    )
    assert fill_in_fields(make_inputs(S.SUBMITTED, S.UNVERIFIED)).effects == ()


def test_check_fields_refuses_a_refused_line_and_says_what_else_is_wrong(
    make_inputs: MakeInputs,
) -> None:
    filled = mail_fields.Filled(
        problems=(
            "Sync-URL 'file:///etc/passwd' in the mail of transaction #51: not an rsync URL",
        ),
        notes=("no release.xml is attached to the ticket",),
    )
    inputs = _with(make_inputs(S.SUBMITTED, S.UNVERIFIED), filled, AssociatedMajorRelease="")
    with pytest.raises(daemon_errors.TicketIncomplete) as caught:
        ticket_actions.check_fields(inputs)
    assert str(caught.value) == (
        "the ticket lacks AssociatedMajorRelease; fill it in on the ticket, or answer with one "
        "line per field in your message's text, such as 'Sync-URL: rsync://host/module/path/'; "
        "Sync-URL 'file:///etc/passwd' in the mail of transaction #51: not an rsync URL; "
        "also, no release.xml is attached to the ticket"
    )
    complete = _with(make_inputs(S.SUBMITTED, S.UNVERIFIED), filled)
    with pytest.raises(daemon_errors.TicketIncomplete, match=r"^Sync-URL 'file:///etc/passwd'"):
        ticket_actions.check_fields(complete)  # a refused line fails even a complete ticket


def test_the_docs_quote_the_reply_a_provider_gets_for_a_missing_field(
    make_inputs: MakeInputs,
) -> None:
    inputs = make_inputs(
        S.SUBMITTED, S.UNVERIFIED, subject="ARC CE 6.20.1", AssociatedMajorRelease=""
    )
    with pytest.raises(daemon_errors.TicketIncomplete) as caught:
        ticket_actions.check_fields(inputs)
    failed = dataclasses.replace(inputs, failure=str(caught.value), failure_for_provider=True)
    (reply,) = ticket_actions.reply_failure(failed).effects
    assert isinstance(reply, effects.Reply)
    doc = (paths.ROOT / "docs" / "mail-intake.md").read_text()
    quoted = re.search(r"reply such as\n\n  ```\n  (.*?)\n  ```", doc)
    assert quoted is not None
    assert reply.text.splitlines()[0] == quoted.group(1)
