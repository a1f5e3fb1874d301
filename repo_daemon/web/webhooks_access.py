"""Who may manage subscriptions and deliveries over the API, and how the API says no: the roles
of ``subscriptions_api_roles`` (release managers by default), each caller known by their own RT
login exactly as the audit feed's callers are (``events_access.FeedAccess``); the caller's login
becomes the events' actor. Every refusal and error of these routes is an RFC 7807 problem
(``application/problem+json``), including FastAPI's 422s (``ProblemRoute``).

It decides only who is admitted and how errors read; it serves nothing itself and never logs a
header or a secret.
"""

from __future__ import annotations

import dataclasses
import http
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from bridge import errors
from bridge.settings import model as settings_model
from bridge.store import delivery_resend, subscriptions
from repo_daemon.web import events_access

PROBLEM_TYPE = "application/problem+json"
REALM = "Rollout webhooks"
ANONYMOUS = "api"  # the actor when the API is open to anyone (no login asked)
_STATUS_OF: tuple[tuple[type[Exception], int], ...] = (
    (subscriptions.SubscriptionNotFound, 404),
    (delivery_resend.DeliveryNotFound, 404),
    (delivery_resend.RecoveryNotFound, 404),
    (subscriptions.SubscriptionExists, 409),
    (subscriptions.SubscriptionDeclared, 409),
    (subscriptions.SubscriptionInvalid, 422),
)
_REFUSED = {
    401: "log in with your RT user name and password, or an RT auth token",
    403: "your RT account has no role that may manage webhook subscriptions",
    503: "RT cannot check logins now; try again later",
}


class Problem(Exception):
    """An answer other than success, as an RFC 7807 problem."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    """An RFC 7807 problem: ``type``, ``title`` (the status's phrase), ``status``, ``detail``,
    and ``extra`` members (``errors`` for a 422: where and what)."""
    body = {
        "type": "about:blank",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_TYPE)


def _from_error(exc: errors.BridgeError) -> Problem | None:
    for kind, status in _STATUS_OF:
        if isinstance(exc, kind):
            if isinstance(exc, subscriptions.SubscriptionInvalid):
                return Problem(status, str(exc), problems=exc.problems)
            return Problem(status, str(exc))
    return None


class ProblemRoute(APIRoute):
    """A route whose refusals, store errors (not found 404, exists or declared 409, invalid
    422) and request validation errors (422) are answered as RFC 7807 problems."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handle(request)
            except Problem as exc:
                return problem(exc.status, exc.detail, exc.headers or None, **exc.extra)
            except RequestValidationError as exc:
                found = jsonable_encoder(exc.errors())
                where = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in found
                )
                return problem(422, f"the request is not valid: {where}", errors=found)
            except errors.BridgeError as exc:
                known = _from_error(exc)
                if known is None:
                    raise
                return problem(known.status, known.detail, **known.extra)

        return answer


def admit(access: events_access.FeedAccess) -> Callable[[Request], None]:
    """A router's dependency: admits the caller (their RT login is then ``actor(request)``;
    ``api`` when anyone is admitted), or answers a 401 / 403 / 503 problem."""

    def check(request: Request) -> None:
        answer = access.check(request.headers.get("authorization"))
        if answer.allowed:
            request.state.actor = answer.person.name if answer.person is not None else ANONYMOUS
            return
        headers = dict(answer.headers)
        if "WWW-Authenticate" in headers:
            headers["WWW-Authenticate"] = headers["WWW-Authenticate"].replace(
                events_access.REALM, REALM
            )
        raise Problem(answer.status, _REFUSED[answer.status], headers=headers)

    return check


def actor(request: Request) -> str:
    """Who the admitted caller is, for the events (``admit`` found it)."""
    return str(request.state.actor)


def webhooks_access(settings: settings_model.Settings) -> events_access.FeedAccess:
    """The access of the subscriptions' and deliveries' API: ``events_access.feed_access``
    for the roles of ``subscriptions_api_roles`` instead of the feed's. Close it after
    serving."""
    access = dataclasses.replace(settings.access, events_api_roles=settings.webhooks.api_roles)
    return events_access.feed_access(dataclasses.replace(settings, access=access))
