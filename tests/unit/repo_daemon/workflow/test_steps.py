"""The repository work's own rules, with the trees and records faked: which production area a
release goes to when nobody says its release type, and a ticket without release.xml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from bridge.settings import model as settings_model
from bridge.testing import FakeTracker
from repo_daemon import errors
from repo_daemon.publish import areas
from repo_daemon.workflow import steps
from repo_daemon.workflow.gather import TicketView
from tests.support import paths
from tests.support.release_factory import release_info
from tests.unit.repo_daemon.workflow.conftest import ticket


@dataclass
class Moved:
    area: areas.Area
    changed: bool = True
    snapshot: str | None = "s1"


class Trees:
    def __init__(self) -> None:
        self.release_types: list[str] = []

    def promote_to_production(
        self, ticket_id: int, info: object, major: str, release_type: str
    ) -> Moved:
        self.release_types.append(release_type)
        return Moved(areas.Area.production(f"production/{major}", release_type))


class Records:
    def set_repository_path(
        self, ticket_id: int, path: str | None, *, published: object = None
    ) -> None:
        self.path = path


@pytest.mark.parametrize(
    ("on_ticket", "in_release_xml", "area"),
    [
        ("", None, "production/UMD-5/base"),
        ("Incremental", None, "production/UMD-5/updates"),
        ("", "Incremental", "production/UMD-5/updates"),
    ],
    ids=["nobody-says-nonincremental", "ticket-says", "release-xml-says"],
)
def test_the_release_type_defaults_to_nonincremental(
    tmp_path: Path, on_ticket: str, in_release_xml: str | None, area: str
) -> None:
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt/"), data_dir=tmp_path
    )
    trees, records = Trees(), Records()
    work = steps.RepositoryWork(
        settings,
        cast(Any, records),
        cast(Any, trees),
        sync_options=steps.sync_options_from(settings),
    )
    info = release_info("arc", "7.1.0", [], release_type=in_release_xml)
    view = TicketView.of(ticket(ReleaseType=on_ticket))
    step = work.promote_to_production(view, info, "UMD-5")
    assert records.path == area
    assert step.detail == f"promoted to {area}"


def test_a_ticket_without_release_xml_is_the_providers_to_fix(tmp_path: Path) -> None:
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt/"), data_dir=tmp_path
    )
    work = steps.RepositoryWork(
        settings,
        cast(Any, Records()),
        cast(Any, Trees()),
        sync_options=steps.sync_options_from(settings),
    )
    rt = FakeTracker()
    rt.add_ticket(7)
    with pytest.raises(errors.TicketIncomplete) as caught:
        work.freeze_release_xml(cast(Any, rt), TicketView.of(ticket()))
    assert str(caught.value) == (
        "the ticket has no release.xml attached; attach it to the ticket (by mail: answer with "
        "release.xml attached)"
    )
    assert caught.value.provider_can_fix  # so the provider is told (a reply), not only managers
    doc = " ".join((paths.ROOT / "docs" / "mail-intake.md").read_text().split())
    assert f'"{caught.value}"' in doc  # as docs/mail-intake.md quotes it


def test_a_major_releases_default_release_type_applies_when_nobody_says(tmp_path: Path) -> None:
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt/"),
        data_dir=tmp_path,
        repository=settings_model.RepositorySettings(release_types={"UMD-5": "Incremental"}),
    )
    trees, records = Trees(), Records()
    work = steps.RepositoryWork(
        settings,
        cast(Any, records),
        cast(Any, trees),
        sync_options=steps.sync_options_from(settings),
    )
    info = release_info("arc", "7.1.0", [], release_type=None)
    work.promote_to_production(TicketView.of(ticket(ReleaseType="")), info, "UMD-5")
    work.promote_to_production(TicketView.of(ticket(ReleaseType="NonIncremental")), info, "UMD-5")
    work.promote_to_production(TicketView.of(ticket(ReleaseType="")), info, "UMD-6")
    assert trees.release_types == ["Incremental", "NonIncremental", "NonIncremental"]
