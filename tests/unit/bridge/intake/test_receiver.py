"""The receiver's wiring, on a fake queue: no secret no start, server options, 503s, shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from uvicorn.protocols.http import httptools_impl

from bridge import errors, records, secrets
from bridge.intake import connections, receiver, webhooks
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
    protocol = server.config.http
    assert isinstance(protocol, type)
    assert issubclass(protocol, connections.GuardedHttpToolsProtocol)
    assert issubclass(protocol, httptools_impl.HttpToolsProtocol)
    assert server.config.loop == "uvloop"
    assert server.config.access_log is False
    assert (server.config.host, server.config.port) == ("127.0.0.1", 8750)


def test_server_takes_its_connection_limits_from_the_settings() -> None:
    limits = settings_model.IntakeLimits(
        header_timeout=2,
        max_header_bytes=4096,
        max_connections=50,
        max_connections_per_client=5,
        uncapped_clients=("192.0.2.0/24",),
    )
    configured = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        receiver=settings_model.ReceiverSettings(hook_secret=secrets.Secret(SECRET), limits=limits),
    )
    server = receiver.build_server(configured, cast(queue.Queue, BrokenQueue()))
    assert server.config.limit_concurrency == 50
    assert server.config.forwarded_allow_ips == ["127.0.0.1", "::1", "192.0.2.0/24"]
    protocol = cast(type[connections.GuardedHttpToolsProtocol], server.config.http)
    assert protocol.guard.limits == limits


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


def test_a_client_gone_mid_body_ends_the_request_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = receiver.create_app(settings(), cast(queue.Queue, BrokenQueue()))
    body, headers = hook()
    messages = iter(
        [
            {"type": "http.request", "body": body[:10], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/hooks/rt", "raw_path": b"/hooks/rt", "query_string": b"",
        "root_path": "", "client": ("127.0.0.2", 4000), "server": ("127.0.0.1", 8750),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]
        + [(b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))  # raises nothing
    assert sent[0]["status"] == 400  # said to nobody: the server drops it
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_fastapi_route_under_a_root_path_answers_like_the_bare_endpoint() -> None:
    app = receiver.create_app(settings(), cast(queue.Queue, BrokenQueue()))
    body, headers = hook()
    with TestClient(app) as bare, TestClient(app, root_path="/bridge") as routed:
        direct = bare.post("/hooks/rt", content=body, headers=headers)
        through = routed.post("/bridge/hooks/rt", content=body, headers=headers)
    assert direct.status_code == through.status_code == 503
    assert direct.content == through.content
    assert direct.headers["retry-after"] == through.headers["retry-after"] == "5"
    assert direct.headers["content-type"] == through.headers["content-type"] == "application/json"
