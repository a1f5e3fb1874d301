"""Which key signs the trees (``repo_daemon.metadata.keys``), with the real gpg: the bridge makes
its own key once and reuses it, never makes a second one behind the operator's back, uses a
configured key as it is, and publishes unsigned trees only when told to, with a warning;
``rollout repo init-key`` prints what docs/clients.md shows."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge import secrets
from bridge.settings import model as settings_model
from repo_daemon.cli import root as cli
from repo_daemon.metadata import errors as metadata_errors
from repo_daemon.metadata import keys
from tests.support import repo_clients

FAST = "ed25519"  # the default rsa4096 takes seconds; the demo's test makes one


def settings_for(
    data_dir: Path, *, database_url: str | None = None, **repository: object
) -> settings_model.Settings:
    return settings_model.Settings(
        tracker=settings_model.TrackerSettings(url="http://rt/", token=secrets.Secret("t")),
        data_dir=data_dir,
        database_url=secrets.Secret(database_url) if database_url else None,
        repository=settings_model.RepositorySettings(root=data_dir / "repo", **repository),  # type: ignore[arg-type]
    )


@pytest.fixture
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A short data dir (gpg-agent's socket lives in the home below it); agents stopped after."""
    made = tmp_path_factory.mktemp("k")
    yield made
    for home in [made / "gnupg", *made.glob("*/")]:
        repo_clients.stop_gpg_agent(home)


def secret_keys(home: Path) -> set[str]:
    return keys._secret_keys(keys.commands.SubprocessRunner(), home)


def test_the_first_start_makes_the_key_and_every_later_start_uses_it_again(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(data_dir)
    home = data_dir / "gnupg"
    made = keys.ensure_own_key(keys.own_home(settings), algorithm=FAST)
    assert made.created and made.home == home
    assert (home / keys.RECORD).read_text().strip() == made.fingerprint
    assert secret_keys(home) == {made.fingerprint}
    assert home.stat().st_mode & 0o777 == 0o700

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="repo_daemon.metadata.keys"):
        signer = keys.signer(settings)  # a later start
    assert signer is not None and signer.key_id == made.fingerprint and signer.gnupghome == home
    assert secret_keys(home) == {made.fingerprint}  # no second key
    assert [r.getMessage() for r in caplog.records] == [
        f"signing the trees with the bridge's own key {made.fingerprint} (GnuPG home {home})"
    ]


def test_the_daemon_makes_the_key_on_its_first_start_and_says_so(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="repo_daemon.metadata.keys"):
        signer = keys.signer(
            settings_for(data_dir, package_keys=("A" * 40,)),
            runner=_fast_generation(),
        )
    assert signer is not None and signer.package_keys == ("A" * 40,)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"made the bridge's signing key {signer.key_id}" in record.getMessage()
    assert "publish this fingerprint" in record.getMessage()


def test_on_a_shared_database_the_key_is_made_once_by_hand(data_dir: Path) -> None:
    """Several daemons on one PostgreSQL, each on its host, would each make a key of its own:
    none makes one at start; ``rollout repo init-key`` does, once, and they use it."""
    shared = settings_for(data_dir, database_url="postgresql://rollout@db.example.org/rollout")
    with pytest.raises(metadata_errors.MetadataFailed, match="rollout repo init-key") as caught:
        keys.signer(shared)
    assert "several daemons" in str(caught.value)
    assert secret_keys(data_dir / "gnupg") == set()

    made = keys.ensure_own_key(keys.own_home(shared), algorithm=FAST)  # what init-key does
    signer = keys.signer(shared)
    assert signer is not None and signer.key_id == made.fingerprint


def test_two_processes_starting_at_once_make_one_key(data_dir: Path) -> None:
    home = data_dir / "gnupg"
    made: list[keys.OwnKey] = []
    threads = [
        threading.Thread(target=lambda: made.append(keys.ensure_own_key(home, algorithm=FAST)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(m.created for m in made) == [False, True]
    assert len({m.fingerprint for m in made}) == 1
    assert len(secret_keys(home)) == 1


def test_a_recorded_key_that_is_gone_is_never_replaced(data_dir: Path) -> None:
    home = data_dir / "gnupg"
    made = keys.ensure_own_key(home, algorithm=FAST)
    # The secret key is lost (a restored data dir without its home's private keys, say).
    repo_clients.stop_gpg_agent(home)
    for private in (home / "private-keys-v1.d").iterdir():
        private.unlink()
    with pytest.raises(metadata_errors.MetadataFailed) as caught:
        keys.signer(settings_for(data_dir))
    message = str(caught.value)
    assert f"signing key {made.fingerprint} (recorded in {home / keys.RECORD})" in message
    assert "will not make another one" in message
    assert secret_keys(home) == set()
    assert (home / keys.RECORD).read_text().strip() == made.fingerprint


def test_a_home_with_keys_the_bridge_did_not_make_is_refused(data_dir: Path) -> None:
    home = data_dir / "gnupg"
    theirs = repo_clients.make_signing_key(home)
    with pytest.raises(metadata_errors.MetadataFailed, match=theirs.fingerprint) as caught:
        keys.ensure_own_key(home, algorithm=FAST)
    assert "set signing_key" in str(caught.value)
    assert secret_keys(home) == {theirs.fingerprint}
    assert not (home / keys.RECORD).exists()


def test_a_configured_key_is_used_as_it_is(data_dir: Path) -> None:
    key = repo_clients.shared_key()
    signer = keys.signer(settings_for(data_dir, signing_key=key.fingerprint, gnupghome=key.home))
    assert signer is not None and (signer.key_id, signer.gnupghome) == (key.fingerprint, key.home)
    assert not (key.home / keys.RECORD).exists()
    assert not (data_dir / "gnupg").exists()


def test_unsigned_trees_are_a_choice_and_every_start_warns(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="repo_daemon.metadata.keys"):
        assert keys.signer(settings_for(data_dir, unsigned=True)) is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "published UNSIGNED" in record.getMessage()
    assert "trusted=yes" in record.getMessage()
    assert not (data_dir / "gnupg").exists()


def test_init_key_prints_what_docs_clients_md_shows(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROLLOUT_DATA_DIR", str(data_dir))
    home = data_dir / "gnupg"
    argv = ["repo", "init-key", "--algorithm", FAST, "--uid", "Example <repo@example.org>"]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out.splitlines()
    fingerprint = (home / keys.RECORD).read_text().strip()
    assert first == [
        f"fingerprint {fingerprint}",
        f"GnuPG home  {home}",
        f"key         made now ({FAST})",
        "Back the home up, and publish the fingerprint where sites can check it (docs/clients.md).",
    ]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"fingerprint {fingerprint}",
        f"GnuPG home  {home}",
        "key         made earlier, kept",
    ]
    docs = (Path(__file__).parents[2] / "docs" / "clients.md").read_text()
    assert "key         made now (rsa4096)" in docs and "made earlier, kept" in docs

    monkeypatch.setenv("ROLLOUT_SIGNING_KEY", "none")
    assert cli.main(["repo", "init-key"]) == 2
    assert "signing_key is 'none'" in capsys.readouterr().err


def _fast_generation() -> keys.commands.CommandRunner:
    """The real runner, generating ed25519 instead of rsa4096 (the daemon's default)."""
    real = keys.commands.SubprocessRunner()

    def run(argv, *, cwd, stdout=None):  # type: ignore[no-untyped-def]
        argv = [FAST if a == keys.DEFAULT_ALGORITHM else a for a in argv]
        return real(argv, cwd=cwd, stdout=stdout)

    return run
