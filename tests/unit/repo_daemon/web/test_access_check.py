"""The endpoint nginx's auth_request asks: 204, 401 with the challenge, 403, 400 without the
original URI; the RT calls counted at /access-check/stats."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from bridge.settings import model
from repo_daemon.serving import access, access_parts, guard
from repo_daemon.web import access_check
from tests.support.access_fakes import Clock, make_checker


def _client() -> TestClient:
    checker, _, _ = make_checker(Clock())
    policy = access.AccessPolicy(model.DEFAULT_AREA_ROLES, model.DEFAULT_EARLY_ADOPTERS)
    parts = access_parts.AccessParts(guard=guard.AccessGuard(policy, checker), checker=checker)
    return TestClient(access_check.create_app(parts))


def _ask(client: TestClient, uri: str, login: str | None = None, password: str = "") -> int:
    headers = {"X-Original-URI": uri}
    if login is not None:
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return client.get("/access-check", headers=headers).status_code


def test_the_check_answers_as_nginx_expects() -> None:
    client = _client()
    answer = client.get("/access-check", headers={"X-Original-URI": "/unverified/D/1.0.0/"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == guard.CHALLENGE
    ok = client.get(
        "/access-check",
        headers={
            "X-Original-URI": "/unverified/D/1.0.0/",
            "Authorization": "Basic " + base64.b64encode(b"qc1:good-qc").decode(),
        },
    )
    assert ok.status_code == 204 and ok.headers["x-rollout-person"] == "qc1"
    assert _ask(client, "/unverified/D/1.0.0/", "ea1", "good-ea") == 403
    assert _ask(client, "/stagerollout/7/", "ea1", "good-ea") == 204
    assert _ask(client, "/production/7/base/") == 204
    assert client.get("/access-check").status_code == 400
    stats = client.get("/access-check/stats").json()
    assert stats["rt_login_calls"] == 2
    assert stats["rt_login_calls_by_login"] == {"qc1": 1, "ea1": 1}
