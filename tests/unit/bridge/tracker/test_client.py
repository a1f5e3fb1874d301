"""The tracker client's error paths, on an httpx2 mock transport.

A real RT does not time out, answer 5xx or send garbage on demand, so these paths are driven by
an httpx2 ``MockTransport`` (python-rt's REST2 client runs on httpx2; ``responses`` cannot see
it). The happy paths are tested against the real RT in ``tests/integration``. Ticket JSON comes
from ``fixtures/rt``, recorded from RT 5.0.3.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from bridge import errors
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.tracker.client import TrackerClient
from tests.support import paths

FIXTURES = paths.ROOT / "fixtures" / "rt"
TOKEN = "1-14-5f0c0ffee5f0c0ffee5f0c0ffee5f0c0"
PASSWORD = "s3cret-pa55word"
GROUP_NAMES = {"27": "sw-rel-qc", "30": "sw-rel-admin"}

Handler = Callable[[httpx2.Request], httpx2.Response]


def _ticket_json() -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "ticket_release_submitted.json").read_text()))


def _rt_like(request: httpx2.Request) -> httpx2.Response:
    """Answers like a healthy RT for the paths the client uses."""
    path = request.url.path
    if path.endswith("/ticket/1"):
        return httpx2.Response(200, json=_ticket_json())
    if "/group/" in path:
        group_id = path.rsplit("/", 1)[1]
        return httpx2.Response(200, json={"id": int(group_id), "Name": GROUP_NAMES[group_id]})
    raise AssertionError(f"unexpected request {request.method} {request.url}")


class Script:
    """A mock RT that answers each request with the next step; the last step repeats."""

    def __init__(self, *steps: Handler | httpx2.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx2.Response):
            return step
        return step(request)


def _client(
    script: Script, *, retries: int = 2, token: bool = True, delays: list[float] | None = None
) -> TrackerClient:
    settings = TrackerSettings(
        url="https://rt.example.org/",
        token=Secret(TOKEN) if token else None,
        user=None if token else "bridge",
        password=None if token else Secret(PASSWORD),
        timeout=3,
        retries=retries,
        backoff=0.5,
    )
    sleeps = delays if delays is not None else []
    return TrackerClient(
        settings,
        transport=httpx2.MockTransport(script),
        sleep=sleeps.append,
        jitter=lambda: 0.5,  # no randomness: delay = backoff * 2**(attempt-1)
    )


def _no_secrets(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), str(exc.__cause__)):
        assert TOKEN not in text
        assert PASSWORD not in text


def test_reads_a_ticket_as_rt_sends_it() -> None:
    client = _client(Script(_rt_like))
    ticket = client.get_ticket(1)
    assert ticket.queue == "sw-rel"
    assert ticket.rollout_state.label == "Submitted"
    assert ticket.field("Sync-URL") == "rsync://provider.example.org/dcache/9.2.1/"
    assert ticket.field("ReleaseType") is None
    assert ticket.cc_groups() == ("sw-rel-qc",)
    assert ticket.admin_cc_groups() == ("sw-rel-admin",)
    assert [w.name for w in ticket.requestors] == ["provider@example.org"]
    # One read of the ticket plus one per watcher group it had not seen before...
    assert client.round_trips["get_ticket"] == 3
    client.get_ticket(1)
    # ...and group names are remembered.
    assert client.round_trips["get_ticket"] == 4


def test_timeouts_are_retried_with_backoff_then_reported() -> None:
    script = Script(httpx2.ReadTimeout("timed out"))
    delays: list[float] = []
    client = _client(script, retries=3, delays=delays)
    with pytest.raises(errors.TrackerUnavailable) as caught:
        client.get_ticket(1)
    error = caught.value
    assert error.transient
    assert error.attempts == 4
    assert "did not answer within 3 s" in str(error)
    assert "tried 4 times" in str(error)
    assert "get_ticket (ticket 1)" in str(error)
    assert len(script.requests) == 4
    assert client.round_trips["get_ticket"] == 4
    assert client.retries["get_ticket"] == 3
    assert delays == [0.5, 1.0, 2.0]
    _no_secrets(error)


def test_server_errors_are_retried_until_rt_recovers() -> None:
    script = Script(
        httpx2.Response(503, text="Service Unavailable"),
        httpx2.Response(502, text="<html>Bad Gateway</html>"),
        _rt_like,
    )
    client = _client(script, retries=3)
    ticket = client.get_ticket(1)
    assert ticket.id == 1
    assert client.retries["get_ticket"] == 2
    assert client.round_trips["get_ticket"] == 5  # 2 failures, the ticket, 2 groups


@pytest.mark.parametrize("status", [500, 503, 429])
def test_persistent_server_errors_name_the_status(status: int) -> None:
    client = _client(Script(httpx2.Response(status, text="")), retries=1)
    with pytest.raises(errors.TrackerUnavailable) as caught:
        client.get_ticket(1)
    assert caught.value.status_code == status
    assert f"HTTP {status}" in str(caught.value)
    assert client.round_trips["get_ticket"] == 2


def test_bad_token_is_not_retried_and_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = Script(httpx2.Response(401, json={"message": "Unauthorized"}))
    client = _client(script)
    with pytest.raises(errors.TrackerAuthFailed) as caught:
        client.get_ticket(1)
    assert not caught.value.transient
    assert caught.value.status_code == 401
    assert "ROLLOUT_RT_TOKEN" in str(caught.value)
    assert len(script.requests) == 1
    assert script.requests[0].headers["authorization"] == f"token {TOKEN}"  # it was sent...
    _no_secrets(caught.value)  # ...but never shown
    assert TOKEN not in caplog.text


def test_bad_password_is_not_shown() -> None:
    script = Script(httpx2.Response(401, json={"message": "Unauthorized"}))
    client = _client(script, token=False)
    with pytest.raises(errors.TrackerAuthFailed) as caught:
        client.get_ticket(1)
    assert "user 'bridge'" in str(caught.value)
    _no_secrets(caught.value)


def test_missing_right_says_what_to_grant() -> None:
    script = Script(httpx2.Response(403, json={"message": "Forbidden"}))
    with pytest.raises(errors.TrackerAuthFailed, match="lacks the right"):
        _client(script).get_ticket(1)


@pytest.mark.parametrize(
    "answer",
    [
        httpx2.Response(200, text="<html><form>Login</form></html>"),
        httpx2.Response(200, json=["not", "a", "ticket"]),
        httpx2.Response(200, json={"id": "1", "CustomFields": [{"values": []}]}),
    ],
    ids=["login-page", "json-list", "field-without-name"],
)
def test_malformed_answers_are_bad_answers(answer: httpx2.Response) -> None:
    script = Script(answer)
    client = _client(script, retries=1)
    with pytest.raises(errors.TrackerBadAnswer) as caught:
        client.get_ticket(1)
    assert "not what REST2 sends" in str(caught.value)
    assert client.retries["get_ticket"] == 1  # a proxy hiccup may pass: retried once
    _no_secrets(caught.value)


def test_attachment_that_is_not_base64_is_a_bad_answer() -> None:
    def rt(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/attachments"):
            item = {"id": "7", "Filename": "release.xml", "TransactionId": {"id": "12"}}
            return httpx2.Response(200, json={"items": [item], "total": 1})
        return httpx2.Response(200, json={"id": 7, "Content": "%%% not base64 %%%"})

    with pytest.raises(errors.TrackerBadAnswer):
        _client(Script(rt), retries=0).download_attachment(1, "release.xml")


def test_attachment_bytes_are_exact() -> None:
    content = b'<?xml version="1.0"?>\n<Release>\xc3\xa9</Release>\n'

    def rt(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/attachments"):
            items = [
                {"id": "7", "Filename": "release.xml"},
                {"id": "9", "Filename": "release.xml"},
                {"id": "8", "Filename": "notes.txt"},
            ]
            return httpx2.Response(200, json={"items": items, "total": 3})
        assert request.url.path.endswith("/attachment/9")  # the newest release.xml
        encoded = base64.encodebytes(content).decode()  # RT wraps lines
        return httpx2.Response(
            200, json={"id": 9, "Content": encoded, "ContentType": "application/xml"}
        )

    client = _client(Script(rt))
    attachment = client.download_attachment(1, "release.xml")
    assert attachment.content == content
    assert attachment.id == 9
    assert client.round_trips["download_attachment"] == 2


def test_a_comment_that_may_have_reached_rt_is_not_sent_twice() -> None:
    script = Script(httpx2.ReadTimeout("timed out"))
    client = _client(script, retries=3)
    with pytest.raises(errors.TrackerUnavailable) as caught:
        client.comment(1, "Published.")
    assert len(script.requests) == 1
    assert caught.value.attempts == 1


def test_a_comment_that_never_left_is_retried() -> None:
    script = Script(
        httpx2.ConnectError("connection refused"),
        httpx2.Response(201, json=["Comments added"]),
    )
    client = _client(script, retries=3)
    client.comment(1, "Published.")
    assert len(script.requests) == 2
    assert client.retries["comment"] == 1


def test_connection_refused_says_where_and_what_to_check() -> None:
    client = _client(Script(httpx2.ConnectError("[Errno 111] Connection refused")), retries=0)
    with pytest.raises(errors.TrackerUnavailable) as caught:
        client.get_ticket(1)
    assert "could not connect to RT at https://rt.example.org/" in str(caught.value)
    assert "ROLLOUT_RT_URL" in str(caught.value)


def test_refused_field_values_raise_with_rts_words() -> None:
    answer = ["RolloutProgress: Invalid value for this custom field"]
    client = _client(Script(httpx2.Response(200, json=answer)))
    with pytest.raises(errors.TrackerRejected, match="Invalid value") as caught:
        client.set_custom_fields(1, {"RolloutProgress": "Shipped"})
    assert not caught.value.transient


def test_update_sends_one_request_with_everything() -> None:
    script = Script(httpx2.Response(200, json=["RolloutProgress Submitted changed to Unverified"]))
    client = _client(script)
    messages = client.update_ticket(
        1, custom_fields={"RolloutProgress": "Unverified"}, status="open"
    )
    assert messages == ["RolloutProgress Submitted changed to Unverified"]
    assert len(script.requests) == 1
    sent = json.loads(script.requests[0].content)
    assert sent == {"CustomFields": {"RolloutProgress": "Unverified"}, "Status": "open"}


def test_values_that_quote_refusal_words_are_not_refusals() -> None:
    answer = [
        "RolloutHistory 2026-11-24 Submitted 0s changed to 2026-11-24 Failed could not sync",
        "RolloutProgress Unverified changed to Failed",
    ]
    client = _client(Script(httpx2.Response(200, json=answer)))
    assert client.set_custom_fields(1, {"RolloutHistory": "x", "RolloutProgress": "Failed"}) == (
        answer
    )


def _owned_by(name: str) -> Handler:
    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/ticket/1"):
            return httpx2.Response(200, json={**_ticket_json(), "Owner": {"id": name}})
        return _rt_like(request)

    return answer


def test_an_owner_rt_leaves_unchanged_is_a_refusal() -> None:
    # RT 5.0 answers 200 and says nothing of an owner it refused: the client reads it back.
    client = _client(Script(httpx2.Response(200, json=[]), _owned_by("qc1")))
    with pytest.raises(errors.TrackerRejected, match="RT did not make sr1 the owner"):
        client.update_ticket(1, status="open", owner="sr1")
    script = Script(httpx2.Response(200, json=[]), _owned_by("sr1"))
    _client(script).update_ticket(1, owner="sr1")
    assert json.loads(script.requests[0].content) == {"Owner": "sr1"}
