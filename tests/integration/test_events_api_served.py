"""The feed as ``rollout serve`` serves it (a real uvicorn process on SQLite and PostgreSQL):
mounted beside the hook, refused to callers without a login by default, public only when
configured; and, against the real RT, admitted to release managers by their RT login or auth
token and refused to other roles."""

from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from bridge.rt_setup.sandbox import SandboxInfo
from bridge.store import database
from tests.integration.test_receiver_process import ReceiverProcess
from tests.support import feed_story
from tests.support.rt_people import PASSWORD, auth_token, person


class FeedServer(ReceiverProcess):
    """``rollout serve`` with more ``ROLLOUT_*`` settings."""

    def __init__(self, *, extra: dict[str, str], **kw: Any) -> None:
        super().__init__(**kw)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return super().env() | self.extra

    def ask(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), json.loads(response.read())
        finally:
            conn.close()


def _basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


@pytest.fixture
def story(db_url: str) -> str:
    engine = database.create_engine(db_url)
    feed_story.write_story(engine)
    engine.dispose()
    return db_url


def test_rollout_serve_mounts_the_feed_not_public_by_default(story: str, tmp_path: Path) -> None:
    server = FeedServer(db_url=story, data_dir=tmp_path / "a", extra={}).start()
    try:
        status, headers, body = server.ask("/api/events")
        assert status == 401 and "events" not in body
        assert headers["www-authenticate"].startswith('Basic realm="Rollout events"')
        # RT (at a port nobody listens on) cannot check a login: 503, never the events.
        status, headers, _ = server.ask("/api/events", _basic("ada", "whatever"))
        assert status == 503 and headers["retry-after"] == "30"
        assert "/api/events" in server.ask("/openapi.json")[2]["paths"]
    finally:
        assert server.stop() == 0
    public = FeedServer(
        db_url=story, data_dir=tmp_path / "b", extra={"ROLLOUT_EVENTS_API_ROLES": "anyone"}
    ).start()
    try:
        status, _, body = public.ask("/api/events?ticket=4242&limit=2")
        assert status == 200 and [e["id"] for e in body["events"]] == [1, 2]
    finally:
        assert public.stop() == 0


@pytest.mark.rt
def test_against_rt_release_managers_read_the_feed_and_others_do_not(
    rt_sandbox: SandboxInfo, tmp_path: Path
) -> None:
    url = database.default_url(tmp_path / "db")
    (tmp_path / "db").mkdir()
    engine = database.create_engine(url)
    database.migrate(engine)
    feed_story.write_story(engine)
    engine.dispose()
    for name, group in (("feed-admin", "sw-rel-admin"), ("feed-qc", "sw-rel-qc")):
        person(rt_sandbox, name, group).close()
    token = auth_token(rt_sandbox, "feed-admin")
    server = FeedServer(
        db_url=url,
        data_dir=tmp_path / "data",
        extra={"ROLLOUT_RT_URL": rt_sandbox.web_url, "ROLLOUT_RT_TOKEN": rt_sandbox.bridge_token()},
    ).start()
    try:
        status, _, body = server.ask("/api/events?limit=3", _basic("feed-admin", PASSWORD))
        assert status == 200 and [e["id"] for e in body["events"]] == [1, 2, 3]
        status, _, body = server.ask("/api/events?limit=1", {"Authorization": f"Bearer {token}"})
        assert status == 200 and len(body["events"]) == 1
        assert server.ask("/api/events", _basic("feed-qc", PASSWORD))[0] == 403
        assert server.ask("/api/events", _basic("feed-admin", "not-the-password"))[0] == 401
        assert server.ask("/api/events")[0] == 401
    finally:
        assert server.stop() == 0
