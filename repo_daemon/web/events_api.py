"""The audit feed over HTTP: ``GET /api/events`` (``router``), mounted on the receiver's app by
``rollout serve`` and ``rollout run``.

Filters are query parameters; pages are keyset pages on the event id (``after``, ``limit`` up
to ``MAX_LIMIT``), linked by ``next`` in the body and a ``Link`` header, with no window on
time; ``?reader=NAME`` starts after that reader's cursor and moves it past what it served.
Formats: JSON (the page), JSON Lines, CSV, Atom. Only the roles of ``events_api_roles`` may
read it, checked with RT through ``serving.credentials`` (``FeedAccess``). It holds no SQL
(``bridge.store.event_feed``) and no formatting (``history.exports``); it never logs a header.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from bridge.settings import model as settings_model
from bridge.store import event_feed
from bridge.store import events as eventlog
from bridge.tracker import logins, memberships
from repo_daemon.history import exports
from repo_daemon.serving import credentials, guard

logger = logging.getLogger(__name__)

API_PATH = "/api/events"
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000  # the hard maximum of a page: 1,000,000 events are 100 pages
REALM = "Rollout events"
CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'


class Format(enum.Enum):
    """What ``GET /api/events`` answers in."""

    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    ATOM = "atom"


# -- who may read ------------------------------------------------------------------------------


class FeedAccess:
    """Who may read the feed: people with one of ``roles`` (``anyone``: no login asked), as
    ``checker`` says (their RT login, password or auth token, by HTTP basic or bearer).
    Without a checker (no RT configured) nobody is admitted unless ``anyone`` is."""

    def __init__(
        self,
        roles: Collection[str],
        checker: credentials.CredentialChecker | None,
        *,
        closers: Collection[Callable[[], object]] = (),
    ) -> None:
        self.roles = frozenset(roles)
        self.checker = checker
        self._closers = list(closers)

    @property
    def public(self) -> bool:
        return settings_model.ANYONE in self.roles

    def check(self, authorization: str | None) -> guard.Answer:
        """204 (admitted), 401 (no or bad credentials), 403 (no role that may read the feed)
        or 503 (RT cannot be asked now and the person is not remembered)."""
        if self.public:
            return guard.Answer(204)
        found = guard.read_credentials(authorization)
        if found is None:
            return guard.Answer(401, {"WWW-Authenticate": CHALLENGE})
        if self.checker is None:
            return guard.Answer(403)
        try:
            person = self.checker.person(*found)
        except credentials.CheckUnavailable:
            return guard.Answer(503, {"Retry-After": str(guard.RETRY_AFTER_SECONDS)})
        if person is None:
            return guard.Answer(401, {"WWW-Authenticate": CHALLENGE})
        if person.roles & self.roles:
            return guard.Answer(204, person=person)
        return guard.Answer(403, person=person)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        self._closers.clear()


def feed_access(settings: settings_model.Settings) -> FeedAccess:
    """The feed's access from ``settings``: RT login checks (no retries, at most 10 s each,
    cached as the access check's are) for the groups of ``events_api_roles``. Connects to
    nothing before the first request; close it after serving."""
    roles = settings.access.events_api_roles
    tracker = settings.tracker
    has_rt = bool(tracker.url) and (
        tracker.token is not None or (tracker.user is not None and tracker.password is not None)
    )
    if settings_model.ANYONE in roles or not roles:
        return FeedAccess(roles, None)
    if not has_rt:
        logger.warning(
            "no RT configured (ROLLOUT_RT_URL and credentials): nobody may read %s", API_PATH,
            extra={"action": "start"},
        )  # fmt: skip
        return FeedAccess(roles, None)
    tracker = dataclasses.replace(tracker, retries=0, timeout=min(tracker.timeout, 10.0))
    login_checker = logins.LoginChecker(tracker)
    groups = memberships.Memberships(tracker)
    role_groups = {r: g for r, g in settings.workflow.roles.items() if r in roles}
    directory = credentials.GroupDirectory(
        groups,
        frozenset(role_groups.values()),
        fresh_seconds=settings.access.groups_seconds,
        stale_seconds=settings.access.stale_seconds,
    )
    checker = credentials.CredentialChecker(
        login_checker, directory, roles=role_groups, teams=(), settings=settings.access
    )
    return FeedAccess(roles, checker, closers=[login_checker.close, groups.close])


# -- what the API speaks -------------------------------------------------------------------------


class EventOut(pydantic.BaseModel):
    """One event (``Event.as_dict``)."""

    id: int
    at: str = pydantic.Field(description="UTC, ISO 8601 with Z.")
    kind: eventlog.EventKind
    ticket_id: int | None
    seq: int | None = pydantic.Field(description="The event's number among its release's.")
    actor: str
    cause: str
    transaction_id: int | None
    job_id: int | None
    data: dict[str, Any] = pydantic.Field(description="The kind's fields (docs/events.md).")
    prev_hash: str
    hash: str


class EventPage(pydantic.BaseModel):
    """A page of events, oldest first."""

    events: list[EventOut]
    next: str | None = pydantic.Field(
        description="The next page's URL; null when no further event matches now."
    )
    resume_after: int = pydantic.Field(
        description="The id to ask again after later (`after=`), to see only newer events."
    )


class Refusal(pydantic.BaseModel):
    """Why the request is not answered."""

    detail: str


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return event_feed.parse_time(str(value), now=datetime.now(UTC))


def _cause(value: Any) -> eventlog.Cause | None:
    if value is None or isinstance(value, eventlog.Cause):
        return value
    try:
        return eventlog.Cause.parse(str(value))
    except ValueError:
        labels = ", ".join(c.label for c in eventlog.Cause)
        raise ValueError(f"{value!r} is not a cause ({labels})") from None


def _reader(name: str | None) -> str | None:
    return None if name is None else event_feed.check_reader(name)


_TIME_HELP = "ISO 8601 (no offset: UTC), today, yesterday, now, or a time ago: 30m, 8h, 2d, 1w."
_STRING = pydantic.WithJsonSchema({"type": "string"})
Since = Annotated[
    datetime | None,
    Query(description=f"Events at or after this time. {_TIME_HELP}"),
    pydantic.BeforeValidator(_time),
    _STRING,
]
Until = Annotated[
    datetime | None,
    Query(description=f"Events before this time. {_TIME_HELP}"),
    pydantic.BeforeValidator(_time),
    _STRING,
]
CauseParam = Annotated[
    eventlog.Cause | None,
    Query(description="What started the work (docs/events.md, causes)."),
    pydantic.BeforeValidator(_cause),
    pydantic.WithJsonSchema({"type": "string", "enum": [c.label for c in eventlog.Cause]}),
]
ReaderParam = Annotated[
    str | None,
    Query(
        description="A named reader: start after the last event it was served (when `after` "
        "is not given), and remember this page's last event as seen by it.",
        max_length=100,
    ),
    pydantic.AfterValidator(_reader),
]
_MEDIA = {
    Format.JSON: "application/json",
    Format.JSONL: exports.JSONL_TYPE,
    Format.CSV: exports.CSV_TYPE + "; charset=utf-8",
    Format.ATOM: exports.ATOM_TYPE,
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A page of events in the format asked for.",
        "content": {
            exports.JSONL_TYPE: {"schema": {"type": "string"}},
            exports.CSV_TYPE: {"schema": {"type": "string"}},
            exports.ATOM_TYPE: {"schema": {"type": "string"}},
        },
    },
    401: {"model": Refusal, "description": "No credentials, or RT refused them."},
    403: {"model": Refusal, "description": "Not a role that may read the feed."},
    503: {"model": Refusal, "description": "RT cannot check the login now."},
}


def _authorizer(access: FeedAccess) -> Callable[[Request], None]:
    def authorize(request: Request) -> None:
        answer = access.check(request.headers.get("authorization"))
        if answer.allowed:
            return
        detail = {
            401: "log in with your RT user name and password, or an RT auth token",
            403: "your RT account has no role that may read the event feed",
            503: "RT cannot check logins now; try again later",
        }[answer.status]
        raise HTTPException(answer.status, detail, headers=answer.headers or None)

    return authorize


def router(
    engine: sa.Engine,
    access: FeedAccess,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
) -> APIRouter:
    """``GET /api/events`` on the event log in ``engine``, for the people ``access`` admits.
    ``clock`` gives naive UTC (the Atom feed's time when it holds no event)."""
    api = APIRouter(dependencies=[Depends(_authorizer(access))])

    @api.get(
        API_PATH,
        response_model=EventPage,
        responses=_RESPONSES,
        summary="The audit feed: events, oldest first, in keyset pages",
    )
    def list_events(
        request: Request,
        since: Since = None,
        until: Until = None,
        ticket: Annotated[int | None, Query(gt=0, description="The release's RT ticket.")] = None,
        kind: Annotated[
            list[eventlog.EventKind] | None, Query(description="Any of these kinds.")
        ] = None,
        actor: Annotated[str | None, Query(max_length=200, description="Who did it.")] = None,
        major_release: Annotated[str | None, Query(max_length=100)] = None,
        area: Annotated[
            str | None,
            Query(max_length=1000, description="An area, or any area under this path."),
        ] = None,
        cause: CauseParam = None,
        after: Annotated[
            int | None, Query(ge=0, description="Only events with larger ids (the keyset).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        reader: ReaderParam = None,
        format: Annotated[Format, Query(description="json (a page), jsonl, csv or atom.")] = (
            Format.JSON
        ),
    ) -> Response:
        filters = event_feed.Filters(
            since=since,
            until=until,
            ticket_id=ticket,
            kinds=tuple(dict.fromkeys(kind or ())),
            actor=actor,
            major_release=major_release,
            area=area,
            cause=cause,
        )
        start = after
        if start is None and reader is not None:
            start = event_feed.cursor(engine, reader)
        if format is Format.ATOM and start is None:
            # A subscribed feed shows what is newest; paging on is by `after`.
            events, next_after = event_feed.latest(engine, filters, limit=limit), None
        else:
            found = event_feed.page(engine, filters, after=start, limit=limit)
            events, next_after = found.events, found.next_after
        if reader is not None and events:
            event_feed.advance(engine, reader, events[-1].id)
        next_url = None
        if next_after is not None:
            # Relative times (8h, today) are written out, so every page has the same window.
            fixed = {k: v for k, v in filters.as_query() if k in ("since", "until")}
            next_url = str(request.url.include_query_params(after=next_after, **fixed))
        resume = events[-1].id if events else (start or 0)
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
        if format is Format.JSON:
            body = {
                "events": [e.as_dict() for e in events],
                "next": next_url,
                "resume_after": resume,
            }
            return JSONResponse(body, headers=headers)
        if format is Format.JSONL:
            content: str | bytes = exports.jsonl_text(events)
        elif format is Format.CSV:
            content = exports.csv_text(events)
        else:
            content = _atom(request, filters, events, next_url, clock())
        return Response(content, media_type=_MEDIA[format], headers=headers)

    return api


def _atom(
    request: Request,
    filters: event_feed.Filters,
    events: tuple[eventlog.Event, ...],
    next_url: str | None,
    now: datetime,
) -> bytes:
    base = str(request.base_url).rstrip("/") + API_PATH

    def event_url(event: eventlog.Event) -> str:
        return f"{base}?after={event.id - 1}&limit=1"

    return exports.atom_feed(
        events,
        feed_id=exports.feed_id(filters.as_query()),
        title=filters.title(),
        self_url=str(request.url),
        event_url=event_url,
        updated=now,
        next_url=next_url,
    )
