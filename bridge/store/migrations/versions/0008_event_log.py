"""One append-only, hash-chained event log in place of the ``events`` table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

- ``event_log``: every event with a global id, a sequence per release, its time, kind, actor,
  cause, RT transaction, job, data (canonical JSON) and the hash chain (``event_chain``).
- ``refusal_comments``: which refusals still have to be commented on their ticket (the
  ``needs_comment`` / ``commented_at`` columns of ``events``; the log itself is never updated).
- ``event_readers``: the feed's per-reader cursors ("since I last looked").

The rows of ``events`` move into ``event_log`` with their ids and times, chained in id order.
Then one ``imported`` event per release and per job records what the bridge knew of it before
the log existed (state or status, stays in states, areas), so ``rollout events rebuild --check``
works for releases older than the log. ``events`` becomes a read-only view of the log with its
old columns, so queries written against it keep working.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_CAUSES = {
    "hook_refused": "hook",
    "recovered_refused": "reconciliation",
    "job_requeued": "manual_rerun",
    "job_retry": "automatic_retry",
    "deferred_promoted": "slot_freed",
}


def _hash(row: dict[str, Any]) -> str:
    # The same function the code uses; it must never change, or old chains stop verifying.
    from bridge.store import event_chain

    return event_chain.hash_of_row(row)


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("seq", sa.Integer),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("transaction_id", sa.BigInteger),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("major_release", sa.String(100)),
        sa.Column("area", sa.String(1000)),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("uq_event_log_ticket_seq", "event_log", ["ticket_id", "seq"], unique=True)
    op.create_index("ix_event_log_at", "event_log", ["at"])
    op.create_index("ix_event_log_kind", "event_log", ["kind", "id"])
    op.create_index("ix_event_log_job", "event_log", ["job_id", "id"])
    op.create_index("ix_event_log_actor", "event_log", ["actor", "id"])
    op.create_index("ix_event_log_major_release", "event_log", ["major_release", "id"])
    op.create_index("ix_event_log_area", "event_log", ["area", "id"])
    op.create_table(
        "refusal_comments",
        sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("settled", sa.Boolean, nullable=False),
        sa.Column("commented_at", sa.DateTime),
    )
    op.create_index("ix_refusal_comments_settled", "refusal_comments", ["settled", "event_id"])
    op.create_table(
        "event_readers",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("last_id", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    _move_events()
    op.drop_table("events")
    op.execute(_view())


def _move_events() -> None:
    conn = op.get_bind()
    meta = sa.MetaData()
    old = sa.Table("events", meta, autoload_with=conn)
    log = sa.Table("event_log", meta, autoload_with=conn)
    comments = sa.Table("refusal_comments", meta, autoload_with=conn)
    majors = {
        int(t): m for t, m in conn.execute(sa.text("SELECT ticket_id, major_release FROM releases"))
    }
    state: dict[str, Any] = {"id": 0, "hash": "0" * 64, "at": None}
    seqs: dict[int, int] = {}
    batch: list[dict[str, Any]] = []

    def add(at: datetime, kind: str, ticket: int | None, txn: int | None, job: int | None,
            actor: str, cause: str, data: dict[str, Any]) -> int:  # fmt: skip
        seq = None
        if ticket is not None:
            seq = seqs[ticket] = seqs.get(ticket, 0) + 1
        if state["at"] is not None and at < state["at"]:
            at = state["at"]  # times follow ids in the log
        row = {
            "id": int(state["id"]) + 1, "at": at, "kind": kind, "ticket_id": ticket,
            "seq": seq, "actor": actor, "cause": cause, "transaction_id": txn,
            "job_id": job, "data": _canonical(data), "prev_hash": state["hash"],
        }  # fmt: skip
        row["hash"] = _hash(row)
        row["major_release"] = majors.get(ticket) if ticket is not None else None
        row["area"] = data.get("area")
        state.update(id=row["id"], hash=row["hash"], at=at)
        batch.append(row)
        if len(batch) >= 5000:
            conn.execute(log.insert(), batch)
            batch.clear()
        return int(row["id"])

    pending: list[dict[str, Any]] = []
    for r in conn.execute(sa.select(old).order_by(old.c.id)).mappings():
        data = {"detail": r["detail"] or ""}
        for key in ("http_status", "reason", "caller"):
            if r[key] is not None:
                data[key] = r[key]
        new_id = add(r["at"], r["kind"], r["ticket_id"], r["transaction_id"], r["job_id"], "",
                     _CAUSES.get(r["kind"], "bridge"), data)  # fmt: skip
        if r["needs_comment"]:
            pending.append({"event_id": new_id, "settled": r["commented_at"] is not None,
                            "commented_at": r["commented_at"]})  # fmt: skip
    now = datetime.now(UTC).replace(tzinfo=None)
    last_at: datetime | None = state["at"]
    if last_at is not None and now < last_at:
        now = last_at
    areas: dict[int, list[str]] = {}
    for t, area in conn.execute(
        sa.text("SELECT ticket_id, area FROM release_areas ORDER BY published_at, area")
    ):
        areas.setdefault(int(t), []).append(str(area))
    history: dict[int, list[list[Any]]] = {}
    for t, st, entered, left, actor in conn.execute(
        sa.text(
            "SELECT ticket_id, state, entered_at, left_at, actor FROM state_history ORDER BY id"
        )
    ):
        history.setdefault(int(t), []).append([st, _iso(entered), _iso(left), actor or ""])
    for r in conn.execute(sa.text("SELECT * FROM releases ORDER BY ticket_id")).mappings():
        ticket = int(r["ticket_id"])
        add(now, "imported", ticket, r["last_transaction_id"], None, "", "bridge", {
            "detail": f"the release as the bridge knew it before the event log: {r['state']}",
            "what": "release", "state": r["state"], "failed_target": r["failed_target"],
            "major_release": r["major_release"], "emergency": bool(r["emergency"]),
            "history": history.get(ticket, []), "areas": areas.get(ticket, []),
            "repository_path": r["repository_path"],
        })  # fmt: skip
    for r in conn.execute(sa.text("SELECT * FROM jobs ORDER BY id")).mappings():
        add(now, "imported", int(r["ticket_id"]), r["transaction_id"], int(r["id"]),
            r["actor"] or "", "bridge", {
                "detail": f"the job as the bridge knew it before the event log: {r['status']}",
                "what": "job", "state": r["status"], "attempts": int(r["attempts"]),
            })  # fmt: skip
    if batch:
        conn.execute(log.insert(), batch)
    if pending:
        conn.execute(comments.insert(), pending)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value.isoformat(timespec="seconds"))


def _view() -> str:
    if op.get_bind().dialect.name == "postgresql":
        field = "(l.data::jsonb ->> '{0}')"
    else:
        field = "json_extract(l.data, '$.{0}')"
    # Only constant text goes into this statement.
    return (
        "CREATE VIEW events AS SELECT"  # noqa: S608
        " l.id AS id, l.at AS at, l.kind AS kind, "
        "l.ticket_id AS ticket_id, l.transaction_id AS transaction_id, l.job_id AS job_id, "
        f"COALESCE({field.format('detail')}, '') AS detail, "
        f"CAST({field.format('http_status')} AS INTEGER) AS http_status, "
        f"{field.format('reason')} AS reason, {field.format('caller')} AS caller, "
        "(c.event_id IS NOT NULL) AS needs_comment, c.commented_at AS commented_at "
        "FROM event_log l LEFT JOIN refusal_comments c ON c.event_id = l.id"
    )


def downgrade() -> None:
    op.execute("DROP VIEW events")
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ticket_id", sa.BigInteger),
        sa.Column("transaction_id", sa.BigInteger),
        sa.Column("job_id", sa.BigInteger),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("needs_comment", sa.Boolean, nullable=False),
        sa.Column("commented_at", sa.DateTime),
        sa.Column("http_status", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("caller", sa.Text),
    )
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])
    op.create_index("ix_events_ticket", "events", ["ticket_id"])
    op.drop_table("event_readers")
    op.drop_table("refusal_comments")
    op.drop_table("event_log")
