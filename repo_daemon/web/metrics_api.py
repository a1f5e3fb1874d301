"""The provisioning metrics over HTTP: ``GET /api/metrics`` (the whole report) and
``GET /api/metrics/{table}`` (``monthly``, ``uptake``, ``teams``, ``ngis``, ``durations``),
with ``from`` / ``to`` / ``major_release`` as ``rollout metrics`` takes them, as JSON or CSV
(``format``); the JSON durations carry their samples only when asked (``samples=1``).
Mounted on the receiver by ``assemble``; readable by the roles of ``status_roles``
(``events_access.FeedAccess``). Refusals and bad parameters are RFC 7807 problems
(``webhooks_access.ProblemRoute``).

It holds no SQL and no rule (``metrics.compute``) and no formatting (``metrics.render``); it
never logs a header.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from repo_daemon.history import exports
from repo_daemon.metrics import compute, period, render, report
from repo_daemon.web import events_access, webhooks_access

logger = logging.getLogger(__name__)

API_PATH = "/api/metrics"
REALM = "Rollout status"
_REFUSED = {
    401: "log in with your RT user name and password, or an RT auth token",
    403: "your RT account has no role that may read the metrics",
    503: "RT cannot check logins now; try again later",
}


class Format(enum.Enum):
    """What the metrics are answered in."""

    JSON = "json"
    CSV = "csv"


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The metrics in the format asked for (docs/metrics.md).",
        "content": {exports.CSV_TYPE: {"schema": {"type": "string"}}},
    },
    401: {"description": "No credentials, or RT refused them (a problem)."},
    403: {"description": "Not a role that may read the metrics (a problem)."},
    404: {"description": "No such table (a problem)."},
    422: {"description": "A parameter is not valid: where and what (a problem)."},
    503: {"description": "RT cannot check the login now (a problem)."},
}
_PERIOD = "YYYY-MM or YYYY-MM-DD (UTC)."
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=20,
        description=f"From this month or day, {_PERIOD} Default: the earliest record's month.",
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        max_length=20,
        description=f"Through this month, or until this day (excluded), {_PERIOD} "
        "Default: through the current month.",
    ),
]
Major = Annotated[
    str | None, Query(max_length=100, description="Only the releases of this major release.")
]
FormatParam = Annotated[Format, Query(description="json or csv (formula-safe).")]
Samples = Annotated[
    bool,
    Query(
        description="JSON: give every duration's samples (seconds) too; without it the "
        "durations are n, median and p90 only."
    ),
]


def _admit(access: events_access.FeedAccess) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        answer = access.check(request.headers.get("authorization"))
        if answer.allowed:
            return
        raise webhooks_access.Problem(
            answer.status, _REFUSED[answer.status], headers=dict(answer.headers)
        )

    return check


def read_query(since: str | None, until: str | None, major_release: str | None) -> report.Query:
    """The ``Query`` of the parameters; a 422 problem saying which parameter is wrong and
    how (every one at once)."""
    problems: list[dict[str, Any]] = []

    def read(name: str, value: str | None, parse: Callable[[str], datetime]) -> datetime | None:
        try:
            return parse(value) if value is not None else None
        except period.PeriodInvalid as exc:
            problems.append({"loc": ["query", name], "msg": str(exc)})
            return None

    start = read("from", since, period.parse_from)
    end = read("to", until, period.parse_to)
    if not problems:
        try:
            period.check_order(start, end, what=f"from={since}&to={until}")
        except period.PeriodInvalid as exc:
            problems.append({"loc": ["query", "from"], "msg": str(exc)})
    if problems:
        where = "; ".join(f"{p['loc'][1]}: {p['msg']}" for p in problems)
        raise webhooks_access.Problem(422, f"the request is not valid: {where}", errors=problems)
    return report.Query(since=start, until=end, major_release=major_release or None)


def router(
    engine: sa.Engine,
    access: events_access.FeedAccess,
    *,
    clock: Callable[[], datetime] | None = None,
) -> APIRouter:
    """``GET /api/metrics`` and ``GET /api/metrics/{table}`` on the records in ``engine``, for
    the people ``access`` admits. ``clock`` gives naive UTC "now" (default: the clock), which
    ends a period asked without ``to``."""
    api = APIRouter(
        dependencies=[Depends(_admit(access))], route_class=webhooks_access.ProblemRoute
    )

    def answer(query: report.Query, table: str | None, fmt: Format, samples: bool) -> Response:
        found = compute.compute(engine, query, now=clock() if clock is not None else None)
        if fmt is Format.CSV:
            name = f"metrics-{table or 'all'}.csv"
            return Response(
                render.csv_text(found, table),
                media_type=exports.CSV_TYPE + "; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return JSONResponse(render.as_dict(found, table, samples=samples))

    @api.get(API_PATH, responses=_RESPONSES, summary="Every provisioning metric of a period")
    def whole(
        since: From = None,
        until: To = None,
        major_release: Major = None,
        format: FormatParam = Format.JSON,
        samples: Samples = False,
    ) -> Response:
        return answer(read_query(since, until, major_release), None, format, samples)

    @api.get(
        API_PATH + "/{table}", responses=_RESPONSES, summary="One table of the metrics"
    )  # fmt: skip
    def one(
        table: str,
        since: From = None,
        until: To = None,
        major_release: Major = None,
        format: FormatParam = Format.JSON,
        samples: Samples = False,
    ) -> Response:
        if table not in render.TABLES:
            raise webhooks_access.Problem(
                404, f"no metrics table {table!r}: one of {', '.join(render.TABLES)}"
            )
        return answer(read_query(since, until, major_release), table, format, samples)

    return api
