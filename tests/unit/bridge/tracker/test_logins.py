"""A person's RT login checked with their own credentials, on an httpx2 mock transport shaped
like RT 5.0.3 (their own record carries ``Disabled``; someone else's is a summary or 403):
passwords and tokens, a token used under another login, RT refusing, RT down."""

from __future__ import annotations

import base64

import httpx2
import pytest

from bridge import errors
from bridge.settings.model import TrackerSettings
from bridge.tracker import logins

TOKEN = "1-39-" + "ab" * 16
OTHER_TOKEN = "1-40-" + "cd" * 16


def rt(request: httpx2.Request) -> httpx2.Response:
    """qc1 (id 39, password "pw"), sr1 (id 40) with their tokens; root's password is "root"."""
    auth = request.headers.get("authorization", "")
    users = {"39": "qc1", "40": "sr1", "qc1": "qc1", "sr1": "sr1"}
    if auth.startswith("token "):
        me = {TOKEN: "qc1", OTHER_TOKEN: "sr1"}.get(auth[6:])
    elif auth.startswith("Basic "):
        login, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        me = login if (login, password) in (("qc1", "pw"), ("sr1", "pw")) else None
    else:
        me = None
    if me is None:
        return httpx2.Response(401, json={"message": "Unauthorized"})
    asked = users.get(request.url.path.rsplit("/", 1)[-1])
    if asked != me:
        return httpx2.Response(200, json={"Name": asked, "Privileged": 1})  # a summary
    return httpx2.Response(200, json={"Name": me, "Disabled": "0", "Privileged": 1})


def _checker(handler: object = rt) -> logins.LoginChecker:
    settings = TrackerSettings(url="https://rt.example.org/", user="bridge", timeout=3)
    return logins.LoginChecker(settings, transport=httpx2.MockTransport(handler))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("login", "secret", "name"),
    [
        ("qc1", "pw", "qc1"),
        ("QC1", "pw", None),  # RT answers only for the name as given: no record of its own
        ("qc1", "wrong", None),
        ("nobody", "pw", None),
        ("qc1", TOKEN, "qc1"),  # a token as the password
        ("", TOKEN, "qc1"),  # a bearer token: whoever owns it
        ("qc1", OTHER_TOKEN, None),  # sr1's token under qc1's login
        ("qc1", "", None),
        ("qc:1", "pw", None),
    ],
)
def test_who(login: str, secret: str, name: str | None) -> None:
    checker = _checker()
    assert checker.who(login, secret) == name


def test_one_request_per_check_and_none_for_empty_credentials() -> None:
    checker = _checker()
    checker.who("qc1", "pw")
    checker.who("qc1", "")
    assert checker.calls == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx2.Response(502, text="bad gateway"),
        httpx2.ConnectError("refused"),
        httpx2.Response(200, text="<html>"),
    ],
)
def test_rt_down_is_unavailable_and_never_names_the_secret(answer: object) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx2.Response)
        return answer

    with pytest.raises(errors.TrackerUnavailable) as caught:
        _checker(handler).who("qc1", "s3cret-pw")
    assert caught.value.transient
    assert "s3cret-pw" not in str(caught.value)


def test_is_token() -> None:
    assert logins.is_token(TOKEN) and not logins.is_token("a-long-password")
