"""The status pages over HTTP (``router``), mounted on the receiver's app by ``rollout serve``
and ``rollout run``: ``/status`` (the overview), ``/status/releases/{ticket}`` (one release),
``/status/metrics`` (the provisioning metrics with plots) and the pages' stylesheet.

Server-rendered HTML from Jinja2 templates (autoescaped: everything from outside is shown as
text), no JavaScript. Readable by the roles of ``status_roles`` (``events_access.FeedAccess``):
a browser without a login is asked for the RT one (401 with the challenge), a person without a
status role gets 403, and 503 while RT cannot check logins; each as a small HTML page. It reads
through ``views`` and ``metrics_page``; it never writes, and never logs a header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from bridge.settings import model as settings_model
from repo_daemon.web import events_access
from repo_daemon.web.status import display, metrics_page, views

logger = logging.getLogger(__name__)

PREFIX = "/status"
CSS_PATH = f"{PREFIX}/static/status.css"
_CSS = (display.TEMPLATES.parent / "static" / "status.css").read_bytes()
_REFUSED = {
    401: ("Log in", "Log in with your RT user name and password to see the status pages."),
    403: ("Not for your role", "Your RT account has no role that may see the status pages."),
    503: ("Try again later", "RT cannot check logins now; try again in a moment."),
}


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def router(
    engine: sa.Engine,
    settings: settings_model.Settings,
    access: events_access.FeedAccess,
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> APIRouter:
    """The status pages on the store in ``engine``, for the people ``access`` admits (build
    it with ``feed_access(settings, roles=settings.access.status_roles, what="/status")``).
    ``clock`` gives naive UTC (ages, current stays)."""
    env = display.environment()
    pages = APIRouter(include_in_schema=False)

    def page(
        name: str, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        context.setdefault("nav", "")
        html = env.get_template(name).render(css=CSS_PATH, prefix=PREFIX, **context)
        return HTMLResponse(html, status_code=status, headers=dict(headers or {}))

    def refused(request: Request) -> HTMLResponse | None:
        answer = access.check(request.headers.get("authorization"))
        if answer.allowed:
            return None
        title, text = _REFUSED[answer.status]
        return page(
            "refused.html", answer.status, answer.headers, title=title, text=text,
            now=clock(), signed_in=False,
        )  # fmt: skip

    @pages.get(PREFIX, response_class=HTMLResponse)
    def overview_page(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        now = clock()
        return page(
            "overview.html", view=views.overview(engine, settings, now=now), now=now, nav="overview"
        )

    @pages.get(PREFIX + "/releases/{ticket}", response_class=HTMLResponse)
    def release_page(request: Request, ticket: str) -> Response:
        if (no := refused(request)) is not None:
            return no
        now = clock()
        if not ticket.isdigit() or not 0 < int(ticket) < 2**63:
            return page(
                "refused.html", 422, title="Not a ticket number",
                text="A release is named by its RT ticket number, e.g. /status/releases/42.",
                now=now, signed_in=True,
            )  # fmt: skip
        try:
            view = views.release(engine, settings, int(ticket), now=now)
        except views.UnknownRelease:
            return page(
                "refused.html", 404, title=f"No release {int(ticket)}",
                text=f"The bridge has no release for RT ticket {int(ticket)}.",
                now=now, signed_in=True,
            )  # fmt: skip
        return page("release.html", view=view, now=now)

    @pages.get(PREFIX + "/metrics", response_class=HTMLResponse)
    def metrics(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        now = clock()
        form = metrics_page.Form.read(request.query_params)
        if form.problems:
            return page(
                "metrics.html", 422, view=None, form=form, now=now, nav="metrics",
                monthly=metrics_page.MONTHLY,
            )  # fmt: skip
        view = metrics_page.build(engine, form, now=now)
        return page(
            "metrics.html", view=view, form=form, now=now, nav="metrics",
            monthly=metrics_page.MONTHLY,
        )  # fmt: skip

    @pages.get(CSS_PATH)
    def stylesheet() -> Response:
        # Public: a refusal page is styled too, and the sheet tells nothing.
        return Response(
            _CSS, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
        )

    return pages
