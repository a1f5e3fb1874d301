"""What the event log holds: the kinds of event (``EventKind``), what started them (``Cause``),
the fields each kind's data carries, and one recorded ``Event``.

An event kind's value is the string stored in ``event_log.kind``; each kind says in one line
what it means and names the fields of its data (``EventKind.fields``), which docs/events.md
lists and a test keeps in step. Data is plain JSON, never a string another module parses back.
Plain data only: writing and reading events is ``bridge.store.event_log``'s business, the hash
chain ``bridge.store.event_chain``'s.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The actor of what the bridge does by itself (its RT account's changes carry RT's name).
BRIDGE_ACTOR = "rollout-bridge"


class Cause(enum.Enum):
    """What started the work an event records. Each has a ``description``."""

    HOOK = ("hook", "RT's scrip posted the change.")
    RECONCILIATION = ("reconciliation", "Reconciliation found the change in RT's history.")
    AUTOMATIC_RETRY = ("automatic_retry", "The queue tried a failed attempt again by itself.")
    MANUAL_RERUN = ("manual_rerun", "An operator queued the job again by hand.")
    LEASE_EXPIRED = ("lease_expired", "The daemon that held the job stopped; another took it.")
    SLOT_FREED = ("slot_freed", "A staged-rollout slot came free and a Deferred release moved in.")
    EMERGENCY = ("emergency", "A hook for a release marked EmergencyRelease = Yes.")
    OPERATOR = ("operator", "An operator's command (retention, settings seen at start-up).")
    BRIDGE = ("bridge", "The bridge itself, with no outside request.")
    BACKFILL = ("backfill", "`rollout metrics backfill` rebuilt the records from RT's history.")

    def __init__(self, label: str, description: str) -> None:
        self.label = label
        self.description = description

    @classmethod
    def parse(cls, label: str) -> Cause:
        """The cause whose label is ``label`` (``ValueError`` otherwise)."""
        try:
            return _CAUSES[label]
        except KeyError:
            raise ValueError(f"{label!r} is not a cause") from None


_CAUSES = {cause.label: cause for cause in Cause}


class EventKind(enum.Enum):
    """The kinds of event the bridge and the daemon record. Each has a ``description`` and
    the ``fields`` of its data."""

    HOOK_REFUSED = "hook_refused"
    RECOVERED_REFUSED = "recovered_refused"
    JOB_QUEUED = "job_queued"
    JOB_CLAIMED = "job_claimed"
    JOB_GIVEN_BACK = "job_given_back"
    JOB_DONE = "job_done"
    JOB_PROCESSED = "job_processed"
    JOB_SKIPPED_OWN_WRITE = "job_skipped_own_write"
    JOB_RETRY = "job_retry"
    JOB_FAILED = "job_failed"
    JOB_DEAD = "job_dead"
    JOB_REQUEUED = "job_requeued"
    RELEASE_RECORDED = "release_recorded"
    RELEASE_FACTS_CHANGED = "release_facts_changed"
    RELEASE_XML_FROZEN = "release_xml_frozen"
    ACTION_DONE = "action_done"
    TRANSITION_DONE = "transition_done"
    TRANSITION_BLOCKED = "transition_blocked"
    TRANSITION_NOOP = "transition_noop"
    TRANSITION_FAILED = "transition_failed"
    TRANSITION_STALE = "transition_stale"
    SLOT_TAKEN = "slot_taken"
    SLOT_FREED = "slot_freed"
    DEFERRED_PROMOTED = "deferred_promoted"
    RELEASE_PUBLISHED = "release_published"
    RELEASE_REMOVED = "release_removed"
    TICKET_TOLD = "ticket_told"
    ACCEPTANCE_RECORDED = "acceptance_recorded"
    ACCEPTANCE_WITHDRAWN = "acceptance_withdrawn"
    STAGE_REPORT_RECORDED = "stage_report_recorded"
    FIELD_CHANGE_DONE = "field_change_done"
    RT_CALLS = "rt_calls"
    SETTINGS_SEEN = "settings_seen"
    EVENTS_PRUNED = "events_pruned"
    IMPORTED = "imported"
    RELEASE_REACHED_PRODUCTION = "release_reached_production"
    RELEASE_FAILED = "release_failed"
    RELEASE_WITHDRAWN = "release_withdrawn"
    SUBSCRIPTION_CHANGED = "subscription_changed"
    SUBSCRIPTION_WARNED = "subscription_warned"
    SUBSCRIPTION_DISABLED = "subscription_disabled"
    SUBSCRIPTION_ENABLED = "subscription_enabled"
    DELIVERY_GAVE_UP = "delivery_gave_up"
    DELIVERIES_REQUEUED = "deliveries_requeued"
    DELIVERIES_CANCELLED = "deliveries_cancelled"
    RELEASE_BACKFILLED = "release_backfilled"

    @property
    def description(self) -> str:
        """What an event of this kind means, in one line."""
        return _CATALOGUE[self][0]

    @property
    def fields(self) -> Mapping[str, str]:
        """The fields of this kind's data, each with what it holds (``detail``, the line
        operators read, is on every kind)."""
        return {"detail": "One line for people.", **_CATALOGUE[self][1]}


_JOB = {"attempt": "The job's attempt this is about (1 for its first claim, counted over re-runs)."}
_MOVE = {
    "from": "The state the release was in.",
    "to": "The state it is in now.",
    "asked": "The state the person asked for.",
}
_REFUSAL = {
    "http_status": "The HTTP status answered.",
    "reason": "What the ticket is told.",
    "caller": "Who called (address, whether RT signed it); for operators.",
}

_CATALOGUE: dict[EventKind, tuple[str, dict[str, str]]] = {
    EventKind.HOOK_REFUSED: (
        "The receiver refused a hook; a signed one is commented on its ticket.",
        _REFUSAL,
    ),
    EventKind.RECOVERED_REFUSED: (
        "Reconciliation found a RolloutProgress value the bridge does not know; commented.",
        {"reason": "What the ticket is told."},
    ),
    EventKind.JOB_QUEUED: (
        "A change of a ticket was stored in the queue (hook, reconciliation, the bridge).",
        {
            "field": "The field that changed (RolloutProgress, EarlyAdopters, ...).",
            "from": "The release's state RT reported before the change.",
            "to": "The state the change asks for (RolloutProgress moves).",
            "old_value": "RT's value before.",
            "new_value": "RT's value after.",
            "emergency": "Whether the release is an emergency release.",
            "source": "How it reached the queue: hook, recovered or bridge.",
        },
    ),
    EventKind.JOB_CLAIMED: (
        "A daemon took the job for an attempt.",
        {**_JOB, "worker": "The daemon's name.", "lease_expired": "Taken from a daemon that died."},
    ),
    EventKind.JOB_GIVEN_BACK: (
        "A daemon gave the job back untouched (shutting down); not counted as an attempt.",
        {"worker": "The daemon's name."},
    ),
    EventKind.JOB_DONE: ("The job's attempt finished; the job is done.", {**_JOB}),
    EventKind.JOB_PROCESSED: (
        "A change was processed by a processor that only reads its ticket (such as the test "
        "suite's); the workflow records transition_* events instead.",
        {},
    ),
    EventKind.JOB_SKIPPED_OWN_WRITE: (
        "A change made by the bridge's own RT account; nothing done.",
        {},
    ),
    EventKind.JOB_RETRY: (
        "A try failed with a transient error; the job waits for its next try.",
        {
            **_JOB,
            "error": "What went wrong.",
            "action": "The action that failed, if one did.",
            "next_try_at": "When it is tried again (UTC).",
        },
    ),
    EventKind.JOB_FAILED: (
        "A try failed with a permanent error; the job stopped.",
        {**_JOB, "error": "What went wrong.", "action": "The action that failed, if one did."},
    ),
    EventKind.JOB_DEAD: (
        "The last try failed; the job was dead-lettered.",
        {**_JOB, "error": "What went wrong.", "action": "The action that failed, if one did."},
    ),
    EventKind.JOB_REQUEUED: (
        "An operator queued a failed or dead job again (a manual re-run).",
        {"was": "The job's status before (failed or dead)."},
    ),
    EventKind.RELEASE_RECORDED: (
        "The bridge saw a release for the first time and recorded it.",
        {
            "state": "The state it was recorded in.",
            "major_release": "Its major release.",
            "emergency": "Whether it is an emergency release.",
        },
    ),
    EventKind.RELEASE_FACTS_CHANGED: (
        "The ticket's major release or EmergencyRelease changed; the record follows.",
        {"major_release": "Its major release now.", "emergency": "Emergency now."},
    ),
    EventKind.RELEASE_XML_FROZEN: (
        "The release.xml the release is accepted with was frozen.",
        {"sha256": "Its SHA-256.", "attachment_id": "RT's attachment id."},
    ),
    EventKind.ACTION_DONE: (
        "An action with lasting results finished (checkpointed: a retry resumes after it).",
        {**_JOB, "action": "The action's name.", "seconds": "How long it took."},
    ),
    EventKind.TRANSITION_DONE: (
        "The workflow carried out a change of state.",
        {**_JOB, **_MOVE, "actions": "Each action run: name, seconds, outcome."},
    ),
    EventKind.TRANSITION_BLOCKED: (
        "The workflow refused a change (a guard did not hold); the field was put back.",
        {**_JOB, **_MOVE},
    ),
    EventKind.TRANSITION_NOOP: (
        "The change asked for nothing the workflow has to do.",
        {**_JOB, **_MOVE},
    ),
    EventKind.TRANSITION_FAILED: (
        "An action of a change failed; the release went to Failed.",
        {
            **_JOB,
            **_MOVE,
            "error": "What went wrong.",
            "failed_target": "Where a retry goes.",
            "actions": "Each action run: name, seconds, outcome.",
        },
    ),
    EventKind.TRANSITION_STALE: (
        "The ticket has moved on since the change; it was not acted on.",
        {**_JOB, **_MOVE},
    ),
    EventKind.SLOT_TAKEN: (
        "The release took its major release's staged-rollout slot.",
        {"major_release": "The major release.", "emergency": "An emergency place."},
    ),
    EventKind.SLOT_FREED: (
        "The release gave up its staged-rollout slot.",
        {"major_release": "The major release."},
    ),
    EventKind.DEFERRED_PROMOTED: (
        "A Deferred release took the staged-rollout slot that came free.",
        {
            "major_release": "The major release.",
            "promoted": "The ticket queued to move in.",
            "promoted_job": "Its job.",
        },
    ),
    EventKind.RELEASE_PUBLISHED: (
        "The release was published into an area (or the record of it kept).",
        {
            "area": "The path under the repository root.",
            "url": "The area's public URL (RepositoryURL), for mirrors to pull.",
            "serial": "The live snapshot's serial (the area's `.rollout-serial`: "
            "`<area-key>/<snapshot>`); a mirror that has it is up to date.",
            "snapshot": "The snapshot made, if any.",
            "files": "How many files.",
            "bytes": "How many bytes.",
            "changed": "False when the area already held the release (a repeated step).",
        },
    ),
    EventKind.RELEASE_REMOVED: (
        "The release was taken out of areas.",
        {"areas": "The paths it was taken out of."},
    ),
    EventKind.TICKET_TOLD: (
        "The bridge wrote to the ticket: fields, a comment, a reply.",
        {
            **_JOB,
            "fields": "The fields set.",
            "comment": "The comment's first line, if any.",
            "reply": "The reply's first line, if any.",
            "to": "Who the reply went to.",
        },
    ),
    EventKind.ACCEPTANCE_RECORDED: (
        "An early-adopter team accepted the release's staged rollout.",
        {"team": "The team.", "ngi": "Its NGI.", "major_release": "The major release."},
    ),
    EventKind.ACCEPTANCE_WITHDRAWN: (
        "An early-adopter team's acceptance was withdrawn.",
        {"team": "The team."},
    ),
    EventKind.STAGE_REPORT_RECORDED: (
        "The StageRollout Report was filled in for the first time.",
        {"reported_at": "RT's time of the change (UTC)."},
    ),
    EventKind.FIELD_CHANGE_DONE: (
        "A change of another field (EarlyAdopters, StageRollout Report, EmergencyRelease) or of "
        "the ticket's status was handled.",
        {**_JOB},
    ),
    EventKind.RT_CALLS: (
        "How many RT round trips processing one change took.",
        {**_JOB, "calls": "The number of round trips.", "outcome": "How the change ended."},
    ),
    EventKind.SETTINGS_SEEN: (
        "A process started with settings or workflows other than the last ones seen.",
        {
            "changed": "The settings whose value changed (names only, never values).",
            "workflows": "Each workflow's name and fingerprint.",
            "process": "The command that started (daemon, serve, run).",
        },
    ),
    EventKind.EVENTS_PRUNED: (
        "Retention deleted events (after exporting them).",
        {
            "count": "How many.",
            "ranges": "[first id, last id, hash of the last] per run of ids.",
            "export": "The file they were exported to.",
            "older_than": "The cut-off (UTC).",
        },
    ),
    EventKind.IMPORTED: (
        "What the bridge knew of a release or job before the event log existed (migration).",
        {
            "what": "release or job",
            "state": "Its state or status then.",
            "history": "Its stays in states, oldest first.",
            "areas": "Where it was published.",
        },
    ),
    EventKind.RELEASE_REACHED_PRODUCTION: (
        "The release reached Production: published in its major release's production area.",
        {
            "major_release": "The major release.",
            "area": "The production area (path under the repository root).",
            "url": "The area's URL, for mirrors to pull.",
            "emergency": "Whether it came as an emergency release.",
        },
    ),
    EventKind.RELEASE_FAILED: (
        "Processing the release failed; it is in Failed until a manager retries or closes it.",
        {
            "failed_target": "The state whose processing failed (where a retry goes).",
            "error": "What went wrong, as the ticket was told.",
            "action": "The action that failed, if one did.",
        },
    ),
    EventKind.RELEASE_WITHDRAWN: (
        "The release was withdrawn from production: the next snapshot goes without its files.",
        {
            "areas": "The areas it was taken out of.",
            "area": "The production area it left (the first, if several).",
            "major_release": "The major release.",
        },
    ),
    EventKind.SUBSCRIPTION_CHANGED: (
        "A webhook subscription was added, edited, given a new secret or removed.",
        {
            "subscription": "The subscription's name.",
            "change": "added, edited, secret_rotated, removed or declared.",
            "fields": "The settings that changed (names only; never the secret).",
        },
    ),
    EventKind.SUBSCRIPTION_WARNED: (
        "A webhook endpoint has been failing for part of its budget (50 % or 90 %).",
        {
            "subscription": "The subscription's name.",
            "level": "The share of the budget used, in per cent.",
            "failing_since": "When its failures began (UTC).",
            "pending": "Deliveries waiting for it.",
        },
    ),
    EventKind.SUBSCRIPTION_DISABLED: (
        "A webhook endpoint was disabled: by an operator, by 410 Gone or after failing for its "
        "whole budget. Its deliveries wait until it is enabled again.",
        {
            "subscription": "The subscription's name.",
            "reason": "Why.",
            "pending": "Deliveries waiting for it.",
        },
    ),
    EventKind.SUBSCRIPTION_ENABLED: (
        "A webhook endpoint was enabled (by an operator, or by a ping it answered).",
        {"subscription": "The subscription's name.", "how": "operator or ping."},
    ),
    EventKind.DELIVERY_GAVE_UP: (
        "A delivery used its whole retry schedule without success; it can be sent again.",
        {
            "subscription": "The subscription's name.",
            "delivery": "The delivery's id.",
            "event": "The id of the event it carried.",
            "attempts": "Attempts made.",
            "error": "The last attempt's trouble.",
        },
    ),
    EventKind.DELIVERIES_REQUEUED: (
        "Deliveries were queued to be sent again (redeliver, or a recovery since a time).",
        {
            "subscription": "The subscription's name.",
            "count": "How many.",
            "recovery": "The recovery's id (to cancel it), if one.",
            "since": "The recovery's start (UTC), if one.",
        },
    ),
    EventKind.DELIVERIES_CANCELLED: (
        "A recovery was cancelled: its deliveries not yet sent were not sent.",
        {"subscription": "The subscription's name.", "recovery": "Its id.", "count": "How many."},
    ),
    EventKind.RELEASE_BACKFILLED: (
        "A release older than the bridge was recorded from RT's history (`rollout metrics "
        "backfill`): its stays, acceptances and report time. Never delivered to subscribers.",
        {
            "state": "The state RT's history ends in.",
            "major_release": "Its major release.",
            "emergency": "Whether it is an emergency release.",
            "history": "Its stays in states, oldest first: [state, entered, left, actor, "
            "RT transaction].",
            "acceptances": "Early-adopter teams' acceptances: [team, NGI, accepted, by, RT "
            "transaction, withdrawn, by, RT transaction].",
            "stage_report_at": "When the StageRollout Report was first filled in (UTC), if it was.",
            "notes": "What of RT's history was left out, and why.",
        },
    ),
}

# Kinds never delivered to webhook subscribers, whatever they subscribed to: a backfill of years
# of history would otherwise flood them with news that is not news.
NEVER_DELIVERED: frozenset[EventKind] = frozenset({EventKind.RELEASE_BACKFILLED})


@dataclass(frozen=True, kw_only=True)
class Event:
    """One entry of the event log.

    ``id`` orders every event; ``seq`` numbers the events of one release (ticket) from 1.
    ``data`` holds the kind's fields (``EventKind.fields``); ``detail``, ``http_status``,
    ``reason`` and ``caller`` are read from it. ``prev_hash`` / ``hash`` chain the log
    (``event_chain``). ``needs_comment`` / ``commented_at`` are the refusal's comment
    bookkeeping, kept beside the log (the log itself is never updated).
    """

    id: int
    at: datetime
    kind: EventKind
    ticket_id: int | None = None
    transaction_id: int | None = None
    job_id: int | None = None
    seq: int | None = None
    actor: str = ""
    cause: Cause = Cause.BRIDGE
    data: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""
    needs_comment: bool = False
    commented_at: datetime | None = None

    @property
    def detail(self) -> str:
        """The line operators read."""
        return str(self.data.get("detail", ""))

    @property
    def http_status(self) -> int | None:
        """A refused hook's HTTP status."""
        value = self.data.get("http_status")
        return None if value is None else int(value)

    @property
    def reason(self) -> str | None:
        """A refusal's reason (what the ticket is told)."""
        value = self.data.get("reason")
        return None if value is None else str(value)

    @property
    def caller(self) -> str | None:
        """A refused hook's caller."""
        value = self.data.get("caller")
        return None if value is None else str(value)

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-ready data: what the API, JSON Lines exports and retention's
        archives carry (times in UTC, ISO 8601 with ``Z``)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(timespec="microseconds") + "Z",
            "kind": self.kind.value,
            "ticket_id": self.ticket_id,
            "seq": self.seq,
            "actor": self.actor,
            "cause": self.cause.label,
            "transaction_id": self.transaction_id,
            "job_id": self.job_id,
            "data": dict(self.data),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }
