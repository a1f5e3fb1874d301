"""Repository metadata built by ``metadata.build_metadata`` with the real tools (createrepo_c,
apt-ftparchive, gpg), served over HTTP on loopback, used by real clients: apt-get and dnf
install a package into throw-away roots, signed and unsigned; tampered metadata is refused, and
so is (dnf, ``gpgcheck=1``) a package its provider did not sign; a snapshot swapped between two
requests of one client does not break it."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_daemon.metadata import build as metadata
from repo_daemon.metadata import clients, signing
from repo_daemon.metadata import errors as metadata_errors
from repo_daemon.release_xml import model as release_model
from tests.support import packages, repo_clients
from tests.support.repo_clients import AptRoot, DnfRoot, TestKey, TreeServer

AREA = "production/7"
REPOSITORIES = (
    release_model.RepositorySpec(
        identifier="hello-rpm", name="Hello RPMs", type="YUM", relative_path="rpms/noarch"
    ),
    release_model.RepositorySpec(
        identifier="hello-deb", name="Hello debs", type="APT", relative_path="debs"
    ),
)


@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    missing = repo_clients.tools_missing() + packages.tools_missing()
    if missing:
        pytest.fail(f"install the Debian packages {' '.join(missing)} (scripts/bootstrap)")


@dataclass(frozen=True)
class Built:
    """Packages rollout-hello 1.0 and 2.0 (deb, and rpm signed with the provider's key)."""

    debs: dict[str, Path]
    rpms: dict[str, Path]


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("packages")
    versions = ("1.0", "2.0")
    return Built(
        debs={v: packages.build_deb(work, "rollout-hello", f"{v}-1") for v in versions},
        rpms={v: _signed(packages.build_rpm(work, "rollout-hello", v)) for v in versions},
    )


def _signed(rpm: Path) -> Path:
    packages.sign_rpm(rpm, repo_clients.provider_key())
    return rpm


@pytest.fixture(scope="session")
def key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKey]:
    made = repo_clients.make_signing_key(tmp_path_factory.mktemp("gpg") / "k")
    yield made
    made.stop_agent()


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKey]:
    home = tmp_path_factory.mktemp("gpg") / "o"
    made = repo_clients.make_signing_key(home, uid="Mallory <m@example.org>")
    yield made
    made.stop_agent()


def signer_of(key: TestKey) -> signing.Signer:
    """``key`` signs; the provider's key (imported into its home) is a package key."""
    provider = repo_clients.provider_key()
    repo_clients.import_public_key(provider, key.home)
    return signing.Signer(
        key_id=key.fingerprint,
        gnupghome=key.home,
        passphrase_file=key.passphrase_file,
        package_keys=(provider.fingerprint,),
    )


def make_tree(where: Path, built: Built, *versions: str) -> Path:
    """A snapshot-like directory with the packages of ``versions`` (default 1.0) at their
    paths, as an area holding those releases has them."""
    (where / "rpms/noarch").mkdir(parents=True)
    (where / "debs").mkdir(parents=True)
    # copy2 keeps the built files' times: createrepo_c records a package file's mtime, so two
    # trees copied a second apart (a loaded machine) would otherwise differ in their metadata.
    for version in versions or ("1.0",):
        shutil.copy2(built.rpms[version], where / "rpms/noarch")
        shutil.copy2(built.debs[version], where / "debs")
    return where


def publish(tree: Path, server_root: Path, *, signer: signing.Signer | None, url: str) -> list[str]:
    """Metadata for ``tree``, then ``server_root/production/7`` made a symlink to it. The
    snapshot it replaces is ``previous_tree``, as in ``metadata.metadata_step``."""
    live = server_root / AREA
    done = metadata.build_metadata(
        tree,
        REPOSITORIES,
        signer=signer,
        base_url=url,
        area_path=AREA,
        previous_tree=live.resolve() if live.exists() else None,
    )
    swap_area(server_root, tree)
    return done


def swap_area(server_root: Path, tree: Path) -> None:
    """Point ``server_root/production/7`` at ``tree`` in one rename, as publish does."""
    area = server_root / AREA
    area.parent.mkdir(parents=True, exist_ok=True)
    swap = area.with_name(".swap")
    swap.symlink_to(tree)
    swap.replace(area)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TreeServer]:
    (tmp_path / "www").mkdir()
    with TreeServer(tmp_path / "www") as running:
        yield running


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body


def apt_root(where: Path, tree: Path, *, signed: bool, server: TreeServer, fmt: str) -> AptRoot:
    """An apt root configured with the tree's own client file (``rollout.sources`` or
    ``rollout.list``) and, signed, the key fetched from the tree over HTTP."""
    keys = {}
    if signed:
        keys[signing.APT_KEY_FILE] = fetch(f"{server.url}{AREA}/{signing.APT_KEY_FILE}")
    sources = (tree / fmt).read_text(encoding="utf-8")
    keyring = where / "etc/apt/keyrings" / signing.APT_KEY_FILE
    sources = sources.replace(clients.DEFAULT_APT_KEYRING, str(keyring))
    return AptRoot.create(where, {fmt: sources}, keys)


@pytest.fixture(autouse=True)
def _stop_dnf_agents(tmp_path: Path) -> Iterator[None]:
    yield
    for base in tmp_path.glob("dnf*"):
        DnfRoot(base).stop_agents()


def dnf_root(where: Path, tree: Path, *, server: TreeServer) -> DnfRoot:
    """A dnf root configured with the tree's own ``rollout.repo`` and, when it is signed, the
    key fetched from the tree over HTTP, installed where the file expects it (moved into
    ``where``)."""
    repo = (tree / clients.DNF_REPO_FILE).read_text(encoding="utf-8")
    if "repo_gpgcheck=1" in repo:
        key_file = where / signing.RPM_KEY_FILE
        where.mkdir(parents=True)
        key_file.write_bytes(fetch(f"{server.url}{AREA}/{signing.RPM_KEY_FILE}"))
        repo = repo.replace(clients.DEFAULT_RPM_GPGKEY, f"file://{key_file}")
    return DnfRoot.create(where, {"rollout.repo": repo})


# ---------------------------------------------------------------------------- apt-get


@pytest.mark.parametrize("fmt", ["rollout.sources", "rollout.list"])
def test_apt_get_installs_from_a_signed_tree(
    tmp_path: Path, built: Built, key: TestKey, server: TreeServer, fmt: str
) -> None:
    tree = make_tree(tmp_path / "snap1", built)
    publish(tree, server.directory, signer=signer_of(key), url=server.url)
    apt = apt_root(tmp_path / "apt", tree, signed=True, server=server, fmt=fmt)

    update = apt.update()
    assert update.returncode == 0, update.stdout + update.stderr
    assert "W:" not in update.stderr, update.stderr
    # The signed InRelease was used, and the index fetched by hash (Acquire-By-Hash).
    paths = server.paths()
    assert f"/{AREA}/debs/./InRelease" in paths
    digest = hashlib.sha256((tree / "debs/Packages.gz").read_bytes()).hexdigest()
    assert f"/{AREA}/debs/./by-hash/SHA256/{digest}" in paths
    assert not any(p.endswith(("/Packages", "/Packages.gz")) for p in paths)

    install = apt.install("rollout-hello")
    assert install.returncode == 0, install.stdout + install.stderr
    assert apt.installed_version("rollout-hello") == "1.0-1"
    assert (apt.root / "usr/share/doc/rollout-hello/README").read_text().startswith("rollout-hello")


def test_apt_get_installs_from_an_unsigned_tree_only_when_told_to_trust_it(
    tmp_path: Path, built: Built, server: TreeServer
) -> None:
    tree = make_tree(tmp_path / "snap1", built)
    publish(tree, server.directory, signer=None, url=server.url)
    assert not (tree / "debs/InRelease").exists()
    apt = apt_root(tmp_path / "apt", tree, signed=False, server=server, fmt="rollout.list")
    assert "[trusted=yes]" in (apt.root / "etc/apt/sources.list.d/rollout.list").read_text()
    update = apt.update()
    assert update.returncode == 0, update.stdout + update.stderr
    install = apt.install("rollout-hello")
    assert install.returncode == 0, install.stdout + install.stderr
    assert apt.installed_version("rollout-hello") == "1.0-1"

    # The same tree without trusted=yes: apt refuses an unsigned repository.
    strict = tmp_path / "strict"
    line = (tree / "rollout.list").read_text().replace("[trusted=yes] ", "")
    refused = AptRoot.create(strict, {"rollout.list": line}).update()
    assert refused.returncode != 0
    assert "is not signed" in refused.stderr


def _tamper_packages(tree: Path) -> None:
    """Rewrite the indexes in place (their by-hash links are the same files): the package
    now claims another version, as an attacker on the mirror would make it."""
    plain = (tree / "debs/Packages").read_bytes().replace(b"Version: 1.0-1", b"Version: 9.9-1")
    (tree / "debs/Packages").write_bytes(plain)
    (tree / "debs/Packages.gz").write_bytes(gzip.compress(plain, mtime=0))


@pytest.mark.parametrize(
    "attack",
    ["edited Packages", "edited InRelease", "signed by another key", "unsigned"],
)
def test_apt_get_refuses_tampered_metadata(
    tmp_path: Path,
    built: Built,
    key: TestKey,
    other_key: TestKey,
    server: TreeServer,
    attack: str,
) -> None:
    tree = make_tree(tmp_path / "snap1", built)
    publish(tree, server.directory, signer=signer_of(key), url=server.url)
    apt = apt_root(tmp_path / "apt", tree, signed=True, server=server, fmt="rollout.sources")
    if attack == "edited Packages":
        _tamper_packages(tree)
        # apt checks the size first, then the SHA-256 of what it downloaded.
        expected = "File has unexpected size|Hash Sum mismatch"
    elif attack == "edited InRelease":
        text = (tree / "debs/InRelease").read_text()
        (tree / "debs/InRelease").write_text(text.replace("Label: Rollout bridge", "Label: X"))
        expected = "invalid"
    else:
        # A tree re-published by someone else: signed with another key, or not at all.
        evil = make_tree(tmp_path / "evil", built, "2.0")
        evil_signer = signer_of(other_key) if attack == "signed by another key" else None
        publish(evil, server.directory, signer=evil_signer, url=server.url)
        expected = "NO_PUBKEY" if evil_signer else "is not signed"

    update = apt.update()
    assert update.returncode != 0, update.stdout + update.stderr
    assert re.search(expected, update.stdout + update.stderr), update.stderr
    install = apt.install("rollout-hello")
    assert install.returncode != 0
    assert apt.installed_version("rollout-hello") is None


def test_apt_get_survives_a_swap_between_inrelease_and_packages(
    tmp_path: Path, built: Built, key: TestKey, server: TreeServer
) -> None:
    """The race that makes "Hash Sum mismatch" on mirrors: the client reads InRelease from
    one snapshot and asks for the index it names after the area moved to the next one. The
    new snapshot carries the previous indexes by hash, so the client gets consistent data."""
    old = make_tree(tmp_path / "snap1", built)
    publish(old, server.directory, signer=signer_of(key), url=server.url)
    # A production area keeps the releases it had and gains the new one.
    new = make_tree(tmp_path / "snap2", built, "1.0", "2.0")
    metadata.build_metadata(
        new, REPOSITORIES, signer=signer_of(key), base_url=server.url, area_path=AREA,
        previous_tree=old,
    )  # fmt: skip
    apt = apt_root(tmp_path / "apt", old, signed=True, server=server, fmt="rollout.sources")

    def swap_after_inrelease(path: str) -> None:
        if path.endswith("/debs/./InRelease") and server.before_body is not None:
            server.before_body = None
            swap_area(server.directory, new)

    server.before_body = swap_after_inrelease
    update = apt.update()
    assert update.returncode == 0, update.stdout + update.stderr
    assert (server.directory / AREA).resolve() == new  # the swap happened mid-update
    assert apt.install("rollout-hello").returncode == 0
    assert apt.installed_version("rollout-hello") == "1.0-1"  # what the InRelease it read said

    # The next update sees the new snapshot (its InRelease is newer to the second, although
    # it was made within the same second: no "304 Not Modified").
    again = apt.update()
    assert again.returncode == 0, again.stdout + again.stderr
    upgrade = apt.apt_get("install", "--only-upgrade", "rollout-hello")
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert apt.installed_version("rollout-hello") == "2.0-1"


def test_without_the_previous_indexes_the_same_swap_breaks_apt(
    tmp_path: Path, built: Built, key: TestKey, server: TreeServer
) -> None:
    """The control for the test above: the carried-over indexes are what makes it pass."""
    old = make_tree(tmp_path / "snap1", built)
    publish(old, server.directory, signer=signer_of(key), url=server.url)
    new = make_tree(tmp_path / "snap2", built, "2.0")
    metadata.build_metadata(new, REPOSITORIES, signer=signer_of(key))
    apt = apt_root(tmp_path / "apt", old, signed=True, server=server, fmt="rollout.sources")

    def swap(path: str) -> None:
        if path.endswith("/debs/./InRelease"):
            server.before_body = None
            swap_area(server.directory, new)

    server.before_body = swap
    update = apt.update()
    assert update.returncode != 0
    assert any(status == 404 for path, status in server.requests if "/by-hash/" in path)


# ---------------------------------------------------------------------------- dnf


def test_dnf_installs_from_a_signed_tree(
    tmp_path: Path, built: Built, key: TestKey, server: TreeServer
) -> None:
    tree = make_tree(tmp_path / "snap1", built)
    publish(tree, server.directory, signer=signer_of(key), url=server.url)
    repo_file = (tree / clients.DNF_REPO_FILE).read_text()
    assert "\ngpgcheck=1\nrepo_gpgcheck=1\n" in repo_file
    dnf = dnf_root(tmp_path / "dnf", tree, server=server)

    result = dnf.install("rollout-hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert dnf.installed("rollout-hello") == "rollout-hello-1.0-1.noarch"
    assert (dnf.root / "usr/share/doc/rollout-hello/README").is_file()
    # The signature was fetched and checked with the key the site installed.
    assert f"/{AREA}/rpms/noarch/repodata/repomd.xml.asc" in server.paths()
    log = (dnf.root / "var/log/dnf.log").read_text().replace(" ", "")
    assert key.fingerprint[-8:] in log  # "Importing GPG key 0x…"
    # gpgcheck=1: the package's own signature was checked with its provider's key.
    assert repo_clients.provider_key().fingerprint[-8:] in log


@pytest.mark.parametrize("package", ["unsigned", "signed by an unknown key"])
def test_dnf_refuses_a_package_its_provider_did_not_sign(
    tmp_path: Path, built: Built, key: TestKey, other_key: TestKey, server: TreeServer,
    package: str,
) -> None:  # fmt: skip
    """The metadata is signed and intact, but the RPM is not signed with a published package
    key: with the shipped ``gpgcheck=1``, dnf installs nothing."""
    rpm = packages.build_rpm(tmp_path / "build", "rollout-hello", "1.0")
    if package != "unsigned":
        packages.sign_rpm(rpm, other_key)
    tree = make_tree(tmp_path / "snap1", built, "2.0")
    (tree / "rpms/noarch" / built.rpms["2.0"].name).unlink()
    shutil.copy(rpm, tree / "rpms/noarch")
    publish(tree, server.directory, signer=signer_of(key), url=server.url)
    dnf = dnf_root(tmp_path / "dnf", tree, server=server)

    result = dnf.install("rollout-hello")
    assert result.returncode != 0, result.stdout + result.stderr
    assert dnf.installed("rollout-hello") is None
    expected = "is not signed" if package == "unsigned" else "Public key for .* is not installed"
    assert re.search(expected, result.stdout + result.stderr), result.stderr


def test_dnf_installs_from_an_unsigned_tree(
    tmp_path: Path, built: Built, server: TreeServer
) -> None:
    tree = make_tree(tmp_path / "snap1", built)
    publish(tree, server.directory, signer=None, url=server.url)
    assert "\ngpgcheck=0\nrepo_gpgcheck=0\n" in (tree / clients.DNF_REPO_FILE).read_text()
    dnf = dnf_root(tmp_path / "dnf", tree, server=server)
    result = dnf.install("rollout-hello")
    assert result.returncode == 0, result.stdout + result.stderr
    assert dnf.installed("rollout-hello") == "rollout-hello-1.0-1.noarch"


@pytest.mark.parametrize(
    "attack", ["edited repomd.xml", "signed by another key", "signature removed"]
)
def test_dnf_refuses_tampered_metadata(
    tmp_path: Path,
    built: Built,
    key: TestKey,
    other_key: TestKey,
    server: TreeServer,
    attack: str,
) -> None:
    tree = make_tree(tmp_path / "snap1", built)
    publish(tree, server.directory, signer=signer_of(key), url=server.url)
    dnf = dnf_root(tmp_path / "dnf", tree, server=server)
    repomd = tree / "rpms/noarch/repodata/repomd.xml"
    if attack == "edited repomd.xml":
        text = repomd.read_text()
        repomd.write_text(re.sub(r"<revision>\d+</revision>", "<revision>1</revision>", text))
    elif attack == "signed by another key":
        evil = make_tree(tmp_path / "evil", built, "2.0")
        publish(evil, server.directory, signer=signer_of(other_key), url=server.url)
    else:
        (tree / "rpms/noarch/repodata/repomd.xml.asc").unlink()

    result = dnf.install("rollout-hello")
    assert result.returncode != 0, result.stdout + result.stderr
    assert dnf.installed("rollout-hello") is None
    assert "repomd.xml" in result.stderr


def test_dnf_survives_a_swap_between_repomd_and_primary(
    tmp_path: Path, built: Built, key: TestKey, server: TreeServer
) -> None:
    old = make_tree(tmp_path / "snap1", built)
    publish(old, server.directory, signer=signer_of(key), url=server.url)
    new = make_tree(tmp_path / "snap2", built, "2.0")
    metadata.build_metadata(new, REPOSITORIES, signer=signer_of(key), previous_tree=old)
    dnf = dnf_root(tmp_path / "dnf", old, server=server)

    def swap(path: str) -> None:
        if path.endswith("/repodata/repomd.xml.asc"):
            server.before_body = None
            swap_area(server.directory, new)

    server.before_body = swap
    result = dnf.dnf("makecache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (server.directory / AREA).resolve() == new
    assert not [p for p, status in server.requests if status != 200]


# ---------------------------------------------------------------------------- the tools


def test_metadata_is_reproducible_with_a_fixed_timestamp(tmp_path: Path, built: Built) -> None:
    outputs = []
    for name in ("a", "b"):
        tree = make_tree(tmp_path / name, built)
        metadata.build_metadata(
            tree, REPOSITORIES, base_url="http://mirror.example.org/", area_path=AREA,
            timestamp=1_700_000_000,
        )  # fmt: skip
        outputs.append(
            {
                str(p.relative_to(tree)): p.read_bytes()
                for p in sorted(tree.rglob("*"))
                if p.is_file()
            }
        )
    assert outputs[0] == outputs[1]
    assert b"Date: Tue, 14 Nov 2023 22:13:20 GMT" in outputs[0]["debs/Release"]


def test_previous_snapshot_is_only_read(tmp_path: Path, built: Built, key: TestKey) -> None:
    """Everything is written inside the new snapshot: the previous one, and the directory
    around the new one, are unchanged."""
    old = make_tree(tmp_path / "snap1", built)
    metadata.build_metadata(old, REPOSITORIES, signer=signer_of(key))

    def state(top: Path) -> dict[str, tuple[int, int, float]]:
        return {
            str(p.relative_to(top)): (p.stat().st_size, p.stat().st_nlink, p.stat().st_mtime)
            for p in sorted(top.rglob("*"))
        }

    new = make_tree(tmp_path / "snap2", built, "2.0")
    before = state(old)
    around = sorted(p.name for p in tmp_path.iterdir())
    metadata.build_metadata(new, REPOSITORIES, signer=signer_of(key), previous_tree=old)
    after = state(old)
    # Only link counts change: the new snapshot hard-links the old indexes.
    assert {k: (s, m) for k, (s, _, m) in before.items()} == {
        k: (s, m) for k, (s, _, m) in after.items()
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == around
    old_gz = hashlib.sha256((old / "debs/Packages.gz").read_bytes()).hexdigest()
    assert (new / "debs/by-hash/SHA256" / old_gz).samefile(old / "debs/Packages.gz")


def test_an_unreadable_rpm_fails_with_createrepo_c_s_words(tmp_path: Path, built: Built) -> None:
    tree = make_tree(tmp_path / "t", built)
    (tree / "rpms/noarch/broken-1.0-1.noarch.rpm").write_bytes(b"not an rpm")
    with pytest.raises(metadata_errors.MetadataFailed) as caught:
        metadata.build_metadata(tree, REPOSITORIES)
    assert caught.value.returncode == 2
    assert "broken-1.0-1.noarch.rpm" in str(caught.value)
    assert caught.value.transient is False


def test_an_unreadable_deb_fails_although_apt_ftparchive_exits_0(
    tmp_path: Path, built: Built
) -> None:
    tree = make_tree(tmp_path / "t", built)
    (tree / "debs/broken_1.0_all.deb").write_bytes(b"not a deb")
    with pytest.raises(metadata_errors.MetadataFailed) as caught:
        metadata.build_metadata(tree, REPOSITORIES)
    assert "broken_1.0_all.deb" in str(caught.value)
    assert caught.value.returncode == 0


def test_a_key_that_is_not_there_fails_before_indexing(
    tmp_path: Path, built: Built, key: TestKey
) -> None:
    tree = make_tree(tmp_path / "t", built)
    signer = signing.Signer(key_id="0123456789ABCDEF0123456789ABCDEF01234567", gnupghome=key.home)
    with pytest.raises(metadata_errors.MetadataFailed, match="no public key 0123456789ABCDEF"):
        metadata.build_metadata(tree, REPOSITORIES, signer=signer)
    assert not (tree / "rpms/noarch/repodata").exists()


def test_a_protected_key_signs_with_its_passphrase_file_only(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, built: Built
) -> None:
    home = tmp_path_factory.mktemp("gpg") / "p"
    protected = repo_clients.make_signing_key(home, passphrase="s3cret-Pass")
    try:
        without = signing.Signer(key_id=protected.fingerprint, gnupghome=protected.home)
        with pytest.raises(metadata_errors.MetadataFailed) as caught:
            metadata.build_metadata(make_tree(tmp_path / "a", built), REPOSITORIES, signer=without)
        assert caught.value.argv[0] == "gpg"
        assert "s3cret-Pass" not in str(caught.value)

        done = metadata.build_metadata(
            make_tree(tmp_path / "b", built), REPOSITORIES, signer=signer_of(protected)
        )
        assert any("InRelease and Release.gpg signed" in line for line in done)
        for line in done:
            assert "s3cret-Pass" not in line
    finally:
        protected.stop_agent()


def test_key_rotation_as_docs_clients_md_describes_it(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, built: Built, server: TreeServer
) -> None:
    """Sites that installed the old key, then the two-key file published during the overlap,
    keep updating when the signing key changes."""
    home = tmp_path_factory.mktemp("gpg") / "r"
    old = repo_clients.make_signing_key(home)
    new = repo_clients.make_signing_key(home, uid="Rollout next <next@example.org>")
    provider = repo_clients.provider_key()
    repo_clients.import_public_key(provider, home)
    package_keys = (provider.fingerprint,)
    try:
        tree = make_tree(tmp_path / "snap1", built)
        publish(tree, server.directory, signer=signer_of(old), url=server.url)
        apt = apt_root(tmp_path / "apt", tree, signed=True, server=server, fmt="rollout.sources")
        dnf = dnf_root(tmp_path / "dnf", tree, server=server)
        assert apt.update().returncode == 0
        assert dnf.dnf("makecache").returncode == 0

        # 1. The new key is published beside the old one, which still signs.
        overlap = signing.Signer(
            key_id=old.fingerprint, gnupghome=home, also_publish=(new.fingerprint,),
            package_keys=package_keys,
        )  # fmt: skip
        tree = make_tree(tmp_path / "snap2", built)
        done = publish(tree, server.directory, signer=overlap, url=server.url)
        assert any(f"public key {old.fingerprint}, {new.fingerprint} published" in d for d in done)
        # 2. Sites install the two-key file where their configuration points.
        two_keys = fetch(f"{server.url}{AREA}/{signing.APT_KEY_FILE}")
        assert two_keys.count(b"BEGIN PGP PUBLIC KEY BLOCK") == 1  # one block, two keys
        apt.keyring(signing.APT_KEY_FILE).write_bytes(two_keys)
        (dnf.base / signing.RPM_KEY_FILE).write_bytes(
            fetch(f"{server.url}{AREA}/{signing.RPM_KEY_FILE}")
        )
        assert apt.update().returncode == 0
        # 3. The new key signs.
        rotated = make_tree(tmp_path / "snap3", built, "1.0", "2.0")
        publish(rotated, server.directory, url=server.url, signer=signing.Signer(
            key_id=new.fingerprint, gnupghome=home, also_publish=(old.fingerprint,),
            package_keys=package_keys))  # fmt: skip

        update = apt.update()
        assert update.returncode == 0, update.stdout + update.stderr
        assert apt.install("rollout-hello=2.0-1").returncode == 0
        result = dnf.install("rollout-hello-2.0")
        assert result.returncode == 0, result.stdout + result.stderr
        assert dnf.installed("rollout-hello") == "rollout-hello-2.0-1.noarch"
    finally:
        old.stop_agent()
