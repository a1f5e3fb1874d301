"""Reconciliation against a fake RT history, on a real queue (SQLite in tmp_path); and the
tracker calls it uses, on an httpx2 mock transport (the real RT: tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import parse_qs

import httpx2
import pytest

from bridge import errors, records
from bridge.intake import reconcile
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.store import database, events, queue
from bridge.tracker.client import TrackerClient
from bridge.tracker.history import FieldChange, Watched

S = records.RolloutState
CF = 2


def txn(transaction_id: int, ticket: int, old: str, new: str, actor: str = "qc") -> FieldChange:
    return FieldChange(
        transaction_id=transaction_id,
        ticket_id=ticket,
        field_id=CF,
        old=old,
        new=new,
        actor=actor,
        created="2026-11-24T12:00:00Z",
    )


class FakeHistory:
    """RT's history of RolloutProgress changes in the release queue."""

    def __init__(self, *changes: FieldChange) -> None:
        self.changes = list(changes)
        self.asked: list[int] = []

    def custom_field_ids(self, names: Sequence[str], queue: str) -> dict[str, int]:
        assert queue == "sw-rel" and "RolloutProgress" in names
        return {"RolloutProgress": CF}  # an RT that has only RolloutProgress of them

    def field_changes_since(
        self,
        watched: Watched,
        after_transaction_id: int,
        *,
        queue: str,
        limit: int = 1000,
        page_size: int = 100,
    ) -> list[FieldChange]:
        assert (watched, queue) == (
            Watched(custom_fields={CF: "RolloutProgress"}, status=True),
            "sw-rel",
        )
        self.asked.append(after_transaction_id)
        newer = [c for c in self.changes if c.transaction_id > after_transaction_id]
        return sorted(newer, key=lambda c: c.transaction_id)[:limit]

    def newest_field_change(self, watched: Watched, *, queue: str) -> int | None:
        return max((c.transaction_id for c in self.changes), default=None)


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[queue.Queue]:
    engine = database.create_engine(database.default_url(tmp_path))
    database.migrate(engine)
    yield queue.Queue(engine)
    engine.dispose()


def queued(jobs: queue.Queue) -> list[tuple[int, int, str, str, str]]:
    return [
        (j.ticket_id, j.request.transaction_id, j.request.current.label, j.request.source.label,
         j.request.actor)
        for j in reversed(jobs.list_jobs(limit=1000))
    ]  # fmt: skip


def test_the_first_run_starts_at_the_newest_change_and_queues_nothing(
    jobs: queue.Queue, caplog: pytest.LogCaptureFixture
) -> None:
    history = FakeHistory(txn(40, 1, "Submitted", "Unverified"), txn(45, 2, "", "Unverified"))
    report = reconcile.Reconciler(jobs, history, "sw-rel").run()
    assert report.first_run
    assert (report.cursor_before, report.cursor_after) == (None, 45)
    assert jobs.get_state(reconcile.CURSOR_KEY) == "45"
    assert queued(jobs) == []
    assert "earlier changes are NOT queued" in caplog.text
    assert "rollout reconcile --since TXN" in report.summary()


def test_an_empty_history_starts_at_zero(jobs: queue.Queue) -> None:
    report = reconcile.Reconciler(jobs, FakeHistory(), "sw-rel").run()
    assert report.cursor_after == 0
    assert jobs.get_state(reconcile.CURSOR_KEY) == "0"


def test_missing_changes_are_queued_once_in_order_as_recovered(jobs: queue.Queue) -> None:
    history = FakeHistory(txn(40, 1, "Submitted", "Unverified"))
    reconciler = reconcile.Reconciler(jobs, history, "sw-rel")
    reconciler.run()  # first run: cursor 40
    history.changes += [
        txn(41, 1, "Unverified", "InVerification", actor="qc-anna"),
        txn(43, 2, "Submitted", "Unverified"),
        txn(44, 1, "InVerification", "StageRollout"),
    ]
    # The hook of 43 did arrive.
    jobs.enqueue(
        records.ReleaseRequest(ticket_id=2, transaction_id=43, current=S.UNVERIFIED,
                               previous=S.SUBMITTED, actor="qc")
    )  # fmt: skip

    report = reconciler.run()

    assert (report.found, len(report.queued), report.known) == (3, 2, 1)
    assert (report.cursor_before, report.cursor_after) == (40, 44)
    assert queued(jobs) == [
        (2, 43, "Unverified", "hook", "qc"),
        (1, 41, "InVerification", "recovered", "qc-anna"),
        (1, 44, "StageRollout", "recovered", "qc"),
    ]
    again = reconciler.run()
    assert (again.found, again.queued) == (0, ())
    assert history.asked == [40, 44]
    # Late hooks for the recovered changes: nothing new.
    late = [
        records.ReleaseRequest(ticket_id=1, transaction_id=t, current=S.UNVERIFIED,
                               previous=S.SUBMITTED, actor="qc")
        for t in (41, 44)
    ]  # fmt: skip
    assert [r.created for r in jobs.enqueue_many(late)] == [False, False]
    assert len(queued(jobs)) == 3


def test_a_value_the_bridge_does_not_know_is_refused_and_told_once(jobs: queue.Queue) -> None:
    history = FakeHistory(txn(40, 1, "Submitted", "Unverified"))
    reconciler = reconcile.Reconciler(jobs, history, "sw-rel")
    reconciler.run()
    history.changes.append(txn(41, 3, "Unverified", "Shipped"))

    report = reconciler.run()

    assert report.refused == (41,)
    assert queued(jobs) == []
    (event,) = jobs.pending_comments()
    assert (event.kind, event.ticket_id, event.transaction_id) == (
        events.EventKind.RECOVERED_REFUSED, 3, 41,
    )  # fmt: skip
    assert "'Shipped', which the bridge does not know" in event.detail
    reconciler.run(since=0)  # a backfill sees it again, but the ticket is told once
    assert len(jobs.events(kind=events.EventKind.RECOVERED_REFUSED)) == 1


def test_a_backfill_queues_history_without_moving_the_cursor_back(jobs: queue.Queue) -> None:
    history = FakeHistory(
        txn(10, 1, "Submitted", "Unverified"),
        txn(12, 2, "Submitted", "Unverified"),
        txn(50, 3, "Submitted", "Unverified"),
    )
    reconciler = reconcile.Reconciler(jobs, history, "sw-rel", batch_limit=1)
    reconciler.run()  # cursor 50
    reports = reconciler.run_until_done(since=0)  # one change per pass
    assert [len(r.queued) for r in reports] == [1, 1, 1, 0]
    assert [t for _, t, *_ in queued(jobs)] == [10, 12, 50]
    assert history.asked == [0, 10, 12, 50]
    assert jobs.get_state(reconcile.CURSOR_KEY) == "50"
    reconciler.run(since=5)  # a second backfill: nothing twice, the cursor stays
    assert len(queued(jobs)) == 3
    assert jobs.get_state(reconcile.CURSOR_KEY) == "50"


# -- the tracker calls, on an httpx2 mock transport --------------------------------------------


def _client(handler: httpx2.MockTransport) -> TrackerClient:
    settings = TrackerSettings(url="https://rt.example.org/", token=Secret("1-2-3"), retries=0)
    return TrackerClient(settings, transport=handler)


def _item(transaction_id: int, field: str = str(CF), ticket: int = 5) -> dict[str, object]:
    return {
        "id": str(transaction_id),
        "type": "transaction",
        "ObjectType": "RT::Ticket",
        "ObjectId": str(ticket),
        "Type": "CustomField",
        "Field": field,
        "OldValue": "Submitted",
        "NewValue": "Unverified",
        "Creator": {"type": "user", "id": "qc-anna"},
        "Created": "2026-11-24T12:00:00Z",
    }


def test_changes_are_paged_by_transaction_id_and_checked() -> None:
    history = [_item(41), _item(42, field="9"), _item(43), _item(47), _item(48)]
    queries: list[str] = []

    def rt(request: httpx2.Request) -> httpx2.Response:
        assert request.method == "POST" and request.url.path == "/REST/2.0/transactions"
        query = parse_qs(request.content.decode())["query"][0]
        queries.append(query)
        after = int(query.rsplit("id > ", 1)[1])
        page = [i for i in history if int(str(i["id"])) > after][:2]
        assert request.url.params["per_page"] == "2"
        assert request.url.params["orderby"] == "id"
        return httpx2.Response(200, json={"items": page, "count": len(page), "total": None})

    client = _client(httpx2.MockTransport(rt))
    changes = client.field_changes_since(Watched.one(CF), 40, queue="it's", page_size=2)

    assert [c.transaction_id for c in changes] == [41, 43, 47, 48]  # 42 is another field
    assert changes[0] == FieldChange(
        transaction_id=41, ticket_id=5, field_id=CF, old="Submitted", new="Unverified",
        actor="qc-anna", created="2026-11-24T12:00:00Z",
    )  # fmt: skip
    assert queries[0] == (
        "ObjectType = 'RT::Ticket' AND TicketQueue = 'it\\'s' "
        "AND ((Type = 'CustomField' AND (Field = '2'))) AND id > 40"
    )
    assert [q.rsplit(" ", 1)[1] for q in queries] == ["40", "42", "47"]  # a short page ends it
    assert client.round_trips["field_changes_since"] == 3


def test_the_field_id_is_read_from_the_queue_once() -> None:
    calls: list[str] = []

    def rt(request: httpx2.Request) -> httpx2.Response:
        calls.append(request.url.path)
        if request.url.path == "/REST/2.0/queue/sw-rel":
            fields = [
                {"id": "3", "name": "EmergencyRelease"},
                {"id": "2", "name": "RolloutProgress"},
            ]
            return httpx2.Response(200, json={"id": 1, "TicketCustomFields": fields})
        return httpx2.Response(403, json={"message": "Forbidden"})

    client = _client(httpx2.MockTransport(rt))
    assert client.custom_field_id("RolloutProgress", "sw-rel") == 2
    assert client.custom_field_id("RolloutProgress", "sw-rel") == 2
    assert client.custom_field_ids(["RolloutProgress", "EmergencyRelease"], "sw-rel") == {
        "RolloutProgress": 2,
        "EmergencyRelease": 3,
    }
    assert calls == ["/REST/2.0/queue/sw-rel"] * 2  # EmergencyRelease was not asked before
    assert client.custom_field_ids(["RolloutProgress", "EarlyAdopters"], "sw-rel") == {
        "RolloutProgress": 2
    }  # a field the queue lacks is left out
    with pytest.raises(errors.TrackerNotFound, match="no custom field 'Nope'"):
        client.custom_field_id("Nope", "sw-rel")
    with pytest.raises(errors.TrackerNotFound, match="RT shows no queue 'other'"):
        client.custom_field_id("RolloutProgress", "other")


def test_the_newest_change_is_one_search() -> None:
    def rt(request: httpx2.Request) -> httpx2.Response:
        assert request.url.params["order"] == "DESC"
        assert "id >" not in parse_qs(request.content.decode())["query"][0]
        return httpx2.Response(200, json={"items": [{"id": "77"}], "count": 1})

    client = _client(httpx2.MockTransport(rt))
    assert client.newest_field_change(Watched.one(CF), queue="sw-rel") == 77
    assert client.round_trips["newest_field_change"] == 1
