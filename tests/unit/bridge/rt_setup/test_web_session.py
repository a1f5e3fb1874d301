"""The web session's login, without a network: RT unreachable, and a refused login that names
the user but never the password."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest

from bridge import errors
from bridge.rt_setup.web_session import WebSession


def _session(handler: Callable[[httpx2.Request], httpx2.Response]) -> WebSession:
    return WebSession(
        "https://rt.example.org/rt",
        "admin",
        "pa55-word-xyz",
        timeout=5,
        transport=httpx2.MockTransport(handler),
    )


def test_network_errors_are_unavailable() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    session = _session(handler)
    with pytest.raises(errors.TrackerUnavailable, match="cannot reach RT"):
        session.login()
    session.close()


def test_a_refused_login_names_the_user_but_not_the_password() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/NoAuth/Login.html"):
            assert b"pa55-word-xyz" in request.content  # only ever sent in the form
            return httpx2.Response(
                200,
                text='<ul class="action-results"><li>Your username or password is incorrect'
                "</li></ul>",
            )
        return httpx2.Response(
            302, headers={"Location": "https://rt.example.org/rt/NoAuth/Login.html?next=1"}
        )

    session = _session(handler)
    with pytest.raises(errors.TrackerAuthFailed) as caught:
        session.login()
    session.close()
    assert "'admin'" in str(caught.value)
    assert "incorrect" in str(caught.value)
    assert "pa55-word-xyz" not in str(caught.value)
    assert "pa55-word-xyz" not in repr(session)
