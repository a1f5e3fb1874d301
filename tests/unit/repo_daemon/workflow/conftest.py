"""Building the gathered ``Inputs`` of one transition, the way the processor would, from plain
values: a ticket's fields, where the release is, what was asked and the facts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from bridge import records
from bridge.records import RolloutState
from bridge.store import releases
from repo_daemon.workflow import engine, loader, model
from repo_daemon.workflow.gather import Inputs, People, TicketView
from tests.support.release_factory import release_info

NOW = datetime(2026, 12, 1, 12, 0, 0)
FIELDS = {
    "RolloutProgress": "Submitted",
    "EmergencyRelease": "No",
    "AssociatedMajorRelease": "UMD-5",
    "ReleaseType": "Incremental",
    "Sync-Protocol": "rsync",
    "Sync-URL": "rsync://provider/x/",
}

MakeInputs = Callable[..., Inputs]


def ticket(ticket_id: int = 7, subject: str = "ARC 7.1", **fields: str) -> records.Ticket:
    values = {**FIELDS, **fields}
    return records.Ticket(
        id=ticket_id,
        queue="sw-rel",
        subject=subject,
        status="open",
        custom_fields={k: ((v,) if v else ()) for k, v in values.items()},
    )


@functools.cache
def _staged() -> model.Definition:
    return loader.load_template("staged")


def build_inputs(
    at: RolloutState,
    asked: RolloutState,
    *,
    facts: model.Facts | None = None,
    definition: model.Definition | None = None,
    source: records.JobSource = records.JobSource.HOOK,
    failure: str = "",
    checkpoints: frozenset[str] = frozenset(),
    cc_overrides: dict[str, tuple[str, ...]] | None = None,
    **fields: Any,
) -> Inputs:
    facts = facts or model.Facts()
    tkt = TicketView.of(ticket(**fields))
    request = records.ReleaseRequest(
        ticket_id=tkt.id, transaction_id=100, current=asked, previous=at, source=source
    )
    job = records.Job(
        id=1, request=request, status=records.JobStatus.RUNNING, attempts=1,
        scheduled_at=NOW, created_at=NOW,
    )  # fmt: skip
    release = releases.Release(
        ticket_id=tkt.id, state=at, major_release=tkt.major_release,
        emergency=tkt.emergency, failed_target=facts.failed_target,
        last_transaction_id=None, updated_at=NOW,
    )  # fmt: skip
    definition = definition or _staged()
    decision = engine.decide(definition, at=at, asked=asked, facts=facts)
    return Inputs(
        job=job,
        ticket=tkt,
        release=release,
        facts=facts,
        decision=decision,
        definition=definition,
        people=People(cc_overrides=cc_overrides or {}, admin_cc=("sw-rel-admin",)),
        failure=failure,
        checkpoints=checkpoints,
        read_release_xml=lambda: release_info("arc", "7.1.0", []),
    )


@pytest.fixture
def make_inputs() -> MakeInputs:
    return build_inputs
