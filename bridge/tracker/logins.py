"""People's own RT logins: whether a login and password (or an RT auth token) are good, asked
of RT with those very credentials, one request each (``LoginChecker.who``).

It owns that one request and what RT's answer means. It remembers nothing (the access
check's cache does), decides nothing about roles or areas, and never logs or puts a password
or token into an error message.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

import httpx2

from bridge import errors
from bridge.settings import model as settings_model
from bridge.tracker import http

logger = logging.getLogger(__name__)

# RT 5's auth token as RT::AuthToken parses it: "1-<user id>-<32 hex digits>".
_TOKEN = re.compile(r"1-([0-9]+)-[0-9a-fA-F]{32}")


def is_token(secret: str) -> bool:
    """Whether ``secret`` has the shape of an RT auth token (else it is a password)."""
    return _TOKEN.fullmatch(secret) is not None


class LoginChecker:
    """Checks people's RT credentials against RT at ``settings.url`` (the bridge's own
    credentials are not used). Safe to share between threads. ``calls`` counts the requests
    made to RT."""

    def __init__(
        self,
        settings: settings_model.TrackerSettings,
        *,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.calls = 0
        self._lock = threading.Lock()
        self._session = http.new_session(
            timeout=min(settings.timeout, 10.0),
            verify_tls=settings.verify_tls,
            user_agent="rollout-bridge access check",
            transport=transport,
        )

    def close(self) -> None:
        self._session.close()

    def who(self, login: str, secret: str) -> str | None:
        """RT's name of the person who logs in as ``login`` with ``secret`` (a password, or an
        RT auth token of theirs), or None when RT refuses them. One request to RT, with the
        person's own credentials: their own user record (``GET /user/:id``), which RT shows
        to everyone about themselves.

        A token is sent as RT's ``Authorization: token``; it counts only for its owner, so
        ``login`` must name the same user (RT's name, compared without case). An empty
        login (a bearer token) is whoever owns the token.

        Raises ``TrackerUnavailable`` when RT cannot answer (connection, timeout, 5xx).
        """
        token = _TOKEN.fullmatch(secret)
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        if token is not None:
            headers["Authorization"] = f"token {secret}"
            path = "user/" + token.group(1)
        elif not login or not secret or ":" in login:
            return None  # nothing RT could accept: not worth a request
        else:
            auth = (login, secret)
            path = "user/" + urllib.parse.quote(login, safe="")
        with self._lock:
            self.calls += 1
        try:
            response = self._session.get(self.settings.rest_url + path, headers=headers, auth=auth)
        except httpx2.HTTPError as exc:
            raise errors.TrackerUnavailable(
                f"RT did not answer the login check ({type(exc).__name__})",
                operation="login",
            ) from exc
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 200:
            raise errors.TrackerUnavailable(
                f"RT answered the login check with HTTP {response.status_code}",
                operation="login",
                status_code=response.status_code,
            )
        try:
            record = response.json()
        except ValueError as exc:
            raise errors.TrackerUnavailable(
                "RT's answer to the login check is not JSON", operation="login"
            ) from exc
        return _own_name(record, login, by_token=token is not None)


def _own_name(record: Any, login: str, *, by_token: bool) -> str | None:
    """The name in a user record that is the caller's own (it carries ``Disabled``, which RT
    shows only to the user and to user administrators), when it matches ``login``."""
    if not isinstance(record, Mapping) or "Disabled" not in record:
        return None
    name = str(record.get("Name") or "")
    if not name or str(record.get("Disabled") or "0") != "0":
        return None
    if by_token and login and login.casefold() != name.casefold():
        return None
    if not by_token and login.casefold() != name.casefold():
        return None
    return name
