"""History reading for reconciliation: the TransactionSQL, the parsing and the paging (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.tracker import history


def _item(
    txn: int, *, field: int = 5, ticket: int = 1, kind: str = "CustomField"
) -> dict[str, Any]:
    return {
        "id": txn, "ObjectType": "RT::Ticket", "ObjectId": ticket, "Type": kind,
        "Field": str(field), "OldValue": "", "NewValue": "Unverified",
        "Creator": {"id": "qc"}, "Created": "2024-01-01T00:00:00Z",
    }  # fmt: skip


def test_the_query_quotes_the_queue_and_starts_after_a_transaction() -> None:
    query = history.field_changes_query(5, "it's\\q", 41)
    assert "Field = '5'" in query and "TicketQueue = 'it\\'s\\\\q'" in query
    assert query.endswith(" AND id > 41")
    assert "id >" not in history.field_changes_query(5, "sw-rel", None)


def test_an_item_becomes_a_change_only_when_it_is_one_of_the_field() -> None:
    change = history.field_change(_item(42), 5)
    assert change == history.FieldChange(
        transaction_id=42, ticket_id=1, field_id=5, old="", new="Unverified", actor="qc",
        created="2024-01-01T00:00:00Z",
    )  # fmt: skip
    assert history.field_change(_item(42, field=6), 5) is None
    assert history.field_change(_item(42, kind="Status"), 5) is None


def test_paging_is_keyed_by_transaction_id_and_stops_at_a_short_page() -> None:
    pages = [[_item(10), _item(11, field=6)], [_item(12)]]
    asked: list[str] = []

    def search(query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        asked.append(query)
        assert params["per_page"] == 2
        return pages.pop(0)

    changes = history.page_field_changes(search, 5, 3, queue="q", limit=10, page_size=2)
    assert [c.transaction_id for c in changes] == [10, 12]
    assert asked[0].endswith("id > 3") and asked[1].endswith("id > 11")


def test_a_field_id_is_read_from_the_queue() -> None:
    queue = {"id": 3, "TicketCustomFields": [{"name": "RolloutProgress", "id": "8"}]}
    assert history.field_id_in_queue(queue, "RolloutProgress") == 8
    assert history.field_id_in_queue(queue, "Other") is None
