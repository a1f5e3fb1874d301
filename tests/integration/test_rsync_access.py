"""Protected areas over rsync: a real ``rsync --daemon`` with the product's rendered
configuration offers ``unverified`` and ``stagerollout`` (areas and snapshots) only in modules
of their own, to rsync users with a secret; the public module shows neither."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bridge.settings.model import RepositorySettings
from repo_daemon.publish import index
from repo_daemon.publish import repository as publish
from repo_daemon.serving import rsyncd
from tests.integration.test_mirror_rsync import RsyncDaemon
from tests.support.release_factory import scratch_release

SECRETS = {"qc": "qc-rsync-secret", "early-adopters": "ea-rsync-secret"}


class SecretRsyncDaemon(RsyncDaemon):
    """The mirror test's daemon, its configuration with the protected modules' secrets file."""

    def __enter__(self) -> SecretRsyncDaemon:
        secrets = self.workdir.parent / "rsyncd.secrets"
        secrets.write_text("".join(f"{u}:{s}\n" for u, s in SECRETS.items()))
        secrets.chmod(0o600)
        original = rsyncd.render_rsyncd

        def render(root: Path, **kwargs: object) -> str:
            return original(root, secrets_file=secrets, **kwargs)  # type: ignore[arg-type]

        rsyncd.render_rsyncd = render  # type: ignore[assignment]
        try:
            super().__enter__()
        finally:
            rsyncd.render_rsyncd = original  # type: ignore[assignment]
        return self

    def module_url(self, module: str, path: str = "", user: str | None = None) -> str:
        who = f"{user}@" if user else ""
        return f"rsync://{who}127.0.0.1:{self.port}/{module}/{path}"


def listing(url: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RSYNC_PASSWORD"}
    if password is not None:
        env["RSYNC_PASSWORD"] = password
    return subprocess.run(
        ["rsync", "--list-only", "--no-motd", url],
        capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def names(answer: subprocess.CompletedProcess[str]) -> set[str]:
    assert answer.returncode == 0, answer.stderr
    return {line.split()[-1] for line in answer.stdout.splitlines()} - {"."}


@pytest.fixture
def repo(tmp_path: Path) -> publish.Repository:
    repo = publish.Repository(
        RepositorySettings(root=tmp_path / "repo"), metadata=index.write_index
    )
    for ticket, version in ((1, "1.0.0"), (2, "2.0.0"), (3, "3.0.0")):
        scratch = tmp_path / f"scratch{ticket}"
        info = scratch_release(
            scratch, "Dist", version, {f"rpms/dist-{version}.rpm": b"x" * ticket}
        )
        repo.publish_unverified(ticket, info, scratch)
        if ticket == 2:
            repo.promote_to_stagerollout(ticket, info, "7")
        if ticket == 3:
            repo.promote_to_production(ticket, info, "7", "Incremental")
    return repo


def test_protected_areas_need_a_role_secret_over_rsync(
    tmp_path: Path, repo: publish.Repository
) -> None:
    chroot = os.geteuid() == 0
    with SecretRsyncDaemon(tmp_path / "rsyncd", repo.root, chroot=chroot) as daemon:
        public = daemon.module_url(rsyncd.DEFAULT_MODULE)
        assert names(listing(public)) == {".snapshots", "production"}
        assert names(listing(public + ".snapshots/")) == {"production~7~updates"}
        for hidden in (
            "unverified/",
            "unverified/Dist/1.0.0/",
            "stagerollout/7/",
            ".snapshots/unverified~Dist~1.0.0/",
            "production/../unverified/",
        ):
            answer = listing(public + hidden)
            assert answer.returncode != 0 or "dist-" not in answer.stdout, hidden

        unverified = daemon.module_url("repo-unverified", user="qc")
        assert listing(daemon.module_url("repo-unverified")).returncode != 0  # no user
        assert listing(unverified, "wrong").returncode != 0
        assert names(listing(unverified, SECRETS["qc"])) == {".snapshots", "unverified"}
        area = listing(unverified + "unverified/Dist/1.0.0/rpms/", SECRETS["qc"])
        assert names(area) == {"dist-1.0.0.rpm"}
        snapshots = names(listing(unverified + ".snapshots/", SECRETS["qc"]))
        assert snapshots == {"unverified~Dist~1.0.0", "unverified~Dist~2.0.0"}
        assert listing(unverified + "production/", SECRETS["qc"]).returncode != 0

        early = daemon.module_url("repo-unverified", user="early-adopters")
        assert listing(early, SECRETS["early-adopters"]).returncode != 0  # not its module
        staged = daemon.module_url(
            "repo-stagerollout", "stagerollout/7/rpms/", user="early-adopters"
        )
        assert names(listing(staged, SECRETS["early-adopters"])) == {"dist-2.0.0.rpm"}

        copy = tmp_path / "copy"
        source = daemon.module_url("repo-stagerollout", "stagerollout/7/", "early-adopters")
        fetched = subprocess.run(
            ["rsync", "-a", source, str(copy)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "RSYNC_PASSWORD": SECRETS["early-adopters"]},
        )  # fmt: skip
        assert fetched.returncode == 0, fetched.stderr
        assert (copy / "rpms/dist-2.0.0.rpm").read_bytes() == b"xx"
