"""Webhook subscriptions as records, and which events each wants: the kinds (patterns over
``EventKind`` values, ``*`` wildcards) and the filters on the release's attributes (major
release, area, target state, emergency).

Pure: no database (``subscription_store`` keeps them), no HTTP (``repo_daemon.deliveries``
sends). ``matches`` is the one rule deciding whether an event goes to a subscription.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bridge import errors, secrets


class SubscriptionNotFound(errors.BridgeError):
    """No subscription has that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no subscription is named {name!r} (see rollout subscriptions list)")
        self.name = name


class SubscriptionExists(errors.BridgeError):
    """A subscription of that name exists already."""

    def __init__(self, name: str) -> None:
        super().__init__(f"a subscription named {name!r} exists already")
        self.name = name


class SubscriptionDeclared(errors.BridgeError):
    """The subscription is declared in the settings file: change it there."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"subscription {name!r} is declared in the settings file; change it there "
            "(declared subscriptions are read-only here)"
        )
        self.name = name


class SubscriptionInvalid(errors.BridgeError):
    """What was asked for a subscription is not valid; ``problems`` lists each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, kw_only=True)
class Filters:
    """The release attributes an event must have to be delivered (empty: any)."""

    major_releases: tuple[str, ...] = ()
    areas: tuple[str, ...] = ()  # patterns over the area's path, e.g. ``production/*``
    target_states: tuple[str, ...] = ()
    emergency: bool | None = None

    def as_json(self) -> str:
        return json.dumps(
            {
                "major_releases": list(self.major_releases),
                "areas": list(self.areas),
                "target_states": list(self.target_states),
                "emergency": self.emergency,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Filters:
        raw = json.loads(text or "{}")
        return cls(
            major_releases=tuple(raw.get("major_releases") or ()),
            areas=tuple(raw.get("areas") or ()),
            target_states=tuple(raw.get("target_states") or ()),
            emergency=raw.get("emergency"),
        )


@dataclass(frozen=True, kw_only=True)
class Attributes:
    """What the filters look at, of one event: its kind, and the release it is about as it was
    when the event was written. ``subscription`` is the subscription an event is about (its own
    failures are never delivered to it)."""

    kind: str
    major_release: str | None = None
    area: str | None = None
    target_state: str | None = None
    emergency: bool | None = None
    subscription: str | None = None


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """One subscription, as stored."""

    id: int
    name: str
    url: str
    description: str = ""
    kinds: tuple[str, ...] = ("*",)
    filters: Filters = field(default_factory=Filters)
    secret: secrets.Secret
    previous_secret: secrets.Secret | None = None
    previous_until: datetime | None = None
    github_signature: bool = False
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    declared: bool = False
    created_at: datetime
    updated_at: datetime
    failing_since: datetime | None = None
    failures: int = 0
    warned: int = 0
    last_success_at: datetime | None = None
    last_error: str | None = None

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign a delivery now: the current one first, and the previous one
        while the rotation's overlap lasts."""
        current = (self.secret.reveal(),)
        if self.previous_secret is not None and self.previous_until and now < self.previous_until:
            return (*current, self.previous_secret.reveal())
        return current

    def as_dict(self) -> dict[str, Any]:
        """What the API and ``--json`` show: everything but the secrets."""
        return {
            "name": self.name,
            "url": self.url,
            "description": self.description,
            "kinds": list(self.kinds),
            "filters": json.loads(self.filters.as_json()),
            "github_signature": self.github_signature,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "disabled_at": _iso(self.disabled_at),
            "declared": self.declared,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "failing_since": _iso(self.failing_since),
            "failures": self.failures,
            "warned": self.warned,
            "last_success_at": _iso(self.last_success_at),
            "last_error": self.last_error,
            "previous_secret_until": _iso(self.previous_until)
            if self.previous_secret is not None
            else None,
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def wants_kind(patterns: tuple[str, ...], kind: str) -> bool:
    return any(fnmatch.fnmatchcase(kind, p) for p in patterns)


def matches(sub: Subscription, event: Attributes) -> bool:
    """Whether ``event`` is delivered to ``sub``: a wanted kind, every filter set holds (an
    event without the attribute a filter looks at does not pass it), and not an event about
    ``sub`` itself."""
    if event.subscription is not None and event.subscription == sub.name:
        return False
    if not wants_kind(sub.kinds, event.kind):
        return False
    f = sub.filters
    if f.major_releases and event.major_release not in f.major_releases:
        return False
    if f.areas and not (
        event.area is not None and any(fnmatch.fnmatchcase(event.area, p) for p in f.areas)
    ):
        return False
    if f.target_states and event.target_state not in f.target_states:
        return False
    return f.emergency is None or event.emergency is f.emergency


def of_row(row: Any) -> Subscription:
    """The ``Subscription`` of a ``subscriptions`` row."""
    m: Mapping[str, Any] = row._mapping
    return Subscription(
        id=int(m["id"]),
        name=m["name"],
        url=m["url"],
        description=m["description"] or "",
        kinds=tuple(json.loads(m["kinds"])),
        filters=Filters.from_json(m["filters"]),
        secret=secrets.Secret(m["secret"]),
        previous_secret=secrets.Secret(m["previous_secret"]) if m["previous_secret"] else None,
        previous_until=m["previous_until"],
        github_signature=bool(m["github_signature"]),
        enabled=bool(m["enabled"]),
        disabled_reason=m["disabled_reason"],
        disabled_at=m["disabled_at"],
        declared=bool(m["declared"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        failing_since=m["failing_since"],
        failures=int(m["failures"] or 0),
        warned=int(m["warned"] or 0),
        last_success_at=m["last_success_at"],
        last_error=m["last_error"],
    )
