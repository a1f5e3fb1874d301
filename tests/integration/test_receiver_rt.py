"""The real RT 5's scrip driving the real receiver: a RolloutProgress change made through REST
ends up in the queue with RT's ticket id, transaction id, values and actor.

This module runs a sandbox RT of its own, whose scrip posts to the receiver these tests start
(the session's sandbox posts to a stand-in listener)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge import records, secrets
from bridge.rt_setup.sandbox import Sandbox, SandboxInfo, free_port
from bridge.secrets import Secret
from bridge.settings.model import TrackerSettings
from bridge.store import database, events, queue
from bridge.tracker import history
from bridge.tracker.client import TrackerClient
from tests.integration.test_receiver_process import SECRET, ReceiverProcess

pytestmark = pytest.mark.rt

DEADLINE = 30.0


@dataclass(frozen=True)
class RT:
    info: SandboxInfo
    receiver_port: int


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RT]:
    port = free_port()
    box = Sandbox(
        tmp_path_factory.mktemp("rt-for-receiver"),
        bridge_url=f"http://127.0.0.1:{port}/hooks/rt",
        hook_secret=SECRET,
    )
    info = box.up()
    yield RT(info, port)
    box.down()


@pytest.fixture
def manager(rt: RT) -> Iterator[TrackerClient]:
    settings = TrackerSettings(
        url=rt.info.web_url, user=rt.info.root_user, password=Secret(rt.info.root_password)
    )
    with TrackerClient(settings) as client:
        yield client


@pytest.fixture
def jobs(db_url: str) -> Iterator[queue.Queue]:
    engine = database.create_engine(db_url)
    yield queue.Queue(engine)
    engine.dispose()


def file_release(manager: TrackerClient, *, emergency: str = "No") -> int:
    return manager.create_ticket(
        "sw-rel",
        "Release of dCache 9.2.1",
        "Please publish.",
        custom_fields={
            "Sync-URL": "rsync://provider.example.org/dcache/9.2.1/",
            "AssociatedMajorRelease": "UMD-5",
            "EmergencyRelease": emergency,
        },
        requestors=["provider@example.org"],
    )


def wait_for(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} did not happen in time"
        time.sleep(0.05)


def change_of(manager: TrackerClient, ticket_id: int, new_value: str) -> dict[str, Any]:
    """RT's own record of the RolloutProgress change to ``new_value``."""
    (change,) = [
        t
        for t in manager.transactions_of(ticket_id)
        if t["Type"] == "CustomField" and t["NewValue"] == new_value
    ]
    return change


def job_for(jobs: queue.Queue, ticket_id: int, current: records.RolloutState) -> records.Job:
    found = wait_for(
        f"a queued {current.label} job for ticket {ticket_id}",
        lambda: [j for j in jobs.list_jobs(ticket_id=ticket_id) if j.request.current is current],
    )
    (job,) = found
    return job  # type: ignore[no-any-return]


def test_rolloutprogress_changes_in_rt_are_queued(
    rt: RT, manager: TrackerClient, jobs: queue.Queue, db_url: str, tmp_path: Path
) -> None:
    receiver = ReceiverProcess(db_url=db_url, data_dir=tmp_path, port=rt.receiver_port).start()
    try:
        ticket_id = file_release(manager)
        manager.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
        first = job_for(jobs, ticket_id, records.RolloutState.UNVERIFIED)
        manager.set_custom_fields(ticket_id, {"RolloutProgress": "InVerification"})
        second = job_for(jobs, ticket_id, records.RolloutState.IN_VERIFICATION)
    finally:
        assert receiver.stop() == 0

    assert first.request == records.ReleaseRequest(
        ticket_id=ticket_id,
        transaction_id=int(change_of(manager, ticket_id, "Unverified")["id"]),
        current=records.RolloutState.UNVERIFIED,
        previous=records.RolloutState.SUBMITTED,
        emergency=False,
        actor="root",
        source=records.JobSource.HOOK,
        # RT's time of the change, as the scrip sends it
        changed_at=history.parse_time(change_of(manager, ticket_id, "Unverified")["Created"]),
    )
    assert second.request == records.ReleaseRequest(
        ticket_id=ticket_id,
        transaction_id=int(change_of(manager, ticket_id, "InVerification")["id"]),
        current=records.RolloutState.IN_VERIFICATION,
        previous=records.RolloutState.UNVERIFIED,
        emergency=False,
        actor="root",
        source=records.JobSource.HOOK,
        # RT's time of the change, as the scrip sends it
        changed_at=history.parse_time(change_of(manager, ticket_id, "InVerification")["Created"]),
    )
    assert first.status is second.status is records.JobStatus.QUEUED
    assert jobs.events(kind=events.EventKind.HOOK_REFUSED) == []


def test_emergency_release_flag_reaches_the_queue(
    rt: RT, manager: TrackerClient, jobs: queue.Queue, db_url: str, tmp_path: Path
) -> None:
    receiver = ReceiverProcess(db_url=db_url, data_dir=tmp_path, port=rt.receiver_port).start()
    try:
        ticket_id = file_release(manager, emergency="Yes")
        manager.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
        job = job_for(jobs, ticket_id, records.RolloutState.UNVERIFIED)
    finally:
        assert receiver.stop() == 0
    assert job.request.emergency is True


def test_hook_signed_with_another_secret_is_refused_and_never_commented(
    rt: RT, manager: TrackerClient, jobs: queue.Queue, db_url: str, tmp_path: Path
) -> None:
    receiver = ReceiverProcess(
        db_url=db_url, data_dir=tmp_path, port=rt.receiver_port, secret=secrets.new_hook_secret()
    ).start()
    try:
        ticket_id = file_release(manager)
        manager.set_custom_fields(ticket_id, {"RolloutProgress": "Unverified"})
        (event,) = wait_for(
            "a refused hook",
            lambda: jobs.events(kind=events.EventKind.HOOK_REFUSED, ticket_id=ticket_id),
        )
    finally:
        assert receiver.stop() == 0
    transaction_id = int(change_of(manager, ticket_id, "Unverified")["id"])
    assert event.transaction_id == transaction_id  # as claimed by the unverified body
    assert event.detail.startswith(
        "HTTP 401: webhook-signature: does not match (wrong secret, or the body or headers "
        "were changed on the way) (from 127.0.0.1:"
    )
    assert event.detail.endswith("; signature not verified)")
    assert event.needs_comment is False
    assert jobs.list_jobs(ticket_id=ticket_id) == []
