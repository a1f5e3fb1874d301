"""Webhook subscriptions over HTTP (``router``), mounted on the receiver's app beside the audit
feed: ``GET/POST /api/subscriptions``, ``GET/PATCH/DELETE /api/subscriptions/{name}``,
``POST /api/subscriptions/{name}/rotate-secret|disable|enable|ping``.

Only the roles of ``subscriptions_api_roles`` are admitted (``webhooks_access``), and the
caller's RT login is the events' actor. A secret is in two answers only: adding and rotating.
Subscriptions declared in the settings file are read-only here (409). It holds no SQL
(``subscription_store``, ``delivery_reads``) and sends nothing but pings (``deliveries.ping``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import pydantic
import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Path, Request

from bridge.settings import model as settings_model
from bridge.settings import webhooks as webhook_settings
from bridge.store import delivery_reads, subscription_store, subscriptions
from repo_daemon.deliveries import ping as pinging
from repo_daemon.web import webhooks_access
from repo_daemon.web.webhooks_access import Problem

API_PATH = "/api/subscriptions"
RECENT = 10

Name = Annotated[str, Path(max_length=100, description="The subscription's name.")]


class FiltersIn(pydantic.BaseModel):
    """What a release must be for its events to be delivered (empty: any)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    major_releases: list[str] = []
    areas: list[str] = pydantic.Field(
        default_factory=list, description="Patterns over the area: production/*."
    )
    target_states: list[str] = []
    emergency: bool | None = None

    def filters(self) -> subscriptions.Filters:
        return subscriptions.Filters(
            major_releases=tuple(dict.fromkeys(self.major_releases)),
            areas=tuple(dict.fromkeys(self.areas)),
            target_states=tuple(dict.fromkeys(self.target_states)),
            emergency=self.emergency,
        )


class SubscriptionIn(pydantic.BaseModel):
    """A subscription to add."""

    model_config = pydantic.ConfigDict(extra="forbid")
    name: str = pydantic.Field(max_length=100, description="Letters, digits, '.', '_', '-'.")
    url: str = pydantic.Field(max_length=2000, description="The endpoint (http:// or https://).")
    description: str = ""
    kinds: list[str] = pydantic.Field(
        default_factory=lambda: ["*"], description="Event kinds, * wildcards."
    )
    filters: FiltersIn = FiltersIn()
    github_signature: bool = False
    ping: bool = pydantic.Field(
        default=True,
        description="Ping it first and enable it only on a 2xx (false: enabled at once).",
    )


class SubscriptionPatch(pydantic.BaseModel):
    """What to change; what is absent stays."""

    model_config = pydantic.ConfigDict(extra="forbid")
    url: str | None = pydantic.Field(default=None, max_length=2000)
    description: str | None = None
    kinds: list[str] | None = None
    filters: FiltersIn | None = None
    github_signature: bool | None = None


class SubscriptionOut(pydantic.BaseModel):
    """A subscription (never its secret) and its deliveries in numbers."""

    name: str
    url: str
    description: str
    kinds: list[str]
    filters: dict[str, Any]
    github_signature: bool
    enabled: bool
    disabled_reason: str | None
    disabled_at: str | None
    declared: bool = pydantic.Field(description="Declared in the settings file: read-only.")
    created_at: str
    updated_at: str
    failing_since: str | None
    failures: int
    warned: int = pydantic.Field(description="The budget's last warning given (50, 90) or 0.")
    last_success_at: str | None
    last_error: str | None
    previous_secret_until: str | None
    pending: int
    oldest_pending_at: str | None
    oldest_pending_seconds: int | None
    failed: int
    delivered_24h: int
    budget_percent: float | None = pydantic.Field(
        description="Time failing as a share of the failure budget (disabled at 100)."
    )


class SubscriptionDetail(SubscriptionOut):
    recent_deliveries: list[dict[str, Any]]
    recoveries: list[dict[str, Any]]


class SubscriptionList(pydantic.BaseModel):
    subscriptions: list[SubscriptionOut]


class PingOut(pydantic.BaseModel):
    """How the endpoint answered a ping."""

    ok: bool
    status: int | None
    error_class: str | None
    error: str | None
    duration_ms: float
    webhook_id: str


class WithSecret(pydantic.BaseModel):
    """A subscription and its new secret: shown this once."""

    subscription: SubscriptionOut
    secret: str = pydantic.Field(description="Shown this once; keep it in the receiver now.")
    ping: PingOut | None = None


class Pinged(pydantic.BaseModel):
    subscription: SubscriptionOut
    ping: PingOut | None


class Removed(pydantic.BaseModel):
    removed: str
    deliveries: int = pydantic.Field(description="Deliveries removed with it.")


class RotateIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    overlap: float | str | None = pydantic.Field(
        default=None,
        description="How long the old secret keeps signing: seconds or 90s, 30m, 12h, 2d "
        "(default: the setting webhook_secret_overlap).",
    )


class DisableIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    reason: str = pydantic.Field(default="disabled by an operator", max_length=1000)


class EnableIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    ping: bool = pydantic.Field(default=True, description="Ping it first; enabled only on a 2xx.")


def router(
    engine: sa.Engine,
    access: Any,
    *,
    webhooks: settings_model.WebhookSettings,
    sender: pinging.Sender,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
    sign: pinging.Signer | None = None,
) -> APIRouter:
    """The subscriptions' routes on ``engine``'s database, for the callers ``access``
    (``events_access.FeedAccess``) admits; pings go through ``sender``."""
    api = APIRouter(
        route_class=webhooks_access.ProblemRoute,
        dependencies=[Depends(webhooks_access.admit(access))],
        tags=["subscriptions"],
    )
    store = subscription_store.SubscriptionStore(engine, clock=clock)

    def out(sub: subscriptions.Subscription) -> SubscriptionOut:
        now = clock()
        f = delivery_reads.figures(engine, now=now, disable_after=webhooks.disable_after)
        return SubscriptionOut(**sub.as_dict(), **f[sub.name].as_dict(now))

    def ping_out(result: pinging.PingResult) -> PingOut:
        return PingOut(**result.as_dict())

    def editable(name: str) -> subscriptions.Subscription:
        sub = store.get(name)
        if sub.declared:
            raise subscriptions.SubscriptionDeclared(name)
        return sub

    @api.get(API_PATH, response_model=SubscriptionList, summary="Every subscription")
    def list_all() -> SubscriptionList:
        now = clock()
        f = delivery_reads.figures(engine, now=now, disable_after=webhooks.disable_after)
        return SubscriptionList(
            subscriptions=[
                SubscriptionOut(**s.as_dict(), **f[s.name].as_dict(now)) for s in store.all()
            ]
        )

    @api.post(
        API_PATH,
        response_model=WithSecret,
        status_code=201,
        summary="Add a subscription: its secret is in this answer only",
    )
    def add(body: SubscriptionIn, request: Request) -> WithSecret:
        spec = subscription_store.Spec(
            url=body.url,
            description=body.description,
            kinds=tuple(dict.fromkeys(body.kinds)),
            filters=body.filters.filters(),
            github_signature=body.github_signature,
        )
        sub, secret = store.add(
            body.name, spec, actor=webhooks_access.actor(request), enabled=not body.ping
        )
        result = None
        if body.ping:
            result, sub = pinging.ping_and_enable(
                store, body.name, sender=sender, actor=webhooks_access.actor(request), sign=sign
            )
        return WithSecret(
            subscription=out(sub), secret=secret, ping=None if result is None else ping_out(result)
        )

    @api.get(API_PATH + "/{name}", response_model=SubscriptionDetail, summary="One subscription")
    def show(name: Name) -> SubscriptionDetail:
        sub = store.get(name)
        recent = delivery_reads.page(
            engine, delivery_reads.Filters(subscription=name), limit=RECENT
        ).deliveries
        return SubscriptionDetail(
            **out(sub).model_dump(),
            recent_deliveries=[d.as_dict() for d in recent],
            recoveries=[r.as_dict() for r in delivery_reads.recoveries(engine, name)],
        )

    @api.patch(API_PATH + "/{name}", response_model=SubscriptionOut, summary="Change one")
    def edit(name: Name, body: SubscriptionPatch, request: Request) -> SubscriptionOut:
        old = editable(name)
        spec = subscription_store.Spec(
            url=old.url if body.url is None else body.url,
            description=old.description if body.description is None else body.description,
            kinds=old.kinds if body.kinds is None else tuple(dict.fromkeys(body.kinds)),
            filters=old.filters if body.filters is None else body.filters.filters(),
            github_signature=old.github_signature
            if body.github_signature is None
            else body.github_signature,
        )
        return out(store.edit(name, spec, actor=webhooks_access.actor(request)))

    @api.delete(API_PATH + "/{name}", response_model=Removed, summary="Remove one")
    def remove(name: Name, request: Request) -> Removed:
        editable(name)
        return Removed(
            removed=name, deliveries=store.remove(name, actor=webhooks_access.actor(request))
        )

    @api.post(
        API_PATH + "/{name}/rotate-secret",
        response_model=WithSecret,
        summary="A new secret, in this answer only; the old one signs for the overlap",
    )
    def rotate(
        name: Name, request: Request, body: Annotated[RotateIn | None, Body()] = None
    ) -> WithSecret:
        editable(name)
        overlap = webhooks.secret_overlap
        if body is not None and body.overlap is not None:
            parsed = webhook_settings.duration(body.overlap)
            if parsed is None:
                raise Problem(
                    422, f"overlap: {body.overlap!r} is not a duration (90s, 30m, 12h, 2d)"
                )
            overlap = parsed
        sub, secret = store.rotate_secret(
            name, actor=webhooks_access.actor(request), overlap=overlap
        )
        return WithSecret(subscription=out(sub), secret=secret)

    @api.post(API_PATH + "/{name}/disable", response_model=SubscriptionOut, summary="Disable")
    def disable(
        name: Name, request: Request, body: Annotated[DisableIn | None, Body()] = None
    ) -> SubscriptionOut:
        reason = (body or DisableIn()).reason
        return out(store.disable(name, reason=reason, actor=webhooks_access.actor(request)))

    @api.post(
        API_PATH + "/{name}/enable",
        response_model=Pinged,
        summary="Enable: pinged first, enabled only on a 2xx (see ping.ok)",
    )
    def enable(
        name: Name, request: Request, body: Annotated[EnableIn | None, Body()] = None
    ) -> Pinged:
        if body is not None and not body.ping:
            return Pinged(
                subscription=out(
                    store.enable(name, actor=webhooks_access.actor(request), how="operator")
                ),
                ping=None,
            )
        result, sub = pinging.ping_and_enable(
            store, name, sender=sender, actor=webhooks_access.actor(request), sign=sign
        )
        return Pinged(subscription=out(sub), ping=ping_out(result))

    @api.post(
        API_PATH + "/{name}/ping",
        response_model=Pinged,
        summary="Ping the endpoint; a disabled subscription answered 2xx is enabled",
    )
    def ping(name: Name, request: Request) -> Pinged:
        result, sub = pinging.ping_and_enable(
            store, name, sender=sender, actor=webhooks_access.actor(request), sign=sign
        )
        return Pinged(subscription=out(sub), ping=ping_out(result))

    return api
