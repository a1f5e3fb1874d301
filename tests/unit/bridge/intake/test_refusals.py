"""The comment a refused change gets: built from the stored reason, never parsed from detail."""

from __future__ import annotations

from datetime import datetime

from bridge.intake import refusals
from bridge.store import events


def refused(*, transaction_id: int | None = None, **fields: object) -> events.Event:
    return events.Event(
        id=1,
        at=datetime(2026, 12, 5, 12, 0),
        kind=events.EventKind.HOOK_REFUSED,
        ticket_id=5,
        transaction_id=transaction_id,
        needs_comment=True,
        data={k: v for k, v in fields.items() if v is not None},
    )


def test_the_comment_gives_the_reason_without_status_or_caller() -> None:
    text = refusals.comment_text(
        refused(
            transaction_id=77,
            detail="HTTP 422: RolloutProgress 'Shipped' is unknown (from 10.0.0.5; signed by RT)",
            http_status=422,
            reason="RolloutProgress 'Shipped' is unknown",
            caller="10.0.0.5; signed by RT",
        )
    )
    assert text.startswith("The rollout bridge did not act on a change of this ticket (RT "
                           "transaction 77).")  # fmt: skip
    assert "Reason: RolloutProgress 'Shipped' is unknown\n" in text
    assert "10.0.0.5" not in text and "HTTP" not in text


def test_a_reason_with_brackets_is_given_whole() -> None:
    reason = "RolloutProgress 'X (from Y)' is unknown"
    text = refusals.comment_text(refused(detail="…", http_status=422, reason=reason))
    assert f"Reason: {reason}\n" in text


def test_an_event_without_a_reason_gives_its_detail() -> None:
    # Reconciliation's refusals, and hooks refused before the reason had a column of its own.
    text = refusals.comment_text(refused(detail="HTTP 422: old row (from 10.0.0.5; signed by RT)"))
    assert "Reason: HTTP 422: old row (from 10.0.0.5; signed by RT)\n" in text
    assert "(RT transaction" not in text


def test_an_event_with_nothing_recorded_says_so() -> None:
    assert "Reason: no reason was recorded\n" in refusals.comment_text(refused())
