"""HTTP to RT: the one way to build a session, retry transient failures and turn httpx2 and
python-rt errors into ``bridge.errors``.

Shared by the tracker client (REST2 through python-rt) and the set-up (``rt_setup.apply``'s
REST2 calls, ``rt_setup.web_session``'s pages). Owns timeouts, credentials in headers, backoff
with jitter, and messages that never carry a secret. It must not know any RT operation: what
to ask RT is the callers' business.
"""

from __future__ import annotations

import binascii
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import httpx2
import rt.exceptions

from bridge import errors, secrets
from bridge.settings import model as settings_model

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BACKOFF_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
CREDENTIALS_HINT = "check ROLLOUT_RT_TOKEN, or ROLLOUT_RT_USER and ROLLOUT_RT_PASSWORD"
EventHooks = Mapping[str, list[Callable[..., Any]]]


def new_session(
    *,
    timeout: float,
    verify_tls: bool,
    user_agent: str,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    transport: httpx2.BaseTransport | None = None,
    follow_redirects: bool = False,
    event_hooks: EventHooks | None = None,
) -> httpx2.Client:
    """An httpx2 client with the bridge's timeouts (connecting gives up after at most 10 s).

    ``transport`` replaces the network (tests pass an httpx2 ``MockTransport``).
    """
    return httpx2.Client(
        timeout=httpx2.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)),
        verify=verify_tls,
        auth=auth,
        headers={"User-Agent": user_agent, **(headers or {})},
        transport=transport,
        follow_redirects=follow_redirects,
        event_hooks=dict(event_hooks or {}),
    )


def rest_session(
    settings: settings_model.TrackerSettings,
    *,
    user_agent: str = "rollout-bridge",
    transport: httpx2.BaseTransport | None = None,
    event_hooks: EventHooks | None = None,
) -> httpx2.Client:
    """A session for RT's REST2 with the configured credentials: the auth token in the
    ``Authorization`` header, or else the user and password (HTTP basic)."""
    headers: dict[str, str] = {}
    auth: tuple[str, str] | None = None
    if settings.token is not None:
        headers["Authorization"] = f"token {settings.token.reveal()}"
    elif settings.user is not None and settings.password is not None:
        auth = (settings.user, settings.password.reveal())
    return new_session(
        timeout=settings.timeout,
        verify_tls=settings.verify_tls,
        user_agent=user_agent,
        headers=headers,
        auth=auth,
        transport=transport,
        event_hooks=event_hooks,
    )


def secrets_of(settings: settings_model.TrackerSettings) -> list[str]:
    """The credentials that must never show in a message."""
    return [s.reveal() for s in (settings.token, settings.password) if s is not None]


def root_cause(exc: BaseException) -> BaseException:
    """The httpx2 error behind ``exc`` (python-rt wraps them in its own ConnectionError), or
    ``exc`` itself. Stops at the first httpx2 error: below it are httpcore and OS details."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, httpx2.TransportError):
            return seen
        seen = getattr(seen, "cause", None) or seen.__cause__
    return exc


def unreachable(
    exc: httpx2.TransportError, where: str, operation: str
) -> errors.TrackerUnavailable:
    """The error for a request that got no answer: ``cannot reach <where> (<kind>)``."""
    return errors.TrackerUnavailable(
        f"cannot reach {where} ({type(exc).__name__})", operation=operation
    )


class ErrorMapping:
    """Turns what went wrong talking to RT into ``bridge.errors``, with a message that says
    what to do and never contains a credential.

    ``credentials_hint`` ends the message of a refused login (the set-up says it needs an
    RT administrator instead).
    """

    def __init__(
        self,
        settings: settings_model.TrackerSettings,
        *,
        credentials_hint: str = CREDENTIALS_HINT,
        secrets_to_hide: Iterable[str] | None = None,
    ) -> None:
        self.settings = settings
        self.credentials_hint = credentials_hint
        self.secrets = list(secrets_of(settings) if secrets_to_hide is None else secrets_to_hide)

    def snippet(self, text: str, limit: int = 200) -> str:
        """A short one-line excerpt of ``text`` with the credentials masked."""
        return secrets.snippet(text, self.secrets, limit)

    def translate(
        self,
        exc: BaseException,
        operation: str,
        ticket_id: int | None,
        attempt: int,
        content_type: str = "",
    ) -> errors.TrackerError:
        """The ``TrackerError`` for ``exc`` raised during attempt ``attempt`` of
        ``operation``; ``content_type`` is that of RT's last answer, if any."""
        if isinstance(exc, errors.TrackerError):
            exc.attempts = attempt
            return exc
        url = self.settings.web_url
        kw: dict[str, Any] = {"operation": operation, "ticket_id": ticket_id, "attempts": attempt}
        cause = root_cause(exc)
        if isinstance(cause, httpx2.TimeoutException):
            return errors.TrackerUnavailable(
                f"RT at {url} did not answer within {self.settings.timeout:g} s "
                f"({type(cause).__name__}); is RT overloaded or down?",
                **kw,
            )
        if isinstance(cause, httpx2.ConnectError):
            return errors.TrackerUnavailable(
                f"could not connect to RT at {url}: {self.snippet(str(cause))}; "
                "is RT running and is ROLLOUT_RT_URL right?",
                **kw,
            )
        if isinstance(cause, httpx2.TransportError):
            return errors.TrackerUnavailable(
                f"the connection to RT at {url} broke ({type(cause).__name__})", **kw
            )
        if isinstance(exc, rt.exceptions.AuthorizationError):
            return errors.TrackerAuthFailed(
                f"RT at {url} refused {self.settings.auth_description()} (HTTP 401); "
                + self.credentials_hint,
                status_code=401,
                **kw,
            )
        if isinstance(exc, rt.exceptions.NotFoundError):
            return errors.TrackerNotFound(
                "RT has no such object, or the bridge's account may not see it "
                f"({self.snippet(str(exc))})",
                status_code=404,
                **kw,
            )
        if isinstance(exc, rt.exceptions.BadRequestError):
            return errors.TrackerRejected(
                f"RT refused the request (HTTP 400): {self.snippet(str(exc))}",
                status_code=400,
                **kw,
            )
        if isinstance(exc, rt.exceptions.UnexpectedResponseError):
            if exc.status_code:
                return self.for_status(exc.status_code, exc.response_message or "", kw)
            return errors.TrackerBadAnswer(
                f"RT's answer was not what REST2 sends ({self.snippet(str(exc), 120)})", **kw
            )
        if isinstance(exc, ValueError | KeyError | TypeError | binascii.Error):
            kind = content_type or "no content type"
            return errors.TrackerBadAnswer(
                f"RT's answer was not what REST2 sends ({kind}; {type(exc).__name__}: "
                f"{self.snippet(str(exc), 120)}); is ROLLOUT_RT_URL the RT root "
                "and not a proxy or login page?",
                **kw,
            )
        return errors.TrackerError(
            f"unexpected {type(exc).__name__}: {self.snippet(str(exc))}", **kw
        )

    def for_status(self, status: int, body: str, kw: Mapping[str, Any]) -> errors.TrackerError:
        """The error for an HTTP ``status`` other than success; ``kw`` carries
        ``operation`` and ``ticket_id``. 429 and 5xx are transient."""
        excerpt = self.snippet(body)
        if status == 401:
            return errors.TrackerAuthFailed(
                f"RT refused {self.settings.auth_description()} (HTTP 401)",
                status_code=401,
                **kw,
            )
        if status == 403:
            return errors.TrackerAuthFailed(
                "RT says the bridge's account lacks the right for this (HTTP 403): "
                f"{excerpt}; grant it on the queue (see docs/tracker.md)",
                status_code=403,
                **kw,
            )
        if status == 404:
            return errors.TrackerNotFound("RT has no such object (HTTP 404)", status_code=404, **kw)
        if status == 429 or status >= 500:
            return errors.TrackerUnavailable(
                f"RT answered HTTP {status}"
                + (f": {excerpt}" if excerpt else " with an empty body"),
                status_code=status,
                **kw,
            )
        return errors.TrackerRejected(
            f"RT answered HTTP {status}: {excerpt}", status_code=status, **kw
        )


class Retrying:
    """Runs a call again after transient failures, with exponential backoff and jitter.

    ``sleep`` and ``jitter`` make the backoff testable; ``retries`` counts the retries per
    operation.
    """

    def __init__(
        self,
        settings: settings_model.TrackerSettings,
        mapping: ErrorMapping,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.mapping = mapping
        self._sleep = sleep
        self._jitter = jitter

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): doubling from
        ``backoff``, times 0.5 to 1.5 at random, at most 30 s."""
        return min(
            MAX_BACKOFF_SECONDS,
            self.settings.backoff * float(2 ** (attempt - 1)) * (0.5 + self._jitter()),
        )

    def call(
        self,
        operation: str,
        ticket_id: int | None,
        fn: Callable[[], T],
        *,
        idempotent: bool = True,
        content_type: Callable[[], str] = str,
        on_attempt: Callable[[], None] | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> T:
        """Run ``fn`` as ``operation``, translating errors and retrying transient ones.

        A non-idempotent request (a comment) is retried only when it surely never reached
        RT (the connection could not be made), so a retry never duplicates it. Raises the
        ``TrackerError`` of the last attempt.
        """
        attempt = 0
        while True:
            attempt += 1
            if on_attempt is not None:
                on_attempt()
            try:
                return fn()
            except Exception as exc:
                error = self.mapping.translate(exc, operation, ticket_id, attempt, content_type())
                never_sent = isinstance(
                    root_cause(exc), httpx2.ConnectError | httpx2.ConnectTimeout
                )
                retry = (
                    error.transient
                    and attempt <= self.settings.retries
                    and (idempotent or never_sent)
                )
                if not retry:
                    raise error from exc
            delay = self.delay(attempt)
            if on_retry is not None:
                on_retry()
            logger.warning(
                "RT %s failed (%s); retry %d in %.1f s",
                operation,
                type(error).__name__,
                attempt,
                delay,
                extra={"operation": operation, "ticket_id": ticket_id},
            )
            self._sleep(delay)
