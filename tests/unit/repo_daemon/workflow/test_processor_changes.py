"""The processor on changes that are not RolloutProgress moves, with the in-memory fakes
(``bridge.testing``'s FakeTracker and InMemoryQueue; the bridge's records in an in-memory
SQLite database): early adopters told, accepting and withdrawing, tickets closed and reopened
by hand. The same against the real RT: tests/integration/test_early_adopters_rt.py and
tests/integration/test_hand_changes_rt.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from bridge import records, testing
from bridge.records import RolloutState as S
from bridge.records import TrackedField
from bridge.settings import model as settings_model
from bridge.store import database, events, releases
from bridge.store import early_adopters as acceptances
from repo_daemon.workflow import processor as workflow
from tests.support.fake_repository import FakeRepository
from tests.unit.repo_daemon.workflow.conftest import TEAMS

FIELDS = {
    "RolloutProgress": "Submitted",
    "EmergencyRelease": "No",
    "AssociatedMajorRelease": "UMD-5",
    "ReleaseType": "Incremental",
    "Sync-Protocol": "rsync",
    "Sync-URL": "rsync://provider/x/",
    "RolloutHistory": (),
    "RepositoryURL": (),
    "EarlyAdopters": (),
    "StageRollout Report": (),
}
WHEN = datetime(2026, 12, 3, 10, 30, 0)


class World:
    """The processor with the fakes, and ways to make changes as people do in RT."""

    def __init__(self) -> None:
        self.engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        database.migrate(self.engine)
        self.queue = testing.InMemoryQueue()
        self.store = releases.ReleaseStore(self.engine)
        self.adopters = acceptances.AcceptanceStore(self.engine)
        self.rt = testing.FakeTracker()
        # The release manager moves releases through every phase (the rows' roles).
        self.rt.memberships["manager"] = frozenset({"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"})
        self.rt.memberships["sr1"] = frozenset({"sw-rel-sr"})
        self.rt.memberships["site1"] = frozenset({"ea-desy"})  # a member of desy
        self.rt.memberships["petr"] = frozenset({"ea-cesnet"})
        self.repository = FakeRepository()
        settings = settings_model.Settings(
            tracker=settings_model.TrackerSettings(url="http://rt/"),
            workflow=settings_model.WorkflowSettings(early_adopters=TEAMS),
        )
        self.processor = workflow.WorkflowProcessor(
            settings,
            self.queue,
            self.store,
            lambda: self.rt,  # type: ignore[arg-type,return-value]
            repository=self.repository,
        )
        self._ids = itertools.count(1)

    def release(self, **fields: str) -> int:
        ticket_id = next(self._ids)
        self.rt.add_ticket(ticket_id, status="open", fields={**FIELDS, **fields})
        return ticket_id

    def _queue(self, ticket_id: int, txn: int, field: TrackedField, old: str, new: str,
               actor: str) -> None:  # fmt: skip
        self.queue.enqueue(
            records.ReleaseRequest.field_change(
                ticket_id=ticket_id, transaction_id=txn, field=field, old_value=old,
                new_value=new, actor=actor, changed_at=WHEN,
            )
        )  # fmt: skip
        self.drain()

    def move(self, ticket_id: int, *states: S, actor: str = "manager") -> None:
        for state in states:
            before = self.rt.get_ticket(ticket_id).field("RolloutProgress") or ""
            txn = self.rt.change_field(ticket_id, "RolloutProgress", state.label, actor=actor)
            self._queue(ticket_id, txn, TrackedField.ROLLOUT_PROGRESS, before, state.label, actor)

    def add_team(self, ticket_id: int, team: str, *, actor: str = "sr1") -> None:
        txn = self.rt.add_value(ticket_id, "EarlyAdopters", team, actor=actor)
        self._queue(ticket_id, txn, TrackedField.EARLY_ADOPTERS, "", team, actor)

    def remove_team(self, ticket_id: int, team: str, *, actor: str = "sr1") -> None:
        txn = self.rt.remove_value(ticket_id, "EarlyAdopters", team, actor=actor)
        self._queue(ticket_id, txn, TrackedField.EARLY_ADOPTERS, team, "", actor)

    def set_status(self, ticket_id: int, status: str, *, actor: str = "manager") -> None:
        before = self.rt.get_ticket(ticket_id).status
        txn = self.rt.change_status(ticket_id, status, actor=actor)
        self._queue(ticket_id, txn, TrackedField.STATUS, before, status, actor)

    def drain(self) -> None:
        while jobs := self.queue.claim("test"):
            for job in jobs:
                self.processor.process(job)
                assert self.queue.complete(job.id, "test")

    def state(self, ticket_id: int) -> str | None:
        return self.rt.get_ticket(ticket_id).field("RolloutProgress")

    def cc(self, ticket_id: int) -> tuple[str, ...]:
        return self.rt.get_ticket(ticket_id).cc_groups()

    def cc_written(self, ticket_id: int) -> list[tuple[str, ...]]:
        """The Cc groups of each update of the ticket that set them, in order."""
        return [
            tuple(c.arguments["cc_groups"])
            for c in self.rt.calls
            if c.operation == "update_ticket"
            and c.ticket_id == ticket_id
            and "cc_groups" in c.arguments
        ]


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.engine.dispose()


def test_entering_staged_rollout_tells_only_the_teams_of_the_major_release(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    assert world.state(ticket) == "StageRollout"
    # Cc while the comment went out: the state's groups and the teams of UMD-5; then taken off.
    assert world.cc_written(ticket)[-2:] == [
        ("sw-rel-sr", "ea-desy", "ea-infn"),
        ("sw-rel-sr",),
    ]
    assert world.cc(ticket) == ("sw-rel-sr",)
    told = world.rt.comments[ticket][-1]
    assert "Early adopters of UMD-5: desy (NGI_DE), infn (NGI_IT)" in told
    assert "cesnet" not in told


def test_a_team_that_accepts_is_recorded_and_watches_until_the_end(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    world.add_team(ticket, "desy", actor="site1")
    (acceptance,) = world.adopters.of_release(ticket)
    assert (acceptance.team, acceptance.ngi, acceptance.accepted_by, acceptance.accepted_at) == (
        "desy", "NGI_DE", "site1", WHEN,
    )  # fmt: skip
    assert world.cc(ticket) == ("sw-rel-sr", "ea-desy")
    assert "desy (NGI_DE) takes part in the staged rollout" in world.rt.comments[ticket][-1]
    world.move(ticket, S.PRODUCTION)
    assert world.cc(ticket) == ("sw-rel-production", "ea-desy")
    assert world.adopters.teams_per_release() == {ticket: ("desy",)}
    done = [
        e
        for e in world.queue.events(ticket_id=ticket)
        if e.kind is events.EventKind.FIELD_CHANGE_DONE
    ]
    assert [e.detail for e in done] == ["desy accepted"]


def test_a_team_removed_withdraws(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    world.add_team(ticket, "desy")
    world.add_team(ticket, "infn")
    world.remove_team(ticket, "desy", actor="sr1")
    assert [a.team for a in world.adopters.of_release(ticket)] == ["infn"]
    (withdrawn,) = [
        a for a in world.adopters.of_release(ticket, standing_only=False) if a.withdrawn_at
    ]
    assert (withdrawn.team, withdrawn.withdrawn_by) == ("desy", "sr1")
    assert world.cc(ticket) == ("sw-rel-sr", "ea-infn")


def test_an_unknown_team_is_commented_and_nothing_is_recorded(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED)
    world.add_team(ticket, "cern")
    assert world.adopters.of_release(ticket) == ()
    assert "'cern' (added by sr1) is not an early-adopter team" in world.rt.comments[ticket][-1]


def test_a_team_added_by_an_outsider_is_taken_off_again(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    world.add_team(ticket, "desy", actor="petr")
    assert world.adopters.of_release(ticket) == ()
    assert world.rt.get_ticket(ticket).custom_fields["EarlyAdopters"] == ()
    assert world.cc(ticket) == ("sw-rel-sr",)
    assert "petr is in neither, so the bridge took it off again" in world.rt.comments[ticket][-1]


def test_resolved_by_hand_in_staged_rollout_frees_the_slot_for_the_next_deferred(
    world: World,
) -> None:
    holder, waiting = world.release(), world.release()
    world.move(holder, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    world.move(waiting, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    assert world.state(waiting) == "Deferred"
    world.set_status(holder, "resolved", actor="mgr")
    assert world.state(holder) == "Ignored"
    assert world.rt.get_ticket(holder).status == "resolved"  # as the person left it
    assert "remove_release" in world.repository.steps(holder)
    assert world.store.slot_holders("UMD-5") == (waiting,)
    assert world.state(waiting) == "StageRollout"  # moved in by itself
    said = world.rt.comments[holder][-1]
    assert said.startswith(
        "The ticket was resolved by mgr in RT while the release was StageRollout."
    )
    assert "RolloutProgress: StageRollout → Ignored." in said
    assert [s.actor for s in world.store.history(holder)][-1] == "mgr"


def test_rejected_by_hand_tells_the_provider_and_stays_rejected(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED)
    world.set_status(ticket, "rejected")
    assert world.state(ticket) == "Rejected"
    assert world.rt.get_ticket(ticket).status == "rejected"
    reply = [c for c in world.rt.calls if c.operation == "reply" and c.ticket_id == ticket]
    assert [c.arguments["status"] for c in reply] == ["rejected"]  # RT does not reopen it


def test_deleted_by_hand_is_closed_with_comments_only(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    world.set_status(ticket, "deleted")
    assert world.state(ticket) == "Ignored"
    assert world.rt.get_ticket(ticket).status == "deleted"
    assert world.store.slot_holders("UMD-5") == ()
    assert "The ticket was deleted by manager" in world.rt.comments[ticket][-1]
    statuses = [
        c.arguments.get("status")
        for c in world.rt.calls
        if c.ticket_id == ticket and c.operation in ("update_ticket", "reply", "comment")
    ]
    assert set(statuses) <= {None}


def test_reopened_by_hand_is_only_commented(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT, S.PRODUCTION)
    assert world.rt.get_ticket(ticket).status == "resolved"
    world.set_status(ticket, "open", actor="provider")
    assert world.state(ticket) == "Production"
    assert world.rt.comments[ticket][-1].startswith("The ticket was reopened by provider in RT")


def test_a_ticket_resolved_by_hand_without_a_record_is_closed_from_submitted(
    world: World,
) -> None:
    ticket = world.release()
    world.set_status(ticket, "resolved")
    assert world.state(ticket) == "Ignored"
    assert [s.state for s in world.store.history(ticket)] == [S.SUBMITTED, S.IGNORED]


def test_the_report_and_an_emergency_are_kept_on_the_record(world: World) -> None:
    ticket = world.release()
    world.move(ticket, S.UNVERIFIED)
    txn = world.rt.change_field(ticket, "StageRollout Report", "https://wiki/r", actor="sr1")
    world._queue(ticket, txn, TrackedField.STAGE_ROLLOUT_REPORT, "", "https://wiki/r", "sr1")
    txn = world.rt.change_field(ticket, "EmergencyRelease", "Yes", actor="mgr")
    world._queue(ticket, txn, TrackedField.EMERGENCY_RELEASE, "No", "Yes", "mgr")
    release = world.store.get(ticket)
    assert release is not None
    assert (release.stage_report_at, release.emergency) == (WHEN, True)
