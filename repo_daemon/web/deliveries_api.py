"""Webhook deliveries over HTTP (``router``), mounted on the receiver's app beside the
subscriptions: ``GET /api/deliveries`` (filters, keyset pages newest first linked by ``next``),
``GET /api/deliveries/{id}`` (with its attempts), ``POST /api/deliveries/{id}/redeliver``,
``POST /api/deliveries/recover`` and ``POST /api/recoveries/{id}/cancel``.

Admitted as the subscriptions' API is (``webhooks_access``); the caller's RT login is the
events' actor. It holds no SQL (``delivery_reads``, ``DeliveryStore``) and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request

from bridge.store import deliveries, delivery_reads, event_feed
from repo_daemon.web import webhooks_access

API_PATH = "/api/deliveries"
RECOVERIES_PATH = "/api/recoveries"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_TIME_HELP = "ISO 8601 (no offset: UTC), today, yesterday, now, or a time ago: 30m, 8h, 2d, 1w."


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return event_feed.parse_time(str(value), now=datetime.now(UTC))


Since = Annotated[
    datetime | None,
    Query(description=f"Made at or after this time. {_TIME_HELP}"),
    pydantic.BeforeValidator(_time),
    pydantic.WithJsonSchema({"type": "string"}),
]
Id = Annotated[int, Path(ge=1)]


class DeliveryOut(pydantic.BaseModel):
    """One delivery (its body and attempts are in ``GET /api/deliveries/{id}``)."""

    id: int
    subscription: str
    event_id: int
    webhook_id: str = pydantic.Field(description="The same on every attempt and redelivery.")
    kind: str
    ticket_id: int | None
    seq: int | None
    status: str = pydantic.Field(description="pending, sending, delivered, failed, cancelled.")
    attempts: int = pydantic.Field(description="Attempts in the current round of the schedule.")
    next_attempt_at: str | None
    created_at: str
    finished_at: str | None
    last_status: int | None
    last_error: str | None
    recovery_id: int | None


class AttemptOut(pydantic.BaseModel):
    attempt: int
    at: str
    worker: str
    request_headers: dict[str, str] = pydantic.Field(description="Signatures redacted.")
    status: int | None
    response_body: str = pydantic.Field(description="The start of the answer's body.")
    duration_ms: float
    error_class: str | None = pydantic.Field(
        description="dns, refused, tls, timeout, http, destination, connection; null: success."
    )
    error: str | None


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = pydantic.Field(description="The body every attempt sends.")
    attempt_log: list[AttemptOut]


class DeliveryPage(pydantic.BaseModel):
    """Deliveries newest first."""

    deliveries: list[DeliveryOut]
    next: str | None = pydantic.Field(description="The next (older) page's URL; null: none.")


class Redelivered(pydantic.BaseModel):
    delivery: DeliveryOut
    was: str = pydantic.Field(description="Its status before.")


class RecoverIn(pydantic.BaseModel):
    """Send again every failed delivery of ``subscription`` made since ``since``."""

    model_config = pydantic.ConfigDict(extra="forbid")
    subscription: str = pydantic.Field(max_length=100)
    since: Annotated[
        datetime,
        pydantic.BeforeValidator(_time),
        pydantic.WithJsonSchema({"type": "string", "description": _TIME_HELP}),
    ]
    dry_run: bool = pydantic.Field(default=False, description="Only count them.")


class Recovered(pydantic.BaseModel):
    count: int = pydantic.Field(description="Deliveries queued again (or that would be).")
    recovery_id: int | None = pydantic.Field(description="To cancel it; null on a dry run.")
    dry_run: bool


class Cancelled(pydantic.BaseModel):
    recovery_id: int
    count: int = pydantic.Field(description="Deliveries not sent yet, back to failed.")


def router(
    engine: sa.Engine,
    access: Any,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
) -> APIRouter:
    """The deliveries' routes on ``engine``'s database, for the callers ``access``
    (``events_access.FeedAccess``) admits."""
    api = APIRouter(
        route_class=webhooks_access.ProblemRoute,
        dependencies=[Depends(webhooks_access.admit(access))],
        tags=["deliveries"],
    )
    store = deliveries.DeliveryStore(engine, clock=clock)

    @api.get(API_PATH, response_model=DeliveryPage, summary="Deliveries, newest first")
    def list_deliveries(
        request: Request,
        subscription: Annotated[str | None, Query(max_length=100)] = None,
        status: Annotated[
            str | None, Query(pattern="^(" + "|".join(delivery_reads.STATUSES) + ")$")
        ] = None,
        ticket: Annotated[int | None, Query(gt=0)] = None,
        since: Since = None,
        before: Annotated[int | None, Query(gt=0, description="Ids below (the keyset).")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> DeliveryPage:
        filters = delivery_reads.Filters(
            subscription=subscription, status=status, ticket_id=ticket, since=since
        )
        found = delivery_reads.page(engine, filters, before=before, limit=limit)
        next_url = None
        if found.next_before is not None:
            fixed = {"since": delivery_reads.iso(since)} if since is not None else {}
            next_url = str(request.url.include_query_params(before=found.next_before, **fixed))
        return DeliveryPage(
            deliveries=[DeliveryOut(**d.as_dict()) for d in found.deliveries], next=next_url
        )

    @api.get(API_PATH + "/{delivery_id}", response_model=DeliveryDetail, summary="One delivery")
    def show(delivery_id: Id) -> DeliveryDetail:
        return DeliveryDetail(**delivery_reads.get(engine, delivery_id).as_dict())

    @api.post(
        API_PATH + "/{delivery_id}/redeliver",
        response_model=Redelivered,
        summary="Send one delivery again, now, with the same webhook-id",
    )
    def redeliver(delivery_id: Id, request: Request) -> Redelivered:
        was = delivery_reads.get(engine, delivery_id).delivery.status
        store.redeliver(delivery_id, actor=webhooks_access.actor(request))
        now = delivery_reads.get(engine, delivery_id).delivery
        return Redelivered(delivery=DeliveryOut(**now.as_dict()), was=was)

    @api.post(
        API_PATH + "/recover",
        response_model=Recovered,
        summary="Send again a subscription's deliveries failed since a time (or count them)",
    )
    def recover(body: RecoverIn, request: Request) -> Recovered:
        count, recovery = store.recover(
            body.subscription,
            since=body.since,
            actor=webhooks_access.actor(request),
            dry_run=body.dry_run,
        )
        return Recovered(count=count, recovery_id=recovery, dry_run=body.dry_run)

    @api.post(
        RECOVERIES_PATH + "/{recovery_id}/cancel",
        response_model=Cancelled,
        summary="Cancel a recovery: what it has not sent goes back to failed",
    )
    def cancel(recovery_id: Id, request: Request) -> Cancelled:
        count = store.cancel_recovery(recovery_id, actor=webhooks_access.actor(request))
        return Cancelled(recovery_id=recovery_id, count=count)

    return api
