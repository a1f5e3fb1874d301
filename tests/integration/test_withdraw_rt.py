"""Withdrawal from production, end to end: two releases of one major release filed in a real
RT reach Production; a release manager sets the older one to Withdrawn. Real apt-get and dnf
clients, pointed at the production area served by nginx (signed metadata verified), no longer
see its packages after their next update while the other release's still install; the
snapshot before the withdrawal is untouched on disk; and the ticket says so (comment, reply to
the provider, RepositoryURL cleared, resolved, the time recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_daemon.metadata import clients, signing
from repo_daemon.publish import areas, manifest
from repo_daemon.publish import repository as publish
from tests.support.nginx_server import NginxServer
from tests.support.repo_clients import AptRoot, DnfRoot, TestKey, make_signing_key
from tests.support.workflow_harness import PROVIDER, Bridge, running_bridge

pytestmark = pytest.mark.rt

MAJOR = "WITHDRAW-1"
AREA = areas.Area.parse(f"production/{MAJOR}/updates")


@dataclass
class Production:
    """Two releases in production, and the area's snapshot before anything was withdrawn."""

    bridge: Bridge
    withdrawn: int  # the ticket withdrawn by the fixture
    withdrawn_package: str
    kept: int
    kept_package: str
    before: str  # the area's live snapshot before the withdrawal
    before_files: dict[str, tuple[int, bytes]]  # path -> (inode, bytes), manifest included
    after: str
    apt: AptRoot
    dnf: DnfRoot
    mail_mark: int


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKey]:
    made = make_signing_key(Path(tmp_path_factory.mktemp("gpg")))
    yield made
    made.stop_agent()


def _snapshot_dir(bridge: Bridge, name: str) -> Path:
    return bridge.repo_root / publish.SNAPSHOT_DIR / AREA.key / name


def _files(top: Path) -> dict[str, tuple[int, bytes]]:
    return {
        p.relative_to(top).as_posix(): (p.stat().st_ino, p.read_bytes())
        for p in sorted(top.rglob("*"))
        if p.is_file()
    }


def _live(bridge: Bridge) -> str:
    link = bridge.repo_root / AREA.path
    return link.readlink().name


def _clients(area: Path, base: Path) -> tuple[AptRoot, DnfRoot]:
    """apt-get and dnf roots configured from the area's own client files, as a site does."""
    sources = (area / clients.APT_LIST_FILE).read_text()
    keyring = base / "apt" / "etc/apt/keyrings" / signing.APT_KEY_FILE
    apt = AptRoot.create(
        base / "apt",
        {"rollout.list": sources.replace(clients.DEFAULT_APT_KEYRING, str(keyring))},
        {signing.APT_KEY_FILE: (area / signing.APT_KEY_FILE).read_bytes()},
    )
    key_file = base / signing.RPM_KEY_FILE
    key_file.write_bytes((area / signing.RPM_KEY_FILE).read_bytes())
    repo = (area / clients.DNF_REPO_FILE).read_text()
    dnf = DnfRoot.create(
        base / "dnf",
        {"rollout.repo": repo.replace(clients.DEFAULT_RPM_GPGKEY, f"file://{key_file}")},
    )
    return apt, dnf


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory, key: TestKey) -> Iterator[Production]:
    root = tmp_path_factory.mktemp("withdraw")
    (root / "repo").mkdir()
    with (
        NginxServer(root / "nginx", root / "repo") as server,
        running_bridge(
            root, repo_url=server.url, signing_key=key.fingerprint, gnupghome=key.home
        ) as bridge,
    ):
        names = []
        tickets = []
        for _ in range(2):
            tree, url = bridge.provider_tree(MAJOR, release_type="Incremental")
            ticket = bridge.file_release(MAJOR, tree=(tree, url))
            for state in ("Unverified", "InVerification", "StageRollout", "Production"):
                bridge.move(ticket, state)
            assert bridge.state(ticket) == "Production", bridge.comments(ticket)[-1]
            # tests/support/packages.py names the release's .rpm and .deb "<short name>-0".
            names.append(f"{tree.root.name}-0")
            tickets.append(ticket)
        area = bridge.repo_root / AREA.path
        apt, dnf = _clients(area, root / "clients")
        try:
            # Before: a site sees both releases' packages.
            assert apt.update().returncode == 0
            for name in names:
                assert apt.apt_get("install", "--simulate", name).returncode == 0, name
                assert dnf.dnf("info", name).returncode == 0, name
            before = _live(bridge)
            before_files = _files(_snapshot_dir(bridge, before))
            mark = bridge.mail_mark()
            bridge.move(tickets[0], "Withdrawn")
            yield Production(
                bridge=bridge,
                withdrawn=tickets[0],
                withdrawn_package=names[0],
                kept=tickets[1],
                kept_package=names[1],
                before=before,
                before_files=before_files,
                after=_live(bridge),
                apt=apt,
                dnf=dnf,
                mail_mark=mark,
            )
        finally:
            dnf.stop_agents()


def test_the_ticket_says_the_release_is_withdrawn(production: Production) -> None:
    bridge, ticket = production.bridge, production.withdrawn
    shown = bridge.manager.get_ticket(ticket)
    assert shown.field("RolloutProgress") == "Withdrawn", bridge.comments(ticket)[-1]
    assert shown.status == "resolved"
    assert not shown.field("RepositoryURL")  # published nowhere any more
    assert "sw-rel-production" in shown.cc_groups()
    said = "\n".join(bridge.comments(ticket))
    assert "RolloutProgress: Production → Withdrawn." in said
    assert (
        f"Withdrawn from production: {AREA.path} is now snapshot {production.after}, without "
        f"its files; the previous snapshot {production.before} is kept unchanged for a rollback."
    ) in said
    assert "was withdrawn from production: sites no longer get its packages" in said
    # The reply reached the provider (RT's mail log), and the move's time is recorded.
    mails = bridge.mails_since(production.mail_mark)
    assert any(PROVIDER in to for to, _subject in mails), mails
    history = bridge.store.history(ticket)
    assert [span.state.label for span in history[-2:]] == ["Production", "Withdrawn"]
    assert history[-2].left_at == history[-1].entered_at
    assert (shown.field("RolloutHistory") or "").splitlines()[-1].split()[3] == "Withdrawn"


def test_the_other_release_stays_in_production(production: Production) -> None:
    bridge = production.bridge
    assert bridge.state(production.kept) == "Production"
    held = manifest.AreaManifest.from_json(
        (bridge.repo_root / AREA.path / manifest.MANIFEST_NAME).read_bytes(), area=AREA.path
    )
    assert [r.ticket_id for r in held.releases] == [production.kept]


def test_apt_get_no_longer_sees_its_packages_after_update(production: Production) -> None:
    apt = production.apt
    updated = apt.update()
    assert updated.returncode == 0, updated.stderr
    gone = apt.apt_get("install", "--simulate", production.withdrawn_package)
    assert gone.returncode != 0
    assert f"Unable to locate package {production.withdrawn_package}" in gone.stderr
    installed = apt.install(production.kept_package)
    assert installed.returncode == 0, installed.stderr
    assert apt.installed_version(production.kept_package) == "1.0-1"


def test_dnf_no_longer_sees_its_packages(production: Production) -> None:
    dnf = production.dnf
    gone = dnf.dnf("info", production.withdrawn_package)
    assert gone.returncode != 0
    assert "No matching Packages" in gone.stderr + gone.stdout
    installed = dnf.install(production.kept_package)
    assert installed.returncode == 0, installed.stderr
    assert dnf.installed(production.kept_package) is not None


def test_the_snapshot_before_the_withdrawal_is_untouched(production: Production) -> None:
    bridge = production.bridge
    assert production.after != production.before
    kept = _snapshot_dir(bridge, production.before)
    assert _files(kept) == production.before_files  # same files, same inodes, same bytes
    held = manifest.AreaManifest.from_json(
        (kept / manifest.MANIFEST_NAME).read_bytes(), area=AREA.path
    )
    assert {r.ticket_id for r in held.releases} == {production.withdrawn, production.kept}
