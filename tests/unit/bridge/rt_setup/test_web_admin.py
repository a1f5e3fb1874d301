"""The admin operations' requests and RT's refusals of them, without a network: the Referer on
every request, server errors transient, the CSRF interstitial, a page without its form and a
non-administrator account each a clear error."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest

from bridge import errors
from bridge.rt_setup.web_admin import WebAdmin
from bridge.rt_setup.web_rights import RightsObject

ERROR_PAGE = """
<title>RT Error</title>
<div id="body"><div class="error">
Couldn't load queue 99
<br />
</div></div>
"""


def _admin(handler: Callable[[httpx2.Request], httpx2.Response]) -> WebAdmin:
    return WebAdmin(
        "https://rt.example.org/rt",
        "admin",
        "pa55-word-xyz",
        timeout=5,
        transport=httpx2.MockTransport(handler),
    )


def test_requests_carry_the_referer_and_server_errors_are_transient() -> None:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(503, text="busy")

    admin = _admin(handler)
    with pytest.raises(errors.TrackerUnavailable) as caught:
        admin.ensure_rights(RightsObject.system(), {5: ["SeeGroup"]})
    admin.close()
    assert caught.value.transient
    assert seen[0].url == "https://rt.example.org/rt/Admin/Global/GroupRights.html"
    assert seen[0].headers["referer"] == "https://rt.example.org/rt/"


def test_the_csrf_interstitial_is_a_clear_rejection() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            text='<h1>Possible cross-site request forgery</h1><a href="/x?CSRF_Token=abc">go</a>',
        )

    admin = _admin(handler)
    with pytest.raises(errors.TrackerRejected, match="cross-site request forgery"):
        admin.ensure_default_value(queue_id=3, custom_field_id=2, value="Submitted")
    admin.close()


def test_a_page_without_its_form_is_rejected_with_rts_words() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, text=ERROR_PAGE)

    admin = _admin(handler)
    with pytest.raises(errors.TrackerRejected, match="Couldn't load queue 99"):
        admin.ensure_rights(RightsObject.queue(99), {5: ["SeeQueue"]})
    admin.close()


def test_admin_pages_refused_mean_the_account_is_no_administrator() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(403)

    admin = _admin(handler)
    with pytest.raises(errors.TrackerAuthFailed, match="RT administrator"):
        admin.ensure_scrip(queue_id=3, description="d", condition_code="1;", action_code="1;")
    admin.close()
