"""A browser-like session on RT's web pages, for the set-up that REST2 in RT 5.0 cannot do.

Owns the form login at ``NoAuth/Login.html`` (the password is only ever sent in that form; it is
never part of a message or log line), RT's session cookie, a ``Referer`` on every request for
RT's CSRF check, logging out, and turning RT's answers into the tracker's errors: HTTP statuses,
a page sent back to the login form, RT's CSRF interstitial, a page without its expected form.
It knows no admin page and changes nothing in RT by itself: ``web_admin`` holds the operations.
"""

from __future__ import annotations

import logging
from typing import Any, Self

import httpx2

from bridge import errors
from bridge.rt_setup.html_forms import Form, Page, parse_page
from bridge.tracker import http

logger = logging.getLogger(__name__)

LOGIN_PAGE = "NoAuth/Login.html"


class WebSession:
    """A logged-in session on RT's web pages; ``_form``, ``_page`` and ``_send`` for subclasses."""

    def __init__(
        self,
        web_url: str,
        user: str,
        password: str,
        *,
        timeout: float,
        verify_tls: bool = True,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.web_url = web_url.rstrip("/") + "/"
        self.user = user
        self._password = password
        self._client = http.new_session(
            timeout=timeout,
            verify_tls=verify_tls,
            user_agent="rollout-bridge-setup",
            transport=transport,
            follow_redirects=True,
            headers={
                # RT's CSRF check ($RestrictReferrer) wants a Referer from RT itself.
                "Referer": self.web_url,
                "Accept-Language": "en",
            },
        )
        self._logged_in = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.web_url!r}, user={self.user!r})"

    # -- session ----------------------------------------------------------------------
    def login(self) -> None:
        """Log in through RT's login form; raise ``TrackerAuthFailed`` when RT refuses."""
        what = "RT web login"
        answer = self._send(
            "POST", LOGIN_PAGE, what,
            data={"user": self.user, "pass": self._password, "next": ""},
            follow_redirects=False,
        )  # fmt: skip
        # The answer to the form says little; a page that needs a session tells.
        probe = self._send("GET", "Helpers/ShortcutHelp", what, follow_redirects=False)
        if probe.is_redirect and LOGIN_PAGE in probe.headers.get("location", ""):
            said = parse_page(answer.text).feedback() if answer.status_code == 200 else ""
            raise errors.TrackerAuthFailed(
                f"RT's web login refused user {self.user!r}"
                + (f" ({said})" if said else "")
                + "; check the user name and password",
                operation=what,
            )
        if probe.status_code != 200:
            raise errors.TrackerBadAnswer(
                f"unexpected HTTP {probe.status_code} after logging in to {self.web_url}",
                operation=what,
                status_code=probe.status_code,
            )
        self._logged_in = True
        logger.debug("logged in to %s as %s", self.web_url, self.user)

    def close(self) -> None:
        """Log out (best effort) and close the connection."""
        try:
            if self._logged_in:
                self._client.get(self.web_url + "NoAuth/Logout.html", follow_redirects=False)
        except httpx2.HTTPError:
            pass
        finally:
            self._logged_in = False
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP -------------------------------------------------------------------------
    def _form(self, method: str, path: str, form_key: str, what: str, **kw: Any) -> Form:
        page = self._page(method, path, what, **kw)
        form = page.form(form_key)
        if form is None:
            raise errors.TrackerRejected(
                f"RT's page {path} has no form {form_key!r}" + rt_said(page), operation=what
            )
        return form

    def _page(self, method: str, path: str, what: str, **kw: Any) -> Page:
        return parse_page(self._send(method, path, what, **kw).text)

    def _send(self, method: str, path: str, what: str, **kw: Any) -> httpx2.Response:
        try:
            response = self._client.request(method, self.web_url + path, **kw)
        except httpx2.TransportError as exc:
            raise http.unreachable(exc, f"RT's web pages at {self.web_url}", what) from exc
        status = response.status_code
        if status >= 500 or status == 429:
            raise errors.TrackerUnavailable(
                f"RT answered HTTP {status} for {path}", operation=what, status_code=status
            )
        if status in (401, 403):
            raise errors.TrackerAuthFailed(
                f"RT refused {path} (HTTP {status}); tracker init needs an RT administrator "
                "(SuperUser)",
                operation=what,
                status_code=status,
            )
        if status == 404:
            raise errors.TrackerRejected(
                f"RT has no page {path} (HTTP 404); is {self.web_url} RT's web root?",
                operation=what,
                status_code=status,
            )
        if status >= 400:
            raise errors.TrackerRejected(
                f"RT answered HTTP {status} for {path}", operation=what, status_code=status
            )
        if path != LOGIN_PAGE and response.url.path.endswith("/" + LOGIN_PAGE):
            raise errors.TrackerAuthFailed(
                "RT's web session ended (sent back to the login page)", operation=what
            )
        if "CSRF_Token=" in response.text:
            raise errors.TrackerRejected(
                "RT refused the request as a possible cross-site request forgery; give the "
                "URL exactly as RT's $WebBaseURL",
                operation=what,
            )
        return response


def rt_said(page: Page) -> str:
    """RT's feedback on ``page`` as the end of a message (empty when RT said nothing)."""
    said = page.feedback()
    return f" (RT said: {said})" if said else ""
