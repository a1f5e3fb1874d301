"""History reading for reconciliation: the TransactionSQL, the parsing and the paging (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest

from bridge.tracker import history

WATCHED = history.Watched(custom_fields={5: "RolloutProgress", 7: "EarlyAdopters"}, status=True)


def _item(
    txn: int, *, field: int | str = 5, ticket: int = 1, kind: str = "CustomField"
) -> dict[str, Any]:
    return {
        "id": txn, "ObjectType": "RT::Ticket", "ObjectId": ticket, "Type": kind,
        "Field": str(field), "OldValue": "", "NewValue": "Unverified",
        "Creator": {"id": "qc"}, "Created": "2024-01-01T00:00:00Z",
    }  # fmt: skip


def test_the_query_quotes_the_queue_and_starts_after_a_transaction() -> None:
    query = history.field_changes_query(history.Watched.one(5), "it's\\q", 41)
    assert "Field = '5'" in query and "TicketQueue = 'it\\'s\\\\q'" in query
    assert query.endswith(" AND id > 41")
    assert "Type = 'Status'" not in query
    assert "id >" not in history.field_changes_query(history.Watched.one(5), "sw-rel", None)


def test_the_query_asks_for_each_field_and_the_status_in_one_search() -> None:
    query = history.field_changes_query(WATCHED, "sw-rel", 3)
    assert (
        "AND ((Type = 'CustomField' AND (Field = '5' OR Field = '7')) OR Type = 'Status')" in query
    )
    with pytest.raises(ValueError, match="nothing is watched"):
        history.field_changes_query(history.Watched(), "sw-rel", 3)


def test_an_item_becomes_a_change_only_when_it_is_a_watched_one() -> None:
    change = history.field_change(_item(42), WATCHED)
    assert change == history.FieldChange(
        transaction_id=42, ticket_id=1, field_id=5, field="RolloutProgress", old="",
        new="Unverified", actor="qc", created="2024-01-01T00:00:00Z",
    )  # fmt: skip
    assert change.changed_at == datetime(2024, 1, 1, 0, 0, 0)
    early = history.field_change(_item(43, field=7), WATCHED)
    assert early is not None and early.field == "EarlyAdopters"
    assert history.field_change(_item(42, field=6), WATCHED) is None
    status = history.field_change(_item(44, field="Status", kind="Status"), WATCHED)
    assert status is not None and (status.field, status.field_id) == ("Status", 0)
    assert history.field_change(_item(44, kind="Status"), history.Watched.one(5)) is None
    assert history.field_change(_item(45, kind="Set"), WATCHED) is None


def test_rts_times_are_read_as_naive_utc() -> None:
    assert history.parse_time("2026-11-24T10:00:00+01:00") == datetime(2026, 11, 24, 9, 0, 0)
    assert history.parse_time("2026-11-24 09:00:00") == datetime(2026, 11, 24, 9, 0, 0)
    assert history.parse_time("") is None
    assert history.parse_time("yesterday") is None


def test_paging_is_keyed_by_transaction_id_and_stops_at_a_short_page() -> None:
    pages = [[_item(10), _item(11, field=6)], [_item(12)]]
    asked: list[str] = []

    def search(query: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        asked.append(query)
        assert params["per_page"] == 2
        return pages.pop(0)

    changes = history.page_field_changes(search, WATCHED, 3, queue="q", limit=10, page_size=2)
    assert [c.transaction_id for c in changes] == [10, 12]
    assert asked[0].endswith("id > 3") and asked[1].endswith("id > 11")


def test_field_ids_are_read_from_the_queue() -> None:
    queue = {
        "id": 3,
        "TicketCustomFields": [
            {"name": "RolloutProgress", "id": "8"},
            {"name": "EarlyAdopters", "id": "9"},
        ],
    }
    assert history.field_id_in_queue(queue, "RolloutProgress") == 8
    assert history.field_id_in_queue(queue, "Other") is None
    assert history.field_ids_in_queue(queue, ["EarlyAdopters", "Other"]) == {"EarlyAdopters": 9}
    with pytest.raises(LookupError):
        history.field_ids_in_queue({"Name": "not a queue"}, ["EarlyAdopters"])
