"""Reading RT's history for reconciliation: ``FieldChange`` records and the TransactionSQL
that finds them.

What is looked for is ``Watched``: changes of some custom fields (by id) and, optionally, of
the ticket's status. Pure: builds the queries, pages through results handed to it and parses
REST2 transaction items. The requests themselves go through ``client.TrackerClient``
(``field_changes_since``, ``newest_field_change``). It must not decide what a change means for
a release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

CHANGE_FIELDS = "ObjectType,ObjectId,Type,Field,OldValue,NewValue,Creator,Created"
MAX_PAGE_SIZE = 100  # RT caps pages at 100
STATUS = "Status"  # the name a change of the ticket's status goes by

Search = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True, kw_only=True)
class Watched:
    """The changes looked for: of these custom fields (id → name), and of the ticket's status
    when ``status`` is set."""

    custom_fields: Mapping[int, str] = field(default_factory=dict)
    status: bool = False

    @classmethod
    def one(cls, field_id: int, name: str = "RolloutProgress") -> Watched:
        """Changes of one custom field only."""
        return cls(custom_fields={int(field_id): name})


@dataclass(frozen=True, kw_only=True)
class FieldChange:
    """One change of a ticket custom field (a ``CustomField`` transaction) or of its status (a
    ``Status`` transaction, ``field`` "Status", ``field_id`` 0), as RT's history records it.
    ``old`` / ``new`` are RT's raw values (empty for none; for a multi-value field the one
    value removed or added); ``actor`` is the login of the account that made the change,
    ``created`` RT's time of it (ISO 8601, UTC)."""

    transaction_id: int
    ticket_id: int
    field_id: int
    old: str
    new: str
    actor: str
    created: str
    field: str = "RolloutProgress"

    @property
    def changed_at(self) -> datetime | None:
        """``created`` as naive UTC, or None when RT gave no readable time."""
        return parse_time(self.created)


def parse_time(text: str) -> datetime | None:
    """RT's REST2 time (``2026-11-24T09:00:00Z``) as naive UTC; None when unreadable."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def sql_string(value: str) -> str:
    """``value`` as a quoted TicketSQL/TransactionSQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def field_changes_query(
    watched: Watched, queue: str, after: int | None, *, ticket: int | None = None
) -> str:
    """TransactionSQL for the ``watched`` changes on tickets of ``queue``, made in transactions
    newer than ``after`` (all of them when None), on ticket ``ticket`` only when given."""
    kinds = []
    if watched.custom_fields:
        fields = " OR ".join(f"Field = '{int(i)}'" for i in sorted(watched.custom_fields))
        kinds.append(f"(Type = 'CustomField' AND ({fields}))")
    if watched.status:
        kinds.append("Type = 'Status'")
    if not kinds:
        raise ValueError("nothing is watched")
    query = (
        f"ObjectType = 'RT::Ticket' AND TicketQueue = {sql_string(queue)} "
        f"AND ({' OR '.join(kinds)})"
    )
    if ticket is not None:
        query += f" AND ObjectId = {int(ticket)}"
    if after is not None:
        query += f" AND id > {int(after)}"
    return query


def field_change(item: Mapping[str, Any], watched: Watched) -> FieldChange | None:
    """A ``FieldChange`` from one REST2 transaction item, or None when it is not one of the
    ``watched`` changes on a ticket (a second check of what the query asked for)."""
    if item.get("ObjectType") != "RT::Ticket":
        return None
    kind = item.get("Type")
    if kind == "CustomField":
        try:
            field_id = int(str(item.get("Field")))
        except ValueError:
            return None
        name = watched.custom_fields.get(field_id)
        if name is None:
            return None
    elif kind == "Status" and watched.status:
        field_id, name = 0, STATUS
    else:
        return None
    creator = item.get("Creator")
    actor = creator.get("id") if isinstance(creator, Mapping) else creator
    return FieldChange(
        transaction_id=int(item["id"]),
        ticket_id=int(item["ObjectId"]),
        field_id=field_id,
        field=name,
        old=str(item.get("OldValue") or ""),
        new=str(item.get("NewValue") or ""),
        actor=str(actor or ""),
        created=str(item.get("Created") or ""),
    )


def page_field_changes(
    search: Search,
    watched: Watched,
    after_transaction_id: int,
    *,
    queue: str,
    limit: int,
    page_size: int,
    ticket: int | None = None,
) -> list[FieldChange]:
    """Changes found by ``search`` (one TransactionSQL page per call), oldest first, at most
    ``limit`` (on ticket ``ticket`` only when given). Pages are keyed by transaction id, so
    changes made while paging are neither skipped nor seen twice; a short page ends the
    search."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    changes: list[FieldChange] = []
    after = after_transaction_id
    while len(changes) < limit:
        items = search(
            field_changes_query(watched, queue, after, ticket=ticket),
            {"fields": CHANGE_FIELDS, "orderby": "id", "order": "ASC", "per_page": page_size},
        )
        for item in items:
            change = field_change(item, watched)
            if change is not None:
                changes.append(change)
        if items:
            after = max(after, *(int(item["id"]) for item in items))
        if len(items) < page_size:
            break
    return changes[:limit]


def newest_query_params() -> dict[str, Any]:
    """Search parameters that return only the newest matching transaction."""
    return {"fields": "ObjectId", "orderby": "id", "order": "DESC", "per_page": 1}


def field_ids_in_queue(data: Any, names: Iterable[str]) -> dict[str, int]:
    """The ids of the custom fields called ``names`` in REST2's queue JSON (those the queue
    has). Raises ``LookupError`` when ``data`` is not a queue."""
    if not isinstance(data, dict) or not data.get("id"):
        raise LookupError("not a queue")
    wanted = set(names)
    return {
        str(item["name"]): int(item["id"])
        for item in data.get("TicketCustomFields") or ()
        if item.get("name") in wanted
    }


def field_id_in_queue(data: Any, name: str) -> int | None:
    """The id of custom field ``name`` in REST2's queue JSON, or None when the queue does not
    have it. Raises ``LookupError`` when ``data`` is not a queue."""
    return field_ids_in_queue(data, [name]).get(name)


# -- the tickets of a queue (the backfill of the metrics' records) ---------------------------

TICKET_FIELDS = "Created,Creator,Status,CustomFields"


@dataclass(frozen=True, kw_only=True)
class QueueTicket:
    """A ticket of the queue as a search returns it: when and by whom it was created (RT's
    ``Created``, ISO 8601 UTC, and the creator's login), its status and its custom fields' current
    values (name → values, empty values left out)."""

    ticket_id: int
    created: str
    creator: str
    status: str
    custom_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def created_at(self) -> datetime | None:
        """``created`` as naive UTC, or None when RT gave no readable time."""
        return parse_time(self.created)

    def value(self, name: str) -> str:
        """The custom field's first value ("" when it has none)."""
        values = self.custom_fields.get(name) or ()
        return values[0] if values else ""


def queue_tickets_query(queue: str, *, ticket: int | None = None) -> str:
    """TicketSQL for the tickets of ``queue`` (only ``ticket`` when given)."""
    query = f"Queue = {sql_string(queue)}"
    if ticket is not None:
        query += f" AND id = {int(ticket)}"
    return query


def queue_ticket(item: Mapping[str, Any]) -> QueueTicket:
    """A ``QueueTicket`` from one REST2 ticket search item (``fields=TICKET_FIELDS``). Raises
    ``ValueError`` when the item has no ticket id."""
    try:
        ticket_id = int(str(item.get("id")))
    except ValueError:
        raise ValueError(f"a ticket search item without a ticket id: {item.get('id')!r}") from None
    creator = item.get("Creator")
    actor = creator.get("id") if isinstance(creator, Mapping) else creator
    custom_fields = {
        str(cf.get("name")): tuple(str(v) for v in cf.get("values") or () if v not in (None, ""))
        for cf in item.get("CustomFields") or ()
        if isinstance(cf, Mapping)
    }
    return QueueTicket(
        ticket_id=ticket_id,
        created=str(item.get("Created") or ""),
        creator=str(actor or ""),
        status=str(item.get("Status") or ""),
        custom_fields=custom_fields,
    )
