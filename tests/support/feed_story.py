"""A small, realistic story in the event log for the feed's docs and CLI tests: release 4242
queued by alice, claimed, failed on a checksum, re-run by bob, published; and a refused hook.
Written through the real append path at fixed times (2026-05-04, UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bridge.store import event_log, tables
from bridge.store import events as ev

T0 = datetime(2026, 5, 4, 8, 0, 0)
K = ev.EventKind
C = ev.Cause

# (minutes after T0, kind, ticket, actor, cause, data)
STORY: list[tuple[int, ev.EventKind, int | None, str, ev.Cause, dict[str, Any]]] = [
    (0, K.JOB_QUEUED, 4242, "alice", C.HOOK,
     {"detail": "RolloutProgress: Submitted -> Unverified", "field": "RolloutProgress",
      "old_value": "Submitted", "new_value": "Unverified", "source": "hook"}),
    (1, K.JOB_CLAIMED, 4242, ev.BRIDGE_ACTOR, C.HOOK,
     {"detail": "claimed by repo1", "attempt": 1, "worker": "repo1"}),
    (3, K.TRANSITION_FAILED, 4242, ev.BRIDGE_ACTOR, C.HOOK,
     {"detail": "sync: checksum mismatch for umd-ui-1.2.rpm", "attempt": 1,
      "from": "Submitted", "to": "Failed", "asked": "Unverified", "failed_target": "Unverified",
      "error": "checksum mismatch for umd-ui-1.2.rpm"}),
    (5, K.HOOK_REFUSED, None, "", C.HOOK,
     {"detail": "refused: bad signature", "http_status": 401, "reason": "bad signature",
      "caller": "192.0.2.7:51234; signature not verified"}),
    (62, K.JOB_REQUEUED, 4242, "bob", C.MANUAL_RERUN,
     {"detail": "queued again by bob", "was": "failed"}),
    (63, K.JOB_CLAIMED, 4242, ev.BRIDGE_ACTOR, C.MANUAL_RERUN,
     {"detail": "claimed by repo1", "attempt": 2, "worker": "repo1"}),
    (66, K.RELEASE_PUBLISHED, 4242, ev.BRIDGE_ACTOR, C.MANUAL_RERUN,
     {"detail": "published into unverified/UMD-5/umd-ui/1.2", "area": "unverified/UMD-5/umd-ui/1.2",
      "snapshot": "", "files": 3, "bytes": 48213}),
]  # fmt: skip


def write_story(engine: sa.Engine, *, offset: timedelta = timedelta(0)) -> list[int]:
    """Record release 4242 (major release UMD-5) and append the story; returns the ids."""
    with engine.begin() as conn:
        conn.execute(
            tables.releases.insert().values(
                ticket_id=4242, state="Unverified", major_release="UMD-5", emergency=False,
                updated_at=T0,
            )
        )  # fmt: skip
    ids: list[int] = []
    for minutes, kind, ticket, actor, cause, data in STORY:
        item = event_log.draft(
            kind, ticket_id=ticket, data=data, actor=actor, cause=cause, job_id=ticket and 17
        )
        with engine.begin() as conn:
            ids += event_log.append(conn, [item], now=T0 + offset + timedelta(minutes=minutes))
    return ids
