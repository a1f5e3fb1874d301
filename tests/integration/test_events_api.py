"""``GET /api/events`` mounted on the receiver's app, on real databases (SQLite and
PostgreSQL): keyset pages linked by ``next`` and ``Link``, filters as query parameters, a
reader's cursor, the four formats parsed back, clear 422s, the OpenAPI document, and who may
read it."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import feedparser
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge import secrets
from bridge.intake import receiver
from bridge.settings import model as settings_model
from bridge.store import database, event_feed
from bridge.store import queue as jobqueue
from repo_daemon.history import exports
from repo_daemon.web import events_access, events_api
from tests.support import events_fill, feed_access
from tests.support.feed_access import ADA, QUINN

T0 = datetime(2026, 5, 4, 8, 0, 0)
SECRET = "whsec_" + base64.b64encode(b"events-api-test-secret-24").decode()


def _settings() -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(SECRET)),
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = database.create_engine(db_url)
    yield engine
    engine.dispose()


def make_client(engine: sa.Engine, access: events_access.FeedAccess | None = None) -> TestClient:
    """The receiver's app with the feed mounted, as ``rollout serve`` composes it."""
    jobs = jobqueue.Queue(engine)
    routes = events_api.router(engine, access or feed_access.feed_access(), clock=lambda: T0)
    app = receiver.create_app(_settings(), jobs, routers=[routes])
    return TestClient(app, base_url="https://bridge.example.org")


@pytest.fixture
def client(engine: sa.Engine) -> Iterator[TestClient]:
    with make_client(engine) as test_client:
        yield test_client


def _get(client: TestClient, url: str, **params: Any) -> Any:
    answer = client.get(url, params=params or None, headers=ADA)
    assert answer.status_code == 200, answer.text
    return answer


def test_pages_link_to_each_other_and_give_every_event_once_while_events_arrive(
    client: TestClient, engine: sa.Engine
) -> None:
    events_fill.fill(engine, 23, start=T0)
    seen: list[int] = []
    url: str | None = "/api/events?limit=10"
    pages = 0
    while url is not None:
        answer = _get(client, url)
        body = answer.json()
        seen += [e["id"] for e in body["events"]]
        if body["next"] is not None:
            assert answer.headers["link"] == f'<{body["next"]}>; rel="next"'
            assert body["next"].startswith("https://bridge.example.org/api/events?")
        else:
            assert "link" not in answer.headers
        if pages < 2:
            events_fill.fill(engine, 5, start=T0)  # appended between pages
        pages += 1
        url = body["next"]
    assert seen == list(range(1, 23 + 2 * 5 + 1))
    assert body["resume_after"] == seen[-1]
    # Later: only what is newer.
    events_fill.fill(engine, 2, start=T0)
    later = _get(client, "/api/events", after=body["resume_after"]).json()
    assert [e["id"] for e in later["events"]] == [seen[-1] + 1, seen[-1] + 2]


def test_filters_are_query_parameters(client: TestClient, engine: sa.Engine) -> None:
    events_fill.fill(engine, 70, start=T0, step=timedelta(minutes=1))
    body = _get(
        client,
        "/api/events",
        since="2026-05-04T08:10Z",
        until="2026-05-04T09:00:00",
        kind=["release_published", "job_done"],
        major_release="UMD-4",
        area="production/UMD-4",
        actor="bob",
        cause="automatic_retry",
        limit=1000,
    ).json()
    got = body["events"]
    assert len(got) == 2, "the filter holds two of the filler's events"
    for e in got:
        assert e["kind"] == "release_published" and e["data"]["area"].startswith(
            "production/UMD-4/"
        )
        assert e["actor"] == "bob" and e["cause"] == "automatic_retry"
        assert "2026-05-04T08:10" <= e["at"] < "2026-05-04T09:00"
    everything = _get(client, "/api/events", limit=1000).json()["events"]
    expected = [
        e["id"] for e in everything
        if e["kind"] == "release_published" and e["actor"] == "bob"
        and e["cause"] == "automatic_retry"
        and e["data"]["area"].startswith("production/UMD-4/")
        and "2026-05-04T08:10" <= e["at"] < "2026-05-04T09:00"
    ]  # fmt: skip
    assert [e["id"] for e in got] == expected
    ticket = _get(client, "/api/events", ticket=3).json()["events"]
    assert {e["ticket_id"] for e in ticket} == {3} and len(ticket) >= 1


def test_the_next_link_writes_relative_times_out(client: TestClient, engine: sa.Engine) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    events_fill.fill(engine, 5, start=now - timedelta(hours=1))
    body = _get(client, "/api/events", since="8h", limit=2).json()
    assert [e["id"] for e in body["events"]] == [1, 2]
    since = dict(parse_qsl(urlsplit(body["next"]).query))["since"]
    assert abs(datetime.fromisoformat(since).replace(tzinfo=None) - (now - timedelta(hours=8))) < (
        timedelta(minutes=1)
    )
    assert [e["id"] for e in _get(client, body["next"]).json()["events"]] == [3, 4]


def test_a_reader_gets_what_it_has_not_seen_and_its_cursor_moves(
    client: TestClient, engine: sa.Engine
) -> None:
    events_fill.fill(engine, 12, start=T0)
    first = _get(client, "/api/events", reader="dashboard", limit=5).json()
    assert [e["id"] for e in first["events"]] == [1, 2, 3, 4, 5]
    assert event_feed.cursor(engine, "dashboard") == 5
    assert "reader=dashboard" in first["next"] and "after=5" in first["next"]
    second = _get(client, "/api/events", reader="dashboard", limit=100).json()
    assert [e["id"] for e in second["events"]] == list(range(6, 13))
    assert second["next"] is None
    assert _get(client, "/api/events", reader="dashboard").json()["events"] == []
    assert event_feed.cursor(engine, "dashboard") == 12


def test_json_lines_and_csv_parse_back(client: TestClient, engine: sa.Engine) -> None:
    events_fill.fill(engine, 9, start=T0)
    as_json = _get(client, "/api/events", limit=5).json()["events"]
    jsonl = _get(client, "/api/events", limit=5, format="jsonl")
    assert jsonl.headers["content-type"].startswith("application/jsonl")
    assert [json.loads(line) for line in jsonl.text.splitlines()] == as_json
    assert 'rel="next"' in jsonl.headers["link"]
    answer = _get(client, "/api/events", limit=5, format="csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text, newline="")))
    assert [int(r["id"]) for r in rows] == [e["id"] for e in as_json]
    assert [r["hash"] for r in rows] == [e["hash"] for e in as_json]
    assert json.loads(rows[3]["data"]) == as_json[3]["data"]


def test_the_atom_feed_shows_the_newest_events_of_its_filter(
    client: TestClient, engine: sa.Engine
) -> None:
    events_fill.fill(engine, 40, start=T0, step=timedelta(seconds=1))
    answer = _get(client, "/api/events", kind="job_done", limit=3, format="atom")
    assert answer.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(answer.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    done = [e for e in _get(client, "/api/events", kind="job_done").json()["events"]]
    newest = list(reversed(done[-3:]))
    assert [e.id for e in parsed.entries] == [
        exports.entry_id(_event(engine, e["id"])) for e in newest
    ]
    assert parsed.entries[0].updated == newest[0]["at"][:19] + "Z"
    assert parsed.feed.title == "Rollout events (kind=job_done)"
    (link,) = parsed.entries[0].links
    follow = _get(client, link.href).json()["events"]
    assert [e["id"] for e in follow] == [newest[0]["id"]]
    # The same filter always has the same feed id; paging on with `after` links onwards.
    again = feedparser.parse(_get(client, "/api/events", kind="job_done", format="atom").content)
    assert again.feed.id == parsed.feed.id
    paged = feedparser.parse(
        _get(client, "/api/events", kind="job_done", format="atom", after=0, limit=2).content
    )
    assert {link.rel for link in paged.feed.links} == {"self", "next"}


def _event(engine: sa.Engine, event_id: int) -> Any:
    (event,) = event_feed.page(engine, event_feed.Filters(), after=event_id - 1, limit=1).events
    return event


@pytest.mark.parametrize(
    ("query", "where", "words"),
    [
        ("kind=job_exploded", ["query", "kind", 0], "Input should be"),
        ("since=soon", ["query", "since"], "'soon' is not a time"),
        ("until=2026-13-40", ["query", "until"], "is not a time"),
        ("cause=boredom", ["query", "cause"], "'boredom' is not a cause"),
        ("limit=10001", ["query", "limit"], "less than or equal to 10000"),
        ("limit=0", ["query", "limit"], "greater than or equal to 1"),
        ("after=-1", ["query", "after"], "greater than or equal to 0"),
        ("ticket=abc", ["query", "ticket"], "valid integer"),
        ("reader=a%20b", ["query", "reader"], "is not a reader's name"),
        ("format=xlsx", ["query", "format"], "'json', 'jsonl', 'csv' or 'atom'"),
    ],
)
def test_bad_parameters_get_a_clear_422(
    client: TestClient, query: str, where: list[Any], words: str
) -> None:
    answer = client.get(f"/api/events?{query}", headers=ADA)
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == where
    assert words in problem["msg"]


def test_no_window_limit_a_window_of_years_is_fine(client: TestClient, engine: sa.Engine) -> None:
    events_fill.fill(engine, 3, start=datetime(2016, 1, 1))
    events_fill.fill(engine, 3, start=T0)
    body = _get(client, "/api/events", since="2015-01-01", until="2030-01-01").json()
    assert [e["id"] for e in body["events"]] == [1, 2, 3, 4, 5, 6]


# -- who may read ------------------------------------------------------------------------------


def test_the_feed_is_not_public_unauthenticated_calls_are_refused(
    client: TestClient, engine: sa.Engine
) -> None:
    events_fill.fill(engine, 3, start=T0)
    for headers in ({}, {"Authorization": "Basic !!!"}, feed_access.basic("ada", "wrong")):
        answer = client.get("/api/events", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith('Basic realm="Rollout events"')
        assert "events" not in answer.json()
    # Refused before parameters are even looked at: nothing to learn without a login.
    assert client.get("/api/events?kind=nope").status_code == 401


def test_a_person_without_the_role_is_refused_403(client: TestClient, engine: sa.Engine) -> None:
    events_fill.fill(engine, 3, start=T0)
    answer = client.get("/api/events", headers=QUINN)
    assert answer.status_code == 403
    assert answer.json() == {"detail": "your RT account has no role that may read the event feed"}


def test_release_managers_are_admitted_and_other_roles_when_configured(
    engine: sa.Engine,
) -> None:
    events_fill.fill(engine, 3, start=T0)
    access = feed_access.feed_access(("admin", "qc"))
    with make_client(engine, access) as client:
        for headers in (ADA, QUINN):
            answer = client.get("/api/events", headers=headers)
            assert answer.status_code == 200 and len(answer.json()["events"]) == 3
        assert client.get("/api/events").status_code == 401


def test_rt_down_and_person_unknown_is_503_with_retry_after(engine: sa.Engine) -> None:
    logins = feed_access.FakeLogins()
    logins.down = True
    with make_client(engine, feed_access.feed_access(logins=logins)) as client:
        answer = client.get("/api/events", headers=ADA)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"


def test_logins_are_checked_with_rt_once_per_cache_period(engine: sa.Engine) -> None:
    logins = feed_access.FakeLogins()
    with make_client(engine, feed_access.feed_access(logins=logins)) as client:
        for _ in range(5):
            assert client.get("/api/events", headers=ADA).status_code == 200
    assert logins.calls == 1


def test_anyone_makes_it_public_only_when_configured(engine: sa.Engine) -> None:
    with make_client(engine, events_access.FeedAccess(("anyone",), None)) as client:
        assert client.get("/api/events").status_code == 200
    with make_client(engine, events_access.FeedAccess(("admin",), None)) as client:  # no RT
        assert client.get("/api/events").status_code == 401
        assert client.get("/api/events", headers=ADA).status_code == 403


# -- the OpenAPI document ----------------------------------------------------------------------


def test_openapi_lists_the_endpoint_with_its_parameters_and_models(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/api/events"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert names == {
        "since", "until", "ticket", "kind", "actor", "major_release", "area", "cause",
        "after", "limit", "reader", "format",
    }  # fmt: skip
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == events_api.MAX_LIMIT
    cause = next(p for p in operation["parameters"] if p["name"] == "cause")
    assert "manual_rerun" in cause["schema"]["enum"]
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/EventPage")
    assert {"application/jsonl", "text/csv", "application/atom+xml"} <= set(ok)
    assert {"401", "403", "422", "503"} <= set(operation["responses"])
    assert "/hooks/rt" in spec["paths"]  # the same app as the receiver's
