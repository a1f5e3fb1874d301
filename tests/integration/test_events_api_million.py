"""The API pages through 1,000,000 events without a window limit (SQLite): every event once,
in order, by following ``next`` with the largest page allowed."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge.store import database
from repo_daemon.web import events_api
from tests.integration.test_events_api import make_client
from tests.support import events_fill
from tests.support.feed_access import ADA

MILLION = 1_000_000


def test_the_api_pages_through_a_million_events(tmp_path: Path) -> None:
    engine = database.create_engine(database.default_url(tmp_path))
    try:
        database.migrate(engine)
        started = time.perf_counter()
        filled = events_fill.fill(engine, MILLION, start=datetime(2025, 1, 1))
        print(f"filled {MILLION} events in {time.perf_counter() - started:.1f} s")
        assert (filled.first_id, filled.last_id) == (1, MILLION)
        with make_client(engine) as client:
            _page_through(client, engine)
    finally:
        engine.dispose()


def _page_through(client: TestClient, engine: sa.Engine) -> None:
    url: str | None = f"/api/events?limit={events_api.MAX_LIMIT}&since=2000-01-01"
    expected = 1
    pages = 0
    slowest = 0.0
    began = time.perf_counter()
    while url is not None:
        started = time.perf_counter()
        answer = client.get(url, headers=ADA)
        slowest = max(slowest, time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ids = [e["id"] for e in body["events"]]
        assert ids == list(range(expected, expected + len(ids)))
        expected += len(ids)
        pages += 1
        url = body["next"]
    assert expected - 1 == MILLION
    assert pages == MILLION // events_api.MAX_LIMIT
    print(
        f"{pages} pages of {events_api.MAX_LIMIT} in {time.perf_counter() - began:.1f} s; "
        f"slowest {slowest * 1000:.0f} ms"
    )
