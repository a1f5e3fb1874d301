"""Reading RT's history for reconciliation: ``FieldChange`` records and the TransactionSQL
that finds them.

Pure: builds the queries, pages through results handed to it and parses REST2 transaction
items. The requests themselves go through ``client.TrackerClient`` (``field_changes_since``,
``newest_field_change``). It must not decide what a change means for a release.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CHANGE_FIELDS = "ObjectType,ObjectId,Type,Field,OldValue,NewValue,Creator,Created"
MAX_PAGE_SIZE = 100  # RT caps pages at 100

Search = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]


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


def sql_string(value: str) -> str:
    """``value`` as a quoted TicketSQL/TransactionSQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def field_changes_query(field_id: int, queue: str, after: int | None) -> str:
    """TransactionSQL for changes of custom field ``field_id`` on tickets of ``queue``, made
    in transactions newer than ``after`` (all of them when None)."""
    query = (
        "ObjectType = 'RT::Ticket' AND Type = 'CustomField' "
        f"AND Field = '{int(field_id)}' AND TicketQueue = {sql_string(queue)}"
    )
    if after is not None:
        query += f" AND id > {int(after)}"
    return query


def field_change(item: Mapping[str, Any], field_id: int) -> FieldChange | None:
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


def page_field_changes(
    search: Search,
    field_id: int,
    after_transaction_id: int,
    *,
    queue: str,
    limit: int,
    page_size: int,
) -> list[FieldChange]:
    """Changes found by ``search`` (one TransactionSQL page per call), oldest first, at most
    ``limit``. Pages are keyed by transaction id, so changes made while paging are neither
    skipped nor seen twice; a short page ends the search."""
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    changes: list[FieldChange] = []
    after = after_transaction_id
    while len(changes) < limit:
        items = search(
            field_changes_query(field_id, queue, after),
            {"fields": CHANGE_FIELDS, "orderby": "id", "order": "ASC", "per_page": page_size},
        )
        for item in items:
            change = field_change(item, field_id)
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


def field_id_in_queue(data: Any, name: str) -> int | None:
    """The id of custom field ``name`` in REST2's queue JSON, or None when the queue does not
    have it. Raises ``LookupError`` when ``data`` is not a queue."""
    if not isinstance(data, dict) or not data.get("id"):
        raise LookupError("not a queue")
    for item in data.get("TicketCustomFields") or ():
        if item.get("name") == name:
            return int(item["id"])
    return None
