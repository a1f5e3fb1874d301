"""The point of it all: a release filed in a real RT reaches Production, and real apt-get and
dnf clients install its packages from the production tree served by nginx on loopback, with
the signed metadata verified (apt ``signed-by``; dnf ``repo_gpgcheck=1``) and, by dnf
(``gpgcheck=1``), each RPM's own signature by its provider. Both layouts of the shared areas
(``ROLLOUT_AREA_LAYOUT``): full snapshots, and the tree layout (a payload tree and metadata
snapshots behind ``.meta``, docs/publication.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from repo_daemon.metadata import clients, signing
from tests.support.nginx_server import NginxServer
from tests.support.repo_clients import AptRoot, DnfRoot, TestKey, make_signing_key, provider_key
from tests.support.workflow_harness import Bridge, running_bridge

pytestmark = pytest.mark.rt

MAJOR = "INSTALL-1"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKey]:
    made = make_signing_key(Path(tmp_path_factory.mktemp("gpg")))
    yield made
    made.stop_agent()


@pytest.fixture(scope="module", params=["snapshots", "tree"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, key: TestKey
) -> Iterator[tuple[Bridge, NginxServer]]:
    root = tmp_path_factory.mktemp("install")
    (root / "repo").mkdir()
    with (
        NginxServer(root / "nginx", root / "repo") as server,
        running_bridge(
            root,
            repo_url=server.url,
            signing_key=key.fingerprint,
            gnupghome=key.home,
            repository_changes={"area_layout": request.param},
        ) as bridge,
    ):
        yield bridge, server


@pytest.fixture(scope="module")
def production(served: tuple[Bridge, NginxServer]) -> tuple[str, Path, str]:
    """A release walked to Production: (its RepositoryURL, the area, its package's name)."""
    bridge, _server = served
    tree, url = bridge.provider_tree(MAJOR, release_type="Incremental")
    ticket = bridge.file_release(MAJOR, tree=(tree, url))
    for state in ("Unverified", "InVerification", "StageRollout", "Production"):
        bridge.move(ticket, state)
    assert bridge.state(ticket) == "Production", bridge.comments(ticket)[-1]
    area_url = bridge.manager.get_ticket(ticket).field("RepositoryURL") or ""
    area = bridge.repo_root / "production" / MAJOR / "updates"
    # The layout asked for is the one on disk: the tree layout's area links to its payload tree.
    tree_layout = bridge.settings.repository.area_layout == "tree"
    assert (".trees/" in str(area.readlink())) is tree_layout, area.readlink()
    # tests/support/packages.py names the release's one .rpm and one .deb "<short name>-0".
    return area_url, area, f"{tree.root.name}-0"


def test_apt_get_installs_from_production(
    production: tuple[str, Path, str], tmp_path: Path
) -> None:
    area_url, area, name = production
    assert area_url.endswith(f"/production/{MAJOR}/updates/")
    sources = (area / clients.APT_LIST_FILE).read_text()
    assert area_url in sources
    assert f"[signed-by={clients.DEFAULT_APT_KEYRING}]" in sources and "trusted" not in sources
    keyring = tmp_path / "apt" / "etc/apt/keyrings" / signing.APT_KEY_FILE
    apt = AptRoot.create(
        tmp_path / "apt",
        {"rollout.list": sources.replace(clients.DEFAULT_APT_KEYRING, str(keyring))},
        {signing.APT_KEY_FILE: (area / signing.APT_KEY_FILE).read_bytes()},
    )
    updated = apt.update()
    assert updated.returncode == 0, updated.stderr
    installed = apt.install(name)
    assert installed.returncode == 0, installed.stderr
    assert apt.installed_version(name) == "1.0-1"
    assert (apt.root / "usr/share/doc" / name).is_dir()


def test_dnf_installs_from_production(production: tuple[str, Path, str], tmp_path: Path) -> None:
    area_url, area, name = production
    repo = (area / clients.DNF_REPO_FILE).read_text()
    assert "\ngpgcheck=1\nrepo_gpgcheck=1\n" in repo and area_url in repo
    key_file = tmp_path / signing.RPM_KEY_FILE
    key_file.write_bytes((area / signing.RPM_KEY_FILE).read_bytes())
    dnf = DnfRoot.create(
        tmp_path / "dnf",
        {"rollout.repo": repo.replace(clients.DEFAULT_RPM_GPGKEY, f"file://{key_file}")},
    )
    try:
        installed = dnf.install(name)
        assert installed.returncode == 0, installed.stderr
        assert dnf.installed(name) is not None
        # The RPM's own signature was checked with its provider's key, from the key file.
        log = (dnf.root / "var/log/dnf.log").read_text().replace(" ", "")
        assert provider_key().fingerprint[-8:] in log
    finally:
        dnf.stop_agents()
