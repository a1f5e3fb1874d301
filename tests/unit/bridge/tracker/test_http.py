"""The shared HTTP plumbing: sessions with credentials, error mapping, retries with backoff."""

from __future__ import annotations

import httpx2
import pytest

from bridge import errors
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.tracker import http

TOKEN = "1-14-5f0c0ffee5f0c0ffee"
SETTINGS = TrackerSettings(url="https://rt.example.org/", token=Secret(TOKEN), retries=2)


def test_the_rest_session_sends_the_token_and_caps_the_connect_timeout() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={})

    with http.rest_session(SETTINGS, transport=httpx2.MockTransport(handler)) as session:
        session.get(SETTINGS.rest_url + "rt")
        assert session.timeout.connect == 10.0 and session.timeout.read == 20.0
    assert seen[0].headers["authorization"] == f"token {TOKEN}"
    assert seen[0].headers["user-agent"] == "rollout-bridge"


@pytest.mark.parametrize(
    ("status", "kind", "transient"),
    [
        (401, errors.TrackerAuthFailed, False),
        (403, errors.TrackerAuthFailed, False),
        (404, errors.TrackerNotFound, False),
        (409, errors.TrackerRejected, False),
        (429, errors.TrackerUnavailable, True),
        (502, errors.TrackerUnavailable, True),
    ],
)
def test_statuses_map_to_errors_that_hide_the_token(
    status: int, kind: type[errors.TrackerError], transient: bool
) -> None:
    error = http.ErrorMapping(SETTINGS).for_status(
        status, f"<p>echo {TOKEN}</p>", {"operation": "op", "ticket_id": 7}
    )
    assert type(error) is kind and error.transient is transient
    assert error.status_code == status and TOKEN not in str(error)


def test_transport_errors_are_unavailable_and_name_where() -> None:
    request = httpx2.Request("GET", "https://rt.example.org/")
    error = http.unreachable(httpx2.ConnectError("refused", request=request), "RT at X", "op")
    assert error.transient and "cannot reach RT at X (ConnectError)" in str(error)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    retrying = http.Retrying(SETTINGS, http.ErrorMapping(SETTINGS), jitter=lambda: 0.5)
    assert [retrying.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert retrying.delay(20) == http.MAX_BACKOFF_SECONDS


def test_transient_failures_are_retried_then_reported_with_attempts() -> None:
    slept: list[float] = []
    retried: list[str] = []
    retrying = http.Retrying(
        SETTINGS, http.ErrorMapping(SETTINGS), sleep=slept.append, jitter=lambda: 0.5
    )

    def fail() -> None:
        raise errors.TrackerUnavailable("down", operation="op")

    with pytest.raises(errors.TrackerUnavailable) as caught:
        retrying.call("op", None, fail, on_retry=lambda: retried.append("op"))
    assert caught.value.attempts == 3 and slept == [0.5, 1.0] and retried == ["op", "op"]


def test_a_request_that_may_have_arrived_is_not_retried_unless_idempotent() -> None:
    calls: list[int] = []
    retrying = http.Retrying(SETTINGS, http.ErrorMapping(SETTINGS), sleep=lambda _: None)
    request = httpx2.Request("POST", "https://rt.example.org/")

    def read_timeout() -> None:
        calls.append(1)
        raise httpx2.ReadTimeout("slow", request=request)

    with pytest.raises(errors.TrackerUnavailable, match="did not answer within"):
        retrying.call("comment", 1, read_timeout, idempotent=False)
    assert len(calls) == 1
