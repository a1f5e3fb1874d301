"""A known state of the bridge's database for ``/metrics``, and the gauges it must give.

On the fixed clock of ``delivery_story`` (whose two subscriptions and three queued hooks it
starts from): one job done, one dead-lettered, one still queued; releases in several states of
the configured major releases UMD-4 and UMD-5 and of an unconfigured one (UMD-9, labelled
``other``), a regular and an emergency slot holder and two Deferred releases; publications
into unverified, stagerollout and production areas; ``ci`` disabled. ``EXPECTED`` lists every
sample of the database's gauges, by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bridge import records
from bridge.settings import model as settings_model
from bridge.store import queue, releases, retry
from tests.support import delivery_story

S = records.RolloutState
T0 = delivery_story.T0
MAJORS = ("UMD-4", "UMD-5")
Sample = tuple[str, tuple[tuple[str, str], ...]]


def settings(**receiver: object) -> settings_model.Settings:
    """Settings knowing the story's major releases."""
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://127.0.0.1:9/"),
        workflow=settings_model.WorkflowSettings(major_releases=MAJORS),
        receiver=settings_model.ReceiverSettings(**receiver),  # type: ignore[arg-type]
    )


def unix(at: datetime) -> float:
    return at.replace(tzinfo=UTC).timestamp()


@dataclass
class Story:
    clock: delivery_story.Clock
    now: datetime  # the clock when the story ends


def write(engine: sa.Engine) -> Story:
    """Write the story into ``engine`` (migrated, empty)."""
    told = delivery_story.write(engine)  # jobs 4242, 4243 at T0, 4244 at T0+120; now T0+180
    clock = told.clock
    jobs = queue.Queue(engine, clock=clock)
    done, dying = jobs.claim("w1", limit=2)
    assert jobs.complete(done.id, "w1")
    spent = retry.RetryPolicy(max_attempts=1, jitter=0.0)
    assert jobs.fail(dying, "w1", "sync: refused", transient=True, policy=spent) is (
        records.JobStatus.DEAD
    )
    store = releases.ReleaseStore(engine, clock=clock)
    for ticket, major, emergency in [
        (1, "UMD-5", False), (2, "UMD-5", False), (3, "UMD-5", False), (4, "UMD-4", False),
        (5, "UMD-4", True), (6, "UMD-9", False), (7, "UMD-4", False), (8, None, False),
    ]:  # fmt: skip
        store.ensure(ticket, state=S.SUBMITTED, major_release=major, emergency=emergency)
    clock.advance(600)  # T0+780
    store.move(4, S.UNVERIFIED, transaction_id=14, actor="bridge")
    store.set_repository_path(4, "unverified/umd-thing/1.0")
    store.move(1, S.STAGE_ROLLOUT, transaction_id=11, actor="sr")
    assert store.take_slot("UMD-5", 1, emergency=False)
    store.set_repository_path(1, "stagerollout/UMD-5")
    clock.advance(3600)  # T0+4380
    store.move(2, S.DEFERRED, transaction_id=12, actor="sr")
    store.move(3, S.DEFERRED, transaction_id=13, actor="sr")
    store.move(5, S.STAGE_ROLLOUT, transaction_id=15, actor="admin")
    assert store.take_slot("UMD-4", 5, emergency=True)
    store.move(6, S.STAGE_ROLLOUT, transaction_id=16, actor="sr")
    assert store.take_slot("UMD-9", 6, emergency=False)
    store.set_repository_path(6, "stagerollout/UMD-9")
    clock.advance(60)  # T0+4440
    store.move(7, S.PRODUCTION, transaction_id=17, actor="sr")
    store.set_repository_path(7, "production/UMD-4/base")
    store.move(8, S.REJECTED, transaction_id=18, actor="admin")
    told.subs.disable("ci", reason="operator", actor="ops")
    return Story(clock=clock, now=clock())


END = T0 + timedelta(seconds=4440)
# Every sample of the database's gauges at END (``rollout_database_up`` aside).
EXPECTED: dict[Sample, float] = {
    **{
        ("rollout_queue_jobs", (("status", status),)): n
        for status, n in {"queued": 1, "running": 0, "done": 1, "failed": 0, "dead": 1}.items()
    },
    # 4244, queued at T0+120
    ("rollout_queue_oldest_job_age_seconds", ()): 4440.0 - 120.0,
    **{
        ("rollout_releases", (("state", s.label),)): 0.0
        for s in S
        if s
        not in (S.SUBMITTED, S.UNVERIFIED, S.STAGE_ROLLOUT, S.DEFERRED, S.PRODUCTION, S.REJECTED)
    },
    ("rollout_releases", (("state", "Submitted"),)): 0.0,
    ("rollout_releases", (("state", "Unverified"),)): 1.0,
    ("rollout_releases", (("state", "StageRollout"),)): 3.0,
    ("rollout_releases", (("state", "Deferred"),)): 2.0,
    ("rollout_releases", (("state", "Production"),)): 1.0,
    ("rollout_releases", (("state", "Rejected"),)): 1.0,
    **{
        ("rollout_stage_slot_holders", (("emergency", e), ("major_release", m))): 0.0
        for m in (*MAJORS, "other")
        for e in ("false", "true")
    },
    ("rollout_stage_slot_holders", (("emergency", "false"), ("major_release", "UMD-5"))): 1.0,
    ("rollout_stage_slot_holders", (("emergency", "true"), ("major_release", "UMD-4"))): 1.0,
    ("rollout_stage_slot_holders", (("emergency", "false"), ("major_release", "other"))): 1.0,
    ("rollout_stage_slot_held_since_timestamp_seconds", (("major_release", "UMD-4"),)): unix(
        T0 + timedelta(seconds=4380)
    ),
    ("rollout_stage_slot_held_since_timestamp_seconds", (("major_release", "UMD-5"),)): unix(
        T0 + timedelta(seconds=780)
    ),
    ("rollout_stage_slot_held_since_timestamp_seconds", (("major_release", "other"),)): unix(
        T0 + timedelta(seconds=4380)
    ),
    ("rollout_stage_deferred_releases", (("major_release", "UMD-4"),)): 0.0,
    ("rollout_stage_deferred_releases", (("major_release", "UMD-5"),)): 2.0,
    ("rollout_stage_deferred_releases", (("major_release", "other"),)): 0.0,
    ("rollout_last_publication_timestamp_seconds", (("area", "unverified"),)): unix(
        T0 + timedelta(seconds=780)
    ),
    ("rollout_last_publication_timestamp_seconds", (("area", "stagerollout/UMD-5"),)): unix(
        T0 + timedelta(seconds=780)
    ),
    ("rollout_last_publication_timestamp_seconds", (("area", "stagerollout/other"),)): unix(
        T0 + timedelta(seconds=4380)
    ),
    ("rollout_last_publication_timestamp_seconds", (("area", "production/UMD-4/base"),)): unix(END),
    ("rollout_webhook_subscription_enabled", (("subscription", "ci"),)): 0.0,
    ("rollout_webhook_subscription_enabled", (("subscription", "mirror"),)): 1.0,
    # 4244's delivery to each waits; ci's two earlier ones failed for good (one attempt).
    ("rollout_webhook_deliveries_pending", (("subscription", "ci"),)): 1.0,
    ("rollout_webhook_deliveries_pending", (("subscription", "mirror"),)): 1.0,
    ("rollout_webhook_deliveries_failed", (("subscription", "ci"),)): 2.0,
    ("rollout_webhook_deliveries_failed", (("subscription", "mirror"),)): 0.0,
    # ci fails since T0+60: 4380 s of a 5-day budget is 1.0 % (delivery_reads rounds to 0.1 %).
    ("rollout_webhook_failure_budget_ratio", (("subscription", "ci"),)): 0.01,
    ("rollout_webhook_failure_budget_ratio", (("subscription", "mirror"),)): 0.0,
}
