"""The event log's hash chain: how an event's hash is made, and checking a run of events.

Each event's hash is the SHA-256 of a canonical JSON of its stored fields and the previous
event's hash, so an event edited, deleted or slipped in by hand breaks the chain at that
point. Pure: no database, no clock; ``event_log`` stores what this computes and
``chain_check`` walks the table with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

# The previous hash of the very first event.
GENESIS = "0" * 64


# The encoders ``json.dumps`` would build on every call with these options, built once (every
# appended event is encoded twice: its data, then the list its hash is made of).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
)
_HASHED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def canonical_data(data: Mapping[str, Any]) -> str:
    """The stored form of an event's data: JSON with sorted keys and no spaces, so the same
    data always has the same text (and hash) on SQLite and PostgreSQL."""
    return _CANONICAL.encode(data)


def event_hash(
    *,
    id: int,
    at: datetime,
    kind: str,
    ticket_id: int | None,
    seq: int | None,
    actor: str,
    cause: str,
    transaction_id: int | None,
    job_id: int | None,
    data: str,
    prev_hash: str,
) -> str:
    """The hash of one event as stored (``data`` is its stored text)."""
    body = _HASHED.encode(
        [
            id,
            at.isoformat(timespec="microseconds"),
            kind,
            ticket_id,
            seq,
            actor,
            cause,
            transaction_id,
            job_id,
            data,
            prev_hash,
        ]
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def hash_of_row(row: Mapping[str, Any]) -> str:
    """The hash an ``event_log`` row should carry, from its own columns."""
    return event_hash(
        id=int(row["id"]),
        at=row["at"],
        kind=str(row["kind"]),
        ticket_id=row["ticket_id"],
        seq=row["seq"],
        actor=str(row["actor"]),
        cause=str(row["cause"]),
        transaction_id=row["transaction_id"],
        job_id=row["job_id"],
        data=str(row["data"]),
        prev_hash=str(row["prev_hash"]),
    )
