"""The tracker client: the ticket operations the bridge needs, over python-rt's REST2 client.

It offers exactly those operations (read a ticket, download an attachment, comment or reply,
change fields / watchers / status, create a ticket for providers and tests) and counts HTTP
round trips per operation. The session, retries and counting are ``session``'s, timeouts and
error mapping ``http``'s, the history reads ``recorded_history``'s, a user's groups
``memberships``'. It must not make workflow
decisions. One client per thread: the counters are not locked.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import rt.rest2

from bridge import errors, records
from bridge.tracker import memberships, messages, recorded_history

logger = logging.getLogger(__name__)

# Words RT puts in the messages of a PUT when it refused (part of) a change.
_REFUSAL = re.compile(
    r"invalid|permission denied|couldn't|could not|does not exist|not allowed|illegal|"
    r"no such|can't|may not",
    re.IGNORECASE,
)


def _owner_name(raw: object) -> str | None:
    """The owner's name from RT's ticket JSON (a user reference, or a plain name)."""
    name = raw.get("id") if isinstance(raw, Mapping) else raw
    return None if name in (None, "", "Nobody") else str(name)


def _refusals(messages: Sequence[object], fields: Iterable[str] = ()) -> list[str]:
    """The messages in which RT refused something.

    RT describes an accepted field change as "<Field> <old> changed to <new>" (or "<Field>
    <value> added"), quoting values that may contain any words, so messages about the fields
    being set are only read up to the field's name.
    """
    refused = []
    for message in messages:
        if not isinstance(message, str):
            continue
        about_field = any(message.startswith(f"{name} ") for name in fields)
        if about_field and not message.lower().startswith("invalid"):
            continue
        if _REFUSAL.search(message):
            refused.append(message)
    return refused


class TrackerClient(
    recorded_history.RecordedHistory, memberships.Memberships, messages.TicketMessages
):
    """RT operations for the bridge. Build one from ``TrackerSettings``.

    The session (transport, retries, round-trip counters) is ``session.TrackerSession``'s;
    the history reads are ``recorded_history.RecordedHistory``'s, the group look-up
    (``groups_of``) ``memberships.Memberships``'s, a transaction's message
    ``messages.TicketMessages``'s.
    """

    # -- reading --------------------------------------------------------------------------

    def get_ticket(self, ticket_id: int) -> records.Ticket:
        """The ticket with its custom fields and watchers (1 round trip, plus one per group
        the client has not seen before). Raises ``TrackerNotFound`` for an unknown ticket."""

        def fetch() -> records.Ticket:
            raw = self._rt.get_ticket(
                ticket_id,
                query_format={
                    "fields[Cc]": "Name",
                    "fields[AdminCc]": "Name",
                    "fields[Requestor]": "Name",
                },
            )
            return self._parse_ticket(raw)

        ticket = self._call("get_ticket", ticket_id, fetch)
        self._fields_seen[ticket.id] = frozenset(ticket.custom_fields)
        return ticket

    def _parse_ticket(self, raw: Mapping[str, Any]) -> records.Ticket:
        queue = raw.get("Queue") or {}
        custom_fields = {
            str(cf["name"]): tuple(str(v) for v in cf.get("values") or () if v not in (None, ""))
            for cf in raw.get("CustomFields") or ()
        }
        return records.Ticket(
            id=int(raw["id"]),
            queue=str(queue.get("Name") or queue.get("id") or ""),
            subject=str(raw.get("Subject") or ""),
            status=str(raw.get("Status") or ""),
            custom_fields=custom_fields,
            requestors=self._watchers(raw.get("Requestor")),
            cc=self._watchers(raw.get("Cc")),
            admin_cc=self._watchers(raw.get("AdminCc")),
            owner=_owner_name(raw.get("Owner")),
        )

    def _watchers(self, items: Sequence[Mapping[str, Any]] | None) -> tuple[records.Watcher, ...]:
        result = []
        for item in items or ():
            kind = str(item["type"])
            ident = str(item["id"])
            name = self._group_name(ident) if kind == "group" else ident
            result.append(records.Watcher(kind=kind, name=name))
        return tuple(result)

    def _group_name(self, group_id: str) -> str:
        """Group names by id; RT's ticket JSON names watcher groups by id only."""
        if group_id not in self._group_names:
            raw = self._rt.session.get(self.settings.rest_url + f"group/{group_id}")
            if raw.status_code != 200:
                raise self._for_status(
                    raw.status_code, raw.text, {"operation": self._operation, "ticket_id": None}
                )
            self._group_names[group_id] = str(raw.json()["Name"])
        return self._group_names[group_id]

    def _check_groups_exist(self, ticket_id: int, names: Sequence[str]) -> None:
        """Refuse unknown group names up front: RT 5.0 answers them with a bare HTTP 500."""
        known = set(self._group_names.values())
        for name in dict.fromkeys(names):
            if name in known:
                continue

            def lookup(name: str = name) -> list[dict[str, Any]]:
                response = self._rt.session.post(
                    self.settings.rest_url + "groups",
                    json=[{"field": "Name", "operator": "=", "value": name}],
                    params={"fields": "Name"},
                )
                if response.status_code != 200:
                    raise self._for_status(
                        response.status_code,
                        response.text,
                        {"operation": "find_group", "ticket_id": ticket_id},
                    )
                return list(response.json()["items"])

            items = self._call("find_group", ticket_id, lookup)
            match = [i for i in items if i.get("Name") == name]
            if not match:
                raise errors.TrackerRejected(
                    f"RT has no group named {name!r}; create it (rollout tracker init) or fix "
                    "the notification settings",
                    operation="update_ticket",
                    ticket_id=ticket_id,
                )
            self._group_names[str(match[0]["id"])] = name

    def _attachments_named(self, ticket_id: int, filename: str) -> list[dict[str, Any]]:
        """The ticket's attachments called ``filename`` (one request, inside ``_call``)."""
        # One request of our own: python-rt's paged search makes a second one for accounts
        # that are not superusers (RT leaves out "pages" for them).
        response = self._rt.session.post(
            self.settings.rest_url + f"ticket/{int(ticket_id)}/attachments",
            json=[{"field": "Filename", "operator": "=", "value": filename}],
            params={"fields": "Filename,ContentType,ContentLength", "per_page": 100},
        )
        if response.status_code == 404:
            return []  # RT answers 404, not [], to accounts that are not superusers
        if response.status_code != 200:
            raise self._for_status(
                response.status_code,
                response.text,
                {"operation": self._operation, "ticket_id": ticket_id},
            )
        return [a for a in response.json()["items"] if a.get("Filename") == filename]

    def newest_attachment_id(self, ticket_id: int, filename: str) -> int | None:
        """The id of the newest attachment called ``filename``, or None (1 round trip)."""

        def fetch() -> int | None:
            found = self._attachments_named(ticket_id, filename)
            return max((int(a["id"]) for a in found), default=None)

        return self._call("newest_attachment_id", ticket_id, fetch)

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment:
        """The newest attachment called ``filename`` on the ticket, with its exact bytes
        (2 round trips). Raises ``TrackerNotFound`` when the ticket has none."""

        def fetch() -> records.Attachment:
            matching = self._attachments_named(ticket_id, filename)
            if not matching:
                raise errors.TrackerNotFound(
                    f"the ticket has no attachment named {filename!r}; attach it to the ticket",
                    operation="download_attachment",
                    ticket_id=ticket_id,
                )
            newest = max(matching, key=lambda a: int(a["id"]))
            raw = self._rt.get_attachment(int(newest["id"]))
            content = base64.b64decode("".join(str(raw["Content"]).split()), validate=True)
            txn = raw.get("TransactionId") or newest.get("TransactionId")
            txn_id = txn.get("id") if isinstance(txn, dict) else txn
            return records.Attachment(
                id=int(newest["id"]),
                filename=filename,
                content_type=str(raw.get("ContentType") or ""),
                content=content,
                transaction_id=int(txn_id) if txn_id else None,
            )

        return self._call("download_attachment", ticket_id, fetch)

    # -- writing --------------------------------------------------------------------------

    def comment(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        """Add a private comment (RT mails AdminCc, and Cc with the product's comment scrip).

        ``status`` sets the ticket's status in the same call. Never retried once it may have
        reached RT.
        """
        self._correspond("comment", ticket_id, text, status)

    def reply(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        """Add a reply (RT mails requestors, Cc and AdminCc); ``status`` as for ``comment``.

        A reply reopens a resolved ticket, so resolve in the same call (``status``).
        """
        self._correspond("reply", ticket_id, text, status)

    def _correspond(self, kind: str, ticket_id: int, text: str, status: str | None) -> None:
        path = "comment" if kind == "comment" else "correspond"

        def send() -> None:
            body: dict[str, Any] = {"Content": text, "ContentType": "text/plain"}
            if status is not None:
                body["Status"] = status
            response = self._rt.session.post(
                self.settings.rest_url + f"ticket/{int(ticket_id)}/{path}", json=body
            )
            if response.status_code not in (200, 201):
                raise self._for_status(
                    response.status_code,
                    response.text,
                    {"operation": kind, "ticket_id": ticket_id},
                )
            messages = response.json()
            refused = _refusals(messages)
            if refused:
                raise errors.TrackerRejected(
                    f"RT refused part of the {kind}: " + "; ".join(refused),
                    operation=kind,
                    ticket_id=ticket_id,
                )

        self._call(kind, ticket_id, send, idempotent=False)

    def update_ticket(
        self,
        ticket_id: int,
        *,
        custom_fields: Mapping[str, str | Sequence[str]] | None = None,
        cc_groups: Sequence[str] | None = None,
        admin_cc_groups: Sequence[str] | None = None,
        status: str | None = None,
        owner: str | None = None,
        current: records.Ticket | None = None,
    ) -> list[str]:
        """Change fields, watcher groups and status in one round trip; returns RT's messages.

        ``cc_groups`` / ``admin_cc_groups`` replace the groups in that role; people added
        by hand stay (they are taken from ``current``, or read first at the cost of one more
        round trip). A custom field the ticket does not have, or a value RT refuses, raises
        ``TrackerRejected`` naming it: RT itself would silently ignore the first. ``owner``
        (a user name) is refused the same way when that user may not own the ticket.
        """
        body: dict[str, Any] = {}
        if custom_fields:
            known = self._fields_seen.get(ticket_id)
            if current is not None:
                known = frozenset(current.custom_fields)
            unknown = sorted(set(custom_fields) - known) if known is not None else []
            if unknown:
                raise errors.TrackerRejected(
                    f"the ticket has no custom field {', '.join(map(repr, unknown))}; fields "
                    f"on it: {', '.join(sorted(known or ()))}",
                    operation="update_ticket",
                    ticket_id=ticket_id,
                )
            body["CustomFields"] = {
                k: v if isinstance(v, str) else list(v) for k, v in custom_fields.items()
            }
        if cc_groups is not None or admin_cc_groups is not None:
            if current is None:
                current = self.get_ticket(ticket_id)
            self._check_groups_exist(ticket_id, [*(cc_groups or ()), *(admin_cc_groups or ())])
            if cc_groups is not None:
                body["Cc"] = _keep_people(current.cc, cc_groups)
            if admin_cc_groups is not None:
                body["AdminCc"] = _keep_people(current.admin_cc, admin_cc_groups)
        if status is not None:
            body["Status"] = status
        if owner is not None:
            body["Owner"] = owner
        if not body:
            return []

        def send() -> list[str]:
            messages = self._put(f"ticket/{int(ticket_id)}", body, ticket_id)
            refused = _refusals(messages, (custom_fields or {}).keys())
            if refused:
                raise errors.TrackerRejected(
                    "RT refused part of the change: " + "; ".join(refused),
                    operation="update_ticket",
                    ticket_id=ticket_id,
                )
            return messages

        messages = self._call("update_ticket", ticket_id, send)
        if owner is not None and self.get_ticket(ticket_id).owner != owner:
            # RT 5.0's REST2 says nothing about an owner it refused: read it back (one more
            # round trip, only when the owner changes).
            raise errors.TrackerRejected(
                f"RT did not make {owner} the owner (the user needs OwnTicket on the queue, "
                "the bridge's account ReassignTicket; see docs/tracker.md)",
                operation="update_ticket",
                ticket_id=ticket_id,
            )
        logger.info(
            "updated ticket %s: %s",
            ticket_id,
            "; ".join(messages) or "nothing changed",
            extra={"operation": "update_ticket", "ticket_id": ticket_id},
        )
        return messages

    def set_custom_fields(
        self, ticket_id: int, values: Mapping[str, str | Sequence[str]]
    ) -> list[str]:
        """Set custom fields (1 round trip). See ``update_ticket``."""
        return self.update_ticket(ticket_id, custom_fields=values)

    def set_watcher_groups(
        self,
        ticket_id: int,
        *,
        cc: Sequence[str] | None = None,
        admin_cc: Sequence[str] | None = None,
        current: records.Ticket | None = None,
    ) -> list[str]:
        """Replace the Cc and/or AdminCc groups. See ``update_ticket``."""
        return self.update_ticket(
            ticket_id, cc_groups=cc, admin_cc_groups=admin_cc, current=current
        )

    def resolve(self, ticket_id: int) -> list[str]:
        """Set the ticket's status to resolved (1 round trip)."""
        return self.update_ticket(ticket_id, status="resolved")

    def create_ticket(
        self,
        queue: str,
        subject: str,
        text: str,
        *,
        custom_fields: Mapping[str, str] | None = None,
        requestors: Sequence[str] = (),
        attachments: Sequence[tuple[str, bytes, str]] = (),
    ) -> int:
        """File a ticket as a technology provider would; returns its id (1 round trip).

        ``attachments`` are (filename, bytes, content type). ``requestors`` should name the
        provider: REST2, unlike RT's web form, does not make the creator a requestor, and a
        provider sees and answers only the tickets where they are one. RT drops a field the
        creator may not set (or see) without an error: read the ticket back to be sure. Not
        used by the daemon itself: it is here for the demo, the tests and provider tooling.
        """

        def send() -> int:
            extra: dict[str, Any] = {}
            if custom_fields:
                extra["CustomFields"] = dict(custom_fields)
            if requestors:
                extra["Requestor"] = list(requestors)
            files = [rt.rest2.Attachment(name, ctype, data) for name, data, ctype in attachments]
            return self._rt.create_ticket(
                queue, subject=subject, content=text, attachments=files or None, **extra
            )

        return self._call("create_ticket", None, send, idempotent=False)


def _keep_people(current: Sequence[records.Watcher], groups: Sequence[str]) -> list[str]:
    """The new role list: the people already there plus exactly ``groups``."""
    people = [w.name for w in current if w.kind != "group"]
    return people + [f"group:{g}" for g in dict.fromkeys(groups)]
