"""An in-memory ``RepositorySteps`` for tests of the workflow processor: it remembers where each
release is "published" and which steps ran, and can be told to fail a step once. No files."""

from __future__ import annotations

from collections.abc import Callable

from bridge.tracker.client import TrackerClient
from repo_daemon.release_xml import model as release_model
from repo_daemon.workflow.gather import TicketView
from repo_daemon.workflow.repository_actions import Step
from tests.support.release_factory import release_info

BASE_URL = "https://repo.example/"


class FakeRepository:
    """Where each release is, by ticket; what ran, in order."""

    def __init__(self) -> None:
        self.paths: dict[int, str] = {}
        self.ran: list[tuple[int, str]] = []
        self.frozen: set[int] = set()
        self.fail: dict[str, Exception] = {}  # step name -> raised once
        self.on_step: Callable[[str], None] | None = None

    def _step(self, ticket: TicketView, name: str) -> None:
        self.ran.append((ticket.id, name))
        if self.on_step is not None:
            self.on_step(name)
        if name in self.fail:
            raise self.fail.pop(name)

    def steps(self, ticket_id: int) -> list[str]:
        return [name for t, name in self.ran if t == ticket_id]

    def check_sync_source(self, ticket: TicketView) -> Step:
        self._step(ticket, "check_sync_source")
        return Step(detail="Sync-URL acceptable")

    def freeze_release_xml(self, tracker: TrackerClient, ticket: TicketView) -> Step:
        self._step(ticket, "freeze_release_xml")
        self.frozen.add(ticket.id)
        return Step(detail="froze release.xml")

    def check_release_xml_unchanged(self, tracker: TrackerClient, ticket: TicketView) -> Step:
        self._step(ticket, "check_release_xml_unchanged")
        return Step(detail="using the frozen release.xml")

    def read_release_xml(self, ticket: TicketView) -> release_model.ReleaseInfo:
        self._step(ticket, "read_release_xml")
        return release_info(f"rel{ticket.id}", "1.0.0", [])

    def sync_packages(self, ticket: TicketView, info: release_model.ReleaseInfo) -> Step:
        self._step(ticket, "sync_packages")
        return Step(detail="synced 0 files")

    def publish_unverified(self, ticket: TicketView, info: release_model.ReleaseInfo) -> Step:
        self._step(ticket, "publish_unverified")
        self.paths[ticket.id] = f"unverified/{info.short_name}/{info.version}"
        return Step(detail=f"published to {self.paths[ticket.id]}")

    def promote_to_stagerollout(
        self, ticket: TicketView, info: release_model.ReleaseInfo, major_release: str
    ) -> Step:
        self._step(ticket, "promote_to_stagerollout")
        self.paths[ticket.id] = f"stagerollout/{major_release}/{info.short_name}/{info.version}"
        return Step(detail=f"promoted to {self.paths[ticket.id]}")

    def promote_to_production(
        self, ticket: TicketView, info: release_model.ReleaseInfo, major_release: str
    ) -> Step:
        self._step(ticket, "promote_to_production")
        self.paths[ticket.id] = f"production/{major_release}/updates"
        return Step(detail=f"promoted to {self.paths[ticket.id]}")

    def remove_release(self, ticket: TicketView) -> Step:
        self._step(ticket, "remove_release")
        removed = self.paths.pop(ticket.id, None)
        return Step(detail=f"removed from {removed or 'nothing (not there)'}")

    def withdraw_release(self, ticket: TicketView) -> Step:
        self._step(ticket, "withdraw_release")
        withdrawn = self.paths.pop(ticket.id, None)
        return Step(detail=f"withdrew from {withdrawn or 'nothing (not there)'}")

    def url_of(self, ticket_id: int) -> str | None:
        path = self.paths.get(ticket_id)
        return f"{BASE_URL}{path}/" if path else None
