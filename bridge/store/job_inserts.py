"""The insert of new jobs (``Queue.enqueue_many``'s): one multi-row ``INSERT … ON CONFLICT DO
NOTHING RETURNING`` per 500 rows on the DBAPI cursor (``raw_sql``), in the caller's
transaction. It decides nothing about what is queued (``queue`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from bridge.store import raw_sql, tables

# The columns ``Queue.enqueue_many`` writes, in the order of its insert's parameters.
_JOB_COLUMNS = (
    "ticket_id",
    "transaction_id",
    "current",
    "previous",
    "field",
    "old_value",
    "new_value",
    "changed_at",
    "emergency",
    "actor",
    "source",
    "status",
    "attempts",
    "scheduled_at",
    "created_at",
)


def insert_jobs(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> dict[int, int]:
    """Insert ``rows`` (new transactions only: ``ON CONFLICT DO NOTHING``); transaction id ->
    new job id. One multi-row ``INSERT … RETURNING`` per 500 rows, on the DBAPI cursor
    (``raw_sql``): through SQLAlchemy's execution it cost more CPU than the insert itself."""
    returned = raw_sql.insert_rows(
        conn,
        tables.jobs,
        _JOB_COLUMNS,
        rows,
        on_conflict="transaction_id",
        returning=("id", "transaction_id"),
    )
    # RETURNING gives the new rows in no promised order: match them by transaction.
    return {int(t): int(i) for i, t in returned}
