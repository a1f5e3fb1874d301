"""A tracker stand-in for the scale benchmark: a small threaded HTTP server on loopback that
answers the RT 5 REST2 calls the bridge's daemon makes, as RT 5.0.3 answers them, and times
itself.

It owns tickets (custom fields, watchers, status, owner), their release.xml attachments,
the comments and replies written to them, and the groups with their members. It answers:
``GET ticket/:id`` (custom fields, watchers), ``PUT ticket/:id`` (RT's list of messages),
``POST ticket/:id/comment|correspond``, ``POST ticket/:id/attachments`` and
``GET attachment/:id`` (the content as base64), ``GET group/:id``, ``POST groups``,
``GET user/:name``, ``GET queue/:name`` (its custom fields' ids), ``GET customfield/:id``,
``GET ticket/:id/history`` and ``POST transactions`` (empty: the benchmark's changes all come
with their hook).
Any other route is answered 404 and recorded in ``unhandled``, so a benchmark can insist on
none. Every answered call's time in the handler (from the parsed request line to the last
byte written) is recorded with its ticket, so the benchmark can take the tracker's share out
of the bridge's time.

It is benchmark scaffolding, not RT: no rights, no scrips, no mail, no authentication check
(the ``Authorization`` header is required, never verified), no history of its own. It must
not be used instead of the real RT where the product's behaviour towards RT is tested.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/REST/2.0/"
_TICKET = re.compile(r"ticket/(\d+)")
_TICKET_SUB = re.compile(r"ticket/(\d+)/(comment|correspond|attachments|history)")
_ATTACHMENT = re.compile(r"attachment/(\d+)")
_GROUP = re.compile(r"group/(\d+)")
_USER = re.compile(r"user/([^/]+)")
_CUSTOMFIELD = re.compile(r"customfield/(\d+)")
_QUEUE = re.compile(r"queue/([^/]+)")


@dataclass
class Ticket:
    """One ticket as the stand-in keeps it."""

    id: int
    queue: str
    subject: str
    fields: dict[str, list[str]]
    status: str = "new"
    owner: str = "Nobody"
    requestors: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)  # "user" or "group:<Name>"
    admin_cc: list[str] = field(default_factory=list)
    attachments: list[int] = field(default_factory=list)
    comments: int = 0
    replies: int = 0


@dataclass(frozen=True, kw_only=True)
class Call:
    """One answered request: its route's name, its ticket (or None), when it began (Unix
    time) and how long the stand-in spent on it (seconds)."""

    route: str
    ticket_id: int | None
    began: float
    seconds: float


class TrackerStandIn:
    """``TrackerStandIn(members={"sw-rel-qc": ["manager"]})``; ``start()``, ``url``, ``stop()``.

    Groups are made on first mention (a watcher group named in a PUT, a search by name):
    ``members`` gives the members of those that need some. ``change_field`` is a person's
    change in RT and returns its transaction id, as the scrip would report it.
    """

    def __init__(self, *, members: Mapping[str, Iterable[str]] = {}) -> None:
        self._lock = threading.Lock()
        self.tickets: dict[int, Ticket] = {}
        self._attachments: dict[int, tuple[int, str, str, bytes, int]] = {}
        self._groups: dict[str, int] = {}
        self._fields: dict[str, int] = {}
        self._members: dict[str, list[str]] = {g: list(m) for g, m in members.items()}
        self._ids = itertools.count(10_000)
        self.calls: list[Call] = []
        self.unhandled: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for name in self._members:
            self._group_id(name)

    # -- the driver's side (RT's web UI, in effect) ----------------------------------------

    def add_ticket(
        self,
        ticket_id: int,
        fields: Mapping[str, str | Iterable[str]],
        *,
        attachment: tuple[str, bytes, str] | None = None,
        queue: str = "sw-rel",
        requestor: str = "provider",
    ) -> None:
        """File a ticket with ``fields`` and, optionally, (filename, bytes, type) attached."""
        values = {k: [v] if isinstance(v, str) else list(v) for k, v in fields.items()}
        with self._lock:
            ticket = Ticket(
                id=ticket_id, queue=queue, subject=f"release {ticket_id}", fields=values,
                requestors=[requestor],
            )  # fmt: skip
            self.tickets[ticket_id] = ticket
            if attachment is not None:
                name, data, ctype = attachment
                aid = next(self._ids)
                self._attachments[aid] = (aid, name, ctype, data, next(self._ids))
                ticket.attachments.append(aid)

    def change_field(self, ticket_id: int, name: str, value: str) -> tuple[str, int]:
        """A person sets a custom field: (the old value, the transaction id)."""
        with self._lock:
            ticket = self.tickets[ticket_id]
            old = (ticket.fields.get(name) or [""])[0]
            ticket.fields[name] = [value]
            return old, next(self._ids)

    def field(self, ticket_id: int, name: str) -> str:
        with self._lock:
            return (self.tickets[ticket_id].fields.get(name) or [""])[0]

    def route_counts(self) -> Counter[str]:
        with self._lock:
            return Counter(c.route for c in self.calls)

    # -- serving ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """RT's web root as the bridge's settings name it (``REST/2.0/`` is added there)."""
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> None:
        stand_in = self

        class Handler(_Handler):
            owner = stand_in

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> TrackerStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answers (called with the request parsed; return (status, JSON)) -------------------

    def _group_id(self, name: str) -> int:
        if name not in self._groups:
            self._groups[name] = next(self._ids)
        return self._groups[name]

    def _field_id(self, name: str) -> int:
        if name not in self._fields:
            self._fields[name] = len(self._fields) + 1
        return self._fields[name]

    def _group_name(self, group_id: int) -> str | None:
        return next((n for n, i in self._groups.items() if i == group_id), None)

    def _watchers(self, items: list[str]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            if item.startswith("group:"):
                gid = self._group_id(item.removeprefix("group:"))
                out.append({"type": "group", "id": str(gid), "_url": f"group/{gid}"})
            else:
                out.append({"type": "user", "id": item, "_url": f"user/{item}"})
        return out

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any, int | None]:
        """(HTTP status, JSON answer, ticket id) for one request below ``REST/2.0/``."""
        with self._lock:
            return self._answer(method, path, body)

    def _answer(self, method: str, path: str, body: Any) -> tuple[int, Any, int | None]:
        if m := _TICKET_SUB.fullmatch(path):
            tid, what = int(m.group(1)), m.group(2)
            ticket = self.tickets.get(tid)
            if ticket is None:
                return 404, {"message": "Resource does not exist"}, tid
            if what == "attachments" and method == "POST":
                wanted = {c.get("value") for c in body or () if c.get("field") == "Filename"}
                items = [
                    {"id": aid, "type": "attachment", "Filename": name, "ContentType": ctype,
                     "ContentLength": len(data), "_url": f"attachment/{aid}"}
                    for aid, name, ctype, data, _txn in (self._attachments[a]
                                                          for a in ticket.attachments)
                    if not wanted or name in wanted
                ]  # fmt: skip
                return 200, _page(items), tid
            if what in ("comment", "correspond") and method == "POST":
                if what == "comment":
                    ticket.comments += 1
                else:
                    ticket.replies += 1
                messages = ["Comments added" if what == "comment" else "Correspondence added"]
                if body.get("Status") and body["Status"] != ticket.status:
                    messages.append(f"Status changed from '{ticket.status}' to '{body['Status']}'")
                    ticket.status = body["Status"]
                return 201, messages, tid
            if what == "history" and method == "GET":
                return 200, _page([]), tid
        elif m := _TICKET.fullmatch(path):
            tid = int(m.group(1))
            ticket = self.tickets.get(tid)
            if ticket is None:
                return 404, {"message": "Resource does not exist"}, tid
            if method == "GET":
                return 200, self._ticket_json(ticket), tid
            if method == "PUT":
                return 200, self._edit(ticket, body or {}), tid
        elif (m := _ATTACHMENT.fullmatch(path)) and method == "GET":
            found = self._attachments.get(int(m.group(1)))
            if found is None:
                return 404, {"message": "Resource does not exist"}, None
            aid, name, ctype, data, txn = found
            return 200, {
                "id": aid, "Filename": name, "ContentType": ctype,
                "Content": base64.b64encode(data).decode("ascii"),
                "TransactionId": {"id": str(txn), "type": "transaction"},
            }, None  # fmt: skip
        elif (m := _GROUP.fullmatch(path)) and method == "GET":
            group = self._group_name(int(m.group(1)))
            if group is None:
                return 404, {"message": "Resource does not exist"}, None
            members = [{"type": "user", "id": u} for u in self._members.get(group, ())]
            return 200, {"id": int(m.group(1)), "Name": group, "Disabled": "0",
                         "Members": members}, None  # fmt: skip
        elif path == "groups" and method == "POST":
            names: list[str] = []
            for clause in body or ():
                value = clause.get("value")
                names += value if isinstance(value, list) else [value]
            chosen = names if names else list(self._groups)
            items = [{"id": self._group_id(n), "Name": n, "type": "group"} for n in chosen]
            return 200, _page(items), None
        elif (m := _USER.fullmatch(path)) and method == "GET":
            name = urllib.parse.unquote(m.group(1))
            return 200, {"id": name, "Name": name}, None
        elif path == "transactions" and method == "POST":
            return 200, _page([]), None
        elif (m := _QUEUE.fullmatch(path)) and method == "GET":
            name = urllib.parse.unquote(m.group(1))
            if name not in {t.queue for t in self.tickets.values()}:
                return 403, {"message": "No permission to view queue"}, None
            fields = [
                {"id": str(self._field_id(f)), "name": f, "type": "customfield"}
                for f in sorted({f for t in self.tickets.values() for f in t.fields})
            ]
            return 200, {"id": 1, "Name": name, "TicketCustomFields": fields}, None
        elif (m := _CUSTOMFIELD.fullmatch(path)) and method == "GET":
            return 200, {"id": int(m.group(1))}, None
        self.unhandled.append(f"{method} {path}")
        return 404, {"message": "Resource does not exist"}, None

    def _ticket_json(self, ticket: Ticket) -> dict[str, Any]:
        return {
            "id": ticket.id,
            "Queue": {"id": "1", "Name": ticket.queue, "type": "queue"},
            "Subject": ticket.subject,
            "Status": ticket.status,
            "Owner": {"id": ticket.owner, "type": "user"},
            "CustomFields": [
                {
                    "id": str(self._field_id(name)),
                    "name": name,
                    "type": "customfield",
                    "values": values,
                }
                for name, values in sorted(ticket.fields.items())
            ],
            "Requestor": self._watchers(ticket.requestors),
            "Cc": self._watchers(ticket.cc),
            "AdminCc": self._watchers(ticket.admin_cc),
        }

    def _edit(self, ticket: Ticket, body: Mapping[str, Any]) -> list[str]:
        """Apply a PUT as RT does and say what changed in RT's words."""
        messages: list[str] = []
        for name, value in (body.get("CustomFields") or {}).items():
            new = [value] if isinstance(value, str) else [str(v) for v in value]
            old = ticket.fields.get(name, [])
            if name not in ticket.fields:
                continue  # RT ignores a field the ticket does not have, silently
            if new == old:
                continue
            ticket.fields[name] = new
            if len(new) == 1 and len(old) == 1:
                messages.append(f"{name} {old[0]} changed to {new[0]}")
            else:
                messages += [f"{name} {v} added" for v in new if v not in old]
                messages += [f"{v} is no longer a value for custom field {name}"
                             for v in old if v not in new]  # fmt: skip
        for role, attr in (("Cc", "cc"), ("AdminCc", "admin_cc")):
            if role in body:
                wanted = [str(v) for v in body[role]]
                current = getattr(ticket, attr)
                messages += [f"Added {w} as {role} for this ticket" for w in wanted
                             if w not in current]  # fmt: skip
                messages += [f"{c} is no longer {role} for this ticket" for c in current
                             if c not in wanted]  # fmt: skip
                setattr(ticket, attr, wanted)
        if body.get("Status") and body["Status"] != ticket.status:
            messages.append(f"Status changed from '{ticket.status}' to '{body['Status']}'")
            ticket.status = str(body["Status"])
        if body.get("Owner") and body["Owner"] != ticket.owner:
            messages.append(f"Owner changed from {ticket.owner} to {body['Owner']}")
            ticket.owner = str(body["Owner"])
        return messages

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


def _page(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "count": len(items), "total": len(items), "page": 1,
            "pages": 1, "per_page": 100}  # fmt: skip


def _route(method: str, path: str) -> str:
    """A call's name without its ids: ``GET ticket/:id``."""
    return f"{method} " + re.sub(r"/\d+", "/:id", re.sub(r"^user/[^/]+", "user/:name", path))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as RT's server offers
    owner: TrackerStandIn

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the calls are recorded instead

    def _serve(self) -> None:
        began_wall, began = time.time(), time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parsed = urllib.parse.urlsplit(self.path)
        if not parsed.path.startswith(PREFIX) or "Authorization" not in self.headers:
            status, answer, ticket = 401, {"message": "Unauthorized"}, None
            path = parsed.path
        else:
            path = parsed.path[len(PREFIX) :]
            form = "form-urlencoded" in (self.headers.get("Content-Type") or "")
            body = (
                dict(urllib.parse.parse_qsl(raw.decode())) if form
                else json.loads(raw) if raw else None
            )  # fmt: skip
            status, answer, ticket = self.owner.answer(self.command, path, body)
        data = json.dumps(answer).encode()
        # Recorded before the answer is sent: a client that has its answer finds its call
        # in ``calls`` (recording after the write raced the client's next look).
        self.owner._record(
            Call(route=_route(self.command, path), ticket_id=ticket, began=began_wall,
                 seconds=time.perf_counter() - began)
        )  # fmt: skip
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()
