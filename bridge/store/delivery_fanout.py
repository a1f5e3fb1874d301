"""Deliveries made from events, in the events' own transaction: for each event just appended,
one ``deliveries`` row per subscription that wants it, carrying the body every attempt sends.

Called by ``event_log.append`` only, so no event is ever committed without its deliveries nor a
delivery without its event. It sends nothing (``repo_daemon.deliveries`` does) and decides
nothing about which events match (``subscriptions.matches`` does).

The body (docs/notifications.md) is ``{id, type, version, timestamp, sequence, data}``: ``id``
is the ``webhook-id`` (the same on every attempt and redelivery, so receivers can dedupe),
``type`` the event's kind, ``version`` the version of that kind's data, ``sequence`` its number
among its release's events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bridge.store import events, raw_sql, subscriptions, tables

# The version of each kind's ``data`` in a delivery's body; a kind absent here is at 1. Raised
# when a field is removed or changes meaning (adding one does not).
DATA_VERSIONS: Mapping[str, int] = {}
PENDING = "pending"
# The kinds whose ``to`` is the state a move left the release in; for the others (a reply's
# recipients, a state asked for) the target state is the release's state when written.
_MOVES = "transition_"


def webhook_id(event_id: int) -> str:
    """The ``webhook-id`` of every delivery of event ``event_id``."""
    return f"evt_{event_id}"


def body_of(row: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    """The JSON body of a delivery of the event ``row`` (an ``event_log`` row as appended)."""
    at: datetime = row["at"]
    payload = {
        "id": webhook_id(int(row["id"])),
        "type": row["kind"],
        "version": DATA_VERSIONS.get(row["kind"], 1),
        "timestamp": at.isoformat(timespec="microseconds") + "Z",
        "sequence": row["seq"],
        "data": {
            "ticket": row["ticket_id"],
            "actor": row["actor"],
            "cause": row["cause"],
            "major_release": row.get("major_release"),
            **data,
        },
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Built once: on every append (every hook's commit), a new select cost more than running it.
_ALL_SUBSCRIPTIONS = sa.select(tables.subscriptions)


def create(conn: sa.Connection, rows: Sequence[Mapping[str, Any]], *, now: datetime) -> int:
    """Insert the deliveries of the appended event ``rows`` in ``conn``'s transaction; returns
    how many. Disabled subscriptions get theirs too: they wait until it is enabled again."""
    # Most appends meet no subscription at all: a bare look-up on the DBAPI cursor says so for
    # less CPU than SQLAlchemy's select of every subscription.
    if not raw_sql.execute(conn, "SELECT 1 FROM subscriptions LIMIT 1", ()):
        return 0
    subs = [subscriptions.of_row(r) for r in conn.execute(_ALL_SUBSCRIPTIONS)]
    if not subs:
        return 0
    tickets = sorted({int(r["ticket_id"]) for r in rows if r["ticket_id"] is not None})
    releases: dict[int, tuple[str, bool]] = {}
    if tickets:
        rel = tables.releases
        for t, state, emergency in conn.execute(
            sa.select(rel.c.ticket_id, rel.c.state, rel.c.emergency).where(
                rel.c.ticket_id.in_(tickets)
            )
        ):
            releases[int(t)] = (state, bool(emergency))
    never = {k.value for k in events.NEVER_DELIVERED}
    values: list[dict[str, Any]] = []
    for row in rows:
        if row["kind"] in never:
            continue
        data = json.loads(row["data"])
        known = releases.get(row["ticket_id"]) if row["ticket_id"] is not None else None
        emergency = data.get("emergency")
        attrs = subscriptions.Attributes(
            kind=row["kind"],
            major_release=row.get("major_release"),
            area=row.get("area"),
            target_state=(data.get("to") if row["kind"].startswith(_MOVES) else None)
            or (known[0] if known else None),
            emergency=emergency if isinstance(emergency, bool) else (known[1] if known else None),
            subscription=data.get("subscription"),
        )
        wanted = [s for s in subs if subscriptions.matches(s, attrs)]
        if not wanted:
            continue
        body = body_of(row, data)
        values += [
            {
                "subscription_id": s.id,
                "event_id": row["id"],
                "ticket_id": row["ticket_id"],
                "seq": row["seq"],
                "kind": row["kind"],
                "payload": body,
                "status": PENDING,
                "attempts": 0,
                "tries": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for s in wanted
        ]
    if values:
        conn.execute(tables.deliveries.insert(), values)
    return len(values)
