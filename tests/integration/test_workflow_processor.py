"""The workflow processor with a real queue and release store (SQLite in tmp_path) and a fake
of our own tracker client: decisions carried out, written back in few calls, checkpointed.
The same flows against the real RT are in tests/integration/test_workflow_rt.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bridge import errors, records
from bridge.records import RolloutState as S
from bridge.settings import model as settings_model
from bridge.store import database, events, queue, releases
from repo_daemon.publish.errors import PublishFailed
from repo_daemon.release_xml.report import ReleaseInvalid
from repo_daemon.sync.errors import SyncRefused
from repo_daemon.workflow import processor as workflow
from tests.support.fake_repository import FakeRepository

BASE_FIELDS = {
    "RolloutProgress": ("Submitted",),
    "EmergencyRelease": ("No",),
    "AssociatedMajorRelease": ("UMD-5",),
    "ReleaseType": ("Incremental",),
    "Sync-Protocol": ("rsync",),
    "Sync-URL": ("rsync://provider/x/",),
    "RolloutHistory": (),
    "RepositoryURL": (),
}


class FakeTracker:
    """Keeps tickets in memory the way RT would show them to the bridge; counts calls."""

    def __init__(self) -> None:
        self.tickets: dict[int, records.Ticket] = {}
        self.comments: dict[int, list[str]] = {}
        self.replies: dict[int, list[str]] = {}
        self.updates: list[dict[str, Any]] = []
        self.calls = 0
        self.fail_next: Exception | None = None
        # RT users and their groups; "manager" plays every worker role.
        self.memberships = {
            "manager": frozenset({"sw-rel-qc", "sw-rel-sr", "sw-rel-admin"}),
            "qc1": frozenset({"sw-rel-qc"}),
            "sr1": frozenset({"sw-rel-sr"}),
        }
        self.group_lookups: list[str] = []

    def add(self, ticket_id: int, **fields: str) -> None:
        values = dict(BASE_FIELDS)
        values.update({k: (v,) for k, v in fields.items()})
        self.tickets[ticket_id] = records.Ticket(
            id=ticket_id, queue="sw-rel", subject=f"Release {ticket_id}", status="new",
            custom_fields=values,
        )  # fmt: skip

    def _call(self) -> None:
        self.calls += 1
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    def total_round_trips(self) -> int:
        return self.calls

    def get_ticket(self, ticket_id: int) -> records.Ticket:
        self._call()
        return self.tickets[ticket_id]

    def groups_of(self, user: str, *, among: Any = None) -> frozenset[str]:
        self._call()
        self.group_lookups.append(user)
        if user not in self.memberships:
            raise errors.TrackerNotFound(f"no user {user!r}", operation="groups_of")
        return self.memberships[user]

    def update_ticket(self, ticket_id: int, **kw: Any) -> list[str]:
        self._call()
        self.updates.append({"ticket": ticket_id, **kw})
        t = self.tickets[ticket_id]
        fields = dict(t.custom_fields)
        for name, value in (kw.get("custom_fields") or {}).items():
            fields[name] = (value,)
        cc = t.cc
        if kw.get("cc_groups") is not None:
            cc = tuple(records.Watcher(kind="group", name=g) for g in kw["cc_groups"])
        admin = t.admin_cc
        if kw.get("admin_cc_groups") is not None:
            admin = tuple(records.Watcher(kind="group", name=g) for g in kw["admin_cc_groups"])
        self.tickets[ticket_id] = replace(
            t, custom_fields=fields, cc=cc, admin_cc=admin, status=kw.get("status") or t.status
        )
        return ["ok"]

    def comment(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        self._call()
        text.encode("utf-8")  # the real client sends UTF-8 JSON: what it cannot encode raises
        self.comments.setdefault(ticket_id, []).append(text)
        self._status(ticket_id, status)

    def reply(self, ticket_id: int, text: str, *, status: str | None = None) -> None:
        self._call()
        text.encode("utf-8")
        self.replies.setdefault(ticket_id, []).append(text)
        # Like RT: a reply reopens a resolved ticket, unless it sets the status itself.
        self._status(
            ticket_id, status or ("open" if self.tickets[ticket_id].status == "resolved" else None)
        )

    def transactions_of(self, ticket_id: int) -> list[dict[str, Any]]:
        """No messages: what a ticket that lacks a field has for mail intake to read."""
        self._call()
        return []

    def download_attachment(self, ticket_id: int, filename: str) -> records.Attachment:
        self._call()  # release.xml is FakeRepository's; here there is none to read fields from
        raise errors.TrackerNotFound(f"no {filename}", operation="download_attachment")

    def _status(self, ticket_id: int, status: str | None) -> None:
        if status is not None:
            self.tickets[ticket_id] = replace(self.tickets[ticket_id], status=status)

    def close(self) -> None:
        pass


class World:
    """The processor, its queue and store, the fake RT, and a way to make changes."""

    def __init__(self, tmp_path: Path, settings: settings_model.Settings) -> None:
        engine = database.create_engine(database.default_url(tmp_path))
        database.migrate(engine)
        self.engine = engine
        self.queue = queue.Queue(engine)
        self.store = releases.ReleaseStore(engine)
        self.rt = FakeTracker()
        self.repository = FakeRepository()
        self.processor = workflow.WorkflowProcessor(
            settings,
            self.queue,
            self.store,
            lambda: self.rt,  # type: ignore[arg-type,return-value]
            repository=self.repository,
        )
        self._txn = itertools.count(1000)

    def change(self, ticket_id: int, to: S, *, actor: str = "manager") -> records.Job:
        """A person sets RolloutProgress in RT; the change is queued and processed."""
        t = self.rt.tickets[ticket_id]
        previous = S.parse(t.field("RolloutProgress"))
        fields = dict(t.custom_fields)
        fields["RolloutProgress"] = (to.label,)
        self.rt.tickets[ticket_id] = replace(t, custom_fields=fields)
        self.queue.enqueue(
            records.ReleaseRequest(
                ticket_id=ticket_id, transaction_id=next(self._txn), current=to,
                previous=previous, actor=actor,
            )
        )  # fmt: skip
        return self.process_all()

    def process_all(self) -> records.Job:
        last = None
        while jobs := self.queue.claim("test", limit=1):
            (job,) = jobs
            self.processor.process(job)
            assert self.queue.complete(job.id, "test")
            last = job
        assert last is not None
        return last

    def state(self, ticket_id: int) -> str | None:
        return self.rt.tickets[ticket_id].field("RolloutProgress")

    def cc(self, ticket_id: int) -> tuple[str, ...]:
        return self.rt.tickets[ticket_id].cc_groups()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = settings_model.Settings(tracker=settings_model.TrackerSettings(url="http://rt/"))
    w = World(tmp_path, settings)
    yield w
    w.engine.dispose()


def _walk(world: World, ticket_id: int, *states: S) -> None:
    for state in states:
        world.change(ticket_id, state)
        assert world.state(ticket_id) == state.label


def test_a_release_walks_to_production(world: World) -> None:
    world.rt.add(1)
    world.change(1, S.UNVERIFIED)
    assert world.state(1) == "Unverified"
    assert world.cc(1) == ("sw-rel-qc",)
    assert world.rt.tickets[1].admin_cc_groups() == ("sw-rel-admin",)
    assert world.rt.comments[1][-1].startswith("RolloutProgress: Submitted → Unverified.")
    assert len(world.rt.comments[1]) == 1
    steps = world.store.steps_done(1)
    assert {
        "check_fields",
        "freeze_release_xml",
        "validate_release",
        "publish_unverified",
        "write_ticket",
    } <= set(steps)

    _walk(world, 1, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    # The early adopters (no teams configured: the global group) were Cc of the comment only.
    assert [u.get("cc_groups") for u in world.rt.updates[-2:]] == [
        ("sw-rel-sr", "sw-rel-early-adopters"),
        ("sw-rel-sr",),
    ]
    assert world.cc(1) == ("sw-rel-sr",)
    assert world.store.slot_holders("UMD-5") == (1,)
    world.change(1, S.PRODUCTION)
    assert world.cc(1) == ("sw-rel-production",)
    assert world.rt.tickets[1].status == "resolved"
    assert world.store.slot_holders("UMD-5") == ()
    assert "in production" in world.rt.replies[1][-1]  # the provider hears of it
    history = world.rt.tickets[1].field("RolloutHistory") or ""
    assert [line.split()[3] for line in history.splitlines()] == [
        "Submitted", "Unverified", "InVerification", "StageRollout", "Production",
    ]  # fmt: skip
    assert [s.state for s in world.store.history(1)] == [
        S.SUBMITTED, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT, S.PRODUCTION,
    ]  # fmt: skip


def test_each_transition_costs_few_rt_calls(world: World) -> None:
    world.rt.add(1)
    before = world.rt.calls
    world.change(1, S.UNVERIFIED)
    # read the ticket, the asker's groups (first time only), one PUT for field + history +
    # watchers, one comment
    assert world.rt.calls - before == 4
    (event,) = world.queue.events(kind=events.EventKind.RT_CALLS, limit=1)
    assert event.detail.startswith("4 RT calls for Submitted → Unverified (move)")
    before = world.rt.calls
    world.change(1, S.IN_VERIFICATION)  # the same person again: their roles are remembered
    assert world.rt.calls - before == 3


def test_an_illegal_move_is_put_back_with_a_comment(world: World) -> None:
    world.rt.add(1)
    _walk(world, 1, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    world.change(1, S.IN_VERIFICATION)
    assert world.state(1) == "StageRollout"
    assert world.rt.comments[1][-1].startswith(
        "Blocked: RolloutProgress cannot go from StageRollout to InVerification"
    )
    assert "Production, Rejected, Ignored, NotPublished" in world.rt.comments[1][-1]
    release = world.store.get(1)
    assert release is not None and release.state is S.STAGE_ROLLOUT


def test_second_release_is_deferred_then_moves_in_when_the_slot_frees(world: World) -> None:
    world.rt.add(1)
    world.rt.add(2)
    _walk(world, 1, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    _walk(world, 2, S.UNVERIFIED, S.IN_VERIFICATION)
    world.change(2, S.STAGE_ROLLOUT)
    assert world.state(2) == "Deferred"
    assert any("held by #1" in c for c in world.rt.comments[2])
    assert world.cc(2) == ("sw-rel-sr",)

    world.change(1, S.PRODUCTION)  # frees the slot; the bridge queues #2's move itself
    assert world.state(2) == "StageRollout"
    assert world.store.slot_holders("UMD-5") == (2,)
    assert "(automatically)" in world.rt.comments[2][-1]
    (promoted,) = world.queue.events(kind=events.EventKind.DEFERRED_PROMOTED)
    assert "queued #2" in promoted.detail


def test_an_emergency_goes_to_production_without_staged_rollout(world: World) -> None:
    world.rt.add(1)
    world.rt.add(3, EmergencyRelease="Yes")
    _walk(world, 1, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT)
    _walk(world, 3, S.UNVERIFIED, S.IN_VERIFICATION, S.PRODUCTION)
    assert world.rt.tickets[3].status == "resolved"
    assert world.store.slot_holders("UMD-5") == (1,)  # the regular holder keeps its slot


def test_production_without_emergency_is_blocked(world: World) -> None:
    world.rt.add(1)
    _walk(world, 1, S.UNVERIFIED, S.IN_VERIFICATION)
    world.change(1, S.PRODUCTION)
    assert world.state(1) == "InVerification"
    assert "only an emergency release" in world.rt.comments[1][-1]


def test_missing_fields_fail_the_release_and_it_can_be_retried(world: World) -> None:
    world.rt.add(1, **{"Sync-URL": ""})
    world.change(1, S.UNVERIFIED)
    assert world.state(1) == "Failed"
    failure = world.rt.comments[1][-1]
    assert "the ticket lacks Sync-URL" in failure
    assert "set RolloutProgress to Unverified to retry, or to Rejected" in failure
    release = world.store.get(1)
    assert release is not None and release.failed_target is S.UNVERIFIED

    world.rt.tickets[1] = replace(
        world.rt.tickets[1],
        custom_fields={**world.rt.tickets[1].custom_fields, "Sync-URL": ("rsync://p/x/",)},
    )
    world.change(1, S.UNVERIFIED)
    assert world.state(1) == "Unverified"


def test_a_transient_rt_error_is_retried_and_resumes(world: World) -> None:
    world.rt.add(1)
    world.queue.enqueue(
        records.ReleaseRequest(
            ticket_id=1,
            transaction_id=1,
            current=S.UNVERIFIED,
            previous=S.SUBMITTED,
            actor="manager",
        )
    )
    (job,) = world.queue.claim("test")
    # The ticket read works, the write-back times out: the repository steps are checkpointed.
    world.rt.calls = 0
    original = world.rt.update_ticket

    def flaky(ticket_id: int, **kw: Any) -> list[str]:
        world.rt.update_ticket = original  # type: ignore[method-assign]
        raise errors.TrackerUnavailable("timed out", operation="update_ticket")

    world.rt.update_ticket = flaky  # type: ignore[method-assign]
    with pytest.raises(errors.TrackerUnavailable):
        world.processor.process(job)
    done_first = world.store.steps_done(job.id)
    assert "publish_unverified" in done_first and "write_ticket" not in done_first
    world.processor.process(job)
    assert world.state(1) == "Unverified"
    assert set(world.store.steps_done(job.id)) >= {"write_ticket", "comment"}
    # Resumed after its publication: nothing is fetched, synced or published twice.
    ran = world.repository.steps(1)
    for step in ("freeze_release_xml", "sync_packages", "publish_unverified"):
        assert ran.count(step) == 1, (step, ran)
    assert world.rt.tickets[1].field("RepositoryURL") == (
        "https://repo.example/unverified/rel1/1.0.0/"
    )


def test_a_dead_lettered_change_sets_failed(world: World) -> None:
    world.rt.add(1)
    world.queue.enqueue(
        records.ReleaseRequest(
            ticket_id=1, transaction_id=1, current=S.UNVERIFIED, previous=S.SUBMITTED
        )
    )
    (job,) = world.queue.claim("test")
    world.processor.gave_up(job, "RT timed out 8 times")
    assert world.state(1) == "Failed"
    assert "kept failing and was given up: RT timed out 8 times" in world.rt.comments[1][-1]


def test_a_stale_automatic_move_does_nothing(world: World) -> None:
    world.rt.add(2)
    _walk(world, 2, S.UNVERIFIED, S.IN_VERIFICATION)
    world.queue.enqueue(
        records.ReleaseRequest(
            ticket_id=2, transaction_id=-5, current=S.STAGE_ROLLOUT, previous=S.DEFERRED,
            source=records.JobSource.BRIDGE,
        )
    )  # fmt: skip
    world.process_all()
    assert world.state(2) == "InVerification"
    assert world.queue.events(kind=events.EventKind.TRANSITION_STALE)


def test_the_same_state_again_is_a_no_op(world: World) -> None:
    world.rt.add(1)
    world.change(1, S.UNVERIFIED)
    comments = len(world.rt.comments[1])
    world.queue.enqueue(
        records.ReleaseRequest(
            ticket_id=1, transaction_id=5, current=S.UNVERIFIED, previous=S.SUBMITTED
        )
    )
    world.process_all()
    assert len(world.rt.comments[1]) == comments
    assert world.queue.events(kind=events.EventKind.TRANSITION_NOOP)


def test_a_failure_the_provider_can_fix_is_replied_to_them(world: World) -> None:
    world.rt.add(1)
    world.repository.fail["read_release_xml"] = ReleaseInvalid(["Package 2: Size is missing"])
    world.change(1, S.UNVERIFIED)
    assert world.state(1) == "Failed"
    (reply,) = world.rt.replies[1]
    assert reply.startswith("Your release 'Release 1' could not be processed: Submitted → ")
    assert "Package 2: Size is missing" in reply
    assert world.rt.tickets[1].status != "resolved"


def test_a_failure_naming_a_file_that_is_not_utf8_fails_the_release_escaped(
    world: World,
) -> None:
    world.rt.add(1)
    # As os.listdir gives a provider's name whose bytes are not UTF-8: b"caf\xe9.rpm".
    name = b"caf\xe9.rpm".decode("utf-8", "surrogateescape")
    world.repository.fail["sync_packages"] = SyncRefused(f"the tree holds {name}", [name])

    job = world.change(1, S.UNVERIFIED)

    assert world.state(1) == "Failed"
    (reply,) = world.rt.replies[1]
    assert "the tree holds caf\\xe9.rpm" in reply
    failed = world.queue.events(kind=events.EventKind.TRANSITION_FAILED, job_id=job.id)
    assert len(failed) == 1 and "caf\\xe9.rpm" in failed[0].detail


def test_a_failure_of_the_bridges_own_is_not_replied(world: World) -> None:
    world.rt.add(1)
    world.repository.fail["publish_unverified"] = PublishFailed("disk full", transient=False)
    world.change(1, S.UNVERIFIED)
    assert world.state(1) == "Failed"
    assert 1 not in world.rt.replies
    assert "disk full" in world.rt.comments[1][-1]


def test_an_unknown_major_release_fails_at_intake(tmp_path: Path) -> None:
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt/"),
        workflow=settings_model.WorkflowSettings(major_releases=("UMD-5", "CAs")),
    )
    w = World(tmp_path, settings)
    try:
        w.rt.add(1, AssociatedMajorRelease="UMD5")
        w.change(1, S.UNVERIFIED)
        assert w.state(1) == "Failed"
        assert "'UMD5' is not a known major release; known: UMD-5, CAs" in w.rt.replies[1][0]
        assert w.repository.steps(1) == []  # nothing fetched, nothing published
        w.rt.add(2)
        w.change(2, S.UNVERIFIED)
        assert w.state(2) == "Unverified"
    finally:
        w.engine.dispose()


def test_a_move_not_theirs_is_put_back_naming_who_may_make_it(world: World) -> None:
    world.rt.add(40)
    _walk(world, 40, S.UNVERIFIED, S.IN_VERIFICATION)
    world.change(40, S.STAGE_ROLLOUT, actor="qc1")  # QC passes it on to staged rollout
    assert world.state(40) == "StageRollout"
    world.change(40, S.PRODUCTION, actor="qc1")  # but the staged-rollout team decides this
    assert world.state(40) == "StageRollout"  # put back
    comment = world.rt.comments[40][-1]
    assert comment.startswith("Blocked: StageRollout → Production may only be asked for by")
    assert "the staged-rollout team (@sr, RT group sw-rel-sr), and qc1 is not one of them" in (
        comment
    )
    assert world.store.get(40).state is S.STAGE_ROLLOUT  # type: ignore[union-attr]
    world.change(40, S.PRODUCTION, actor="sr1")
    assert world.state(40) == "Production"


def test_someone_rt_does_not_know_has_no_role(world: World) -> None:
    world.rt.add(41)
    world.change(41, S.UNVERIFIED, actor="ghost")
    assert world.state(41) == "Submitted"
    assert "ghost is not one of them" in world.rt.comments[41][-1]
    assert world.repository.steps(41) == []  # nothing was fetched or published


def test_a_persons_groups_are_looked_up_once_and_remembered(world: World) -> None:
    world.rt.add(42)
    _walk(world, 42, S.UNVERIFIED, S.IN_VERIFICATION, S.WAITING_FOR_RESPONSE, S.IN_VERIFICATION)
    assert world.rt.group_lookups == ["manager"]


def test_a_release_in_production_is_withdrawn(world: World) -> None:
    world.rt.add(1)
    _walk(world, 1, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT, S.PRODUCTION)
    assert world.rt.tickets[1].field("RepositoryURL")
    world.change(1, S.WITHDRAWN, actor="sr1")  # release managers withdraw, nobody else
    assert world.state(1) == "Production"
    refusal = world.rt.comments[1][-1]
    assert "release managers (@admin, RT group sw-rel-admin), and sr1 is not one" in refusal
    world.change(1, S.WITHDRAWN)
    assert world.state(1) == "Withdrawn"
    assert world.repository.steps(1)[-1] == "withdraw_release"
    assert not world.rt.tickets[1].field("RepositoryURL")  # cleared: published nowhere
    assert world.rt.tickets[1].status == "resolved"
    assert world.cc(1) == ("sw-rel-production",)
    comment = world.rt.comments[1][-1]
    assert "RolloutProgress: Production → Withdrawn." in comment
    assert "Withdrawn: The release was withdrawn from production" in comment
    assert "was withdrawn from production" in world.rt.replies[1][-1]  # the provider is told
    spans = world.store.history(1)
    assert [s.state for s in spans[-2:]] == [S.PRODUCTION, S.WITHDRAWN]
    assert spans[-2].left_at == spans[-1].entered_at  # the time it was withdrawn
    assert (world.rt.tickets[1].field("RolloutHistory") or "").splitlines()[-1].split()[3] == (
        "Withdrawn"
    )
    world.change(1, S.PRODUCTION)  # final: nothing leaves Withdrawn
    assert world.state(1) == "Withdrawn"
    assert world.rt.comments[1][-1].startswith("Blocked: Withdrawn is final")


def test_a_failed_withdrawal_is_retried_by_asking_again(world: World) -> None:
    world.rt.add(1)
    _walk(world, 1, S.UNVERIFIED, S.IN_VERIFICATION, S.STAGE_ROLLOUT, S.PRODUCTION)
    world.repository.fail["withdraw_release"] = PublishFailed("metadata broke", transient=False)
    world.change(1, S.WITHDRAWN)
    assert world.state(1) == "Failed"
    assert "set RolloutProgress to Withdrawn to retry" in world.rt.comments[1][-1]
    world.change(1, S.WITHDRAWN)
    assert world.state(1) == "Withdrawn"
    assert world.rt.tickets[1].status == "resolved"
