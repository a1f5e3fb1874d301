"""The audit feed over HTTP: ``GET /api/events`` (``router``), mounted on the receiver's app by
``rollout serve`` and ``rollout run``.

Filters are query parameters; pages are keyset pages on the event id (``after``, ``limit`` up
to ``MAX_LIMIT``), linked by ``next`` in the body and a ``Link`` header, with no window on
time; ``?reader=NAME`` starts after that reader's cursor and moves it past what it served.
Formats: JSON (the page), JSON Lines, CSV, Atom. Only the roles of ``events_api_roles`` may
read it (``events_access``). It holds no SQL
(``bridge.store.event_feed``) and no formatting (``history.exports``); it never logs a header.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from bridge.store import event_feed
from bridge.store import events as eventlog
from repo_daemon.history import exports
from repo_daemon.web import events_access

logger = logging.getLogger(__name__)

API_PATH = events_access.API_PATH
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000  # the hard maximum of a page: 1,000,000 events are 100 pages


class Format(enum.Enum):
    """What ``GET /api/events`` answers in."""

    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    ATOM = "atom"


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


def _authorizer(access: events_access.FeedAccess) -> Callable[[Request], None]:
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
    access: events_access.FeedAccess,
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
