"""The bridge's database tables, as SQLAlchemy Core ``Table`` definitions.

The schema itself is created and changed by the Alembic migrations in ``bridge/store/migrations``;
these definitions are what the queries use, and a test checks the two agree. Times are naive
UTC ``datetime`` values everywhere.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Integer on SQLite (so it is the rowid and autoincrements), BigInteger elsewhere.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    # RT's transaction id: the dedupe key (a hook that arrives twice is queued once) and the
    # order of a ticket's changes.
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("current", sa.String(32), nullable=False),
    sa.Column("previous", sa.String(32), nullable=False),
    sa.Column("emergency", sa.Boolean, nullable=False, default=False),
    sa.Column("actor", sa.String(200), nullable=False, default=""),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("scheduled_at", sa.DateTime, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("locked_by", sa.String(200)),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
    # Which change it is (a ``records.TrackedField`` label; RolloutProgress for every change
    # queued before others were), RT's raw values, and RT's time of the transaction.
    sa.Column("field", sa.String(64), nullable=False, server_default="RolloutProgress"),
    sa.Column("old_value", sa.Text),
    sa.Column("new_value", sa.Text),
    sa.Column("changed_at", sa.DateTime),
    sa.UniqueConstraint("transaction_id", name="uq_jobs_transaction_id"),
    sa.Index("ix_jobs_status_scheduled", "status", "scheduled_at"),
    sa.Index("ix_jobs_ticket_transaction", "ticket_id", "transaction_id"),
    # At most one running job per ticket: a ticket's changes never run in parallel.
    sa.Index(
        "uq_jobs_one_running_per_ticket",
        "ticket_id",
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
)

event_log = sa.Table(
    "event_log",
    metadata,
    # Append-only (see ``event_log``): rows are only ever inserted, and deleted by retention.
    # Ids are given under the log's append lock, so they follow commit order.
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime, nullable=False),
    # An ``events.EventKind`` value.
    sa.Column("kind", sa.String(48), nullable=False),
    sa.Column("ticket_id", sa.BigInteger),
    # The event's number among its release's events (from 1); None for events of no release.
    sa.Column("seq", sa.Integer),
    sa.Column("actor", sa.String(200), nullable=False),
    # An ``events.Cause`` label: what started the work.
    sa.Column("cause", sa.String(32), nullable=False),
    sa.Column("transaction_id", sa.BigInteger),
    sa.Column("job_id", sa.BigInteger),
    # The release's major release and the area, as known when the event was written: filters.
    sa.Column("major_release", sa.String(100)),
    sa.Column("area", sa.String(1000)),
    # The kind's fields as canonical JSON (``event_chain.canonical_data``).
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("uq_event_log_ticket_seq", "ticket_id", "seq", unique=True),
    sa.Index("ix_event_log_at", "at"),
    sa.Index("ix_event_log_kind", "kind", "id"),
    sa.Index("ix_event_log_job", "job_id", "id"),
    sa.Index("ix_event_log_actor", "actor", "id"),
    sa.Index("ix_event_log_major_release", "major_release", "id"),
    sa.Index("ix_event_log_area", "area", "id"),
)

refusal_comments = sa.Table(
    "refusal_comments",
    metadata,
    # A refusal (hook_refused, recovered_refused) that names a ticket: the daemon comments its
    # reason there once. Kept beside the log, which is never updated.
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
    # True once the comment was made or will never be (no such ticket).
    sa.Column("settled", sa.Boolean, nullable=False),
    sa.Column("commented_at", sa.DateTime),
    sa.Index("ix_refusal_comments_settled", "settled", "event_id"),
)

event_readers = sa.Table(
    "event_readers",
    metadata,
    # "Since I last looked": the last event id each named reader of the feed has seen.
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("last_id", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

state = sa.Table(
    "bridge_state",
    metadata,
    # Small named values the bridge keeps, e.g. reconciliation's last scanned transaction id.
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

releases = sa.Table(
    "releases",
    metadata,
    # The bridge's view of each release: the state it last put the ticket in, and what the
    # workflow's guards need. RT's field may differ while a change waits in the queue.
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("major_release", sa.String(100)),
    sa.Column("emergency", sa.Boolean, nullable=False, default=False),
    # In Failed: the state whose processing failed (where a retry goes).
    sa.Column("failed_target", sa.String(32)),
    sa.Column("last_transaction_id", sa.BigInteger),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # The release.xml the release was accepted with (frozen at Submitted → Unverified).
    sa.Column("release_sha256", sa.String(64)),
    sa.Column("release_attachment_id", sa.BigInteger),
    # Where the release is published now, relative to the repository root.
    sa.Column("repository_path", sa.String(1024)),
    # When the StageRollout Report was first filled in (RT's time of the change).
    sa.Column("stage_report_at", sa.DateTime),
    sa.Index("ix_releases_major_state", "major_release", "state"),
)

state_history = sa.Table(
    "state_history",
    metadata,
    # Every entry into and exit from a state: what the provisioning metrics are made of.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("entered_at", sa.DateTime, nullable=False),
    sa.Column("left_at", sa.DateTime),
    sa.Column("transaction_id", sa.BigInteger),
    sa.Column("actor", sa.String(200), nullable=False, default=""),
    sa.Index("ix_state_history_ticket", "ticket_id", "id"),
    sa.Index(
        "uq_state_history_one_open_per_ticket",
        "ticket_id",
        unique=True,
        sqlite_where=sa.text("left_at IS NULL"),
        postgresql_where=sa.text("left_at IS NULL"),
    ),
)

stage_slots = sa.Table(
    "stage_slots",
    metadata,
    # Who is in staged rollout per major release. One regular holder at most (the index);
    # emergency releases never wait, so they may hold a place beside it.
    sa.Column("major_release", sa.String(100), primary_key=True),
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("emergency", sa.Boolean, nullable=False),
    sa.Column("taken_at", sa.DateTime, nullable=False),
    sa.Index(
        "uq_stage_slots_one_regular_holder",
        "major_release",
        unique=True,
        sqlite_where=sa.text("NOT emergency"),
        postgresql_where=sa.text("NOT emergency"),
    ),
)

release_areas = sa.Table(
    "release_areas",
    metadata,
    # Every area the bridge published a release into (unverified, stagerollout, production),
    # so removal and withdrawal work from this record, never by re-reading the release's input.
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("area", sa.String(1000), primary_key=True),
    sa.Column("published_at", sa.DateTime, nullable=False),
)

job_steps = sa.Table(
    "job_steps",
    metadata,
    # Checkpoints: the actions of a job already done, so a retried job resumes after them.
    sa.Column("job_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("action", sa.String(64), primary_key=True),
    sa.Column("done_at", sa.DateTime, nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default=""),
)

early_adopter_acceptances = sa.Table(
    "early_adopter_acceptances",
    metadata,
    # An early-adopter team that accepted a release's staged rollout (was added to the ticket's
    # EarlyAdopters): who added it and when (RT's actor and time), and its withdrawal (removed
    # from the field). The team's NGI and the major release are kept as they were then.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("ticket_id", sa.BigInteger, nullable=False),
    sa.Column("team", sa.String(100), nullable=False),
    sa.Column("ngi", sa.String(100), nullable=False),
    sa.Column("major_release", sa.String(100)),
    sa.Column("accepted_by", sa.String(200), nullable=False),
    sa.Column("accepted_at", sa.DateTime, nullable=False),
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("withdrawn_by", sa.String(200)),
    sa.Column("withdrawn_at", sa.DateTime),
    sa.Column("withdrawn_transaction_id", sa.BigInteger),
    sa.UniqueConstraint("transaction_id", name="uq_early_adopter_acceptances_transaction"),
    # One standing acceptance per team and release.
    sa.Index(
        "uq_early_adopter_acceptances_one_standing",
        "ticket_id",
        "team",
        unique=True,
        sqlite_where=sa.text("withdrawn_at IS NULL"),
        postgresql_where=sa.text("withdrawn_at IS NULL"),
    ),
    sa.Index("ix_early_adopter_acceptances_accepted_at", "accepted_at"),
)

release_fetches = sa.Table(
    "release_fetches",
    metadata,
    # The first allowed fetch of each release by each person from a protected area (who,
    # their early-adopter teams then, which area, when): staged-rollout uptake for the metrics.
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("person", sa.String(200), primary_key=True),
    sa.Column("teams", sa.String(1000), nullable=False, default=""),
    sa.Column("area", sa.String(1000), nullable=False),
    sa.Column("first_at", sa.DateTime, nullable=False),
    sa.Index("ix_release_fetches_first_at", "first_at"),
)

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    # A system that wants to hear of events: its endpoint, what it wants, how deliveries to it
    # are signed, and how it is doing (docs/notifications.md).
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    # JSON: the event-kind patterns, and the filters on the release's attributes.
    sa.Column("kinds", sa.Text, nullable=False),
    sa.Column("filters", sa.Text, nullable=False),
    # The signing secret (whsec_...); during a rotation's overlap the previous one signs too.
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("previous_secret", sa.String(200)),
    sa.Column("previous_until", sa.DateTime),
    sa.Column("github_signature", sa.Boolean, nullable=False, default=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    # Why it is disabled (operator, ping failed, 410 Gone, failing for its budget).
    sa.Column("disabled_reason", sa.Text),
    sa.Column("disabled_at", sa.DateTime),
    # Declared in the settings file: kept in step at start-up, read-only from the API.
    sa.Column("declared", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    # The current spell of failures: since when, how many attempts, the budget's warnings given.
    sa.Column("failing_since", sa.DateTime),
    sa.Column("failures", sa.Integer, nullable=False, default=0),
    sa.Column("warned", sa.Integer, nullable=False, default=0),
    sa.Column("last_success_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.UniqueConstraint("name", name="uq_subscriptions_name"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    # One event to one subscription: created in the event's transaction, sent with retries.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    # The release it is about (deliveries of one release go out in order) and its sequence.
    sa.Column("ticket_id", sa.BigInteger),
    sa.Column("seq", sa.Integer),
    sa.Column("kind", sa.String(48), nullable=False),
    # The body sent, the same on every attempt (its ``id`` is the ``webhook-id``).
    sa.Column("payload", sa.Text, nullable=False),
    # pending, sending (leased), delivered, failed (schedule used up), cancelled.
    sa.Column("status", sa.String(16), nullable=False),
    # Attempts in the current round (a redelivery starts a new round of the schedule).
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    # Attempts ever made (every round): the number of the next attempt's row.
    sa.Column("tries", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("locked_by", sa.String(200)),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    # The recovery that queued it again, if one did (so the recovery can be cancelled).
    sa.Column("recovery_id", sa.BigInteger),
    sa.UniqueConstraint("event_id", "subscription_id", name="uq_deliveries_event_subscription"),
    sa.Index("ix_deliveries_status_next", "status", "next_attempt_at"),
    # What is due, per subscription: the claim looks only at enabled subscriptions'.
    sa.Index("ix_deliveries_due", "subscription_id", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_release", "subscription_id", "ticket_id", "status", "id"),
    sa.Index("ix_deliveries_created", "subscription_id", "created_at"),
    sa.Index("ix_deliveries_recovery", "recovery_id"),
)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    # Every try of a delivery: what was sent (signatures redacted) and what came back.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.BigInteger, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("worker", sa.String(200), nullable=False),
    sa.Column("request_headers", sa.Text, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("response_body", sa.Text),
    sa.Column("duration_ms", sa.Float, nullable=False),
    # dns, refused, tls, timeout, http, destination, connection, bridge; None on success.
    sa.Column("error_class", sa.String(16)),
    sa.Column("error", sa.Text),
    sa.Index("ix_delivery_attempts_delivery", "delivery_id", "attempt"),
    sa.Index("ix_delivery_attempts_at", "at"),
)

delivery_recoveries = sa.Table(
    "delivery_recoveries",
    metadata,
    # ``rollout deliveries recover``: the failed deliveries of a subscription since a time,
    # queued again; cancellable while some are not sent.
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("subscription_id", sa.BigInteger, nullable=False),
    sa.Column("since", sa.DateTime, nullable=False),
    sa.Column("asked_by", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("cancelled_at", sa.DateTime),
)

delivery_notices = sa.Table(
    "delivery_notices",
    metadata,
    # Each step of a failing endpoint (warned 50, warned 90, disabled) said once on the ticket
    # of each release whose delivery is stuck behind it.
    sa.Column("subscription_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("ticket_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("step", sa.String(16), primary_key=True),
    sa.Column("spell", sa.DateTime, primary_key=True),  # the failing spell's start
    sa.Column("told_at", sa.DateTime),
)
