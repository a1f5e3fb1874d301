"""One request's access check, as nginx's ``auth_request`` and the embedded server both ask it:
the path and the ``Authorization`` header in, a status and headers out
(``AccessGuard.check``).

It reads the credentials from the header (HTTP basic with an RT login and password or RT
auth token; ``Bearer``/``token`` with an RT auth token), asks the ``credentials`` checker who
that is only when the area is not public, lets ``access`` decide, and tells the fetch recorder
about allowed reads. It never logs credentials and serves nothing.
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from typing import Protocol

from repo_daemon.serving import access, credentials

logger = logging.getLogger(__name__)

REALM = "Rollout repository"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'
# How long a client waits before asking again when RT cannot be asked (503).
RETRY_AFTER_SECONDS = 30


class Recorder(Protocol):
    """``fetches.FetchRecorder``."""

    def saw(self, person: access.Person, target: access.Target) -> None: ...


@dataclass(frozen=True)
class Answer:
    """The check's answer: ``status`` (204 allow, 401, 403, 404, 503), headers to send, and
    the person when one was recognised (their name goes to the access log, nothing else)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    person: access.Person | None = None

    @property
    def allowed(self) -> bool:
        return self.status == 204


def read_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(login, secret) from an ``Authorization`` header: ``Basic`` (login and password or
    token), ``Bearer`` or ``token`` (an RT auth token, login empty); None for anything else."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            text = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        login, sep, secret = text.partition(":")
        return (login, secret) if sep and login and secret else None
    if scheme in ("bearer", "token") and value:
        return ("", value)
    return None


class AccessGuard:
    """The rule of ``policy`` with people from ``checker`` (None: no RT configured, so
    protected areas are served to nobody) and allowed reads told to ``recorder``."""

    def __init__(
        self,
        policy: access.AccessPolicy,
        checker: credentials.CredentialChecker | None,
        recorder: Recorder | None = None,
    ) -> None:
        self.policy = policy
        self.checker = checker
        self.recorder = recorder

    def check(self, url_path: str, authorization: str | None, *, kind: str | None = None) -> Answer:
        """The answer for a request of ``url_path`` (raw, as the client sent it) with this
        ``Authorization`` header. ``kind`` is the kind of area the server's own location
        matched (nginx says it): a path that normalises into another kind is forbidden, so
        the check and the server can never disagree on where a request goes."""
        parts = access.url_parts(url_path)
        if parts is None:
            return Answer(404)
        target = access.target_of(parts)
        if kind is not None and kind != target.kind:
            logger.warning(
                "access check for a %s location named a %s path; refused", kind, target.kind,
                extra={"action": "access"},
            )  # fmt: skip
            return Answer(403)
        if self.policy.is_public(target.kind):
            return Answer(204)
        given = read_credentials(authorization)
        if given is None or self.checker is None:
            return Answer(401, {"WWW-Authenticate": CHALLENGE})
        try:
            person = self.checker.person(*given)
        except credentials.CheckUnavailable:
            return Answer(503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
        verdict = self.policy.decide(target, person)
        if verdict is access.Verdict.LOGIN:
            return Answer(401, {"WWW-Authenticate": CHALLENGE})
        if verdict is access.Verdict.ALLOW and person is not None and self.recorder is not None:
            self.recorder.saw(person, target)
        return Answer(verdict.status, person=person)
