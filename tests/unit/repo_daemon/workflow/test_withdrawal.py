"""Withdrawal from production (``steps.RepositoryWork.withdraw_release``) on real trees in
tmp_path, with the bridge's records in memory: the next snapshot goes without the release's
files, the previous one stays as it was, a later release of the same packages keeps what it
shares, and the records say the release is published nowhere."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from bridge.settings import model as settings_model
from repo_daemon.publish import areas, manifest
from repo_daemon.publish import repository as publish
from repo_daemon.workflow import steps
from repo_daemon.workflow.gather import TicketView
from tests.support.release_factory import scratch_release
from tests.unit.repo_daemon.workflow.conftest import ticket

AREA = "production/7/updates"
SHARED = b"a library both releases ship, byte for byte"


class Records:
    """The part of ``ReleaseStore`` the repository work uses, in memory."""

    def __init__(self) -> None:
        self.areas: dict[int, list[str]] = {}
        self.paths: dict[int, str | None] = {}

    def set_repository_path(
        self, ticket_id: int, path: str | None, *, published: object = None
    ) -> None:
        self.paths[ticket_id] = path
        if path and path not in self.areas.setdefault(ticket_id, []):
            self.areas[ticket_id].append(path)

    def published_areas(self, ticket_id: int) -> tuple[str, ...]:
        return tuple(self.areas.get(ticket_id, ()))

    def forget_areas(
        self, ticket_id: int, gone: list[str], *, withdrawn_from: Sequence[str] = ()
    ) -> None:
        self.areas[ticket_id] = [a for a in self.areas.get(ticket_id, []) if a not in gone]


class World:
    def __init__(self, tmp_path: Path, keep_snapshots: int = 3) -> None:
        self.settings = settings_model.Settings(
            tracker=settings_model.TrackerSettings(url="http://rt/"),
            data_dir=tmp_path,
            repository=settings_model.RepositorySettings(
                root=tmp_path / "repo", keep_snapshots=keep_snapshots
            ),
        )
        self.trees = publish.Repository(self.settings.repository, lock_timeout=5)
        self.records = Records()
        self.work = steps.RepositoryWork(
            self.settings,
            self.records,  # type: ignore[arg-type]
            self.trees,
            sync_options=steps.sync_options_from(self.settings),
        )

    def in_production(self, ticket_id: int, version: str, files: dict[str, bytes]) -> TicketView:
        """A release of the package set "demo", synced into the ticket's scratch, published
        and promoted to production/7/updates."""
        info = scratch_release(self.work.scratch(ticket_id), "demo", version, files)
        view = TicketView.of(ticket(ticket_id, AssociatedMajorRelease="7"))
        self.work.publish_unverified(view, info)
        self.work.promote_to_production(view, info, "7")
        return view

    def live(self) -> str:
        found = self.trees.live_snapshot(areas.Area.parse(AREA))
        assert found is not None
        return found

    def snapshot_dir(self, name: str) -> Path:
        return self.trees.root / publish.SNAPSHOT_DIR / areas.Area.parse(AREA).key / name

    def files_of(self, name: str) -> dict[str, bytes]:
        top = self.snapshot_dir(name)
        return {
            p.relative_to(top).as_posix(): p.read_bytes()
            for p in sorted(top.rglob("*"))
            if p.is_file() and p.name != manifest.MANIFEST_NAME
        }


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_withdrawn_release_leaves_the_next_snapshot_and_the_previous_stays(
    world: World,
) -> None:
    older = world.in_production(1, "1.0.0", {"rpms/demo-1.0.0.rpm": b"old", "rpms/lib.rpm": SHARED})
    world.in_production(2, "1.1.0", {"rpms/demo-1.1.0.rpm": b"new", "rpms/lib.rpm": SHARED})
    previous = world.live()
    before = world.files_of(previous)
    manifest_before = (world.snapshot_dir(previous) / manifest.MANIFEST_NAME).read_bytes()

    step = world.work.withdraw_release(older)

    now = world.live()
    assert now != previous
    # The later release of the same packages keeps the file both shipped.
    assert world.files_of(now) == {"rpms/demo-1.1.0.rpm": b"new", "rpms/lib.rpm": SHARED}
    held = world.trees.manifest(areas.Area.parse(AREA))
    assert held is not None and [r.ticket_id for r in held.releases] == [2]
    # The snapshot before is untouched: same files, same manifest, still there for a rollback.
    assert world.files_of(previous) == before
    assert before["rpms/demo-1.0.0.rpm"] == b"old"
    assert (world.snapshot_dir(previous) / manifest.MANIFEST_NAME).read_bytes() == manifest_before
    assert step.detail == f"withdrew from {AREA}"
    assert step.note == (
        f"Withdrawn from production: {AREA} is now snapshot {now}, without its files; the "
        f"previous snapshot {previous} is kept unchanged for a rollback."
    )
    # The records: published nowhere, so RepositoryURL is cleared.
    assert world.records.published_areas(1) == ()
    assert world.records.paths[1] is None
    assert world.records.published_areas(2) != ()


def test_withdrawing_the_later_release_leaves_the_older_one_whole(world: World) -> None:
    world.in_production(1, "1.0.0", {"rpms/demo-1.0.0.rpm": b"old", "rpms/lib.rpm": SHARED})
    later = world.in_production(2, "1.1.0", {"rpms/demo-1.1.0.rpm": b"new", "rpms/lib.rpm": SHARED})
    world.work.withdraw_release(later)
    assert world.files_of(world.live()) == {"rpms/demo-1.0.0.rpm": b"old", "rpms/lib.rpm": SHARED}


def test_the_last_release_withdrawn_leaves_an_empty_area(world: World) -> None:
    only = world.in_production(1, "1.0.0", {"rpms/demo-1.0.0.rpm": b"old"})
    previous = world.live()
    world.work.withdraw_release(only)
    assert world.files_of(world.live()) == {}
    assert world.files_of(previous) == {"rpms/demo-1.0.0.rpm": b"old"}


def test_a_repeated_withdrawal_changes_nothing(world: World) -> None:
    older = world.in_production(1, "1.0.0", {"rpms/demo-1.0.0.rpm": b"old"})
    world.work.withdraw_release(older)
    live = world.live()
    again = world.work.withdraw_release(older)
    assert again.detail == "not published anywhere; nothing to withdraw"
    assert again.note == ""
    assert world.live() == live


def test_without_retention_the_note_promises_no_rollback(tmp_path: Path) -> None:
    world = World(tmp_path, keep_snapshots=0)
    older = world.in_production(1, "1.0.0", {"rpms/demo-1.0.0.rpm": b"old"})
    step = world.work.withdraw_release(older)
    assert "kept" not in step.note
    assert (
        step.note
        == f"Withdrawn from production: {AREA} is now snapshot {world.live()}, without its files."
    )
