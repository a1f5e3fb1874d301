"""The tracker client: the ticket operations the bridge needs, over python-rt's REST2 client.

It offers exactly those operations (read a ticket, download an attachment, comment or reply,
change fields / watchers / status, create a ticket for providers and tests, read the history
reconciliation needs) and counts HTTP round trips per operation. Sessions, timeouts, retries
and error mapping are ``bridge.tracker.http``'s; history queries and records are
``bridge.tracker.history``'s. It must not make workflow decisions. One client per thread: the
counters are not locked. Over 500 lines because each operation carries its own request shape and
RT quirk (watcher groups named by id, 403 for unknown queues, refusals hidden in messages); the
plumbing and the history parsing are already out.
"""

from __future__ import annotations

import base64
import logging
import random
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx2
import rt.rest2

from bridge import errors, records
from bridge.settings import model as settings_model
from bridge.tracker import history, http

logger = logging.getLogger(__name__)

T = TypeVar("T")

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


class TrackerClient:
    """RT operations for the bridge. Build one from ``TrackerSettings``.

    ``transport`` replaces the HTTP transport (tests use an httpx2 mock transport);
    ``sleep`` and ``jitter`` make backoff testable. ``round_trips`` counts HTTP requests per
    operation (retries included), ``retries`` the retries per operation.
    """

    def __init__(
        self,
        settings: settings_model.TrackerSettings,
        *,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.round_trips: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self._operation = "unknown"
        self._last_content_type = ""
        self._group_names: dict[str, str] = {}
        self._fields_seen: dict[int, frozenset[str]] = {}
        self._field_ids: dict[tuple[str, str], int] = {}
        self._errors = http.ErrorMapping(settings)
        self._retrying = http.Retrying(settings, self._errors, sleep=sleep, jitter=jitter)
        try:
            self._rt = rt.rest2.Rt(settings.rest_url, http_timeout=None)
        except ValueError as exc:
            raise errors.ConfigError([f"rt_url: {exc}"]) from exc
        self._rt.session.close()
        self._rt.session = http.rest_session(
            settings,
            transport=transport,
            event_hooks={"request": [self._count_request], "response": [self._note_response]},
        )

    # -- plumbing -------------------------------------------------------------------------

    def _count_request(self, request: httpx2.Request) -> None:
        self.round_trips[self._operation] += 1

    def _note_response(self, response: httpx2.Response) -> None:
        self._last_content_type = response.headers.get("content-type", "")

    def close(self) -> None:
        """Close the HTTP connections."""
        self._rt.session.close()

    def __enter__(self) -> TrackerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def total_round_trips(self) -> int:
        """All HTTP requests this client has made."""
        return sum(self.round_trips.values())

    def _call(
        self,
        operation: str,
        ticket_id: int | None,
        fn: Callable[[], T],
        *,
        idempotent: bool = True,
    ) -> T:
        """Run ``fn`` as ``operation`` with ``http.Retrying`` (see there), counting it."""

        def start_attempt() -> None:
            self._operation = operation

        def count_retry() -> None:
            self.retries[operation] += 1

        return self._retrying.call(
            operation,
            ticket_id,
            fn,
            idempotent=idempotent,
            content_type=lambda: self._last_content_type,
            on_attempt=start_attempt,
            on_retry=count_retry,
        )

    def _for_status(self, status: int, body: str, kw: dict[str, Any]) -> errors.TrackerError:
        return self._errors.for_status(status, body, kw)

    def _put(self, path: str, body: Mapping[str, Any], ticket_id: int | None) -> list[str]:
        """PUT through the session, keeping the messages python-rt's edit_ticket drops."""
        response = self._rt.session.put(self.settings.rest_url + path, json=dict(body))
        if response.status_code != 200:
            raise self._for_status(
                response.status_code,
                response.text,
                {"operation": self._operation, "ticket_id": ticket_id},
            )
        answer = response.json()
        if not isinstance(answer, list) or not all(isinstance(m, str) for m in answer):
            raise TypeError(f"expected a list of messages, got {type(answer).__name__}")
        return answer

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

        ``attachments`` are (filename, bytes, content type). Not used by the daemon itself:
        it is here for the demo, the tests and provider tooling.
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

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """The ticket's history with values: type, field, old and new value, creator, time."""

        def fetch() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = []
            page = 1
            while True:
                response = self._rt.session.get(
                    self.settings.rest_url + f"ticket/{int(ticket_id)}/history",
                    params={
                        "fields": "Type,Field,OldValue,NewValue,Created,Creator",
                        "per_page": 100,
                        "page": page,
                    },
                )
                if response.status_code != 200:
                    raise self._for_status(
                        response.status_code,
                        response.text,
                        {"operation": "transactions_of", "ticket_id": ticket_id},
                    )
                data = response.json()
                items.extend(data["items"])
                if page * int(data["per_page"]) >= int(data["total"] or 0):
                    return items
                page += 1

        return self._call("transactions_of", ticket_id, fetch)

    # -- history across tickets (reconciliation) ---------------------------------------------

    def custom_field_id(self, name: str, queue: str) -> int:
        """The id of the ticket custom field ``name`` applied to ``queue`` (1 round trip, then
        remembered). Raises ``TrackerNotFound`` when the queue does not exist, the bridge may
        not see it, or the field is not applied to it."""
        key = (name, queue)
        if key in self._field_ids:
            return self._field_ids[key]

        def fetch() -> int:
            response = self._rt.session.get(
                self.settings.rest_url + "queue/" + urllib.parse.quote(queue, safe="")
            )
            no_queue = (
                f"RT shows no queue {queue!r} to the bridge's account: it does not exist or the "
                "account lacks SeeQueue on it; check ROLLOUT_QUEUE and docs/tracker.md"
            )
            if response.status_code in (403, 404):
                # RT answers 403, not 404, for a queue name it does not know.
                raise errors.TrackerNotFound(
                    no_queue, operation="custom_field_id", status_code=response.status_code
                )
            if response.status_code != 200:
                raise self._for_status(
                    response.status_code,
                    response.text,
                    {"operation": "custom_field_id", "ticket_id": None},
                )
            try:
                field_id = history.field_id_in_queue(response.json(), name)
            except LookupError:
                raise errors.TrackerNotFound(no_queue, operation="custom_field_id") from None
            if field_id is None:
                raise errors.TrackerNotFound(
                    f"queue {queue!r} has no custom field {name!r} (or the bridge's account "
                    "may not see it); run `rollout tracker init`",
                    operation="custom_field_id",
                )
            return field_id

        field_id = self._call("custom_field_id", None, fetch)
        self._field_ids[key] = field_id
        return field_id

    def _search_transactions(
        self, operation: str, query: str, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """One page of a TransactionSQL search (``POST /transactions``)."""
        response = self._rt.session.post(
            self.settings.rest_url + "transactions", data={"query": query}, params=dict(params)
        )
        if response.status_code != 200:
            raise self._for_status(
                response.status_code, response.text, {"operation": operation, "ticket_id": None}
            )
        items = response.json()["items"]
        if not isinstance(items, list):
            raise TypeError(f"expected a list of transactions, got {type(items).__name__}")
        return items

    def field_changes_since(
        self,
        field_id: int,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
    ) -> list[history.FieldChange]:
        """Changes of custom field ``field_id`` on tickets of ``queue`` made in transactions
        newer than ``after_transaction_id``, oldest first, at most ``limit`` of them.

        One TransactionSQL search per ``page_size`` changes (RT caps pages at 100). Pages are
        keyed by transaction id, so changes made while paging are neither skipped nor seen
        twice; a short page ends the search (a page can also be short because RT hid
        transactions the account may not see: the rest is found by the next call, which
        starts after the last change returned).
        """

        def search(query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
            return self._search_transactions("field_changes_since", query, params)

        def fetch() -> list[history.FieldChange]:
            return history.page_field_changes(
                search,
                field_id,
                after_transaction_id,
                queue=queue,
                limit=limit,
                page_size=page_size,
            )

        return self._call("field_changes_since", None, fetch)

    def newest_field_change(self, field_id: int, *, queue: str) -> int | None:
        """The id of the newest transaction that changed custom field ``field_id`` on a ticket
        of ``queue``, or None when there is none (1 round trip)."""

        def fetch() -> int | None:
            items = self._search_transactions(
                "newest_field_change",
                history.field_changes_query(field_id, queue, None),
                history.newest_query_params(),
            )
            return int(items[0]["id"]) if items else None

        return self._call("newest_field_change", None, fetch)


def _keep_people(current: Sequence[records.Watcher], groups: Sequence[str]) -> list[str]:
    """The new role list: the people already there plus exactly ``groups``."""
    people = [w.name for w in current if w.kind != "group"]
    return people + [f"group:{g}" for g in dict.fromkeys(groups)]
