"""Mail intake: when a ticket asked into Unverified (its intake) lacks a mandatory field, read
what its requestors' messages and its release.xml say about the release fields, and let
``mail_fields`` decide what the bridge fills in; and the action that writes that back.

``MailIntake.fill`` runs in the processor's gather step, before the ticket is parsed into a
``TicketView``, so every action of the intake (and the choice of workflow, which follows the
major release) sees the filled-in values. It only reads RT (history, messages, release.xml,
custom field ids). ``fill_in_fields`` (the registry's action of that name) returns the
values as effects, so they reach the ticket only when the whole intake succeeds; a failed
intake leaves the ticket as it was, and the next attempt reads the mail again. A ticket that
has its mandatory fields costs no RT call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bridge import errors, records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.tracker import messages
from repo_daemon import errors as daemon_errors
from repo_daemon.release_xml import parse as release_xml_parse
from repo_daemon.sync import errors as sync_errors
from repo_daemon.sync import urls
from repo_daemon.workflow import effects, mail_fields, ticket_actions
from repo_daemon.workflow.gather import Inputs

logger = logging.getLogger(__name__)

MAX_MESSAGES = 20
"""The requestors' newest messages read (the one that created the ticket always counts)."""
RELEASE_XML = "release.xml"


class MailSource(Protocol):
    """What is read from RT (``TrackerClient`` has it all)."""

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]: ...

    def message(self, ticket_id: int, transaction_id: int) -> messages.Message: ...

    def custom_field_id(self, name: str, queue: str) -> int: ...

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment: ...


@dataclass(frozen=True, kw_only=True)
class MailIntake:
    """Reads a mailed release's fields for the gather step; the sync settings decide which
    Sync-URLs are acceptable, as they do for the sync itself."""

    allow_http: bool = False
    sftp_user: str | None = None

    @classmethod
    def from_settings(cls, settings: settings_model.Settings) -> MailIntake:
        repo = settings.repository
        return cls(allow_http=repo.sync_allow_http, sftp_user=repo.sftp_user)

    @staticmethod
    def applies(ticket: records.Ticket, request: records.ReleaseRequest) -> bool:
        """Whether the change is an intake of a ticket that lacks a mandatory field."""
        return request.current is RolloutState.UNVERIFIED and any(
            not (ticket.field(name) or "").strip() for name in ticket_actions.MANDATORY_FIELDS
        )

    def fill(
        self, source: MailSource, ticket: records.Ticket, request: records.ReleaseRequest
    ) -> mail_fields.Filled:
        """What to fill in on ``ticket`` for the change ``request`` (nothing when it does not
        apply). Raises the tracker's transient errors (the job is retried); a permanent one
        becomes a note, and the intake goes on with the ticket as it is."""
        if not self.applies(ticket, request):
            return mail_fields.NOTHING
        try:
            return self._read(source, ticket)
        except errors.TrackerError as exc:
            if exc.transient:
                raise
            logger.warning(
                "ticket %s: cannot read its messages for the release fields: %s",
                ticket.id,
                exc,
                extra={"ticket_id": ticket.id, "action": "mail_intake"},
            )
            return mail_fields.Filled(
                notes=(f"the bridge could not read the ticket's messages ({exc})",)
            )

    def check_url(self, protocol: str, url: str) -> str | None:
        """Why the sync would refuse ``url`` for ``protocol``, or None."""
        try:
            name = urls.check_protocol(protocol, url, allow_http=self.allow_http)
            if name == "rsync":
                urls.check_rsync_url(url)
            elif name == "sftp":
                urls.parse_sftp_url(url, self.sftp_user)
            else:
                urls.check_https_url(url, allow_http=self.allow_http)
        except sync_errors.SyncUrlRefused as exc:
            return exc.reason
        return None

    # -- reading --------------------------------------------------------------------------

    def _read(self, source: MailSource, ticket: records.Ticket) -> mail_fields.Filled:
        history = source.transactions_of(ticket.id)
        requestors = {w.name.lower() for w in ticket.requestors if w.kind == "user"}
        created = next((t for t in history if t.get("Type") == "Create"), None)
        first = source.message(ticket.id, int(created["id"])) if created is not None else None
        theirs = [
            t
            for t in history
            if t.get("Type") in ("Create", "Correspond") and _creator(t).lower() in requestors
        ][-MAX_MESSAGES:]
        read = []
        for txn in theirs:
            message = first if txn is created and first is not None else None
            message = message or source.message(ticket.id, int(txn["id"]))
            read.append(
                mail_fields.Message(transaction_id=message.transaction_id, text=message.text)
            )
        by_mail = first is not None and first.by_mail
        given = self._given(source, ticket, history, by_mail=by_mail)
        release_xml: Mapping[str, str] | None = None
        notes: tuple[str, ...] = ()
        if not given.issuperset(mail_fields.FIELDS):
            release_xml, notes = self._release_xml(source, ticket.id)
        return mail_fields.decide(
            current={name: ticket.field(name) for name in mail_fields.FIELDS},
            given=given,
            messages=read,
            release_xml=release_xml,
            check_url=self.check_url,
            notes=notes,
        )

    @staticmethod
    def _given(
        source: MailSource,
        ticket: records.Ticket,
        history: list[dict[str, Any]],
        *,
        by_mail: bool,
    ) -> frozenset[str]:
        """The fields a person gave on the ticket. A mail cannot set fields, so what a mailed
        ticket held from its creation is RT's queue default, not the provider's word: there
        only a later change (a CustomField transaction) counts."""
        present = [name for name in mail_fields.FIELDS if (ticket.field(name) or "").strip()]
        if not by_mail:
            return frozenset(present)
        changed = {str(t.get("Field")) for t in history if t.get("Type") == "CustomField"}
        return frozenset(
            name for name in present if str(source.custom_field_id(name, ticket.queue)) in changed
        )

    @staticmethod
    def _release_xml(
        source: MailSource, ticket_id: int
    ) -> tuple[Mapping[str, str] | None, tuple[str, ...]]:
        try:
            attachment = source.download_attachment(ticket_id, RELEASE_XML)
        except errors.TrackerNotFound:
            return None, (
                "no release.xml is attached to the ticket: attach it (by mail: answer with "
                "release.xml attached)",
            )
        try:
            info = release_xml_parse.parse_release(attachment.content)
        except daemon_errors.DaemonError as exc:
            return None, (f"nothing could be read from release.xml: {exc}",)
        return mail_fields.release_xml_values(info), ()


def fill_in_fields(inputs: Inputs) -> effects.Result:
    """Write back the release fields the bridge filled in at intake, and say on the ticket
    where each value came from; nothing when it filled in nothing."""
    filled = inputs.ticket.filled
    if not filled.values:
        return effects.Result(detail="nothing to fill in")
    return effects.Result(
        detail=f"filled in {', '.join(filled.values)}",
        effects=(
            effects.SetFields(fields=filled.values),
            effects.Comment(text=filled.comment()),
        ),
    )


def _creator(transaction: Mapping[str, Any]) -> str:
    creator = transaction.get("Creator")
    name = creator.get("id") if isinstance(creator, Mapping) else creator
    return str(name or "")
