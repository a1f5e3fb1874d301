"""Building the gathered ``Inputs`` of one transition, the way the processor would, from plain
values: a ticket's fields, where the release is, what was asked and the facts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from bridge import records
from bridge.records import RolloutState
from bridge.settings import model as settings_model
from bridge.store import early_adopters as acceptances
from bridge.store import releases
from repo_daemon.workflow import engine, loader, model
from repo_daemon.workflow.gather import ChangeInputs, Inputs, People, TicketView
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


# -- changes of other fields (early adopters, the report, EmergencyRelease, the status) ---------

TEAMS = (
    settings_model.EarlyAdopterTeam(
        name="desy", ngi="NGI_DE", group="ea-desy", major_releases=("UMD-5",)
    ),
    settings_model.EarlyAdopterTeam(
        name="infn", ngi="NGI_IT", group="ea-infn", major_releases=("UMD-5", "UMD-6")
    ),
    settings_model.EarlyAdopterTeam(
        name="cesnet", ngi="NGI_CZ", group="ea-cesnet", major_releases=("UMD-6",)
    ),
)

MakeChangeInputs = Callable[..., ChangeInputs]


def accepted(*teams: str, ticket_id: int = 7) -> tuple[acceptances.Acceptance, ...]:
    """Standing acceptances of the release by ``teams``."""
    return tuple(
        acceptances.Acceptance(
            ticket_id=ticket_id,
            team=team,
            ngi="NGI",
            major_release="UMD-5",
            accepted_by="sr1",
            accepted_at=NOW,
            transaction_id=90 + i,
        )
        for i, team in enumerate(teams)
    )


def build_change_inputs(
    field: records.TrackedField,
    old: str,
    new: str,
    *,
    at: RolloutState = RolloutState.STAGE_ROLLOUT,
    status: str = "open",
    actor: str = "sr1",
    teams: tuple[settings_model.EarlyAdopterTeam, ...] = TEAMS,
    standing: tuple[acceptances.Acceptance, ...] = (),
    changed_at: datetime | None = NOW,
    actor_groups: frozenset[str] = frozenset({"sw-rel-sr"}),
    **fields: Any,
) -> ChangeInputs:
    """The inputs of one change of ``field`` from ``old`` to ``new`` while the release is
    ``at`` and the ticket's status is ``status``, made by a member of ``actor_groups``."""
    tkt = TicketView.of(replace(ticket(**fields), status=status))
    request = records.ReleaseRequest.field_change(
        ticket_id=tkt.id, transaction_id=200, field=field, old_value=old, new_value=new,
        actor=actor, changed_at=changed_at,
    )  # fmt: skip
    job = records.Job(
        id=2, request=request, status=records.JobStatus.RUNNING, attempts=1,
        scheduled_at=NOW, created_at=NOW,
    )  # fmt: skip
    release = releases.Release(
        ticket_id=tkt.id, state=at, major_release=tkt.major_release, emergency=tkt.emergency,
        failed_target=None, last_transaction_id=None, updated_at=NOW,
    )  # fmt: skip
    return ChangeInputs(
        job=job,
        ticket=tkt,
        release=release,
        definition=_staged(),
        people=People(cc_overrides={}, admin_cc=("sw-rel-admin",)),
        early_adopters=teams,
        accepted=standing,
        member_of=lambda groups: actor_groups & frozenset(groups),
    )


@pytest.fixture
def make_change_inputs() -> MakeChangeInputs:
    return build_change_inputs
