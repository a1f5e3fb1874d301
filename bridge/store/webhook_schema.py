"""The payload schema of webhook deliveries as subscribers read it: the envelope of every body,
the fields every kind's ``data`` starts with, the kinds subscribers want most, and each kind's
data fields and version — all taken from the event catalogue (``events.EventKind``) and
``delivery_fanout.DATA_VERSIONS``, so docs/notifications.md (whose list ``kinds_markdown``
renders, and a test compares) says what deliveries carry.

Plain data and text: it builds no body (``delivery_fanout.body_of`` does) and sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.store import delivery_fanout
from bridge.store.events import EventKind

# The body of every delivery, in the order a reader meets them.
ENVELOPE: Mapping[str, str] = {
    "id": "The delivery's `webhook-id` header: `evt_<event id>`, the same on every attempt "
    "and redelivery of the event to any subscription. Dedupe on it.",
    "type": "The event's kind (below).",
    "version": "The version of this kind's `data` (below).",
    "timestamp": "When the event was recorded: UTC, ISO 8601 with microseconds and `Z`.",
    "sequence": "The event's number among its release's events (1, 2, …), in which order a "
    "subscription receives them; null for an event about no release.",
    "data": "The fields every kind has (`ticket`, `actor`, `cause`, `major_release`), then "
    "the kind's own.",
}

# The fields every kind's ``data`` starts with (``delivery_fanout.body_of``).
COMMON_DATA: Mapping[str, str] = {
    "ticket": "The release's RT ticket id; null for an event about no release.",
    "actor": "Who made the change: an RT user, or `rollout-bridge` for the bridge itself.",
    "cause": "What started the work (events.md, Causes).",
    "major_release": "The release's major release; null when it has none.",
}


@dataclass(frozen=True, kw_only=True)
class SubscriberKind:
    """A kind subscribers want most, under the name they ask for it by."""

    kind: EventKind
    headline: str


SUBSCRIBER_KINDS: tuple[SubscriberKind, ...] = (
    SubscriberKind(kind=EventKind.RELEASE_PUBLISHED, headline="Release published to an area"),
    SubscriberKind(
        kind=EventKind.RELEASE_REACHED_PRODUCTION, headline="Release reached Production"
    ),
    SubscriberKind(kind=EventKind.RELEASE_FAILED, headline="Release failed"),
    SubscriberKind(kind=EventKind.RELEASE_WITHDRAWN, headline="Release withdrawn"),
    SubscriberKind(kind=EventKind.SLOT_TAKEN, headline="Staged-rollout slot changed: taken"),
    SubscriberKind(kind=EventKind.SLOT_FREED, headline="Staged-rollout slot changed: freed"),
    SubscriberKind(kind=EventKind.SUBSCRIPTION_DISABLED, headline="Delivery endpoint disabled"),
)


def version(kind: EventKind) -> int:
    """The version of ``kind``'s data in delivery bodies."""
    return delivery_fanout.DATA_VERSIONS.get(kind.value, 1)


def data_fields(kind: EventKind) -> dict[str, str]:
    """Every field ``kind``'s data may carry, with what it holds: the common ones, then the
    kind's (a kind's field of the same name, such as ``major_release``, takes its place)."""
    return {**COMMON_DATA, **kind.fields}


def kinds_in_order() -> list[EventKind]:
    """Every kind: the subscribers' first, then the rest in the catalogue's order."""
    first = [s.kind for s in SUBSCRIBER_KINDS]
    return first + [k for k in EventKind if k not in first]


def kinds_markdown() -> str:
    """The list of every kind, its version and its own data fields, for
    docs/notifications.md."""
    headlines = {s.kind: s.headline for s in SUBSCRIBER_KINDS}
    lines: list[str] = []
    for kind in kinds_in_order():
        said = f" ({headlines[kind]})" if kind in headlines else ""
        lines.append(f"- **`{kind.value}`** v{version(kind)}{said} — {kind.description}")
        lines += [f"  - `{name}`: {text}" for name, text in kind.fields.items()]
    return "\n".join(lines) + "\n"


def envelope_markdown() -> str:
    """The envelope's and the common data fields' table, for docs/notifications.md."""
    rows = [f"| `{name}` | {text} |" for name, text in ENVELOPE.items()]
    rows += [f"| `data.{name}` | {text} |" for name, text in COMMON_DATA.items()]
    return "| field | what it holds |\n|---|---|\n" + "\n".join(rows) + "\n"
