"""The daemon's standing retention (``event_retention`` job): the rules by kind from the
settings, refused hooks after ``refusal_retention_days``, exported under the data directory."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bridge import records
from bridge import secrets as bridge_secrets
from bridge.settings import model as settings_model
from bridge.store import chain_check, database, queue
from bridge.store import events as eventlog
from repo_daemon.daemon import assemble
from tests.support import event_history

K = eventlog.EventKind


class IdleProcessor:
    def gave_up(self, job: records.Job, message: str) -> None:
        """Nothing to tell."""

    def process(self, job: records.Job) -> None:
        """Nothing to do."""

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture
def settings(tmp_path: Path) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(
            url="http://127.0.0.1:9/", token=bridge_secrets.Secret("t")
        ),
        data_dir=tmp_path,
        daemon=settings_model.DaemonSettings(
            refusal_retention_days=30,
            event_retention=(settings_model.EventRetention(kinds=("rt_calls",), days=90),),
            event_export_dir=tmp_path / "event-exports",
        ),
    )


@pytest.fixture
def clock() -> event_history.FakeClock:
    return event_history.FakeClock(datetime(2026, 1, 1, 9))


@pytest.fixture
def jobs(
    settings: settings_model.Settings, clock: event_history.FakeClock
) -> Iterator[queue.Queue]:
    engine = database.create_engine(settings.database())
    database.migrate(engine)
    yield queue.Queue(engine, clock=clock)
    engine.dispose()


def test_the_daemon_prunes_by_the_configured_kinds_and_the_refusal_setting(
    settings: settings_model.Settings,
    jobs: queue.Queue,
    clock: event_history.FakeClock,
    tmp_path: Path,
) -> None:
    calls = [jobs.record_event(K.RT_CALLS, data={"calls": 3}) for _ in range(3)]
    refused = jobs.record_event(K.HOOK_REFUSED, detail="unsigned")
    told = jobs.record_event(K.TICKET_TOLD, ticket_id=5, detail="comment")
    jobs.record_event(K.TICKET_TOLD, ticket_id=5, detail="the newest of ticket 5")
    clock.advance(60 * 86400)  # past the refusals' 30 days, not the rt_calls' 90
    parts = assemble.build_parts(settings, jobs, processor=IdleProcessor(), reconcile_changes=False)
    try:
        assert "event_retention" in parts.daemon(blocking=False).job_ids()
        first = parts.apply_retention()
        clock.advance(31 * 86400)
        second = parts.apply_retention()
    finally:
        parts.close()
    left = {e.id for e in jobs.events(limit=100)}
    assert refused not in left and not left & set(calls)
    assert told in left  # no rule for ticket_told: kept for ever
    assert (first.deleted, second.deleted) == (1, 3)
    exported = [
        json.loads(line)["id"]
        for path in sorted((tmp_path / "event-exports").glob("*.jsonl.gz"))
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    assert sorted(exported) == sorted([refused, *calls])
    assert [e.actor for e in jobs.events(kind=K.EVENTS_PRUNED)] == [eventlog.BRIDGE_ACTOR] * 2
    assert chain_check.verify(jobs.engine).ok
