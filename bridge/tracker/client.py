"""The tracker client: the only module that talks to RT, over python-rt's REST2 client.

It offers exactly the operations the bridge needs (read a ticket, download an attachment,
comment or reply, change fields / watchers / status, create a ticket for providers and tests),
with a timeout on every call, retries with backoff for transient failures, errors of our own
that say what to do, and a count of HTTP round trips per operation. It must not make workflow
decisions. One client per thread: the counters are not locked.

Over 500 lines for now: its split along these seams is on branch h-kernel (http, client,
history), not merged yet (issue 12).
"""

from __future__ import annotations

import base64
import binascii
import logging
import random
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import rt.exceptions
import rt.rest2

from bridge import errors, records
from bridge.settings.model import TrackerSettings

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKOFF_SECONDS = 30.0
# Words RT puts in the messages of a PUT when it refused (part of) a change.
_REFUSAL = re.compile(
    r"invalid|permission denied|couldn't|could not|does not exist|not allowed|illegal|"
    r"no such|can't",
    re.IGNORECASE,
)


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


_CHANGE_FIELDS = "ObjectType,ObjectId,Type,Field,OldValue,NewValue,Creator,Created"


@dataclass(frozen=True, kw_only=True)
class FieldChange:
    """One change of a ticket custom field, as RT's history records it (a ``CustomField``
    transaction). ``old`` / ``new`` are RT's raw values (empty for none); ``actor`` is the
    login of the account that made the change."""

    transaction_id: int
    ticket_id: int
    field_id: int
    old: str
    new: str
    actor: str
    created: str


def _sql_string(value: str) -> str:
    """``value`` as a quoted TicketSQL/TransactionSQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _snippet(text: str, secrets: Iterable[str], limit: int = 200) -> str:
    """A short, single-line excerpt of ``text`` with any secret masked."""
    flat = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    for secret in secrets:
        if secret:
            flat = flat.replace(secret, "********")
    return flat[:limit] + ("…" if len(flat) > limit else "")


class TrackerClient:
    """RT operations for the bridge. Build one from ``TrackerSettings``.

    ``transport`` replaces the HTTP transport (tests use an httpx2 mock transport);
    ``sleep`` and ``jitter`` make backoff testable. ``round_trips`` counts HTTP requests per
    operation (retries included), ``retries`` the retries per operation.
    """

    def __init__(
        self,
        settings: TrackerSettings,
        *,
        transport: httpx2.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._jitter = jitter
        self.round_trips: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self._operation = "unknown"
        self._last_content_type = ""
        self._group_names: dict[str, str] = {}
        self._fields_seen: dict[int, frozenset[str]] = {}
        self._field_ids: dict[tuple[str, str], int] = {}
        self._secrets = [s.reveal() for s in (settings.token, settings.password) if s is not None]
        try:
            self._rt = rt.rest2.Rt(settings.rest_url, http_timeout=None)
        except ValueError as exc:
            raise errors.ConfigError([f"rt_url: {exc}"]) from exc
        self._rt.session.close()
        self._rt.session = self._make_session(transport)

    # -- plumbing -------------------------------------------------------------------------

    def _make_session(self, transport: httpx2.BaseTransport | None) -> httpx2.Client:
        s = self.settings
        headers = {"User-Agent": "rollout-bridge"}
        auth: tuple[str, str] | None = None
        if s.token is not None:
            headers["Authorization"] = f"token {s.token.reveal()}"
        elif s.user is not None and s.password is not None:
            auth = (s.user, s.password.reveal())
        return httpx2.Client(
            timeout=httpx2.Timeout(s.timeout, connect=min(s.timeout, 10.0)),
            verify=s.verify_tls,
            auth=auth,
            headers=headers,
            transport=transport,
            event_hooks={"request": [self._count_request], "response": [self._note_response]},
        )

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
        """Run ``fn`` as ``operation``, translating errors and retrying transient ones.

        A non-idempotent request (a comment) is retried only when it surely never reached
        RT (the connection could not be made), so a retry never duplicates it.
        """
        attempt = 0
        while True:
            attempt += 1
            self._operation = operation
            try:
                return fn()
            except Exception as exc:
                error = self._translate(exc, operation, ticket_id, attempt)
                never_sent = isinstance(
                    _root_cause(exc), httpx2.ConnectError | httpx2.ConnectTimeout
                )
                retry = (
                    error.transient
                    and attempt <= self.settings.retries
                    and (idempotent or never_sent)
                )
                if not retry:
                    raise error from exc
            delay = min(
                MAX_BACKOFF_SECONDS,
                self.settings.backoff * (2 ** (attempt - 1)) * (0.5 + self._jitter()),
            )
            self.retries[operation] += 1
            logger.warning(
                "RT %s failed (%s); retry %d in %.1f s",
                operation,
                type(error).__name__,
                attempt,
                delay,
                extra={"operation": operation, "ticket_id": ticket_id},
            )
            self._sleep(delay)

    def _translate(
        self, exc: BaseException, operation: str, ticket_id: int | None, attempt: int
    ) -> errors.TrackerError:
        if isinstance(exc, errors.TrackerError):
            exc.attempts = attempt
            return exc
        url = self.settings.web_url
        kw: dict[str, Any] = {"operation": operation, "ticket_id": ticket_id, "attempts": attempt}
        cause = _root_cause(exc)
        if isinstance(cause, httpx2.TimeoutException):
            return errors.TrackerUnavailable(
                f"RT at {url} did not answer within {self.settings.timeout:g} s "
                f"({type(cause).__name__}); is RT overloaded or down?",
                **kw,
            )
        if isinstance(cause, httpx2.ConnectError):
            return errors.TrackerUnavailable(
                f"could not connect to RT at {url}: {_snippet(str(cause), self._secrets)}; "
                "is RT running and is ROLLOUT_RT_URL right?",
                **kw,
            )
        if isinstance(cause, httpx2.TransportError):
            return errors.TrackerUnavailable(
                f"the connection to RT at {url} broke ({type(cause).__name__})", **kw
            )
        if isinstance(exc, rt.exceptions.AuthorizationError):
            return errors.TrackerAuthFailed(
                f"RT at {url} refused {self.settings.auth_description()} (HTTP 401); check "
                "ROLLOUT_RT_TOKEN, or ROLLOUT_RT_USER and ROLLOUT_RT_PASSWORD",
                status_code=401,
                **kw,
            )
        if isinstance(exc, rt.exceptions.NotFoundError):
            detail = _snippet(str(exc), self._secrets)
            return errors.TrackerNotFound(
                f"RT has no such object, or the bridge's account may not see it ({detail})",
                status_code=404,
                **kw,
            )
        if isinstance(exc, rt.exceptions.BadRequestError):
            return errors.TrackerRejected(
                f"RT refused the request (HTTP 400): {_snippet(str(exc), self._secrets)}",
                status_code=400,
                **kw,
            )
        if isinstance(exc, rt.exceptions.UnexpectedResponseError):
            if exc.status_code:
                return self._for_status(exc.status_code, exc.response_message or "", kw)
            return errors.TrackerBadAnswer(
                f"RT's answer was not what REST2 sends ({_snippet(str(exc), self._secrets, 120)})",
                **kw,
            )
        if isinstance(exc, ValueError | KeyError | TypeError | binascii.Error):
            kind = self._last_content_type or "no content type"
            return errors.TrackerBadAnswer(
                f"RT's answer was not what REST2 sends ({kind}; {type(exc).__name__}: "
                f"{_snippet(str(exc), self._secrets, 120)}); is ROLLOUT_RT_URL the RT root "
                "and not a proxy or login page?",
                **kw,
            )
        return errors.TrackerError(
            f"unexpected {type(exc).__name__}: {_snippet(str(exc), self._secrets)}", **kw
        )

    def _for_status(self, status: int, body: str, kw: dict[str, Any]) -> errors.TrackerError:
        excerpt = _snippet(body, self._secrets)
        if status == 401:
            return errors.TrackerAuthFailed(
                f"RT refused {self.settings.auth_description()} (HTTP 401)", status_code=401, **kw
            )
        if status == 403:
            return errors.TrackerAuthFailed(
                "RT says the bridge's account lacks the right for this (HTTP 403): "
                f"{excerpt}; grant it on the queue (see docs/tracker.md)",
                status_code=403,
                **kw,
            )
        if status == 404:
            return errors.TrackerNotFound("RT has no such object (HTTP 404)", status_code=404, **kw)
        if status == 429 or status >= 500:
            return errors.TrackerUnavailable(
                f"RT answered HTTP {status}"
                + (f": {excerpt}" if excerpt else " with an empty body"),
                status_code=status,
                **kw,
            )
        return errors.TrackerRejected(
            f"RT answered HTTP {status}: {excerpt}", status_code=status, **kw
        )

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
        current: records.Ticket | None = None,
    ) -> list[str]:
        """Change fields, watcher groups and status in one round trip; returns RT's messages.

        ``cc_groups`` / ``admin_cc_groups`` replace the groups in that role; people added
        by hand stay (they are taken from ``current``, or read first at the cost of one more
        round trip). A custom field the ticket does not have, or a value RT refuses, raises
        ``TrackerRejected`` naming it: RT itself would silently ignore the first.
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
            data = response.json()
            if not isinstance(data, dict) or not data.get("id"):
                raise errors.TrackerNotFound(no_queue, operation="custom_field_id")
            for item in data.get("TicketCustomFields") or ():
                if item.get("name") == name:
                    return int(item["id"])
            raise errors.TrackerNotFound(
                f"queue {queue!r} has no custom field {name!r} (or the bridge's account may "
                "not see it); run `rollout tracker init`",
                operation="custom_field_id",
            )

        field_id = self._call("custom_field_id", None, fetch)
        self._field_ids[key] = field_id
        return field_id

    def _field_changes_query(self, field_id: int, queue: str, after: int | None) -> str:
        query = (
            "ObjectType = 'RT::Ticket' AND Type = 'CustomField' "
            f"AND Field = '{int(field_id)}' AND TicketQueue = {_sql_string(queue)}"
        )
        if after is not None:
            query += f" AND id > {int(after)}"
        return query

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
    ) -> list[FieldChange]:
        """Changes of custom field ``field_id`` on tickets of ``queue`` made in transactions
        newer than ``after_transaction_id``, oldest first, at most ``limit`` of them.

        One TransactionSQL search per ``page_size`` changes (RT caps pages at 100). Pages are
        keyed by transaction id, so changes made while paging are neither skipped nor seen
        twice; a short page ends the search (a page can also be short because RT hid
        transactions the account may not see: the rest is found by the next call, which
        starts after the last change returned).
        """
        page_size = max(1, min(page_size, 100))

        def fetch() -> list[FieldChange]:
            changes: list[FieldChange] = []
            after = after_transaction_id
            while len(changes) < limit:
                items = self._search_transactions(
                    "field_changes_since",
                    self._field_changes_query(field_id, queue, after),
                    {
                        "fields": _CHANGE_FIELDS,
                        "orderby": "id",
                        "order": "ASC",
                        "per_page": page_size,
                    },
                )
                for item in items:
                    change = _field_change(item, field_id)
                    if change is not None:
                        changes.append(change)
                if items:
                    after = max(after, *(int(item["id"]) for item in items))
                if len(items) < page_size:
                    break
            return changes[:limit]

        return self._call("field_changes_since", None, fetch)

    def newest_field_change(self, field_id: int, *, queue: str) -> int | None:
        """The id of the newest transaction that changed custom field ``field_id`` on a ticket
        of ``queue``, or None when there is none (1 round trip)."""

        def fetch() -> int | None:
            items = self._search_transactions(
                "newest_field_change",
                self._field_changes_query(field_id, queue, None),
                {"fields": "ObjectId", "orderby": "id", "order": "DESC", "per_page": 1},
            )
            return int(items[0]["id"]) if items else None

        return self._call("newest_field_change", None, fetch)


def _field_change(item: Mapping[str, Any], field_id: int) -> FieldChange | None:
    """A ``FieldChange`` from one REST2 transaction item, or None when it is not a change of
    ``field_id`` on a ticket (a second check of what the query asked for)."""
    if (
        item.get("ObjectType") != "RT::Ticket"
        or item.get("Type") != "CustomField"
        or str(item.get("Field")) != str(field_id)
    ):
        return None
    creator = item.get("Creator")
    actor = creator.get("id") if isinstance(creator, Mapping) else creator
    return FieldChange(
        transaction_id=int(item["id"]),
        ticket_id=int(item["ObjectId"]),
        field_id=int(field_id),
        old=str(item.get("OldValue") or ""),
        new=str(item.get("NewValue") or ""),
        actor=str(actor or ""),
        created=str(item.get("Created") or ""),
    )


def _keep_people(current: Sequence[records.Watcher], groups: Sequence[str]) -> list[str]:
    """The new role list: the people already there plus exactly ``groups``."""
    people = [w.name for w in current if w.kind != "group"]
    return people + [f"group:{g}" for g in dict.fromkeys(groups)]


def _root_cause(exc: BaseException) -> BaseException:
    """The httpx2 error behind ``exc`` (python-rt wraps them in its own ConnectionError), or
    ``exc`` itself. Stops at the first httpx2 error: below it are httpcore and OS details."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, httpx2.TransportError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return exc
