"""Pinging a subscription's endpoint: one signed ``ping`` POST, answered 2xx or not, before a
new or disabled endpoint is enabled (``rollout subscriptions add|enable|ping`` and the API).

It records nothing but what a ping earns (``ping_and_enable``: a disabled endpoint that
answers 2xx is enabled) and never retries; the HTTP client and the signing are ``outbound`` and
``signing``'s, imported when first needed so that reading subscriptions needs neither.
"""

from __future__ import annotations

import importlib
import json
import secrets as _random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.settings import model as settings_model
from bridge.store import subscription_store
from bridge.store.subscriptions import Subscription


class Outcome(Protocol):
    """What ``outbound.Sender.post`` gives (``outbound.Outcome``)."""

    @property
    def ok(self) -> bool: ...
    @property
    def status(self) -> int | None: ...
    @property
    def body(self) -> bytes: ...
    @property
    def duration(self) -> float: ...
    @property
    def error_class(self) -> Any: ...  # outbound.ErrorClass (with .label) or None
    @property
    def error(self) -> str | None: ...


class Sender(Protocol):
    """``outbound.Sender``, as far as a ping needs it."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome: ...


Signer = Callable[..., dict[str, str]]


@dataclass(frozen=True, kw_only=True)
class PingResult:
    """How the endpoint answered a ping."""

    ok: bool  # a 2xx, read completely
    status: int | None
    error_class: str | None
    error: str | None
    duration: float
    webhook_id: str
    body: str  # the start of the answer's body (as much as the sender read)

    def describe(self) -> str:
        """One line saying what the endpoint answered (nothing secret in it)."""
        if self.ok:
            return f"answered {self.status} in {self.duration * 1000:.0f} ms"
        if self.status is not None:
            return f"answered {self.status} ({self.error or 'not 2xx'})"
        return f"{self.error_class or 'failed'}: {self.error or 'no answer'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "error_class": self.error_class,
            "error": self.error,
            "duration_ms": round(self.duration * 1000, 3),
            "webhook_id": self.webhook_id,
        }


def body_of(subscription: Subscription, *, webhook_id: str, now: datetime) -> bytes:
    """A ping's body: the deliveries' envelope with ``type`` ``ping``, no sequence, and the
    subscription's name as its data. ``now`` is naive UTC."""
    payload = {
        "id": webhook_id,
        "type": "ping",
        "version": 1,
        "timestamp": now.isoformat(timespec="microseconds") + "Z",
        "sequence": None,
        "data": {"subscription": subscription.name},
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def ping(
    subscription: Subscription,
    *,
    sender: Sender,
    now: datetime,
    sign: Signer | None = None,
) -> PingResult:
    """POST a signed ping to ``subscription``'s endpoint once, with every secret that signs
    its deliveries now (``now``: naive UTC); ``sign`` is ``signing.headers_for`` unless given.
    Never raises for a failed answer."""
    if sign is None:
        # h-out's module; imported by name so that reading subscriptions never loads it.
        sign = importlib.import_module("repo_daemon.deliveries.signing").headers_for
    webhook_id = "ping_" + _random.token_hex(12)
    body = body_of(subscription, webhook_id=webhook_id, now=now)
    secrets: Sequence[str] = subscription.signing_secrets(now)
    headers = sign(
        webhook_id=webhook_id,
        timestamp=now.replace(tzinfo=UTC),
        body=body,
        secrets=secrets,
        github=subscription.github_signature,
    )
    outcome = sender.post(subscription.url, body, headers)
    error_class = outcome.error_class
    label = None if error_class is None else str(getattr(error_class, "label", error_class))
    return PingResult(
        ok=bool(outcome.ok),
        status=outcome.status,
        error_class=label,
        error=outcome.error,
        duration=outcome.duration,
        webhook_id=webhook_id,
        body=outcome.body[:500].decode("utf-8", "replace"),
    )


class LazySender:
    """``outbound.Sender`` from settings, built at the first ``post`` (so that a command or
    server that never pings never loads the HTTP client); ``close`` closes it if built."""

    def __init__(self, settings: settings_model.WebhookSettings) -> None:
        self.settings = settings
        self._sender: Any = None

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Outcome:
        if self._sender is None:
            outbound = importlib.import_module("repo_daemon.deliveries.outbound")
            self._sender = outbound.Sender(
                outbound.DestinationPolicy.from_cidrs(self.settings.allow_cidrs),
                timeout=self.settings.timeout,
                body_cap=self.settings.response_cap,
            )
        outcome: Outcome = self._sender.post(url, body, headers)
        return outcome

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


def sender_for(settings: settings_model.Settings) -> LazySender:
    """The sender pings use: deliveries' own (destination policy, timeout, answer cap from
    ``settings``); close it after use."""
    return LazySender(settings.webhooks)


def ping_and_enable(
    store: subscription_store.SubscriptionStore,
    name: str,
    *,
    sender: Sender,
    actor: str,
    sign: Signer | None = None,
) -> tuple[PingResult, Subscription]:
    """Ping subscription ``name``; when it answers 2xx and is disabled, enable it (``how``
    ``ping``, by ``actor``). Returns the answer and the subscription as it is now. Raises
    ``SubscriptionNotFound``."""
    sub = store.get(name)
    result = ping(sub, sender=sender, now=store.clock(), sign=sign)
    if result.ok and not sub.enabled:
        sub = store.enable(name, actor=actor, how="ping")
    return result, sub
