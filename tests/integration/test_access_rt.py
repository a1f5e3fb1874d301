"""Access by role, with real people in a real RT: a tree with a release in unverified, one in
stagerollout and one in production (real packages and metadata), served by nginx with the
shipped configuration (its ``auth_request`` asking the access check, ``rollout repo
access-check``'s app on uvicorn) and by the embedded server of ``rollout repo serve``, both
with the same guard. The check reaches RT through a TCP proxy a test cuts to take RT away.

Anonymous requests to unverified and stagerollout get 401; a QC member's RT login reads
unverified; an early-adopter team member reads stagerollout but not unverified, in both
layouts of the shared areas (in the tree layout, not by the payload tree's own path); a wrong
password gets 401 (a valid person without a role, 403); apt-get and dnf install from
stagerollout with an early adopter's credentials and from production with none; the RT login
checks are counted (one per person per cache period); with RT gone, the people seen keep their
answer; and the first fetch of each release by each person is recorded."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bridge.rt_setup.sandbox import SandboxInfo, free_port
from bridge.secrets import Secret
from bridge.settings import model as settings_model
from bridge.store import database
from bridge.store import fetches as fetch_store
from repo_daemon.metadata import clients, signing
from repo_daemon.release_xml import parse
from repo_daemon.serving import access_parts
from repo_daemon.serving import static as serving
from repo_daemon.web import access_check
from repo_daemon.workflow import steps
from tests.support import packages, repo_clients
from tests.support.nginx_server import NginxServer
from tests.support.nginx_server import tools_missing as nginx_missing
from tests.support.repo_clients import AptRoot, DnfRoot
from tests.support.rt_people import PASSWORD, auth_token, person
from tests.support.tcp_proxy import TcpProxy

MISSING = (
    nginx_missing()
    + packages.tools_missing()
    + repo_clients.tools_missing("apt-get", "dnf", "createrepo_c", "apt-ftparchive")
)
pytestmark = [
    pytest.mark.rt,
    pytest.mark.skipif(bool(MISSING), reason=f"apt-get install {' '.join(MISSING)}"),
]

MAJOR = "ACC-7"
QC, EARLY, OUTSIDER = "acc-qc1", "acc-ea1", "acc-outsider1"
PLACEHOLDER = "http://repo.invalid/"


@dataclass(frozen=True)
class Release:
    ticket_id: int
    name: str  # the package name of its .rpm and .deb
    area: str  # where it is served, relative to the root


@dataclass(frozen=True)
class Tree:
    root: Path
    data_dir: Path
    layout: str  # of the shared areas: "snapshots" or "tree"
    unverified: Release
    staged: Release
    production: Release


@pytest.fixture(scope="module")
def people(rt_sandbox: SandboxInfo) -> None:
    """A QC member, an early adopter (the default team's group) and a person in no group."""
    for name, groups in ((QC, ("sw-rel-qc",)), (EARLY, ("sw-rel-early-adopters",)), (OUTSIDER, ())):
        person(rt_sandbox, name, *groups).close()


@pytest.fixture(scope="module", params=["snapshots", "tree"])
def tree(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    rt_sandbox: SandboxInfo,
) -> Tree:
    """The three releases published in each layout of the shared areas (``area_layout``):
    in the tree layout, stagerollout and production are links into ``.trees/``, and the gate
    must hold for what is served through them."""
    base = tmp_path_factory.mktemp(f"access-{request.param}")
    settings = settings_model.Settings(
        tracker=settings_model.TrackerSettings(url=rt_sandbox.web_url),
        data_dir=base,
        repository=settings_model.RepositorySettings(
            root=base / "repo",
            base_url=PLACEHOLDER,
            signing_key=repo_clients.shared_key().fingerprint,
            gnupghome=repo_clients.shared_key().home,
            package_keys=(repo_clients.provider_key().fingerprint,),
            area_layout=request.param,
        ),
    )
    settings.repository.root.mkdir()
    repo = steps.repository(settings)

    def release(ticket_id: int, stem: str) -> tuple[Release, object, Path]:
        built = packages.build_packages(
            base / "build" / stem, count=1, prefix=stem, rpm_key=repo_clients.provider_key()
        )
        provider = packages.layout_provider_tree(
            base / "provider" / stem, built, short_name=stem, release_type="Incremental",
            major_release=MAJOR,
        )  # fmt: skip
        info = parse.parse_release(provider.release_xml)
        repo.publish_unverified(ticket_id, info, provider.root)
        return Release(ticket_id, f"{stem}-0", f"unverified/{stem}/1.0.0"), info, provider.root

    unverified, _, _ = release(41, "acc-unv")
    staged, staged_info, _ = release(42, "acc-stage")
    repo.promote_to_stagerollout(42, staged_info, MAJOR)  # type: ignore[arg-type]
    produced, produced_info, _ = release(43, "acc-prod")
    repo.promote_to_production(43, produced_info, MAJOR, "Incremental")  # type: ignore[arg-type]
    engine = database.create_engine(settings.database())
    database.migrate(engine)
    engine.dispose()
    return Tree(
        root=settings.repository.root,
        data_dir=base,
        layout=request.param,
        unverified=unverified,
        staged=Release(42, staged.name, f"stagerollout/{MAJOR}"),
        production=Release(43, produced.name, f"production/{MAJOR}/updates"),
    )


@dataclass
class Served:
    kind: str
    url: str
    port: int
    parts: access_parts.AccessParts
    rt: TcpProxy
    settings: settings_model.Settings

    @property
    def login_calls(self) -> dict[str, int]:
        assert self.parts.checker is not None
        return dict(self.parts.checker.login_calls)


@pytest.fixture(params=["nginx", "embedded"])
def served(
    request: pytest.FixtureRequest,
    tree: Tree,
    people: None,
    rt_sandbox: SandboxInfo,
    tmp_path: Path,
) -> Iterator[Served]:
    """The tree behind each kind of server, with a fresh guard (fresh counts) whose RT is
    behind a proxy of its own."""
    rt_port = urlsplit(rt_sandbox.web_url).port
    assert rt_port is not None
    with TcpProxy("127.0.0.1", rt_port) as rt:
        settings = settings_model.Settings(
            tracker=settings_model.TrackerSettings(
                url=rt.url(), token=Secret(rt_sandbox.bridge_token())
            ),
            data_dir=tree.data_dir,
            repository=settings_model.RepositorySettings(root=tree.root, base_url=PLACEHOLDER),
        )
        parts = access_parts.build_guard(settings)
        try:
            if request.param == "embedded":
                with serving.running(tree.root, guard=parts.guard) as embedded:
                    yield Served("embedded", embedded.url, embedded.port, parts, rt, settings)
            else:
                check_port = free_port()
                server = access_check.build_server(parts, "127.0.0.1", check_port)
                thread = threading.Thread(target=server.run, daemon=True)
                thread.start()
                deadline = time.monotonic() + 30
                while not server.started:
                    assert time.monotonic() < deadline, "the access check did not start"
                    time.sleep(0.02)
                try:
                    with NginxServer(
                        tmp_path / "nginx", tree.root, access_check=f"127.0.0.1:{check_port}"
                    ) as web:
                        yield Served("nginx", web.url, web.port, parts, rt, settings)
                finally:
                    server.should_exit = True
                    thread.join(timeout=30)
        finally:
            parts.close()


def auth(login: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def get(
    served: Served, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def rpm_path(release: Release) -> str:
    return f"/{release.area}/rpms/noarch/{release.name}-1.0-1.noarch.rpm"


def test_anonymous_requests_to_protected_areas_get_401(served: Served, tree: Tree) -> None:
    for path in (
        "/unverified/",
        f"/{tree.unverified.area}/",
        rpm_path(tree.unverified),
        "/stagerollout/",
        f"/{tree.staged.area}/",
        rpm_path(tree.staged),
        f"/{tree.staged.area}/.rollout-manifest.json",
    ):
        status, headers, body = get(served, path)
        assert status == 401, (path, status)
        assert headers["www-authenticate"].startswith('Basic realm="Rollout repository"'), path
        assert b"acc-" not in body
    status, _, body = get(served, rpm_path(tree.production))
    assert status == 200 and body.startswith(b"\xed\xab\xee\xdb")  # an rpm, no login needed
    assert served.parts.checker is not None and served.parts.checker.total_login_calls == 0


def test_a_qc_members_rt_login_reads_unverified(served: Served, tree: Tree) -> None:
    status, _, body = get(served, rpm_path(tree.unverified), auth(QC))
    assert status == 200 and body.startswith(b"\xed\xab\xee\xdb")
    status, _, listing = get(served, f"/{tree.unverified.area}/rpms/noarch/", auth(QC))
    assert status == 200 and tree.unverified.name.encode() in listing
    assert get(served, rpm_path(tree.staged), auth(QC))[0] == 200


def test_an_early_adopter_reads_stagerollout_but_not_unverified(served: Served, tree: Tree) -> None:
    status, _, body = get(served, rpm_path(tree.staged), auth(EARLY))
    assert status == 200 and body.startswith(b"\xed\xab\xee\xdb")
    assert get(served, rpm_path(tree.unverified), auth(EARLY))[0] == 403
    assert get(served, f"/{tree.unverified.area}/", auth(EARLY))[0] == 403
    # Climbing from stagerollout into unverified is judged where it lands.
    sneaky = f"/{tree.staged.area}/../../{tree.unverified.area}/"
    assert get(served, sneaky, auth(EARLY))[0] in (400, 403, 404)


def test_an_rt_auth_token_works_as_the_password_and_as_a_bearer(
    served: Served, tree: Tree, rt_sandbox: SandboxInfo
) -> None:
    token = auth_token(rt_sandbox, EARLY)
    assert get(served, rpm_path(tree.staged), auth(EARLY, token))[0] == 200
    assert get(served, rpm_path(tree.staged), {"Authorization": f"Bearer {token}"})[0] == 200
    assert get(served, rpm_path(tree.unverified), {"Authorization": f"Bearer {token}"})[0] == 403
    # Only for its owner: under another login it is no password at all.
    assert get(served, rpm_path(tree.staged), auth(QC, token))[0] == 401


def test_a_symlink_planted_in_a_protected_area_is_not_followed_for_an_allowed_person(
    served: Served, tree: Tree
) -> None:
    snapshot = (tree.root / tree.staged.area).resolve()
    planted = snapshot / "rpms" / "planted"
    (snapshot / "rpms").chmod(0o755)
    planted.symlink_to("/etc")
    try:
        for path in (
            f"/{tree.staged.area}/rpms/planted/passwd",
            f"/{tree.staged.area}/rpms/planted/",
        ):
            status, _, body = get(served, path, auth(EARLY))
            assert status in (403, 404), (path, status)
            assert b"root:" not in body
        assert get(served, rpm_path(tree.staged), auth(EARLY))[0] == 200
    finally:
        planted.unlink()
        (snapshot / "rpms").chmod(0o555)


def test_a_protected_areas_payload_tree_is_reached_through_the_gate_only(
    served: Served, tree: Tree
) -> None:
    staged = tree.root / tree.staged.area
    if tree.layout == "tree":
        assert ".trees" in staged.resolve().parts  # the area is a link to its payload tree
    rel = rpm_path(tree.staged).removeprefix(f"/{tree.staged.area}/")
    status, _, body = get(served, rpm_path(tree.staged), auth(EARLY))
    assert status == 200
    assert body == (staged / rel).read_bytes()
    key = tree.staged.area.replace("/", "~")
    for path in (f"/.trees/{key}/{rel}", f"/.trees/{key}/", "/.trees/"):
        for headers in ({}, auth(EARLY), auth(QC)):
            status, _, answer = get(served, path, headers)
            assert status in (401, 403, 404), (path, headers, status)
            assert body not in answer, path


def test_a_wrong_password_gets_401_and_a_person_without_a_role_403(
    served: Served, tree: Tree
) -> None:
    for path in (rpm_path(tree.unverified), rpm_path(tree.staged)):
        status, headers, _ = get(served, path, auth(QC, "not-the-password"))
        assert status == 401 and "www-authenticate" in headers
        assert get(served, path, auth("nobody-at-all", PASSWORD))[0] == 401
        assert get(served, path, auth(OUTSIDER))[0] == 403


def test_at_most_one_rt_call_per_person_per_cache_period(served: Served, tree: Tree) -> None:
    asks = [(QC, rpm_path(tree.unverified)), (EARLY, rpm_path(tree.staged))] * 15
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda a: get(served, a[1], auth(a[0]))[0], asks))
    assert statuses == [200] * 30
    assert served.login_calls == {QC: 1, EARLY: 1}
    assert served.parts.checker is not None
    assert served.parts.checker.directory.reads == 1  # the groups, once for everybody


def test_when_rt_is_down_the_people_seen_keep_their_answer(served: Served, tree: Tree) -> None:
    checker = served.parts.checker
    assert checker is not None
    assert get(served, rpm_path(tree.unverified), auth(QC))[0] == 200
    assert get(served, rpm_path(tree.staged), auth(EARLY))[0] == 200
    assert get(served, rpm_path(tree.unverified), auth(EARLY))[0] == 403
    served.rt.cut()
    # Every answer is now past its cache period: each must be asked again, and RT is gone.
    checker.fresh_seconds = 0.0
    checker.directory.fresh_seconds = 0.0
    for _ in range(3):
        assert get(served, rpm_path(tree.unverified), auth(QC))[0] == 200
        assert get(served, rpm_path(tree.staged), auth(EARLY))[0] == 200
        assert get(served, rpm_path(tree.unverified), auth(EARLY))[0] == 403
        assert get(served, rpm_path(tree.staged), auth(QC, "not-the-password"))[0] != 200
    assert checker.stale_answers >= 2
    # Someone never seen cannot be checked: refused (503 from the check; nginx says 500).
    assert get(served, rpm_path(tree.staged), auth(OUTSIDER))[0] in (500, 503)
    assert get(served, rpm_path(tree.production))[0] == 200  # production needs no RT


def test_first_fetches_are_recorded_once_per_person_and_release(served: Served, tree: Tree) -> None:
    for _ in range(3):
        assert get(served, rpm_path(tree.staged), auth(EARLY))[0] == 200
        assert get(served, f"/{tree.unverified.area}/", auth(QC))[0] == 200
    recorder = served.parts.recorder
    assert recorder is not None
    recorder.flush()
    engine = database.create_engine(served.settings.database())
    try:
        found = fetch_store.FetchStore(engine).first_fetches(ticket_ids=[41, 42])
    finally:
        engine.dispose()
    seen = {(f.ticket_id, f.person, f.teams, f.area) for f in found}
    assert (42, EARLY, ("early-adopters",), tree.staged.area) in seen
    assert (41, QC, (), tree.unverified.area) in seen
    assert len([f for f in found if f.person == EARLY and f.ticket_id == 42]) == 1


# ------------------------------------------------------------------ real apt-get and dnf


def _area_files(tree: Tree, release: Release, served: Served) -> tuple[str, str]:
    """The area's apt and dnf files as a site uses them: the tree's URL filled in, and the
    signing keys where the site keeps them (``_site_keys``)."""
    area = tree.root / release.area
    keys = _site_keys(tree)
    sources = (
        (area / clients.APT_LIST_FILE)
        .read_text()
        .replace(PLACEHOLDER, served.url)
        .replace(clients.DEFAULT_APT_KEYRING, str(keys / signing.APT_KEY_FILE))
    )
    repo = (
        (area / clients.DNF_REPO_FILE)
        .read_text()
        .replace(PLACEHOLDER, served.url)
        .replace(clients.DEFAULT_RPM_GPGKEY, f"file://{keys / signing.RPM_KEY_FILE}")
    )
    return sources, repo


def _site_keys(tree: Tree) -> Path:
    """The production tree's published keys, copied where a site would install them."""
    keys = tree.data_dir / "site-keys"
    keys.mkdir(exist_ok=True)
    production = tree.root / tree.production.area
    for name in (signing.APT_KEY_FILE, signing.RPM_KEY_FILE):
        (keys / name).write_bytes((production / name).read_bytes())
    return keys


def test_apt_get_installs_from_stagerollout_with_a_login_and_from_production_without(
    served: Served, tree: Tree, tmp_path: Path
) -> None:
    staged_sources, _ = _area_files(tree, tree.staged, served)
    production_sources, _ = _area_files(tree, tree.production, served)
    apt = AptRoot.create(
        tmp_path / "apt",
        {"staged.list": staged_sources, "production.list": production_sources},
    )
    # apt's login file, from the line the area's client file ships (placeholders filled in).
    shipped = next(
        line.removeprefix("#").strip()
        for line in staged_sources.splitlines()
        if line.startswith("#   machine ")
    )
    assert shipped == (
        f"machine {served.url}{tree.staged.area}/ "
        f"login {clients.LOGIN_PLACEHOLDER} password {clients.SECRET_PLACEHOLDER}"
    )
    auth_dir = apt.root / "etc/apt/auth.conf.d"
    auth_dir.mkdir(parents=True)
    (auth_dir / "rollout.conf").write_text(
        shipped.replace(clients.LOGIN_PLACEHOLDER, EARLY).replace(
            clients.SECRET_PLACEHOLDER, PASSWORD
        )
        + "\n"
    )
    (auth_dir / "rollout.conf").chmod(0o600)
    updated = apt.update()
    assert updated.returncode == 0, updated.stdout + updated.stderr
    for name in (tree.staged.name, tree.production.name):
        installed = apt.install(name)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert apt.installed_version(name) == "1.0-1"


def test_apt_get_without_a_login_cannot_read_stagerollout(
    served: Served, tree: Tree, tmp_path: Path
) -> None:
    staged_sources, _ = _area_files(tree, tree.staged, served)
    apt = AptRoot.create(tmp_path / "apt", {"staged.list": staged_sources})
    updated = apt.update()
    assert updated.returncode != 0
    assert "401" in updated.stdout + updated.stderr


def test_dnf_installs_from_stagerollout_with_a_login_and_from_production_without(
    served: Served, tree: Tree, tmp_path: Path
) -> None:
    _, staged_repo = _area_files(tree, tree.staged, served)
    _, production_repo = _area_files(tree, tree.production, served)
    # The login lines the area's .repo ships, uncommented and filled in.
    assert f"#username={clients.LOGIN_PLACEHOLDER}" in staged_repo
    assert "#username=" not in production_repo
    staged_repo = staged_repo.replace(
        f"#username={clients.LOGIN_PLACEHOLDER}", f"username={EARLY}"
    ).replace(f"#password={clients.SECRET_PLACEHOLDER}", f"password={PASSWORD}")
    dnf = DnfRoot.create(
        tmp_path / "dnf", {"staged.repo": staged_repo, "production.repo": production_repo}
    )
    try:
        installed = dnf.install(tree.staged.name, tree.production.name)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert dnf.installed(tree.staged.name) is not None
        assert dnf.installed(tree.production.name) is not None
    finally:
        dnf.stop_agents()
