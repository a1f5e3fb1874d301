"""The receiver's wiring, on a fake queue: no secret no start, server options, 503s, shutdown."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bridge import errors, records, secrets
from bridge.intake import receiver, webhooks
from bridge.settings import model as settings_model
from bridge.store import queue

SECRET = "whsec_" + base64.b64encode(b"unit-test-secret-24bytes").decode()
KEY = secrets.hook_key(SECRET)


def settings(secret: str | None = SECRET) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        receiver=settings_model.ReceiverSettings(
            hook_secret=secrets.Secret(secret) if secret else None
        ),
    )


class BrokenQueue:
    """A queue whose database is down."""

    engine = sa.create_engine("sqlite://")

    def _down(self, *args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("disk I/O error"))

    def enqueue_many(self, requests: Sequence[records.ReleaseRequest]) -> list[queue.Enqueued]:
        return cast(list[queue.Enqueued], self._down())

    ping = record_event = _down


def hook() -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ticket_id": 1, "transaction_id": 2, "current": "Unverified"}).encode()
    headers = webhooks.signed_headers(KEY, "2", int(time.time()), body)
    return body, headers | {"content-type": "application/json"}


def test_no_hook_secret_no_receiver() -> None:
    with pytest.raises(errors.ConfigError) as raised:
        receiver.create_app(settings(secret=None), cast(queue.Queue, BrokenQueue()))
    assert raised.value.problems == [
        "hook_secret is not set (ROLLOUT_HOOK_SECRET or ROLLOUT_HOOK_SECRET_FILE)"
    ]
    with pytest.raises(errors.ConfigError):
        receiver.build_server(settings(secret=None), cast(queue.Queue, BrokenQueue()))


def test_server_uses_httptools_and_uvloop_without_access_log() -> None:
    server = receiver.build_server(settings(), cast(queue.Queue, BrokenQueue()))
    assert (server.config.http, server.config.loop) == ("httptools", "uvloop")
    assert server.config.access_log is False
    assert (server.config.host, server.config.port) == ("127.0.0.1", 8750)


def test_database_down_means_503_and_not_ready() -> None:
    app = receiver.create_app(settings(), cast(queue.Queue, BrokenQueue()))
    with TestClient(app) as client:
        body, headers = hook()
        response = client.post("/hooks/rt", content=body, headers=headers)
        assert response.status_code == 503
        assert response.json() == {
            "error": "the queue database is unavailable (Exception: disk I/O error)"
        }
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "error": "the queue database is unavailable (Exception: disk I/O error)"
        }
        # A refusal is still answered when it cannot be recorded.
        refused = client.post("/hooks/rt", content=body, headers={"content-type": "text/plain"})
        assert refused.status_code == 401


def test_after_shutdown_hooks_get_503() -> None:
    app = receiver.create_app(settings(), cast(queue.Queue, BrokenQueue()))
    with TestClient(app):
        pass
    client = TestClient(app)  # the app, after its lifespan ended
    body, headers = hook()
    response = client.post("/hooks/rt", content=body, headers=headers)
    assert (response.status_code, response.json()) == (
        503,
        {"error": "the receiver is not taking hooks (starting or shutting down)"},
    )
    assert client.get("/readyz").json() == {
        "error": "not taking hooks: the writer is starting or shutting down"
    }


def test_openapi_documents_the_hook() -> None:
    app = receiver.create_app(settings(), cast(queue.Queue, BrokenQueue()))
    spec = TestClient(app).get("/openapi.json").json()
    post = spec["paths"]["/hooks/rt"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert {"200", "202", "400", "401", "413", "415", "422", "503"} <= set(post["responses"])
