"""The demo's folder and the bridge's settings.

``--dir`` holds the sandbox RT (``rt_setup.sandbox``, kept between runs: its database takes the
longest to build) and the GnuPG homes of the repository's and the provider's signing keys (kept
too: sites trust a repository's key, so it is made once); ``--dir/demo`` holds everything else
of one run and is made afresh by each run. The bridge is configured only through
``ROLLOUT_*`` variables; the same settings are written as ``bridge.toml`` so a person can run
``rollout -c …/bridge.toml queue list``. Only file names of secrets appear here, never a
secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.rt_setup import sandbox
from bridge.settings import load as settings_load
from repo_daemon.demo.errors import DemoFailed

MARKER = ".rollout-demo"  # in the work folder: proof that it is ours to wipe
LOCK = "demo.lock"  # in the root: held while a demo runs there


@dataclass(frozen=True)
class Layout:
    """Where each part of the demo lives below ``root`` (the ``--dir``)."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "demo"

    @property
    def provider(self) -> Path:
        """The rsync module ``provider``: the technology provider's published trees."""
        return self.work / "provider"

    @property
    def build(self) -> Path:
        return self.work / "build"

    @property
    def rsyncd(self) -> Path:
        return self.work / "rsyncd"

    @property
    def gnupg(self) -> Path:
        """ROLLOUT_GNUPGHOME: the bridge's own signing key (kept between runs)."""
        return self.root / "gnupg"

    @property
    def provider_gnupg(self) -> Path:
        """The technology provider's RPM signing key (kept between runs)."""
        return self.root / "provider-gnupg"

    @property
    def data_dir(self) -> Path:
        """ROLLOUT_DATA_DIR: the bridge's SQLite database and frozen release.xml files."""
        return self.work / "bridge"

    @property
    def repo_root(self) -> Path:
        """ROLLOUT_REPO_ROOT: the repository's trees."""
        return self.work / "repo"

    @property
    def apt(self) -> Path:
        """The throw-away root a site installs into with apt-get."""
        return self.work / "apt"

    @property
    def dnf(self) -> Path:
        """The throw-away base (config, key, install root) of a site installing with dnf."""
        return self.work / "dnf"

    @property
    def logs(self) -> Path:
        return self.work / "logs"

    @property
    def settings_file(self) -> Path:
        return self.work / "bridge.toml"

    def pid_file(self, name: str) -> Path:
        return self.work / f"{name}.pid"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock for one run (the kernel drops it if the demo is killed).
        Raises ``DemoFailed`` while another demo runs in the same folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a+", encoding="utf-8") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                raise DemoFailed(
                    f"another demo is running in {self.root} (pid {lock.read().strip() or '?'}): "
                    "stop it with Ctrl-C, or give this one another --dir"
                ) from None
            lock.truncate(0)
            lock.write(f"{os.getpid()}\n")
            lock.flush()
            yield

    def make_fresh(self) -> None:
        """Remove the previous run's work folder (only if the demo made it) and make a new one.
        Raises ``DemoFailed`` when the folder exists and is not the demo's."""
        if self.work.exists():
            if not (self.work / MARKER).exists():
                raise DemoFailed(
                    f"{self.work} exists and was not made by the demo; choose another --dir"
                )
            shutil.rmtree(self.work)
        for folder in (self.work, self.provider, self.data_dir, self.repo_root, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        (self.work / MARKER).write_text("made by `rollout demo`; removed by its next run\n")


def bridge_settings(
    info: sandbox.SandboxInfo,
    layout: Layout,
    *,
    listen_port: int,
    repo_url: str,
    package_key: str,
) -> dict[str, str]:
    """The embedded default (SQLite, local trees, the bridge's own signing key) against the
    sandbox RT, publishing the provider's ``package_key``: setting → value."""
    return {
        "rt_url": info.web_url,
        "rt_token_file": info.bridge_token_file,
        "rt_bridge_user": info.bridge_user,
        "hook_secret_file": info.hook_secret_file,
        "queue": info.queue,
        "data_dir": str(layout.data_dir),
        "repo_root": str(layout.repo_root),
        "repo_url": repo_url,
        "listen_host": "127.0.0.1",
        "listen_port": str(listen_port),
        "sync_hosts": "127.0.0.1",  # the provider's rsync source runs on loopback
        "gnupghome": str(layout.gnupg),
        "package_keys": package_key,
    }


def environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any ``ROLLOUT_*`` of the caller's (a database URL
    or config file of theirs must not leak into the demo), plus ``settings`` as ``ROLLOUT_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(settings_load.ENV_PREFIX)}
    env.update({settings_load.ENV_PREFIX + key.upper(): value for key, value in settings.items()})
    return env


def write_settings_file(path: Path, settings: Mapping[str, str]) -> None:
    """``settings`` as a TOML file for ``rollout -c`` (JSON strings are TOML basic strings)."""
    lines = ["# The demo bridge's settings: rollout -c THIS_FILE queue list"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
