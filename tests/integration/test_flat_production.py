"""A flat production path, through the real publication code: settings with the registry of
major releases (``[major_releases.CAs]`` with ``flat = true``), the workflow's repository work
(``steps.RepositoryWork``) on a real release store, real metadata tools, and the tree served
on loopback to real apt-get and dnf. An Incremental and a NonIncremental release both land in
``production/CAs/`` itself — no ``base`` or ``updates`` — and a site installs both from it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge import records
from bridge.settings import load as settings_load
from bridge.settings import model as settings_model
from bridge.store import database, releases
from repo_daemon.metadata import clients
from repo_daemon.publish import manifest
from repo_daemon.release_xml import parse as release_xml_parse
from repo_daemon.workflow import steps
from repo_daemon.workflow.gather import TicketView
from tests.support import packages
from tests.support.repo_clients import AptRoot, DnfRoot, TreeServer

REGISTRY = """
repo_root = "{root}"
repo_url = "{url}"
signing_key = "none"  # unsigned, by choice: this is about the flat layout

[major_releases.UMD-5]

[major_releases.CAs]
production_path = "production/CAs"
flat = true
workflow = "direct"
"""
RELEASES = {
    # ticket: (short name, ReleaseType)
    11: ("ca-bundle", "Incremental"),
    12: ("ca-policy", "NonIncremental"),
}


@dataclass
class Published:
    settings: settings_model.Settings
    store: releases.ReleaseStore
    work: steps.RepositoryWork
    server: TreeServer


@pytest.fixture
def published(tmp_path: Path) -> Iterator[Published]:
    (tmp_path / "repo").mkdir()
    with TreeServer(tmp_path / "repo") as server:
        config = tmp_path / "bridge.toml"
        config.write_text(REGISTRY.format(root=tmp_path / "repo", url=server.url))
        settings = settings_load.load_settings(
            {"ROLLOUT_RT_URL": "http://rt/", "ROLLOUT_DATA_DIR": str(tmp_path)},
            config_file=config,
            require_tracker=False,
        )
        engine = database.create_engine(database.default_url(tmp_path))
        database.migrate(engine)
        store = releases.ReleaseStore(engine)
        work = steps.RepositoryWork(settings, store, steps.repository(settings))
        for ticket_id, (name, release_type) in RELEASES.items():
            built = packages.build_pair(tmp_path / "build" / name, name)
            # The provider's files, as the sync leaves them in the ticket's scratch.
            tree = packages.layout_provider_tree(
                work.scratch(ticket_id), built, short_name=name, release_type=release_type,
                major_release="CAs",
            )  # fmt: skip
            work.release_xml_path(ticket_id).parent.mkdir(parents=True)
            work.release_xml_path(ticket_id).write_bytes(tree.release_xml)
            view = TicketView.of(
                records.Ticket(
                    id=ticket_id, queue="sw-rel", subject=name, status="open",
                    custom_fields={
                        "AssociatedMajorRelease": ("CAs",), "ReleaseType": (release_type,),
                    },
                )
            )  # fmt: skip
            store.ensure(
                ticket_id, state=records.RolloutState.SUBMITTED, major_release="CAs",
                emergency=False,
            )  # fmt: skip
            info = release_xml_parse.validate_file(work.release_xml_path(ticket_id))
            work.publish_unverified(view, info)
            work.promote_to_production(view, info, "CAs")
        try:
            yield Published(settings=settings, store=store, work=work, server=server)
        finally:
            engine.dispose()


def test_both_release_types_land_in_the_one_flat_area(published: Published) -> None:
    root = published.settings.repository.root
    area = root / "production/CAs"
    assert area.is_symlink()
    assert not (root / "production/CAs/base").exists()
    assert not (root / "production/CAs/updates").exists()
    held = manifest.AreaManifest.from_json(
        (area / manifest.MANIFEST_NAME).read_bytes(), area="production/CAs"
    )
    assert [r.ticket_id for r in held.releases] == list(RELEASES)
    for ticket_id in RELEASES:
        assert published.work.url_of(ticket_id) == f"{published.server.url}production/CAs/"
        assert published.store.published_areas(ticket_id)[-1] == "production/CAs"
    # The metadata of both repositories is built in the flat area itself.
    assert (area / "rpms/noarch/repodata/repomd.xml").is_file()
    assert (area / "debs/Release").is_file()


def test_apt_get_and_dnf_install_from_the_flat_area(published: Published, tmp_path: Path) -> None:
    area = published.settings.repository.root / "production/CAs"
    sources = (area / clients.APT_LIST_FILE).read_text()
    assert f"{published.server.url}production/CAs/debs/" in sources
    apt = AptRoot.create(tmp_path / "apt", {"rollout.list": sources})
    updated = apt.update()
    assert updated.returncode == 0, updated.stderr
    dnf = DnfRoot.create(
        tmp_path / "dnf", {"rollout.repo": (area / clients.DNF_REPO_FILE).read_text()}
    )
    try:
        for name, _kind in RELEASES.values():
            installed = apt.install(name)
            assert installed.returncode == 0, installed.stderr
            assert apt.installed_version(name) == "1.0-1"
            got = dnf.install(name)
            assert got.returncode == 0, got.stderr
            assert dnf.installed(name) is not None
    finally:
        dnf.stop_agents()
