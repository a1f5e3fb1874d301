"""``FakeTracker``: RT in memory as the bridge sees it, and ``TrackerCall``, one call made on it.

A test fake (see ``bridge.testing``); the product never uses it.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from bridge import errors, records
from bridge.tracker import history


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrackerCall:
    """One call made on a ``FakeTracker``: the method, the ticket, and the other arguments."""

    operation: str
    ticket_id: int | None
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class FakeTracker:
    """RT in memory, as the bridge sees it: tickets, attachments, history; records every call.

    Set a ticket up with ``add_ticket`` and ``attach``; make a change as a person in RT would
    with ``change_field``, ``add_value`` / ``remove_value`` (a multi-value field) or
    ``change_status`` (each enters the history reconciliation reads). ``fail_next`` makes the
    next call raise. Like RT, a reply reopens a resolved ticket unless it sets the status,
    and a custom field the ticket does not have is refused (``TrackerRejected``). Who is in
    which group (``groups_of``) is ``memberships``: a user missing from it is unknown to RT.
    """

    def __init__(self, *, user: str = "rollout-bridge", first_transaction: int = 1000) -> None:
        self.user = user
        self.tickets: dict[int, records.Ticket] = {}
        self.attachments: dict[int, list[records.Attachment]] = {}
        self.comments: dict[int, list[str]] = {}
        self.replies: dict[int, list[str]] = {}
        self.calls: list[TrackerCall] = []
        self.history: list[history.FieldChange] = []
        self.closed = False
        # user -> the RT groups they belong to (``groups_of``); an unknown user is not found
        self.memberships: dict[str, frozenset[str]] = {}
        # Custom fields the queue lacks (an RT not yet set up for them): ``custom_field_ids``
        # leaves them out.
        self.missing_fields: set[str] = set()
        self._transactions: dict[int, list[dict[str, Any]]] = {}
        self._field_ids: dict[str, int] = {}
        self._ids = itertools.count(first_transaction)
        self._failures: list[errors.TrackerError] = []

    # -- setting up ----------------------------------------------------------------------

    def add_ticket(
        self,
        ticket_id: int,
        *,
        queue: str = "sw-rel",
        subject: str = "",
        status: str = "new",
        fields: Mapping[str, str | Sequence[str]] | None = None,
    ) -> records.Ticket:
        """Create a ticket with these custom fields (a field with no value: ``()``)."""
        ticket = records.Ticket(
            id=ticket_id,
            queue=queue,
            subject=subject or f"Release {ticket_id}",
            status=status,
            custom_fields={k: _values(v) for k, v in (fields or {}).items()},
        )
        self.tickets[ticket_id] = ticket
        self._transactions.setdefault(ticket_id, []).append(self._txn("Create", self.user))
        return ticket

    def attach(
        self, ticket_id: int, filename: str, content: bytes, content_type: str = "text/xml"
    ) -> records.Attachment:
        """Attach a file, as a new transaction; returns the attachment."""
        self._ticket(ticket_id, "attach")
        txn = self._txn("Correspond", "provider")
        self._transactions[ticket_id].append(txn)
        attachment = records.Attachment(
            id=next(self._ids),
            filename=filename,
            content_type=content_type,
            content=content,
            transaction_id=int(txn["id"]),
        )
        self.attachments.setdefault(ticket_id, []).append(attachment)
        return attachment

    def change_field(self, ticket_id: int, name: str, value: str, *, actor: str) -> int:
        """Set a custom field as ``actor`` would in RT; returns the transaction id."""
        ticket = self._ticket(ticket_id, "change_field")
        return self._set_field(ticket, name, value, actor)

    def add_value(self, ticket_id: int, name: str, value: str, *, actor: str) -> int:
        """Add one value to a multi-value custom field as ``actor`` would in RT (one
        transaction, new value ``value``); returns the transaction id."""
        ticket = self._ticket(ticket_id, "add_value")
        values = (*ticket.custom_fields.get(name, ()), value)
        return self._record_field(ticket, name, values, "", value, actor)

    def remove_value(self, ticket_id: int, name: str, value: str, *, actor: str) -> int:
        """Remove one value of a multi-value custom field as ``actor`` would in RT (one
        transaction, old value ``value``); returns the transaction id."""
        ticket = self._ticket(ticket_id, "remove_value")
        values = tuple(v for v in ticket.custom_fields.get(name, ()) if v != value)
        return self._record_field(ticket, name, values, value, "", actor)

    def change_status(self, ticket_id: int, status: str, *, actor: str) -> int:
        """Set the ticket's status as ``actor`` would in RT (resolve, reject, delete, open);
        returns the transaction id."""
        ticket = self._ticket(ticket_id, "change_status")
        self.tickets[ticket_id] = dataclasses.replace(ticket, status=status)
        txn = self._txn("Status", actor, Field="Status", OldValue=ticket.status, NewValue=status)
        self._transactions[ticket_id].append(txn)
        change = history.FieldChange(
            transaction_id=int(txn["id"]), ticket_id=ticket_id, field_id=0,
            field=history.STATUS, old=ticket.status, new=status, actor=actor, created="",
        )  # fmt: skip
        self.history.append(change)
        return change.transaction_id

    def fail_next(self, exc: errors.TrackerError) -> None:
        """Make the next call raise ``exc`` (calls after it work again)."""
        self._failures.append(exc)

    def operations(self) -> list[str]:
        """The names of the calls made so far, in order."""
        return [c.operation for c in self.calls]

    # -- the Tracker protocol --------------------------------------------------------------

    def groups_of(self, user: str, *, among: Collection[str] | None = None) -> frozenset[str]:
        self._call("groups_of", None, user=user, among=among)
        if user not in self.memberships:
            raise errors.TrackerNotFound(f"RT has no user {user!r}", operation="groups_of")
        groups = self.memberships[user]
        return groups if among is None else groups & frozenset(among)

    def get_ticket(self, ticket_id: int) -> records.Ticket:
        self._call("get_ticket", ticket_id)
        return self._ticket(ticket_id, "get_ticket")

    def newest_attachment_id(self, ticket_id: int, filename: str) -> int | None:
        self._call("newest_attachment_id", ticket_id, filename=filename)
        found = self._named(ticket_id, filename, "newest_attachment_id")
        return found[-1].id if found else None

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment:
        self._call("download_attachment", ticket_id, filename=filename)
        found = self._named(ticket_id, filename, "download_attachment")
        if not found:
            raise errors.TrackerNotFound(
                f"the ticket has no attachment named {filename!r}; attach it to the ticket",
                operation="download_attachment",
                ticket_id=ticket_id,
            )
        return found[-1]

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
        arguments = {"custom_fields": custom_fields, "cc_groups": cc_groups,
                     "admin_cc_groups": admin_cc_groups, "status": status,
                     "owner": owner}  # fmt: skip
        self._call("update_ticket", ticket_id, **{k: v for k, v in arguments.items() if v})
        ticket = self._ticket(ticket_id, "update_ticket")
        unknown = sorted(set(custom_fields or {}) - set(ticket.custom_fields))
        if unknown:
            raise errors.TrackerRejected(
                f"the ticket has no custom field {', '.join(map(repr, unknown))}",
                operation="update_ticket",
                ticket_id=ticket_id,
            )
        messages = []
        for name, value in (custom_fields or {}).items():
            self._set_field(self.tickets[ticket_id], name, value, self.user)
            messages.append(f"{name} changed")
        ticket = self.tickets[ticket_id]
        if cc_groups is not None:
            ticket = dataclasses.replace(ticket, cc=_groups(ticket.cc, cc_groups))
        if admin_cc_groups is not None:
            ticket = dataclasses.replace(ticket, admin_cc=_groups(ticket.admin_cc, admin_cc_groups))
        if status is not None:
            ticket = dataclasses.replace(ticket, status=status)
            messages.append(f"Status changed to {status}")
        if owner is not None:
            ticket = dataclasses.replace(ticket, owner=owner)
            messages.append(f"Owner changed to {owner}")
        self.tickets[ticket_id] = ticket
        return messages

    def comment(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        self._call("comment", ticket_id, text=text, status=status)
        self._correspond(ticket_id, "Comment", text, status, self.comments)

    def reply(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        self._call("reply", ticket_id, text=text, status=status)
        ticket = self._ticket(ticket_id, "reply")
        if status is None and ticket.status == "resolved":
            status = "open"  # RT reopens a resolved ticket on a reply
        self._correspond(ticket_id, "Correspond", text, status, self.replies)

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]:
        self._call("transactions_of", ticket_id)
        self._ticket(ticket_id, "transactions_of")
        return [dict(t) for t in self._transactions[ticket_id]]

    def custom_field_id(self, name: str, queue: str) -> int:
        self._call("custom_field_id", None, name=name, queue=queue)
        return self._field_id(name)

    def custom_field_ids(self, names: Sequence[str], queue: str) -> dict[str, int]:
        """Every name is a field of every queue here, unless ``missing_fields`` says not."""
        self._call("custom_field_ids", None, names=tuple(names), queue=queue)
        return {n: self._field_id(n) for n in names if n not in self.missing_fields}

    def _watched(self, change: history.FieldChange, watched: history.Watched) -> bool:
        if change.field == history.STATUS:
            return watched.status
        return watched.custom_fields.get(change.field_id) == change.field

    def field_changes_since(
        self,
        watched: history.Watched,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
    ) -> list[history.FieldChange]:
        self._call("field_changes_since", None, watched=watched, after=after_transaction_id)
        return [
            c
            for c in self.history
            if self._watched(c, watched)
            and c.transaction_id > after_transaction_id
            and self.tickets[c.ticket_id].queue == queue
        ][:limit]

    def newest_field_change(self, watched: history.Watched, *, queue: str) -> int | None:
        self._call("newest_field_change", None, watched=watched)
        ids = [
            c.transaction_id
            for c in self.history
            if self._watched(c, watched) and self.tickets[c.ticket_id].queue == queue
        ]
        return max(ids, default=None)

    def total_round_trips(self) -> int:
        """Every call counts as one round trip (the real client's counts may be higher)."""
        return len(self.calls)

    def close(self) -> None:
        self.closed = True

    # -- inside ----------------------------------------------------------------------------

    def _call(self, operation: str, ticket_id: int | None, **arguments: Any) -> None:
        self.calls.append(
            TrackerCall(operation=operation, ticket_id=ticket_id, arguments=arguments)
        )
        if self._failures:
            raise self._failures.pop(0)

    def _ticket(self, ticket_id: int, operation: str) -> records.Ticket:
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            raise errors.TrackerNotFound(
                f"there is no ticket {ticket_id}", operation=operation, ticket_id=ticket_id
            )
        return ticket

    def _named(self, ticket_id: int, filename: str, operation: str) -> list[records.Attachment]:
        self._ticket(ticket_id, operation)
        return [a for a in self.attachments.get(ticket_id, []) if a.filename == filename]

    def _txn(self, kind: str, actor: str, **more: Any) -> dict[str, Any]:
        return {"id": next(self._ids), "Type": kind, "Creator": {"id": actor}, **more}

    def _field_id(self, name: str) -> int:
        return self._field_ids.setdefault(name, len(self._field_ids) + 1)

    def _set_field(
        self, ticket: records.Ticket, name: str, value: str | Sequence[str], actor: str
    ) -> int:
        new = _values(value)
        return self._record_field(
            ticket, name, new, ticket.field(name) or "", new[0] if new else "", actor
        )

    def _record_field(
        self,
        ticket: records.Ticket,
        name: str,
        values: tuple[str, ...],
        old: str,
        new: str,
        actor: str,
    ) -> int:
        """The ticket's field now holds ``values``: one transaction from ``old`` to ``new``."""
        self.tickets[ticket.id] = dataclasses.replace(
            ticket, custom_fields={**ticket.custom_fields, name: values}
        )
        txn = self._txn("CustomField", actor, Field=self._field_id(name), OldValue=old,
                        NewValue=new)  # fmt: skip
        self._transactions[ticket.id].append(txn)
        change = history.FieldChange(
            transaction_id=int(txn["id"]),
            ticket_id=ticket.id,
            field_id=self._field_id(name),
            field=name,
            old=old,
            new=new,
            actor=actor,
            created="",
        )
        self.history.append(change)
        return change.transaction_id

    def _correspond(
        self,
        ticket_id: int,
        kind: str,
        text: str,
        status: str | None,
        log: dict[int, list[str]],
    ) -> None:
        ticket = self._ticket(ticket_id, kind.lower())
        log.setdefault(ticket_id, []).append(text)
        self._transactions[ticket_id].append(self._txn(kind, self.user))
        if status is not None:
            self.tickets[ticket_id] = dataclasses.replace(ticket, status=status)


def _values(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _groups(
    watchers: tuple[records.Watcher, ...], groups: Sequence[str]
) -> tuple[records.Watcher, ...]:
    """The role's people kept, its groups replaced (as ``TrackerClient.update_ticket`` does)."""
    people = tuple(w for w in watchers if w.kind != "group")
    return people + tuple(records.Watcher(kind="group", name=g) for g in groups)
