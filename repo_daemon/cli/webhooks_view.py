"""How the webhook commands show things (``rollout subscriptions``, ``rollout deliveries``):
times, ages, tables, a subscription's state and failing spell, its filters, a table of
deliveries; and the shared openers (the store, who acts, the clock). It changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import click

from bridge import printable
from bridge.settings import model as settings_model
from bridge.store import delivery_reads, subscription_store
from bridge.store.subscriptions import Filters, Subscription
from repo_daemon.cli import queue as queue_cli
from repo_daemon.cli import root


def now() -> datetime:
    """The current time as the store keeps it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def login(actor: str | None) -> str:
    """Who does it, for the event log: ``--by``, else the login running the command."""
    return actor or queue_cli._login()


def open_store(
    ctx: click.Context,
) -> tuple[subscription_store.SubscriptionStore, settings_model.Settings]:
    """The subscriptions of the configured database (never migrated) and the settings."""
    engine = queue_cli.open_jobs(ctx).engine
    settings = root.load_settings(ctx, require_tracker=False)
    return subscription_store.SubscriptionStore(engine, clock=now), settings


def when(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def age(delta: timedelta | None) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    if delta is None:
        return "-"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> str:
    return queue_cli._table(header, rows, right)


def failing(sub: Subscription, figures: delivery_reads.Figures | None) -> str:
    """``-`` or ``since 2026-12-06 12:00 (45 % of budget, warned 50 %)``."""
    if sub.failing_since is None:
        return "-"
    share = figures.budget_percent if figures is not None else None
    text = f"since {when(sub.failing_since)}"
    if share is not None:
        text += f" ({share:g} % of budget"
        text += f", warned {sub.warned} %)" if sub.warned else ")"
    return text


def state(sub: Subscription, width: int = 40) -> str:
    if sub.enabled:
        return "enabled"
    return "disabled: " + queue_cli._one_line(printable.escape(sub.disabled_reason or "-"), width)


def filters_text(f: Filters) -> str:
    parts = [
        ("major release", ", ".join(f.major_releases)),
        ("area", ", ".join(f.areas)),
        ("target state", ", ".join(f.target_states)),
        ("emergency", {None: "", True: "yes", False: "no"}[f.emergency]),
    ]
    given = [f"{what} {value}" for what, value in parts if value]
    return "; ".join(given) or "none (every release)"


def delivery_table(found: Sequence[delivery_reads.Delivery]) -> str:
    """Deliveries as a table (``rollout deliveries list`` and ``show``)."""
    header = ["ID", "CREATED", "SUBSCRIPTION", "KIND", "TICKET", "STATUS", "TRIES", "LAST"]
    rows = [
        [
            str(d.id),
            when(d.created_at),
            d.subscription,
            d.kind,
            "-" if d.ticket_id is None else str(d.ticket_id),
            d.status,
            str(d.attempts),
            queue_cli._one_line(
                printable.escape(
                    d.last_error or ("" if d.last_status is None else str(d.last_status))
                )
                or "-",
                50,
            ),
        ]
        for d in found
    ]
    return table(header, rows, right={0, 4, 6})
