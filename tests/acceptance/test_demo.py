"""The installed ``rollout`` command, run as a person would, against a real sandbox RT: the demo
walks a release from ticket to installed package, signed: the tree is signed with the bridge's
own key (made on the first run, kept for the second), apt installs through a ``signed-by`` line
(never ``trusted=yes``), dnf with ``gpgcheck=1`` and ``repo_gpgcheck=1``; and it can be run
twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.store import database, releases

pytestmark = pytest.mark.rt

ROLLOUT = Path(sys.executable).with_name("rollout")
HISTORY = ["Submitted", "Unverified", "InVerification", "StageRollout", "Production"]
STEPS = [
    "A sandbox RT 5",
    "rsync source",
    "The repository's signing key (rollout repo init-key)",
    "The bridge (rollout run)",
    "files the release",
    "Submitted → Unverified",
    "Unverified → InVerification",
    "InVerification → StageRollout",
    "StageRollout → Production",
    "installs rollout-hello from the production tree with apt-get",
    "installs rollout-hello from the production tree with dnf",
]
RESULT = re.compile(
    r"^demo result: ticket (?P<ticket>\d+) (?P<state>\w+), history (?P<history>\S+), "
    r"installed (?P<package>\S+) (?P<version>\S+)$",
    re.MULTILINE,
)
KEY = re.compile(r"^  key +(?P<fingerprint>[0-9A-F]{40})  \((?P<said>[^)]*)\)$", re.MULTILINE)
SIGNED = (
    "signed tree: key {fingerprint}; apt signed-by, dnf gpgcheck=1 repo_gpgcheck=1 "
    "installed rollout-hello-1.0-1.noarch"
)
APT_LINE = re.compile(
    r"^ +deb \[signed-by=/etc/apt/keyrings/rollout-archive-keyring\.asc\] "
    r"http://127\.0\.0\.1:\d+/production/DEMO-1/base/debs/ \./$",
    re.MULTILINE,
)


def _rollout(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROLLOUT), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _dpkg_status(path: Path, package: str) -> str | None:
    """The Status of ``package`` in a dpkg status file, or None."""
    for stanza in path.read_text(encoding="utf-8").split("\n\n"):
        lines = stanza.splitlines()
        if f"Package: {package}" in lines:
            status = [x.removeprefix("Status: ") for x in lines if x.startswith("Status: ")]
            return status[0] if status else None
    return None


def _check_run(directory: Path, run: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    """What one ``rollout demo --exit`` says and leaves behind; returns its ticket and the
    fingerprint of the key that signed the tree."""
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "\x1b[" not in out, "no colours when the output is not a terminal"
    for step in STEPS:
        assert step in out, f"step {step!r} missing:\n{out}"
    result = RESULT.search(out)
    assert result, out
    assert result["state"] == "Production"
    assert result["history"] == ">".join(HISTORY)
    assert (result["package"], result["version"]) == ("rollout-hello", "1.0-1")
    assert "Stopped everything the demo started (--exit)." in out
    ticket = int(result["ticket"])
    # Signed: the apt line it shows verifies with signed-by; nothing says trusted=yes.
    key = KEY.search(out)
    assert key, out
    fingerprint = key["fingerprint"]
    assert APT_LINE.search(out), out
    assert "trusted=yes" not in out and "UNSIGNED" not in out
    assert SIGNED.format(fingerprint=fingerprint) in out

    # Independently of what it printed: the bridge's database has the whole history ...
    work = directory / "demo"
    engine = database.create_engine(f"sqlite:///{work / 'bridge' / 'bridge.sqlite'}")
    try:
        spans = releases.ReleaseStore(engine).history(ticket)
    finally:
        engine.dispose()
    assert [span.state.label for span in spans] == HISTORY
    assert all(span.left_at is not None for span in spans[:-1]) and spans[-1].left_at is None
    # ... the production tree has both packages ...
    production = work / "repo" / "production" / "DEMO-1" / "base"
    assert (production / "rpms/noarch/rollout-hello-1.0-1.noarch.rpm").is_file()
    assert (production / "debs/rollout-hello_1.0-1_all.deb").is_file()
    # ... signed with that key, and its client files check signatures ...
    assert (production / "debs/InRelease").is_file()
    assert (production / "rpms/noarch/repodata/repomd.xml.asc").is_file()
    shipped = (production / "rollout.list").read_text()
    assert "signed-by=" in shipped and "trusted=yes" not in shipped
    repo = (production / "rollout.repo").read_text()
    assert "\ngpgcheck=1\nrepo_gpgcheck=1\n" in repo
    assert (directory / "gnupg/rollout-signing-key").read_text().strip() == fingerprint
    # ... apt-get installed the package into the throw-away root ...
    apt = work / "apt"
    assert _dpkg_status(apt / "var/lib/dpkg/status", "rollout-hello") == "install ok installed"
    assert (apt / "usr/share/doc/rollout-hello/README").is_file()
    # ... dnf installed the signed RPM into its throw-away root ...
    assert (work / "dnf/dnf/root/usr/share/doc/rollout-hello/README").is_file()
    # ... and --exit stopped what it started.
    assert not list(work.glob("*.pid"))
    return ticket, fingerprint


def test_demo_walks_a_release_to_an_installed_package_and_runs_twice(tmp_path: Path) -> None:
    directory = tmp_path / "demo-dir"
    try:
        first = _rollout("demo", "--exit", "--dir", str(directory), timeout=300)
        assert "built (first run)" in first.stdout, first.stdout + first.stderr
        first_ticket, first_key = _check_run(directory, first)
        assert "(made (first run; RSA 4096))" in first.stdout
        after = _rollout("tracker", "sandbox", "status", "--dir", str(directory))
        assert after.returncode == 1 and "stopped" in after.stdout

        # Safe to run twice: RT's database is reused, the rest starts afresh, a new ticket;
        # the trees are signed with the same key as before (sites trust it).
        second = _rollout("demo", "--exit", "--dir", str(directory), timeout=300)
        assert "reused from an earlier run" in second.stdout, second.stdout + second.stderr
        second_ticket, second_key = _check_run(directory, second)
        assert second_ticket > first_ticket
        assert second_key == first_key
        assert f"{first_key}  (kept from an earlier run)" in second.stdout
    finally:
        _rollout("tracker", "sandbox", "down", "--dir", str(directory))


def test_installed_command_explains_itself() -> None:
    result = _rollout("--help")
    assert result.returncode == 0
    assert "Rollout bridge" in result.stdout
    for group in ("tracker", "demo"):
        assert group in result.stdout
    assert _rollout("tracker", "sandbox", "--help").returncode == 0
    same = subprocess.run(
        [sys.executable, "-m", "repo_daemon", "--help"], capture_output=True, text=True, check=False
    )
    assert same.stdout == result.stdout


def test_the_readme_shows_the_demo_s_last_lines() -> None:
    """README.md quotes how the demo's output ends: the two lines ``_check_run`` checks."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert RESULT.search(readme)
    assert SIGNED.format(fingerprint="<fingerprint>") in readme
    assert "trusted=yes" not in readme
