"""The subscriptions' and deliveries' API on the receiver's app (TestClient, in-memory SQLite,
pings through a fake sender): who is admitted and who becomes the actor, secrets only in the
answers of add and rotate-secret, declared subscriptions read-only (409), RFC 7807 problems for
404/409/422, keyset pages of deliveries, redelivery, recovery and its cancelling."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.pool import StaticPool

from bridge import secrets
from bridge.intake import receiver
from bridge.settings import model as settings_model
from bridge.store import database, delivery_reads, tables
from bridge.store import queue as jobqueue
from repo_daemon.web import deliveries_api, subscriptions_api
from tests.support import delivery_story, feed_access, paths
from tests.support.feed_access import ADA, QUINN
from tests.unit.repo_daemon.deliveries.test_ping import FakeOutcome, FakeSender, fake_sign

SECRET = "whsec_" + base64.b64encode(b"subscriptions-api-test-24").decode()
PROBLEM = "application/problem+json"


class World:
    def __init__(self) -> None:
        self.engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        database.migrate(self.engine)
        self.story = delivery_story.write(self.engine)
        self.sender = FakeSender()
        settings = settings_model.Settings(
            tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
            receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(SECRET)),
        )
        access = feed_access.feed_access()
        routers = [
            subscriptions_api.router(
                self.engine, access, webhooks=settings.webhooks, sender=self.sender,
                clock=self.story.clock, sign=fake_sign,
            ),
            deliveries_api.router(self.engine, access, clock=self.story.clock),
        ]  # fmt: skip
        app = receiver.create_app(settings, jobqueue.Queue(self.engine), routers=routers)
        self.client = TestClient(app, base_url="https://bridge.example.org")

    def ask(self, method: str, url: str, body: Any = None, *, status: int = 200) -> Any:
        answer = self.client.request(method, url, json=body, headers=ADA)
        assert answer.status_code == status, answer.text
        return answer.json()

    def events(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        log = tables.event_log
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(log.c.actor, log.c.data).where(log.c.kind == kind))
            return [(r.actor, json.loads(r.data)) for r in rows]


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    with w.client:
        yield w
    w.engine.dispose()


def test_callers_without_the_role_are_refused_with_problems(world: World) -> None:
    for headers, status in (({}, 401), (QUINN, 403), (feed_access.basic("ada", "bad"), 401)):
        answer = world.client.get("/api/subscriptions", headers=headers)
        assert answer.status_code == status
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["status"] == status and "subscriptions" not in answer.json()
    answer = world.client.get("/api/deliveries")
    assert answer.headers["www-authenticate"].startswith('Basic realm="Rollout webhooks"')
    assert world.client.post("/api/deliveries/1/redeliver", headers=QUINN).status_code == 403


def test_add_pings_enables_and_shows_the_secret_once_with_the_caller_as_actor(
    world: World,
) -> None:
    world.sender.answers.append(FakeOutcome(status=204))
    body = {"name": "chat", "url": "https://chat.example.org/in", "kinds": ["release_*"],
            "filters": {"major_releases": ["UMD-5"], "emergency": True}}  # fmt: skip
    added = world.ask("POST", "/api/subscriptions", body, status=201)
    assert added["secret"].startswith("whsec_") and added["ping"]["ok"] is True
    assert added["subscription"]["enabled"] is True
    assert added["subscription"]["filters"]["major_releases"] == ["UMD-5"]
    ((url, _body, headers),) = world.sender.posts
    assert url == "https://chat.example.org/in" and headers["x-secrets"] == added["secret"]
    listed = world.ask("GET", "/api/subscriptions")
    assert [s["name"] for s in listed["subscriptions"]] == ["chat", "ci", "mirror"]
    shown = world.ask("GET", "/api/subscriptions/chat")
    assert added["secret"] not in json.dumps(listed) + json.dumps(shown)
    changed = world.events("subscription_changed")
    assert ("ada", "chat") in [(actor, data["subscription"]) for actor, data in changed]
    enabled = world.events("subscription_enabled")
    assert enabled == [("ada", enabled[0][1])] and enabled[0][1]["how"] == "ping"


def test_a_ping_not_answered_2xx_leaves_it_disabled_and_a_later_good_one_enables_it(
    world: World,
) -> None:
    world.sender.answers += [
        FakeOutcome(status=None, error_class="refused", error="nothing listening"),
        FakeOutcome(status=200),
    ]
    added = world.ask("POST", "/api/subscriptions",
                      {"name": "new", "url": "https://new.example.org/"}, status=201)  # fmt: skip
    assert added["ping"]["ok"] is False and added["ping"]["error_class"] == "refused"
    assert added["subscription"]["enabled"] is False
    pinged = world.ask("POST", "/api/subscriptions/new/ping")
    assert pinged["ping"]["ok"] and pinged["subscription"]["enabled"] is True


def test_declared_subscriptions_are_read_only_here(world: World) -> None:
    with world.engine.begin() as conn:
        conn.execute(tables.subscriptions.update().values(declared=True))
    for method, url, body in (
        ("PATCH", "/api/subscriptions/ci", {"description": "x"}),
        ("DELETE", "/api/subscriptions/ci", None),
        ("POST", "/api/subscriptions/ci/rotate-secret", None),
    ):
        problem = world.ask(method, url, body, status=409)
        assert "declared in the settings file" in problem["detail"], method
    assert world.ask("GET", "/api/subscriptions/ci")["declared"] is True
    assert (
        world.ask("POST", "/api/subscriptions/ci/disable", {"reason": "maintenance"})[
            "disabled_reason"
        ]
        == "maintenance"
    )


def test_edit_rotate_disable_enable_and_remove(world: World) -> None:
    change = {"url": "https://mirror2.example.org/h", "github_signature": True}
    edited = world.ask("PATCH", "/api/subscriptions/mirror", change)
    assert edited["url"] == "https://mirror2.example.org/h" and edited["kinds"] == ["job_queued"]
    rotated = world.ask("POST", "/api/subscriptions/mirror/rotate-secret", {"overlap": "2h"})
    assert rotated["secret"] != world.story.secrets["mirror"]
    assert rotated["subscription"]["previous_secret_until"] == "2026-12-06T14:03:00Z"
    bad = world.ask("POST", "/api/subscriptions/mirror/rotate-secret", {"overlap": "soon"},
                    status=422)  # fmt: skip
    assert "not a duration" in bad["detail"]
    assert world.ask("POST", "/api/subscriptions/mirror/disable")["enabled"] is False
    enabled = world.ask("POST", "/api/subscriptions/mirror/enable", {"ping": False})
    assert enabled["subscription"]["enabled"] is True and enabled["ping"] is None
    removed = world.ask("DELETE", "/api/subscriptions/mirror")
    assert removed == {"removed": "mirror", "deliveries": 3}
    assert world.ask("GET", "/api/subscriptions/mirror", status=404)["title"] == "Not Found"


def test_problems_for_what_is_missing_taken_or_invalid(world: World) -> None:
    answer = world.client.get("/api/subscriptions/nope", headers=ADA)
    assert answer.status_code == 404 and answer.headers["content-type"] == PROBLEM
    assert answer.json()["detail"] == (
        "no subscription is named 'nope' (see rollout subscriptions list)"
    )
    again = {"name": "ci", "url": "https://x.example.org/", "ping": False}
    taken = world.ask("POST", "/api/subscriptions", again, status=409)
    assert taken["detail"] == "a subscription named 'ci' exists already"
    invalid = world.ask("POST", "/api/subscriptions",
                        {"name": "x", "url": "ftp://x", "kinds": ["nope"], "ping": False},
                        status=422)  # fmt: skip
    assert len(invalid["problems"]) == 2 and "matches no kind" in invalid["problems"][1]
    missing = world.ask("POST", "/api/subscriptions", {"name": "x"}, status=422)
    assert missing["errors"][0]["loc"] == ["body", "url"] and "body.url" in missing["detail"]
    assert world.ask("GET", "/api/deliveries?since=soon", status=422)["errors"][0]["loc"] == [
        "query", "since",
    ]  # fmt: skip
    assert world.ask("GET", "/api/deliveries/999", status=404)["detail"] == "no delivery has id 999"
    assert world.ask("POST", "/api/recoveries/9/cancel", status=404)["status"] == 404


def test_deliveries_come_in_keyset_pages_newest_first_with_filters(world: World) -> None:
    seen: list[int] = []
    url: str | None = "/api/deliveries?limit=4"
    while url is not None:
        page = world.ask("GET", url)
        seen += [d["id"] for d in page["deliveries"]]
        url = page["next"]
    assert seen == [6, 5, 4, 3, 2, 1]
    failed = world.ask("GET", "/api/deliveries?subscription=ci&status=failed")["deliveries"]
    assert [(d["ticket_id"], d["last_error"]) for d in failed] == [
        (4243, "connection refused"), (4242, "connection refused"),
    ]  # fmt: skip
    assert [d["id"] for d in world.ask("GET", "/api/deliveries?ticket=4244")["deliveries"]] == [
        6,
        5,
    ]
    late = world.ask("GET", "/api/deliveries?since=2026-12-06T12:01Z")["deliveries"]
    assert [d["id"] for d in late] == [6, 5]
    one = world.ask("GET", "/api/deliveries/1")
    assert one["payload"]["id"] == one["webhook_id"] == "evt_3"
    (attempt,) = one["attempt_log"]
    assert attempt["status"] == 204 and attempt["request_headers"]["webhook-signature"] == (
        "v1,<redacted>"
    )


def test_redeliver_recover_and_cancel(world: World) -> None:
    again = world.ask("POST", "/api/deliveries/2/redeliver")
    assert again["was"] == "failed" and again["delivery"]["status"] == "pending"
    body = {"subscription": "ci", "since": "2026-12-06", "dry_run": True}
    assert world.ask("POST", "/api/deliveries/recover", body) == {
        "count": 1, "recovery_id": None, "dry_run": True,
    }  # fmt: skip
    done = world.ask("POST", "/api/deliveries/recover", {**body, "dry_run": False})
    assert done["count"] == 1 and done["recovery_id"] is not None
    shown = world.ask("GET", "/api/subscriptions/ci")
    assert shown["recoveries"][0]["waiting"] == 1 and shown["pending"] == 3
    cancelled = world.ask("POST", f"/api/recoveries/{done['recovery_id']}/cancel")
    assert cancelled == {"recovery_id": done["recovery_id"], "count": 1}
    assert [a for a, _ in world.events("deliveries_requeued")] == ["ada", "ada"]
    assert world.events("deliveries_cancelled")[0][0] == "ada"
    (figures,) = [delivery_reads.figures(world.engine, now=world.story.clock(),
                                         disable_after=86400)["ci"]]  # fmt: skip
    assert figures.failed == 1 and figures.pending == 2


def test_the_routes_are_in_the_openapi_document(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    for path in ("/api/subscriptions", "/api/subscriptions/{name}/rotate-secret",
                 "/api/deliveries", "/api/deliveries/recover",
                 "/api/recoveries/{recovery_id}/cancel"):  # fmt: skip
        assert path in paths
    schemas = world.client.get("/openapi.json").json()["components"]["schemas"]
    assert "secret" in schemas["WithSecret"]["properties"]
    assert not [k for k in schemas["SubscriptionOut"]["properties"] if k.endswith("secret")]


def test_every_route_in_the_docs_table_is_served_with_its_method(world: World) -> None:
    doc = (paths.ROOT / "docs" / "notifications.md").read_text()
    rows = re.findall(r"^\| `(GET|POST|PATCH|DELETE)((?: /api/[^`]+?)+)` \|", doc, flags=re.M)
    served = world.client.get("/openapi.json").json()["paths"]
    wanted = {(method.lower(), path.strip().replace("{id}", "{X}")) for method, path in rows}
    assert len(wanted) == 14
    have = {
        (m, re.sub(r"\{(delivery_id|recovery_id)\}", "{X}", p))
        for p, ops in served.items()
        for m in ops
    }
    assert wanted <= have, wanted - have
