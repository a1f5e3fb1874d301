"""The history reads: one ticket's transactions, and field changes across a queue.

Owns the requests reconciliation and the ticket history need (``/ticket/:id/history``,
TransactionSQL searches, a custom field's id in a queue); the queries and parsing are
``history``'s. It must not make workflow decisions.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from bridge import errors
from bridge.tracker import history, session


class RecordedHistory(session.TrackerSession):
    """The history reads of ``TrackerClient``."""

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
        found = self.custom_field_ids([name], queue)
        if name not in found:
            raise errors.TrackerNotFound(
                f"queue {queue!r} has no custom field {name!r} (or the bridge's account "
                "may not see it); run `rollout tracker init`",
                operation="custom_field_id",
            )
        return found[name]

    def custom_field_ids(self, names: Sequence[str], queue: str) -> dict[str, int]:
        """The ids of those of the ticket custom fields ``names`` applied to ``queue`` (1 round
        trip for the names not asked before, then remembered); a name the queue lacks is left
        out. Raises ``TrackerNotFound`` when the queue does not exist or the bridge may not
        see it."""
        missing = [n for n in names if (n, queue) not in self._field_ids]
        if missing:

            def fetch() -> dict[str, int]:
                response = self._rt.session.get(
                    self.settings.rest_url + "queue/" + urllib.parse.quote(queue, safe="")
                )
                no_queue = (
                    f"RT shows no queue {queue!r} to the bridge's account: it does not exist or "
                    "the account lacks SeeQueue on it; check ROLLOUT_QUEUE and docs/tracker.md"
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
                    return history.field_ids_in_queue(response.json(), missing)
                except LookupError:
                    raise errors.TrackerNotFound(no_queue, operation="custom_field_id") from None

            for name, field_id in self._call("custom_field_id", None, fetch).items():
                self._field_ids[(name, queue)] = field_id
        return {n: self._field_ids[(n, queue)] for n in names if (n, queue) in self._field_ids}

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
        watched: history.Watched,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
        ticket: int | None = None,
    ) -> list[history.FieldChange]:
        """The ``watched`` changes (custom fields, status) on tickets of ``queue`` (on ticket
        ``ticket`` only, when given) made in transactions newer than ``after_transaction_id``,
        oldest first, at most ``limit``.

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
                watched,
                after_transaction_id,
                queue=queue,
                limit=limit,
                page_size=page_size,
                ticket=ticket,
            )

        return self._call("field_changes_since", None, fetch)

    def tickets_in_queue(
        self, queue: str, *, ticket: int | None = None, page_size: int = 100
    ) -> list[history.QueueTicket]:
        """The tickets of ``queue`` (only ``ticket`` when given), oldest id first, each with its
        creation time and creator, status and current custom field values: one TicketSQL
        search per ``page_size`` tickets (RT caps pages at 100)."""
        page_size = max(1, min(page_size, history.MAX_PAGE_SIZE))

        def fetch() -> list[history.QueueTicket]:
            found: list[history.QueueTicket] = []
            page = 1
            while True:
                response = self._rt.session.get(
                    self.settings.rest_url + "tickets",
                    params={
                        "query": history.queue_tickets_query(queue, ticket=ticket),
                        "fields": history.TICKET_FIELDS,
                        "orderby": "id",
                        "order": "ASC",
                        "per_page": page_size,
                        "page": page,
                    },
                )
                if response.status_code != 200:
                    raise self._for_status(
                        response.status_code,
                        response.text,
                        {"operation": "tickets_in_queue", "ticket_id": ticket},
                    )
                data = response.json()
                items = data.get("items") or []
                found.extend(history.queue_ticket(item) for item in items)
                if len(items) < page_size or page * page_size >= int(data.get("total") or 0):
                    return found
                page += 1

        return self._call("tickets_in_queue", ticket, fetch)

    def newest_field_change(self, watched: history.Watched, *, queue: str) -> int | None:
        """The id of the newest ``watched`` change on a ticket of ``queue``, or None when there
        is none (1 round trip)."""

        def fetch() -> int | None:
            items = self._search_transactions(
                "newest_field_change",
                history.field_changes_query(watched, queue, None),
                history.newest_query_params(),
            )
            return int(items[0]["id"]) if items else None

        return self._call("newest_field_change", None, fetch)
