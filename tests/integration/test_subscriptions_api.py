"""The subscriptions' and deliveries' API as ``rollout serve`` serves it (a real uvicorn
process, SQLite and PostgreSQL): mounted beside the hook and the feed, refused without a login
by default (as RFC 7807 problems), and, when open to anyone, managing subscriptions and reading
and resending deliveries over real HTTP, with ``api`` as the actor."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bridge.store import database, tables
from tests.integration.test_events_api_served import FeedServer
from tests.support import delivery_story


def ask(
    server: FeedServer, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {} if body is None else {"content-type": "application/json"}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


@pytest.fixture
def story(db_url: str) -> str:
    engine = database.create_engine(db_url)
    delivery_story.write(engine)
    engine.dispose()
    return db_url


def test_not_open_by_default_and_refusals_are_problems(story: str, tmp_path: Path) -> None:
    server = FeedServer(db_url=story, data_dir=tmp_path / "a", extra={}).start()
    try:
        status, headers, body = ask(server, "GET", "/api/subscriptions")
        assert status == 401 and "subscriptions" not in body
        assert headers["content-type"] == "application/problem+json"
        assert headers["www-authenticate"].startswith('Basic realm="Rollout webhooks"')
        assert ask(server, "POST", "/api/deliveries/1/redeliver")[0] == 401
        paths = ask(server, "GET", "/openapi.json")[2]["paths"]
        assert {"/api/events", "/api/subscriptions", "/api/deliveries"} <= set(paths)
    finally:
        assert server.stop() == 0


def test_managed_over_real_http_when_open(story: str, tmp_path: Path) -> None:
    server = FeedServer(
        db_url=story, data_dir=tmp_path / "b",
        extra={"ROLLOUT_SUBSCRIPTIONS_API_ROLES": "anyone"},
    ).start()  # fmt: skip
    try:
        status, _, added = ask(server, "POST", "/api/subscriptions",
                               {"name": "chat", "url": "https://chat.example.org/x",
                                "kinds": ["release_*"], "ping": False})  # fmt: skip
        assert status == 201 and added["secret"].startswith("whsec_")
        assert added["subscription"]["enabled"] is True and added["ping"] is None
        _, _, listed = ask(server, "GET", "/api/subscriptions")
        assert [s["name"] for s in listed["subscriptions"]] == ["chat", "ci", "mirror"]
        assert added["secret"] not in json.dumps(listed)
        _, _, page = ask(server, "GET", "/api/deliveries?subscription=ci&limit=2")
        assert [d["id"] for d in page["deliveries"]] == [6, 4] and "before=4" in page["next"]
        status, _, again = ask(server, "POST", "/api/deliveries/4/redeliver")
        assert status == 200 and again["was"] == "failed"
        status, _, recovered = ask(server, "POST", "/api/deliveries/recover",
                                   {"subscription": "ci", "since": "2026-12-01"})  # fmt: skip
        assert status == 200 and recovered["count"] == 1
        status, _, problem = ask(server, "PATCH", "/api/subscriptions/nope", {"url": "x"})
        assert status == 404 and problem["title"] == "Not Found"
        assert ask(server, "DELETE", "/api/subscriptions/chat")[2]["deliveries"] == 0
    finally:
        assert server.stop() == 0
    engine = database.create_engine(story)
    try:
        log = tables.event_log
        with engine.connect() as conn:
            actors = conn.execute(
                sa.select(log.c.kind, log.c.actor).where(
                    log.c.kind.in_(["subscription_changed", "deliveries_requeued"]),
                    log.c.actor == "api",
                )
            ).all()
    finally:
        engine.dispose()
    assert sorted(k for k, _ in actors) == ["deliveries_requeued"] * 2 + [
        "subscription_changed"] * 2  # fmt: skip
