"""Event kinds keep their stored strings, each says what it means and names its fields."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from bridge.store import events

STORED = {
    "hook_refused", "recovered_refused", "job_processed", "job_skipped_own_write", "job_retry",
    "job_failed", "job_dead", "job_requeued", "transition_done", "transition_blocked",
    "transition_noop", "transition_failed", "transition_stale", "deferred_promoted",
    "field_change_done", "rt_calls",
}  # fmt: skip


def test_the_stored_strings_of_the_kinds_before_the_log_are_kept() -> None:
    assert {kind.value for kind in events.EventKind} >= STORED


@pytest.mark.parametrize("kind", list(events.EventKind), ids=lambda k: k.value)
def test_every_kind_names_its_fields_and_detail_is_on_each(kind: events.EventKind) -> None:
    assert "detail" in kind.fields
    assert all(text.strip() for text in kind.fields.values())


def test_every_cause_has_a_label_and_is_found_by_it() -> None:
    for cause in events.Cause:
        assert events.Cause.parse(cause.label) is cause
        assert cause.description.strip()
    with pytest.raises(ValueError, match="is not a cause"):
        events.Cause.parse("whim")


@pytest.mark.parametrize("kind", list(events.EventKind), ids=lambda k: k.value)
def test_every_kind_has_a_one_line_description(kind: events.EventKind) -> None:
    assert kind.description.strip()
    assert "\n" not in kind.description


def test_a_kind_is_found_by_its_stored_string() -> None:
    assert events.EventKind("hook_refused") is events.EventKind.HOOK_REFUSED
    with pytest.raises(ValueError, match="is not a valid EventKind"):
        events.EventKind("job_shipped")


def test_an_event_is_frozen_and_keyword_only() -> None:
    event = events.Event(id=1, at=datetime(2026, 12, 5), kind=events.EventKind.JOB_RETRY)
    assert (event.detail, event.http_status, event.reason, event.caller) == ("", None, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.actor = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        events.Event(1, datetime(2026, 12, 5), events.EventKind.JOB_RETRY)  # type: ignore[misc]
